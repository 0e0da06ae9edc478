"""Stage-1 profiling of the runnable DeepSeek-OCR model: stage times, operators, MFU.

Facade (names load lazily, so importing this package does not import torch)::

    from llm_perf_opt.profiling import ProfileConfig, run_profile

    result = run_profile(ProfileConfig(model="tiny", mode="tiny", repeats=2, max_new_tokens=8, device="cpu"))
    result.report            # LLMProfileReport (also written to <output_dir>/metrics.json)
    result.state.records     # one RunRecord per timed generation call (runs.jsonl)
    result.state.tables      # OperatorTables from the separate torch.profiler pass

Building blocks: :mod:`~.nvtx_ranges` (NVTX + ``record_function`` ranges, no-op fallback),
:mod:`~.timers` (synchronizing CUDA-event stage clock), :mod:`~.session` (load once, batches),
:mod:`~.torch_profiler` (operator tables by stage), :mod:`~.mfu` (statistics: :mod:`llm_perf_opt.data.stats`),
:mod:`~.inputs` (collect/validate images, synthetic pages), :mod:`~.env`, :mod:`~.artifacts`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ProfileConfig": "llm_perf_opt.profiling.state",
    "ProfileResult": "llm_perf_opt.profiling.state",
    "ProfileState": "llm_perf_opt.profiling.state",
    "ProgressEvent": "llm_perf_opt.profiling.state",
    "ProfileIncomplete": "llm_perf_opt.profiling.state",
    "LLMProfileRunner": "llm_perf_opt.profiling.runner",
    "run_profile": "llm_perf_opt.profiling.runner",
    "measure_call": "llm_perf_opt.profiling.timers",
    "ProfileSession": "llm_perf_opt.profiling.session",
    "StageClock": "llm_perf_opt.profiling.timers",
    "OperatorTables": "llm_perf_opt.profiling.torch_profiler",
    "annotated_range": "llm_perf_opt.profiling.nvtx_ranges",
    "nvtx_range": "llm_perf_opt.profiling.nvtx_ranges",
    "collect_inputs": "llm_perf_opt.profiling.inputs",
    "write_artifacts": "llm_perf_opt.profiling.artifacts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_perf_opt.profiling' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
