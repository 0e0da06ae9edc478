"""Helpers of the calibration tests: a real tiny profile run (CLI, CPU) and copies of it edited on purpose."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from llm_perf_opt.cli import cli
from llm_perf_opt.profiling.synthetic import synthetic_page

H100 = "NVIDIA H100 80GB HBM3"


def make_profile_run(root: Path, *, batch: int = 1) -> Path:
    """``llm-perf-opt profile`` on the tiny model on CPU: one 600×800 page (or ``batch`` of them), 2 repeats,
    4 new tokens, no torch.profiler pass, --peak-tflops 1 so MFU is computed."""
    pages = root / "pages"
    pages.mkdir(parents=True, exist_ok=True)
    for i in range(batch):
        synthetic_page("text_heavy", size=(600, 800), seed=i).save(pages / f"page{i}.png")
    out = root / "run"
    args = [
        "profile",
        "--model",
        "tiny",
        "--mode",
        "tiny",
        "--device",
        "cpu",
        "--quiet",
        "--images",
        str(pages),
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--max-new-tokens",
        "4",
        "--no-torch-profiler",
        "--batch-size",
        str(batch),
        "--output-dir",
        str(out),
        "--run-id",
        "calib-test",
        "--peak-tflops",
        "1.0",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return out


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def as_gpu_run(run: Path, dest: Path, gpu: str = H100) -> Path:
    """A copy of ``run`` whose env.json says it ran on ``gpu`` (so no --hardware is needed)."""
    copy_run(run, dest)
    edit_json(dest / "env.json", device="cuda:0", device_name=gpu)
    return dest
