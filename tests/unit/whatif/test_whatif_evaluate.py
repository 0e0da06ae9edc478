"""What-if rows: exact agreement with the report, agreement with a rebuilt report, and invariants."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from llm_perf_opt.analytic import api
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.errors import UserError
from llm_perf_opt.whatif import Evaluator, WhatIfRow, apply_overrides, evaluate, load_report
from llm_perf_opt.whatif.evaluate import _bisect


def assert_row_is_report(row: WhatIfRow, report: AnalyticModelReport) -> None:
    """Every stage time, bound, total, job time and memory figure equal — not approximately."""
    assert [s.stage for s in report.stages] == list(row.stages)
    for stage in report.stages:
        assert row.stages[stage.stage].predicted_ms == stage.predicted_ms, stage.stage
        assert row.stages[stage.stage].bound == stage.bound, stage.stage
    assert row.latency_ms == report.predicted_total_time_ms
    assert row.job_ms == report.predicted_job_time_ms
    mem = report.memory
    assert (row.weights_gb, row.kv_cache_gb, row.activations_gb, row.memory_gb, row.device_memory_gb, row.fits) == (
        mem.weights_gb, mem.kv_cache_gb, mem.activations_gb, mem.total_gb, mem.device_memory_gb, mem.fits)
    facts = report.image_tokens
    assert (row.image_tokens, row.prefill_tokens, row.batch_size, row.max_new_tokens) == (
        facts.image_tokens, facts.prefill_tokens, facts.batch_size, facts.max_new_tokens)


def test_no_overrides_reproduces_the_report_exactly(ocr_report_path: Path, tiny_report_path: Path) -> None:
    for path in (ocr_report_path, tiny_report_path, ocr_report_path.with_name("report.yaml")):
        report = load_report(path)
        rows = evaluate(report)
        assert len(rows) == 1 and rows[0].scenario == {}
        assert_row_is_report(rows[0], report)
        assert evaluate(path)[0] == rows[0]  # a path is loaded first


@pytest.mark.parametrize(
    "overrides",
    [
        {"hardware": "h200"},
        {"batch_size": 4, "num_pages": 9},
        {"dtype": "fp8", "hardware": "l40s"},
        {"page_size": "1024x1024", "max_new_tokens": 100, "kv_dtype": "fp8"},
        {"mode": "base", "roofline.launch_overhead_us": 0, "roofline.bandwidth_efficiency": 1.0},
        {"hardware.bandwidth_tbs": 8, "roofline.compute_efficiency": 0.5, "roofline.use_achievable_peaks": True},
        {"max_new_tokens": 0},
        {"roofline.expert_load_ratio": 0.85, "batch_size": 32},
    ],
)
def test_overridden_rows_equal_a_rebuilt_report(ocr_report: AnalyticModelReport, overrides: dict[str, object]) -> None:
    """What-if computes what build_report would for the overridden inputs, to the last bit."""
    inp = apply_overrides(ocr_report, overrides)
    rebuilt = api.build_report(inp.model_spec, inp.workload_spec, inp.hardware, params=inp.roofline,
                               precision=inp.precision)
    row = evaluate(ocr_report, overrides)[0]
    assert_row_is_report(row, rebuilt)
    totals = api.stage_totals(inp.model_spec, inp.workload_spec, precision=inp.precision, hardware=inp.hardware,
                              params=inp.roofline)
    assert {k: (v.predicted_ms, v.bound) for k, v in totals.items()} == {
        k: (v.predicted_ms, v.bound) for k, v in row.stages.items()}


def test_row_semantics(tiny_report_path: Path) -> None:
    row = evaluate(tiny_report_path)[0]  # batch 3 of 7 pages, 64 new tokens
    assert row.ms_per_page == row.latency_ms / 3
    assert row.pages_per_s == pytest.approx(3 * 1000 / row.latency_ms)
    assert row.tokens_per_s == pytest.approx(3 * 64 * 1000 / row.latency_ms)
    assert row.job_ms == row.latency_ms * 3  # ⌈7 / 3⌉ calls
    assert row.latency_ms == pytest.approx(sum(s.predicted_ms for s in row.stages.values()))
    json.dumps(row.to_dict(), allow_nan=False)
    flat = row.to_flat()
    assert flat["decode_ms"] == row.stages["decode"].predicted_ms and flat["decode_bound"] == row.stages["decode"].bound


# -- invariants ------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 8])
def test_doubling_bandwidth(ocr_report: AnalyticModelReport, batch: int) -> None:
    """Never slower; at most twice as fast; memory-bound decode exactly twice as fast without launch overhead.

    The exact-halving checks switch the host issue cost off too (``host_overhead_us=0``): a
    host-bound step does not speed up with bandwidth at all."""
    bw = ocr_report.inputs.hardware.bandwidth_tbs
    for overhead in (0.0, 5.0):
        base, fast = evaluate(ocr_report, {"batch_size": batch, "roofline.launch_overhead_us": overhead,
                                           "execution": "eager"},
                              {"hardware.bandwidth_tbs": [bw, 2 * bw]})
        for name, stage in base.stages.items():
            t, t2 = stage.predicted_ms, fast.stages[name].predicted_ms
            assert t / 2 * (1 - 1e-12) <= t2 <= t * (1 + 1e-12), name
        assert fast.latency_ms <= base.latency_ms
    # Without launch overhead, every decode kernel is memory-bound before and after: exactly half.
    gpu_only = {"roofline.host_overhead_us": 0, "execution": "eager"}
    base0, fast0 = evaluate(ocr_report, {"batch_size": batch, "roofline.launch_overhead_us": 0, **gpu_only},
                            {"hardware.bandwidth_tbs": [bw, 2 * bw]})
    assert base0.stages["decode"].bound == "memory"
    assert fast0.stages["decode"].predicted_ms == base0.stages["decode"].predicted_ms / 2
    # With overhead K (kernels × launch cost), the same stage takes (T − K)/2 + K: K does not shrink.
    base5, fast5 = evaluate(ocr_report, {"batch_size": batch, "roofline.launch_overhead_us": 5, **gpu_only},
                            {"hardware.bandwidth_tbs": [bw, 2 * bw]})
    launch = base5.stages["decode"].predicted_ms - base0.stages["decode"].predicted_ms
    assert fast5.stages["decode"].predicted_ms == pytest.approx((base5.stages["decode"].predicted_ms - launch) / 2
                                                                + launch, rel=1e-12)
    # Graph decode without a per-kernel floor or launch: the same memory-bound steps, exactly half.
    graph0 = {"execution": "graph", "roofline.kernel_floor_us": 0, "roofline.graph_launch_us": 0}
    g_base, g_fast = evaluate(ocr_report, {"batch_size": batch, **graph0}, {"hardware.bandwidth_tbs": [bw, 2 * bw]})
    assert g_base.stages["decode"].bound == "memory"
    assert g_fast.stages["decode"].predicted_ms == pytest.approx(g_base.stages["decode"].predicted_ms / 2, rel=1e-12)


def test_more_new_tokens_never_shortens_decode(ocr_report: AnalyticModelReport) -> None:
    tokens = [0, 1, 2, 3, 10, 100, 511, 512, 513, 1000, 2000, 4000]
    rows = evaluate(ocr_report, sweeps={"hardware": "h100-sxm,l40s", "batch_size": [1, 16], "max_new_tokens": tokens})
    for start in range(0, len(rows), len(tokens)):
        run = rows[start:start + len(tokens)]
        decode = [r.stages["decode"].predicted_ms for r in run]
        assert decode == sorted(decode) and decode[0] == 0.0 and decode[1] == 0.0  # 0 or 1 token: no decode step
        assert [r.latency_ms for r in run] == sorted(r.latency_ms for r in run)
        assert [r.kv_cache_gb for r in run] == sorted(r.kv_cache_gb for r in run)


@pytest.mark.parametrize("max_crops", [6, 9])
def test_larger_pages_never_reduce_image_tokens(ocr_report: AnalyticModelReport, max_crops: int) -> None:
    """Pages scaled up at the same aspect ratio: image tokens (and vision time) never go down."""
    for w, h in ((300, 424), (250, 250), (400, 200), (160, 480), (827, 1170)):
        pages = [f"{w * k}x{h * k}" for k in range(1, 9)]
        rows = evaluate(ocr_report, {"max_crops": max_crops}, {"page_size": pages})
        tokens = [r.image_tokens for r in rows]
        assert tokens == sorted(tokens), (w, h, tokens)
        vision = [r.stages["vision"].predicted_ms for r in rows]
        assert vision == sorted(vision), (w, h)
    for mode in ("tiny", "small", "base", "large"):  # no tiles: the page size does not matter
        rows = evaluate(ocr_report, {"mode": mode}, {"page_size": "300x300,1654x2339,5000x800"})
        assert len({r.image_tokens for r in rows}) == 1


def test_a_wider_page_can_get_fewer_tiles(ocr_report: AnalyticModelReport) -> None:
    """Documented limit of the monotonicity above: the official grid rule follows the aspect ratio,
    so 3000x1000 (3x1 tiles) gets fewer tokens than the smaller 2000x1000 (4x2 tiles)."""
    small, wide = evaluate(ocr_report, sweeps={"page_size": "2000x1000,3000x1000"})
    assert (small.image_tokens, wide.image_tokens) == (1093, 583)


def test_fp8_weights_halve_weight_bytes(ocr_report: AnalyticModelReport) -> None:
    bf16, fp8 = evaluate(ocr_report, sweeps={"weight_dtype": "bf16,fp8"})
    assert fp8.weights_gb * 2 == bf16.weights_gb
    assert (fp8.kv_cache_gb, fp8.activations_gb) == (bf16.kv_cache_gb, bf16.activations_gb)
    kv8 = evaluate(ocr_report, {"kv_dtype": "fp8"})[0]
    assert kv8.kv_cache_gb * 2 == bf16.kv_cache_gb and kv8.weights_gb == bf16.weights_gb


# -- largest batch that fits ----------------------------------------------------------------------
def _memory_at(report: AnalyticModelReport, batch: int, **overrides: object) -> float:
    return evaluate(report, {**overrides, "batch_size": batch})[0].memory_gb


@pytest.mark.parametrize("memory_gb", [7.5, 9.5, 24, 80, 141])
def test_max_batch_is_the_largest_that_fits(ocr_report: AnalyticModelReport, memory_gb: float) -> None:
    row = evaluate(ocr_report, {"hardware.memory_gb": memory_gb})[0]
    b = row.max_batch
    assert b >= 1
    assert _memory_at(ocr_report, b, **{"hardware.memory_gb": memory_gb}) <= memory_gb
    assert _memory_at(ocr_report, b + 1, **{"hardware.memory_gb": memory_gb}) > memory_gb
    assert row.fits == (row.batch_size <= row.max_batch)


def test_max_batch_zero_when_one_page_does_not_fit(ocr_report: AnalyticModelReport) -> None:
    row = evaluate(ocr_report, {"hardware.memory_gb": 5})[0]  # the weights alone are 6.7 GB
    assert (row.fits, row.max_batch) == (False, 0)


def test_max_batch_is_shared_across_batch_sizes_and_devices(ocr_report: AnalyticModelReport) -> None:
    rows = evaluate(ocr_report, sweeps={"hardware": "h100-sxm,h200,l40s", "batch_size": [1, 4, 16, 64, 256]})
    by_hw: dict[str, set[int]] = {}
    for r in rows:
        by_hw.setdefault(r.hardware, set()).add(r.max_batch)
        assert r.fits == (r.batch_size <= r.max_batch)
    assert all(len(v) == 1 for v in by_hw.values())
    limit = {hw: v.pop() for hw, v in by_hw.items()}
    assert limit["h200"] > limit["h100-sxm"] > limit["l40s"] > 1


def test_max_batch_fallback_bisection_agrees(ocr_report: AnalyticModelReport, monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the non-affine path: the bisection finds the same limit as the closed form."""
    closed = evaluate(ocr_report, sweeps={"hardware.memory_gb": [9.5, 80]})
    ev_mod = __import__("sys").modules["llm_perf_opt.whatif.evaluate"]
    monkeypatch.setattr(ev_mod, "_REL_TOL", -1.0)  # no line is ever "affine" now
    bisected = evaluate(ocr_report, sweeps={"hardware.memory_gb": [9.5, 80]}, evaluator=Evaluator())
    assert [r.max_batch for r in bisected] == [r.max_batch for r in closed]


@pytest.mark.parametrize("limit", [1, 2, 3, 17, 1000, 123457])
def test_bisect_finds_the_boundary_in_few_steps(limit: int) -> None:
    calls: list[int] = []

    def fits(b: int) -> bool:
        calls.append(b)
        return b <= limit

    for guess in (1, 5, 10**6):
        calls.clear()
        assert _bisect(fits, min(guess, 1 << 20)) == limit
        assert len(calls) <= 2 * math.ceil(math.log2(max(guess, limit) + 2)) + 4


def test_unsupported_dtype_on_a_device_names_the_scenario(ocr_report: AnalyticModelReport) -> None:
    with pytest.raises(UserError, match=r"scenario dtype=fp8, hardware=a100-sxm: hardware a100-sxm has no FP8"):
        evaluate(ocr_report, {"dtype": "fp8"}, {"hardware": "h100-sxm,a100-sxm"})


def test_rows_come_back_in_grid_order(ocr_report: AnalyticModelReport) -> None:
    rows = evaluate(ocr_report, sweeps={"hardware": "h100-sxm,h200", "max_new_tokens": [8, 16, 32]})
    assert [r.index for r in rows] == list(range(6))
    assert [(r.hardware, r.max_new_tokens) for r in rows] == [
        (hw, t) for hw in ("h100-sxm", "h200") for t in (8, 16, 32)]


def test_bounded_caches_do_not_change_results(ocr_report: AnalyticModelReport, monkeypatch: pytest.MonkeyPatch) -> None:
    sweeps = {"hardware": "h100-sxm,l40s", "batch_size": [1, 2, 3], "max_new_tokens": [16, 32]}
    full = evaluate(ocr_report, sweeps=sweeps, evaluator=Evaluator())
    monkeypatch.setattr(__import__("sys").modules["llm_perf_opt.whatif.evaluate"], "MAX_CACHED_SHAPES", 2)
    assert evaluate(ocr_report, sweeps=sweeps, evaluator=Evaluator()) == full


def test_skewed_routing_reads_fewer_expert_weights_in_decode(ocr_report: AnalyticModelReport) -> None:
    """At batch 32 the decode step's grouped MoE reads the experts its 192 pairs touch: fewer when skewed."""
    uniform, skewed = (evaluate(ocr_report, {"batch_size": 32, "roofline.expert_load_ratio": r})[0] for r in (1, 0.85))
    assert skewed.stages["decode"].predicted_ms < uniform.stages["decode"].predicted_ms
    assert skewed.stages["vision"].predicted_ms == uniform.stages["vision"].predicted_ms  # no MoE in vision
