"""Rendering of the profiled-window timeline: report text, summary sentence and the two PNGs.

The GPU figures are made up but plausible for DeepSeek-OCR on an H200 (eager decode, base mode,
batch 1): the renderers must turn them into the measured sentences and readable plots.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from PIL import Image

from llm_perf_opt.profiling.mfu import Peaks, StageCost
from llm_perf_opt.profiling.timeline import StageTimeline, Timeline
from llm_perf_opt.reporting.profile_timeline import decode_sentence, summary_lines, timeline_section
from llm_perf_opt.reporting.profile_timeline_plot import render_roofline, render_timeline

H200 = Peaks(tflops=989.0, bandwidth_tbs=4.8, source="hardware table row h200")


def _stage(name: str, units: int, span_ms: float, busy_ms: float, kernels: int) -> StageTimeline:
    """Per-unit figures in ms (decode: per step) turned into the timeline's sums in µs."""
    return StageTimeline(
        name,
        units=units,
        span_us=span_ms * 1000 * units,
        busy_us=busy_ms * 1000 * units,
        launches=kernels * units,
        launch_us=busy_ms * 1000 * units * 1.02,
    )


def gpu_state(tmp: Path) -> Any:
    tl = Timeline(resource="gpu", decode_mode="eager", analytic_kernels_per_step=431.0, timed_step_ms=9.2)
    tl.stages = {
        "vision": _stage("vision", 1, 20.0, 18.5, 1200),
        "sam": _stage("sam", 1, 12.0, 11.4, 700),
        "clip": _stage("clip", 1, 7.0, 6.6, 450),
        "projector": _stage("projector", 1, 0.30, 0.12, 6),
        "prefill": _stage("prefill", 1, 18.0, 9.0, 1000),
        "decode_step": _stage("decode_step", 32, 9.5, 1.615, 430),  # busy 17% of the step
    }
    tl.costs = {
        "vision": StageCost(flops=2.0e12, bytes=6.0e9),  # 333 FLOP/B > ridge 206: compute-bound
        "projector": StageCost(flops=3.4e9, bytes=2.0e7),
        "prefill": StageCost(flops=4.0e11, bytes=7.0e9),  # 57 FLOP/B: memory-bound
        "decode_step": StageCost(flops=1.2e9, bytes=1.3e9),
    }
    per_unit = {  # (stage, family): (FLOPs, bytes, busy ms) of one call, or of one decode step
        ("vision", "GEMM"): (1.6e12, 3.0e9, 12.0),
        ("vision", "attention"): (3.5e11, 2.0e9, 4.0),
        ("vision", "other"): (5.0e10, 1.0e9, 2.5),
        ("prefill", "GEMM"): (3.9e11, 6.5e9, 7.0),
        ("prefill", "attention"): (8.0e9, 1.0e8, 0.6),
        ("prefill", "other"): (2.0e9, 4.0e8, 1.4),
        ("decode_step", "GEMM"): (1.15e9, 1.2e9, 1.3),
        ("decode_step", "attention"): (2.4e7, 4.0e7, 0.1),
        ("decode_step", "other"): (1.0e6, 6.0e7, 0.2),
    }
    tl.family_costs = {k: StageCost(flops=f, bytes=b) for k, (f, b, _) in per_unit.items()}
    tl.family_busy_us = {k: ms * 1000 * tl.stages[k[0]].units for k, (_, _, ms) in per_unit.items()}
    trace = tmp / "trace.json"
    trace.write_bytes(b"x" * 3_400_000)
    tables = SimpleNamespace(
        windows=[
            "batch 0 (3 batch(es) of this shape): prefill (vision included) + decode "
            "steps 4–35 of 255 (K = 32, first 3 left out)"
        ]
    )
    return SimpleNamespace(
        timeline=tl,
        tables=tables,
        peaks=H200,
        env={"device_name": "NVIDIA H200"},
        device=torch.device("cuda:0"),
        dtype="bf16",
        config=SimpleNamespace(torch_profiler=True),
        trace_path=trace,
    )


def test_report_states_measured_busy_fractions_and_verdicts(tmp_path: Path) -> None:
    state = gpu_state(tmp_path)
    sentence = decode_sentence(state)
    assert sentence is not None
    assert sentence.startswith("decode is host-bound (eager decode): the GPU is busy 17% of the step")
    text = "\n".join(timeline_section(state))
    assert "| decode step (per step) | 9.500 | 1.615 | 7.885 | 17% | 430 | 3.8 |" in text
    assert "compute-bound: 11% of peak FLOP/s while busy" in text  # 2e12 / 18.5 ms = 108 TFLOP/s of 989
    assert "memory-bound: 16% of peak bandwidth while busy" in text  # 7e9 B / 9 ms = 0.78 TB/s of 4.8
    assert "host-bound: GPU busy 40% of the stage" in text  # projector 0.12 of 0.30 ms
    assert "| Difference | -0.2% (within ±5%) |" in text  # 430 vs 431
    assert "3.4 MB" in text and "steps 4–35 of 255" in text
    assert "9.500 ms (GPU span ÷ steps) vs 9.200 ms in the timed runs (3.3%; within ±5%)" in text
    lines = summary_lines(state)
    assert any("decode is host-bound" in line for line in lines)
    assert any("the vision encoders: GPU busy 92%" in line for line in lines)
    x, y = state.timeline.category_points()[("decode_step", "GEMM")]
    assert x == pytest.approx(1.15 / 1.2) and y == pytest.approx(1.15e9 / 1.3e-3)  # per step, over its busy time


def test_cpu_run_says_there_are_no_gpu_kernels(tmp_path: Path) -> None:
    state = gpu_state(tmp_path)
    state.timeline.resource = "cpu"
    state.peaks = None
    text = "\n".join(timeline_section(state))
    assert "**No GPU kernels (CPU run).**" in text and "no GPU kernels (CPU run) |" in text
    assert "aten operators that do work (CPU stand-in)" in text
    assert decode_sentence(state) is None
    assert summary_lines(state)[-1].startswith("This was a CPU run: there are no GPU kernels")


def write_plots(state: Any, out: Path) -> list[Path]:
    paths = [out / "timeline.png", out / "roofline.png"]
    paths[0].write_bytes(render_timeline(state))
    paths[1].write_bytes(render_roofline(state))
    return paths


def test_plots_render_as_pngs(tmp_path: Path) -> None:
    state = gpu_state(tmp_path)
    for path in write_plots(state, tmp_path):
        with Image.open(io.BytesIO(path.read_bytes())) as img:
            assert img.format == "PNG" and img.width >= 800 and img.height >= 200
    state.timeline = None
    with Image.open(io.BytesIO(render_roofline(state))) as img:  # no window: a placeholder, not a crash
        assert img.format == "PNG"
