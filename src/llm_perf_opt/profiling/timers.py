"""Stage clocks: CUDA events on a GPU, ``perf_counter`` on CPU, with a synchronize at each boundary.

One :class:`StageClock` times one generation call. :meth:`StageClock.ranges` is a range factory
(see :mod:`llm_perf_opt.profiling.nvtx_ranges`) that the model's ``generate`` calls at every
stage boundary. The first time a name opens, the clock synchronizes the device before and after the
range so no work leaks across stages; a name that opens again in the same call (e.g. one ``decode``
range per step) is timed with events only, so per-token ranges do not serialize the decode loop.

A range yields a :class:`RangeHandle`. Code that replays a captured CUDA graph inside the range reports
the graph's own timing events (captured as its first and last nodes) through
:meth:`RangeHandle.device_span`; the range's time is then the GPU's span of the stage's kernels, and the
host's launch of the graph (the time from the range's first event until the graph reaches the GPU) stays
in the range's bracket (``RangeTiming.range_ms``) only. Why: on the H200 a projector graph of ~15 µs of
kernels measured 21–66 µs per call by its bracket, moving with the host's speed in that call (a slow
host call is also a long gap before the range), while its in-graph span repeated within 2%
(``benchmarks/bench_stage_launch.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from attrs import define, field

from llm_perf_opt.profiling.nvtx_ranges import RangeFactory, annotated_range, combine, nvtx_range

T = TypeVar("T")


@define
class _Mark:
    event: Any = None
    seconds: float = 0.0


@define
class RangeHandle:
    """What :meth:`StageClock.ranges` yields: one opening of a range, and the GPU span reported inside it."""

    name: str
    begin: _Mark
    end: _Mark | None = None
    span: tuple[Any, Any] | None = None
    """Timing events recorded inside a replayed graph (first node, last node), when the body reported them."""

    def device_span(self, begin: Any, end: Any) -> None:
        """Time this opening by ``begin`` … ``end`` (CUDA events the body's graph records) instead of the
        range's own events; the range's bracket is kept as ``RangeTiming.range_ms``."""
        self.span = (begin, end)


@define(frozen=True)
class RangeTiming:
    """All openings of one named range within one call."""

    name: str
    count: int
    sum_ms: float
    """Sum of the durations of every opening: the in-graph GPU span where one was reported, else the bracket."""
    start_ms: float
    """First opening, relative to the call's start."""
    end_ms: float
    """Last closing, relative to the call's start."""
    range_ms: float | None = None
    """Sum of the brackets (the range's own events), host launch included; None: equal to ``sum_ms``."""
    gpu_spans: int = 0
    """Openings timed by a reported in-graph span (``count``: all of them)."""

    @property
    def bracket_ms(self) -> float:
        """The summed brackets: what the range's own events measured, launch included."""
        return self.sum_ms if self.range_ms is None else self.range_ms

    @property
    def all_spans(self) -> bool:
        return self.count > 0 and self.gpu_spans == self.count

    def as_record(self) -> dict[str, float]:
        """The raw entry of a run record's ``ranges`` (runs.jsonl)."""
        return {
            "count": self.count, "sum_ms": self.sum_ms, "start_ms": self.start_ms, "end_ms": self.end_ms,
            "range_ms": self.bracket_ms, "gpu_spans": self.gpu_spans,
        }  # fmt: skip

    @property
    def span_ms(self) -> float:
        return self.end_ms - self.start_ms

    def contains(self, other: RangeTiming, slack_ms: float = 1e-3) -> bool:
        return self.start_ms <= other.start_ms + slack_ms and other.end_ms <= self.end_ms + slack_ms


@define
class StageClock:
    """Times the named ranges of one call plus the whole call (``start`` … ``stop``)."""

    device: torch.device
    _marks: list[RangeHandle] = field(factory=list, init=False)
    _start: _Mark | None = field(default=None, init=False)
    _stop: _Mark | None = field(default=None, init=False)
    _seen: set[str] = field(factory=set, init=False)

    @property
    def uses_cuda_events(self) -> bool:
        return self.device.type == "cuda"

    def synchronize(self) -> None:
        if self.uses_cuda_events:
            torch.cuda.synchronize(self.device)

    def _mark(self) -> _Mark:
        if self.uses_cuda_events:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return _Mark(event=event)
        return _Mark(seconds=time.perf_counter())

    def start(self) -> None:
        """Synchronize, then mark the start of the call."""
        self.synchronize()
        self._start = self._mark()

    def stop(self) -> None:
        """Mark the end of the call, then synchronize (every event has completed afterwards)."""
        self._stop = self._mark()
        self.synchronize()

    @contextlib.contextmanager
    def ranges(self, name: str) -> Iterator[RangeHandle]:
        """Range factory: time ``name``; synchronize at its boundaries the first time it opens."""
        first = name not in self._seen
        self._seen.add(name)
        if first:
            self.synchronize()
        handle = RangeHandle(name, self._mark())
        self._marks.append(handle)
        try:
            yield handle
        finally:
            handle.end = self._mark()
            if first:
                self.synchronize()

    def _ms(self, a: _Mark, b: _Mark) -> float:
        if self.uses_cuda_events:
            return float(a.event.elapsed_time(b.event))
        return (b.seconds - a.seconds) * 1000.0

    @staticmethod
    def _span_ms(span: tuple[Any, Any]) -> float:
        return float(span[0].elapsed_time(span[1]))

    def total_ms(self) -> float:
        if self._start is None or self._stop is None:
            raise RuntimeError("StageClock.total_ms() before start() and stop()")
        return self._ms(self._start, self._stop)

    def timings(self) -> dict[str, RangeTiming]:
        """Per range name: count, summed duration, first start and last end (ms from the start)."""
        if self._start is None or self._stop is None:
            raise RuntimeError("StageClock.timings() before start() and stop()")
        out: dict[str, RangeTiming] = {}
        for handle in self._marks:
            if handle.end is None:
                continue
            name = handle.name
            start_ms = self._ms(self._start, handle.begin)
            end_ms = self._ms(self._start, handle.end)
            bracket = end_ms - start_ms
            duration = bracket if handle.span is None else self._span_ms(handle.span)
            spans = int(handle.span is not None)
            prev = out.get(name)
            if prev is None:
                out[name] = RangeTiming(name, 1, duration, start_ms, end_ms, bracket, spans)
            else:
                out[name] = RangeTiming(
                    name,
                    prev.count + 1,
                    prev.sum_ms + duration,
                    prev.start_ms,
                    max(prev.end_ms, end_ms),
                    prev.bracket_ms + bracket,
                    prev.gpu_spans + spans,
                )
        return out


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int | None:
    """``torch.cuda.max_memory_allocated`` since the last reset; None on CPU (not measured)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return None


def measure_call(
    call: Callable[[RangeFactory], T], device: torch.device, *, label: str = "timed run"
) -> tuple[T, StageClock, int | None]:
    """One timed call: ``call(ranges)`` under a synchronizing :class:`StageClock` (plus NVTX and
    ``record_function`` ranges of the same names); peak memory is reset before and read after."""
    clock = StageClock(device)
    reset_peak_memory(device)
    clock.start()
    with nvtx_range(label):
        # The clock's events innermost: NVTX pushes and record_function bookkeeping stay outside the
        # timed range (a graph-replayed projector is ~15 µs of kernels; host work inside its events
        # made its per-run medians spread over 0.05–0.29 ms on the H200).
        result = call(combine(annotated_range, clock.ranges))
    clock.stop()
    return result, clock, peak_memory_bytes(device)
