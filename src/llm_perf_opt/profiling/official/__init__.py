"""Profiling the official DeepSeek-OCR checkpoint code (``--trust-remote-code``); see :mod:`.session`."""

from llm_perf_opt.profiling.official.loader import is_official_checkpoint, load_official_model
from llm_perf_opt.profiling.official.session import OfficialInputs, OfficialSession, build_official_inputs

__all__ = [
    "OfficialInputs",
    "OfficialSession",
    "build_official_inputs",
    "is_official_checkpoint",
    "load_official_model",
]
