"""Operator tables from a bounded torch.profiler window (timed runs are never profiled).

The window (one per distinct batch shape) is one shortened generate call: the whole prefill (vision
included) plus ``skip + K`` decode steps; the first ``skip`` decode steps are left out of the tables
(:class:`StepWindow`). Decode steps are causal, so steps ``skip+1 … skip+K`` of the short call are
the same work as those steps of the full call.

Every CPU-side operator event is attributed to the innermost enclosing stage range
(``record_function`` names from :data:`~llm_perf_opt.profiling.nvtx_ranges.STAGE_RANGES`):
``sam``, ``clip``, ``projector``, ``vision`` (vision glue outside the three sub-ranges), ``prefill``
(the decoder part of the first forward), ``decode`` or ``other`` (outside every range).

Two normalisations: :attr:`OperatorTables.leaf` is *per pass over the input set* (each shape's call
weighted by its number of batches, decode scaled from the window to the run's decode steps: the
contract's ``OperatorSummary`` semantics); :meth:`OperatorTables.unit_rows` is *per call* for
vision, projector and prefill and *per decode step* for decode (means over the window).

Times: *total* is inclusive (an ``aten::linear`` includes its ``aten::addmm``), *self* excludes
child operators. Only self times may be summed — adding totals counts nested operators twice.
Device (CUDA) time is the time of the kernels an operator launched; kernels replayed from a CUDA
graph (graph decode) have no operator and get rows ``CUDA graph: <kernel>`` (:mod:`.graph_kernels`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from attrs import define, field
from torch.profiler import ProfilerActivity, profile

from llm_perf_opt.contracts.profile import OperatorSummary
from llm_perf_opt.io.atomic import atomic_path
from llm_perf_opt.profiling.graph_kernels import (
    GRAPH_ROW_PREFIX,
    enclosing_range,
    graph_replayed,
    on_cpu,
    short_kernel_name,
    stage_ranges,
)
from llm_perf_opt.profiling.nvtx_ranges import STAGE_RANGES
from llm_perf_opt.profiling.profiler_links import with_links
from llm_perf_opt.profiling.step_window import TOKEN_MARK, StepWindow, window_start_us

LEAF_STAGES: tuple[str, ...] = ("sam", "clip", "vision", "projector", "prefill", "decode", "other")
"""Disjoint attribution targets; ``vision`` here is the vision glue outside sam/clip/projector."""
TABLE_STAGES: tuple[str, ...] = ("vision", "sam", "clip", "projector", "prefill", "decode", "other")
"""Stages with a table; the ``vision`` table also holds sam and clip (not projector)."""
_VISION_PARTS = ("sam", "clip", "vision")
_SKIP_PREFIXES = ("ProfilerStep", "[memory]", "## ", TOKEN_MARK)


@define
class OpRow:
    """One operator in one stage (or overall), times in microseconds."""

    name: str
    stage: str | None
    calls: float = 0.0
    total_cpu_us: float = 0.0
    self_cpu_us: float = 0.0
    total_device_us: float = 0.0
    self_device_us: float = 0.0

    def add(self, other: OpRow, factor: float = 1.0) -> None:
        self.calls += other.calls * factor
        self.total_cpu_us += other.total_cpu_us * factor
        self.self_cpu_us += other.self_cpu_us * factor
        self.total_device_us += other.total_device_us * factor
        self.self_device_us += other.self_device_us * factor

    def cost_us(self, device_time: bool) -> float:
        """Ranking key: self device time on a GPU, self CPU time otherwise."""
        return self.self_device_us if device_time else self.self_cpu_us

    def to_summary(self, passes: int = 1) -> OperatorSummary:
        div = max(passes, 1) * 1000.0
        return OperatorSummary(
            op_name=self.name,
            total_time_ms=self.total_cpu_us / div,
            cuda_time_ms=self.total_device_us / div,
            calls=round(self.calls / max(passes, 1)),
            self_time_ms=self.self_cpu_us / div,
            self_cuda_time_ms=self.self_device_us / div,
            stage=self.stage,  # type: ignore[arg-type]
        )


@define
class OperatorTables:
    """Operator rows by leaf stage: :attr:`leaf` per pass over the inputs, :attr:`unit` per call/step."""

    leaf: dict[tuple[str, str], OpRow] = field(factory=dict)
    passes: int = 1
    """Divisor of :attr:`leaf` (1: the rows are already per pass over the input set)."""
    device_time: bool = False
    events: int = 0
    unit: dict[tuple[str, str], OpRow] = field(factory=dict)
    """Raw sums over the profiled calls (decode: window steps only); see :meth:`unit_rows`."""
    unit_counts: dict[str, int] = field(factory=dict)
    """Leaf stage → profiled calls (decode: profiled window steps): the divisor of :attr:`unit`."""
    windows: list[str] = field(factory=list)
    """One description per profiled call (which steps the window holds)."""

    def merge_events(
        self,
        events: Iterable[Any],
        *,
        weight: float = 1.0,
        decode_scale: float = 1.0,
        window_start_us: float | None = None,
        decode_steps: int = 1,
    ) -> None:
        """Add the CPU-side operator events of one profiled call.

        ``weight``: batches of the run this call stands for; ``decode_scale``: the run's decode
        steps per window step; decode operators starting before ``window_start_us`` (the skipped
        steps) are left out; ``decode_steps``: window steps (the per-step divisor).
        """
        stage_memo: dict[int, str] = {}
        events = list(events)
        for ev in events:
            if not _is_cpu_op(ev):
                continue
            name = str(ev.name)
            if name in STAGE_RANGES or name.startswith(_SKIP_PREFIXES):
                continue
            stage = leaf_stage(ev, stage_memo)
            if stage == "decode" and window_start_us is not None and ev.time_range.start <= window_start_us:
                continue
            one = OpRow(
                name=name,
                stage=stage,
                calls=1,
                total_cpu_us=float(ev.cpu_time_total),
                self_cpu_us=float(ev.self_cpu_time_total),
                total_device_us=_device_total(ev),
                self_device_us=_device_self(ev),
            )
            self.events += 1
            self._add(stage, one, weight * (decode_scale if stage == "decode" else 1.0))
        self._merge_graph_kernels(events, stage_memo, weight, decode_scale, window_start_us)
        for leaf in LEAF_STAGES:
            self.unit_counts[leaf] = self.unit_counts.get(leaf, 0) + (decode_steps if leaf == "decode" else 1)
        self.device_time = self.device_time or any(r.total_device_us > 0 for r in self.leaf.values())

    def _add(self, stage: str, one: OpRow, factor: float) -> None:
        self.leaf.setdefault((stage, one.name), OpRow(name=one.name, stage=stage)).add(one, factor)
        self.unit.setdefault((stage, one.name), OpRow(name=one.name, stage=stage)).add(one)

    def _merge_graph_kernels(
        self, events: list[Any], memo: dict[int, str], weight: float, decode_scale: float, window_start_us: float | None
    ) -> None:
        """Rows ``CUDA graph: <kernel>`` for kernels a graph replay issued: no operator launched them,
        so they would be missing from every table (:mod:`.graph_kernels`)."""
        ranges = stage_ranges(events)
        for kernel, launch in graph_replayed(events):
            issued = float(launch.time_range.start)
            rng = enclosing_range(ranges, issued)
            stage = leaf_stage(rng, memo, include_self=True) if rng is not None else "other"
            if stage == "decode" and window_start_us is not None and issued <= window_start_us:
                continue
            us = float(kernel.time_range.end - kernel.time_range.start)
            name = GRAPH_ROW_PREFIX + short_kernel_name(str(kernel.name))
            one = OpRow(name=name, stage=stage, calls=1, total_device_us=us, self_device_us=us)
            self._add(stage, one, weight * (decode_scale if stage == "decode" else 1.0))

    def unit_rows(self, stage: str) -> list[OpRow]:
        """Rows of one table stage per call (decode: per decode step), means over the window."""
        out = []
        for row in self.rows(stage, self.unit):
            div = max(self.unit_counts.get("decode" if stage == "decode" else "other", 1), 1)
            scaled = OpRow(name=row.name, stage=row.stage)
            scaled.add(row, 1.0 / div)
            out.append(scaled)
        return out

    def rows(self, stage: str | None = None, source: dict[tuple[str, str], OpRow] | None = None) -> list[OpRow]:
        """Rows of one table stage (``None`` = all stages, merged by operator name), by cost."""
        if stage is None:
            members: tuple[str, ...] = LEAF_STAGES
        elif stage == "vision":
            members = _VISION_PARTS
        else:
            members = (stage,)
        merged: dict[str, OpRow] = {}
        for (leaf, name), row in (self.leaf if source is None else source).items():
            if leaf in members:
                target = merged.setdefault(name, OpRow(name=name, stage=stage))
                target.add(row)
        if stage is None:
            for name, target in merged.items():
                target.stage = self._main_stage(name)
        return sorted(merged.values(), key=lambda r: (-r.cost_us(self.device_time), r.name))

    def _main_stage(self, name: str) -> str | None:
        best = max(
            ((leaf, row) for (leaf, n), row in self.leaf.items() if n == name),
            key=lambda item: item[1].cost_us(self.device_time),
            default=None,
        )
        if best is None:
            return None
        return "vision" if best[0] in _VISION_PARTS else best[0]

    def top(self, k: int, stage: str | None = None) -> list[OpRow]:
        return self.rows(stage)[:k]

    def summaries(self, k: int, stage: str | None = None) -> list[OperatorSummary]:
        """Top-k by cost, then sorted by total_time_ms (largest first) as the contract requires."""
        out = [r.to_summary(self.passes) for r in self.top(k, stage)]
        return sorted(out, key=lambda s: -s.total_time_ms)

    def stage_self_us(self) -> dict[str, tuple[float, float]]:
        """Per leaf stage: (sum of self CPU µs, sum of self device µs) per pass — no double counting."""
        out = {s: (0.0, 0.0) for s in LEAF_STAGES}
        for (leaf, _), row in self.leaf.items():
            cpu, dev = out[leaf]
            out[leaf] = (cpu + row.self_cpu_us, dev + row.self_device_us)
        div = max(self.passes, 1)
        return {s: (c / div, d / div) for s, (c, d) in out.items()}

    def cost_centres(self, k: int = 3) -> list[OpRow]:
        """The k largest (operator, leaf stage) pairs by self cost — what to look at first."""
        rows = sorted(self.leaf.values(), key=lambda r: -r.cost_us(self.device_time))
        return rows[:k]

    @property
    def empty(self) -> bool:
        return not self.leaf


def _is_cpu_op(ev: Any) -> bool:
    return on_cpu(ev) and not getattr(ev, "is_async", False)


def leaf_stage(ev: Any, memo: dict[int, str], include_self: bool = False) -> str:
    """The innermost stage range enclosing ``ev`` (``ev`` itself too with ``include_self``), else other."""
    if include_self and str(ev.name) in STAGE_RANGES:
        return str(ev.name)
    chain: list[Any] = []
    parent = getattr(ev, "cpu_parent", None)
    stage = "other"
    while parent is not None:
        key = id(parent)
        if key in memo:
            stage = memo[key]
            break
        if str(parent.name) in STAGE_RANGES:
            stage = str(parent.name)
            memo[key] = stage  # a range's children belong to it
            break
        chain.append(parent)
        parent = getattr(parent, "cpu_parent", None)
    for node in chain:
        memo[id(node)] = stage
    return stage


def _device_total(ev: Any) -> float:
    for attr in ("device_time_total", "cuda_time_total"):
        value = getattr(ev, attr, None)
        if value is not None:
            return float(value)
    return 0.0


def _device_self(ev: Any) -> float:
    for attr in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(ev, attr, None)
        if value is not None:
            return max(float(value), 0.0)
    return 0.0


def profiler_activities(device: torch.device) -> list[ProfilerActivity]:
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    return activities


@contextlib.contextmanager
def profiler_pass(device: torch.device) -> Iterator[Any]:
    """A torch.profiler session for one profiled generation; synchronizes before it stops."""
    with profile(activities=profiler_activities(device), record_shapes=False, with_stack=False) as prof:
        yield prof
        if device.type == "cuda":
            torch.cuda.synchronize(device)


def export_trace(prof: Any, path: Path) -> Path:
    """Write a Chrome/Perfetto trace atomically (temporary file, then rename: :func:`llm_perf_opt.io.atomic_path`)."""
    with atomic_path(path) as tmp:
        prof.export_chrome_trace(str(tmp))
    return path


@define(kw_only=True)
class ProfiledCall:
    """The events of one profiled generate call and where its decode window starts."""

    events: Any
    window: StepWindow | None
    window_start_us: float | None
    decode_steps: int
    """Decode steps inside the window (the per-step divisor)."""


def collect(
    run: Callable[[], object],
    device: torch.device,
    tables: OperatorTables,
    trace_path: Path | None = None,
    *,
    window: StepWindow | None = None,
    weight: float = 1.0,
    run_decode_steps: float | None = None,
) -> ProfiledCall:
    """Profile one call of ``run`` and merge its operators into ``tables``.

    With a ``window``, ``run`` must return the generation result and drop the window's token
    markers; decode rows count the window's steps only and are scaled to ``run_decode_steps``
    (the decode steps of one timed call). Without markers the whole decode is the window.
    """
    with profiler_pass(device) as prof:
        result = run()
    events = with_links(prof, prof.events())
    start = None
    steps = 1
    if window is not None:
        tokens = getattr(result, "tokens", None)
        window.produced = int(tokens.shape[1]) if tokens is not None else window.new_tokens
        start = window_start_us(events, window.skip)
        if start is None:  # no markers (a generate without on_token): the window is all of decode
            window.skip = 0
        steps = window.window_steps
    scale = run_decode_steps / steps if run_decode_steps and steps else 1.0
    tables.merge_events(events, weight=weight, decode_scale=scale, window_start_us=start, decode_steps=steps)
    if trace_path is not None:
        export_trace(prof, trace_path)
    return ProfiledCall(events=events, window=window, window_start_us=start, decode_steps=steps)
