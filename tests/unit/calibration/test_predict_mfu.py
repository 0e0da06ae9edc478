"""Stage predictions match analyze; the profiler's MFU equals analytic FLOPs / (measured time × peak)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from llm_perf_opt.analytic.api import stage_totals
from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration import StagePredictor, read_run_dir
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.workload import load_workload

H100 = load_hardware("h100-sxm")


@pytest.mark.parametrize("mode", ["base", "gundam"])
def test_predicted_stages_are_the_analyze_stage_times(mode: str) -> None:
    spec = load_model_spec("deepseek-ocr")
    w = load_workload(mode).replace(max_new_tokens=64, batch_size=2)
    # range_gap_us = 0: the measured ranges then add up exactly as the analytic stages (gaps: the next test).
    params = RooflineParams(launch_overhead_us=9.0, bandwidth_efficiency=0.7, prefill_execution="eager", range_gap_us=0)
    times = StagePredictor(spec, w, H100).times_ms(params)
    totals = {k: v.predicted_ms for k, v in stage_totals(spec, w, hardware=H100, params=params).items()}
    # The measured vision range also holds the newline/separator assembly (analytic: projector
    # stage), the measured projector range only the projector pass.
    assert times["vision"] > totals["vision"] and times["projector"] < totals["projector"]
    # SAM and CLIP are timed as separate spans (the profiler syncs between them), each an eager
    # kernel queue; the vision stage is the same two spans.
    assert times["sam"] + times["clip"] >= totals["vision"] * (1 - 1e-12)
    no_host = attrs.evolve(params, host_overhead_us=0.0, stage_host_overhead_us=0.0)
    gpu_only = StagePredictor(spec, w, H100).times_ms(no_host)
    gpu_totals = stage_totals(spec, w, hardware=H100, params=no_host)
    gpu_vision = gpu_totals["vision"].predicted_ms
    assert gpu_only["sam"] + gpu_only["clip"] == pytest.approx(gpu_vision, rel=1e-12)
    assert gpu_only["vision"] + gpu_only["projector"] == pytest.approx(
        gpu_vision + gpu_totals["projector"].predicted_ms, rel=1e-12
    )
    assert times["sam"] > 0 and times["clip"] > 0
    assert times["prefill_decoder"] == pytest.approx(totals["prefill"], rel=1e-12)
    # As measured: the prefill range = the vision range (vision + projector) + the decoder part.
    assert times["prefill"] == pytest.approx(times["vision"] + times["projector"] + times["prefill_decoder"], rel=1e-12)
    assert times["decode"] == pytest.approx(totals["decode"], rel=1e-12)


@pytest.mark.parametrize("mode", ["base", "gundam"])
def test_graphed_prefill_moves_the_assembly_into_the_decoder_range(mode: str) -> None:
    """Graph execution replays the assembly inside the decoder's prefill graph, not in the vision range;
    SAM and CLIP are one graph each, so vision is exactly their two ranges."""
    spec = load_model_spec("deepseek-ocr")
    w = load_workload(mode).replace(max_new_tokens=64, batch_size=2)
    params = RooflineParams(bandwidth_efficiency=0.7, range_gap_us=0, graph_stage_timing="range")
    times = StagePredictor(spec, w, H100).times_ms(params)
    totals = {k: v.predicted_ms for k, v in stage_totals(spec, w, hardware=H100, params=params).items()}
    assert times["sam"] + times["clip"] == pytest.approx(totals["vision"], rel=1e-12)
    assert times["vision"] == pytest.approx(totals["vision"], rel=1e-12)
    assert times["prefill_decoder"] > totals["prefill"]
    # As measured: the prefill range = the vision range (vision + projector) + the decoder part.
    assert times["prefill"] == pytest.approx(times["vision"] + times["projector"] + times["prefill_decoder"], rel=1e-12)
    eager = StagePredictor(spec, w, H100).times_ms(attrs.evolve(params, prefill_execution="eager"))
    assert eager["clip"] > times["clip"]  # host issue of the eager kernels vs replayed graph
    assert times["total"] == pytest.approx(sum(totals.values()), rel=1e-12)


MEASURED_COLUMNS = {
    "vision": ("vision_ms", ("vision",)),
    "projector": ("projector_ms", ("projector",)),
    "prefill_decoder": ("prefill_decoder_ms", ("prefill",)),
    "prefill": ("prefill_ms", ("vision", "projector", "prefill")),
    "decode": ("decode_ms", ("decode",)),
    "total": ("total_ms", ("vision", "projector", "prefill", "decode")),
}


def test_profiler_mfu_equals_analytic_flops_over_measured_time_and_peak(tiny_run: Path) -> None:
    """Independent of the profiler's code path: FLOPs from stage_totals for the run's exact input,
    times from runs.jsonl, the peak given on the command line (--peak-tflops 1)."""
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    peak = 1.0e12
    run = read_run_dir(tiny_run, hardware=H100)
    (mw,) = run.workloads
    totals = stage_totals(run.spec, mw.workload, precision=run.precision)
    records = [json.loads(line) for line in (tiny_run / "runs.jsonl").read_text().splitlines()]
    for stage, (column, parts) in MEASURED_COLUMNS.items():
        flops = sum(totals[p].flops for p in parts)
        seconds = sum(r[column] for r in records) / 1000.0
        expected = flops * len(records) / (seconds * peak)
        assert metrics["analytic"][f"{stage}_mfu_raw"] == pytest.approx(expected, rel=1e-9), stage
        if stage != "total":
            assert metrics["mfu_per_stage"][stage] == pytest.approx(min(expected, 1.5), rel=1e-9), stage
    assert metrics["mfu_model_level"] == pytest.approx(metrics["analytic"]["total_mfu_raw"], rel=1e-9)


def test_nested_ranges_leave_their_host_gaps_in_vision_and_prefill() -> None:
    """The profiler synchronises at the ends of sam, clip and projector inside the vision range: each leaves
    range_gap_us of host time in the measured vision (and so in prefill), none in SAM, CLIP or the decoder part."""
    spec = load_model_spec("deepseek-ocr")
    w = load_workload("base")
    none, gap = RooflineParams(range_gap_us=0), RooflineParams(range_gap_us=100)
    a, b = StagePredictor(spec, w, H100).times_ms(none), StagePredictor(spec, w, H100).times_ms(gap)
    assert b["vision"] - a["vision"] == pytest.approx(0.3) and b["prefill"] - a["prefill"] == pytest.approx(0.3)
    for stage in ("sam", "clip", "projector", "prefill_decoder", "decode"):
        assert b[stage] == a[stage]


@pytest.mark.parametrize("mode", ["base", "gundam"])
def test_in_graph_spans_leave_each_launch_in_the_enclosing_ranges(mode: str) -> None:
    """A graphed stage timed by events inside its graph is its kernels plus the span's own cost: its range
    (launch + the range's fixed cost) minus graph_launch_us + graph_stage_overhead_us plus
    graph_span_overhead_us. The vision and prefill ranges around them hold the same work either way, so they
    predict the same."""
    spec = load_model_spec("deepseek-ocr")
    w = load_workload(mode).replace(max_new_tokens=64, batch_size=2)
    ranged = RooflineParams(
        graph_launch_us=10.0, graph_stage_overhead_us=8.0, graph_span_overhead_us=6.0, graph_stage_timing="range"
    )
    whole = StagePredictor(spec, w, H100).times_ms(ranged)
    spans = StagePredictor(spec, w, H100).times_ms(attrs.evolve(ranged, graph_stage_timing="span"))
    no_span_cost = attrs.evolve(ranged, graph_stage_timing="span", graph_span_overhead_us=0)
    bare = StagePredictor(spec, w, H100).times_ms(no_span_cost)
    for stage in ("sam", "clip", "projector"):
        assert whole[stage] - bare[stage] == pytest.approx(0.018, rel=1e-9), stage  # 10 + 8 µs
        assert spans[stage] - bare[stage] == pytest.approx(0.006, rel=1e-9), stage
    for stage in ("vision", "prefill", "prefill_decoder", "decode", "total"):
        assert spans[stage] == pytest.approx(whole[stage], rel=1e-12), stage
        assert bare[stage] == pytest.approx(whole[stage], rel=1e-12), stage
    # Eager stages have no graph to time inside: the setting changes nothing there.
    eager = attrs.evolve(ranged, prefill_execution="eager")
    a = StagePredictor(spec, w, H100).times_ms(eager)
    b = StagePredictor(spec, w, H100).times_ms(attrs.evolve(eager, graph_stage_timing="span"))
    assert a == b
