"""Stage clocks, range nesting, NVTX fallback, statistics and operator attribution (CPU only)."""

from __future__ import annotations

import contextlib
import time

import pytest
import torch

from llm_perf_opt.data.stats import percentile, relative_spread, summarize, summarize_columns
from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr.common import report_device_span
from llm_perf_opt.profiling import nvtx_ranges
from llm_perf_opt.profiling.env import resolve_device, resolve_dtype
from llm_perf_opt.profiling.nvtx_ranges import annotated_range, combine, null_ranges, nvtx_range
from llm_perf_opt.profiling.records import stage_bounds
from llm_perf_opt.profiling.timers import StageClock, peak_memory_bytes
from llm_perf_opt.profiling.torch_profiler import LEAF_STAGES, OperatorTables, collect

CPU = torch.device("cpu")


def fake_generate(ranges: nvtx_ranges.RangeFactory, steps: int = 3, sleep: float = 0.002) -> None:
    """The nesting of the model's generate: prefill ⊃ vision ⊃ (sam, clip, projector), then decode."""
    lin = torch.nn.Linear(64, 64)
    x = torch.randn(8, 64)
    with ranges("prefill"):
        with ranges("vision"):
            with ranges("sam"):
                x = lin(x)
                time.sleep(sleep)
            with ranges("clip"):
                x = lin(x)
                time.sleep(sleep)
            with ranges("projector"):
                x = torch.relu(lin(x))
            x = x + 1
        x = lin(x)
        time.sleep(sleep)
    for _ in range(steps):
        with ranges("decode"):
            x = lin(x).softmax(-1)
            time.sleep(sleep / 2)


def test_stage_clock_nested_ranges_add_up() -> None:
    clock = StageClock(CPU)
    clock.start()
    fake_generate(clock.ranges)
    clock.stop()
    ranges = clock.timings()
    total = clock.total_ms()
    assert set(ranges) == {"prefill", "vision", "sam", "clip", "projector", "decode"}
    assert ranges["decode"].count == 3
    assert ranges["prefill"].contains(ranges["vision"]) and ranges["vision"].contains(ranges["projector"])
    b = stage_bounds(ranges, total)
    assert b["sam_ms"] >= 2 and b["clip_ms"] >= 2 and b["prefill_decoder_ms"] >= 2
    assert b["vision_ms"] == pytest.approx(b["vision_range_ms"] - b["projector_ms"])
    assert b["decode_range_openings"] == 3 and b["decode_ms"] >= b["decode_range_ms"] > 0
    parts = b["vision_range_ms"] + b["prefill_decoder_ms"] + b["decode_ms"]
    assert parts <= total + 1e-6
    # Only the setup before prefill lies outside the stages: exact accounting, not a time budget.
    assert total - parts == pytest.approx(ranges["prefill"].start_ms, abs=1e-6)
    assert peak_memory_bytes(CPU) is None


def test_stage_bounds_when_projector_is_outside_vision() -> None:
    clock = StageClock(CPU)
    clock.start()
    with clock.ranges("prefill"):
        with clock.ranges("vision"):
            time.sleep(0.002)
        with clock.ranges("projector"):
            time.sleep(0.002)
        time.sleep(0.002)
    clock.stop()
    b = stage_bounds(clock.timings(), clock.total_ms())
    assert b["vision_ms"] == pytest.approx(b["vision_range_ms"])
    assert b["prefill_decoder_ms"] == pytest.approx(b["prefill_ms"] - b["vision_range_ms"] - b["projector_ms"])


class _FakeEvent:
    """Stands in for a CUDA timing event a replayed graph records (elapsed_time in ms, as torch's)."""

    def __init__(self, at_ms: float) -> None:
        self.at_ms = at_ms

    def elapsed_time(self, other: _FakeEvent) -> float:
        return other.at_ms - self.at_ms


def test_in_graph_spans_time_the_stage_and_the_bracket_stays_in_the_enclosing_ranges() -> None:
    """A range whose body reports its graph's own events is timed by them; its bracket (the launch included)
    is what it takes out of the vision range, so vision = SAM + CLIP + the gaps, as before."""
    clock = StageClock(CPU)
    ranges = combine(annotated_range, clock.ranges)  # as measure_call: the clock's handle comes through
    clock.start()
    with ranges("prefill"):
        with ranges("vision"):
            for name, gpu_ms in (("sam", 0.5), ("clip", 0.25), ("projector", 0.015)):
                with ranges(name) as handle:
                    time.sleep(0.002)
                    report_device_span(handle, (_FakeEvent(10.0), _FakeEvent(10.0 + gpu_ms)))
        time.sleep(0.002)
    clock.stop()
    timings = clock.timings()
    assert timings["projector"].sum_ms == pytest.approx(0.015) and timings["projector"].all_spans
    assert timings["projector"].bracket_ms >= 2.0 and not timings["vision"].all_spans
    assert timings["vision"].bracket_ms == timings["vision"].sum_ms
    b = stage_bounds(timings, clock.total_ms())
    assert (b["sam_ms"], b["clip_ms"], b["projector_ms"]) == pytest.approx((0.5, 0.25, 0.015))
    assert b["vision_ms"] == pytest.approx(b["vision_range_ms"] - timings["projector"].bracket_ms)
    assert b["prefill_decoder_ms"] == pytest.approx(b["prefill_ms"] - b["vision_range_ms"])
    record = timings["projector"].as_record()
    assert record["gpu_spans"] == 1 and record["range_ms"] == timings["projector"].bracket_ms
    report_device_span(None, (_FakeEvent(0.0), _FakeEvent(1.0)))  # a plain range takes nothing: no error
    with null_ranges("x") as handle:
        report_device_span(handle, None)


def test_clock_before_stop_raises() -> None:
    with pytest.raises(RuntimeError):
        StageClock(CPU).timings()


def test_nvtx_degrades_to_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvtx_ranges, "_NVTX", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert nvtx_ranges.nvtx_backend() == "none"
    with nvtx_range("prefill"), annotated_range("decode"):
        pass
    with null_ranges("x"):
        pass


def test_combine_enters_every_factory_in_order() -> None:
    seen: list[str] = []

    def tracker(tag: str) -> nvtx_ranges.RangeFactory:
        @contextlib.contextmanager
        def ranges(name: str):  # type: ignore[no-untyped-def]
            seen.append(f"{tag}+{name}")
            yield
            seen.append(f"{tag}-{name}")

        return ranges

    with combine(tracker("a"), tracker("b"))("sam"):
        pass
    assert seen == ["a+sam", "b+sam", "b-sam", "a-sam"]


def test_stats() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    s = summarize([2.0, 4.0, None, float("nan")])
    assert s is not None
    assert (s.mean, s.std, s.count, s.min, s.max, s.p50) == (3.0, 1.0, 2, 2.0, 4.0, 3.0)
    assert summarize([]) is None
    assert relative_spread(s) == pytest.approx(1 / 3)
    cols = summarize_columns([{"a": 1.0, "b": None}, {"a": 3.0, "b": None}], ["a", "b"])
    assert list(cols) == ["a"] and cols["a"].std == 1.0


def test_operator_attribution_uses_innermost_range_and_self_times() -> None:
    tables = OperatorTables(passes=1)
    collect(lambda: fake_generate(annotated_range, sleep=0), CPU, tables)
    assert not tables.empty and not tables.device_time
    stages = {leaf for leaf, _ in tables.leaf}
    assert {"sam", "clip", "projector", "vision", "prefill", "decode"} <= stages
    assert {name for _, name in tables.leaf}.isdisjoint({"prefill", "vision", "sam", "decode"}), "ranges are not ops"
    decode = {r.name: r for r in tables.rows("decode")}
    assert decode["aten::_softmax"].calls == 3
    assert "aten::relu" in {r.name for r in tables.rows("projector")}
    vision_names = {r.name for r in tables.rows("vision")}
    assert "aten::add" in vision_names and "aten::relu" not in vision_names, "vision table excludes projector"
    sums = tables.stage_self_us()
    assert set(sums) == set(LEAF_STAGES)
    overall = sum(r.self_cpu_us for r in tables.rows(None))
    assert sum(c for c, _ in sums.values()) == pytest.approx(overall)
    top = tables.summaries(3)
    assert len(top) == 3
    assert [t.total_time_ms for t in top] == sorted((t.total_time_ms for t in top), reverse=True)
    assert all(t.self_time_ms is not None and t.self_time_ms <= t.total_time_ms + 1e-9 for t in top)


def test_resolve_device_and_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_dtype(None, CPU) == "fp32"
    assert resolve_dtype("bf16", CPU) == "bf16"
    with pytest.raises(UserError):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == CPU
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda:0")
