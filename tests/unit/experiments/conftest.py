"""Shared CPU fixtures of the experiment tests: one thread (tiny tensors; avoids OpenMP oversubscription)
and one small validation matrix of real tiny-model profile runs, made once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def matrix_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``experiment validate`` on the tiny model, CPU, eager: tiny-b1-n3 (calibration) and base-b1-n2."""
    import torch

    from llm_perf_opt.experiments.validate import run_validate

    out = tmp_path_factory.mktemp("validate")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_validate(validate_config(out))
    finally:
        torch.set_num_threads(threads)
    return out


def validate_config(out: Path) -> Any:
    from llm_perf_opt.experiments.validate import ValidateConfig

    return ValidateConfig(out=out, model="tiny", device="cpu", workloads=("tiny", "base"), batches=(1,), tokens=(2, 3),
                          executions=("eager",), calibrate_on="tiny-b1-n3", repeats=1, warmup=0)
