"""env.json says which llm-perf-opt ran and from where (not only the git state of the current directory)."""

from __future__ import annotations

from pathlib import Path

import torch

import llm_perf_opt
from llm_perf_opt.profiling.env import capture_environment


def test_env_records_package_version_and_location() -> None:
    env = capture_environment(torch.device("cpu"), seed=0)
    assert env["llm_perf_opt_version"] == llm_perf_opt.__version__
    assert Path(env["llm_perf_opt_location"], "api.py").is_file()
