"""Busy and idle time per stage from the profiled window (HTA-style temporal breakdown).

Per stage (vision, sam, clip, projector, the decoder part of prefill, one decode step): the span
from the stage's first to its last activity, the busy time (union of the activity intervals), idle
= span − busy, the activities launched and their mean duration, and a verdict.

On a GPU the activities are the kernels (plus memcpy/memset) of the window; a kernel belongs to the
stage whose range enclosed the CPU operator that launched it (``linked_correlation_id``), so GPU
work that runs after its range closed on the host still counts for that stage. On a CPU there are
no kernels: the activities are the top-level aten operators, and busy is CPU time inside them.

Why not HolisticTraceAnalysis: HTA 0.5 fails on CPU-only traces (``get_temporal_breakdown``
raises IndexError when a trace holds no GPU kernel), reports only whole-trace figures per rank (not
per stage range or decode step) and needs the trace written to disk and parsed again through
pandas. The profiler's own events hold the same intervals and the kernel→operator links in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from attrs import define, field
from torch.autograd import DeviceType

from llm_perf_opt.profiling.graph_kernels import enclosing_range, is_cuda_api, stage_ranges
from llm_perf_opt.profiling.mfu import Peaks, StageCost
from llm_perf_opt.profiling.nvtx_ranges import STAGE_RANGES
from llm_perf_opt.profiling.op_categories import kernel_family, op_family
from llm_perf_opt.profiling.torch_profiler import ProfiledCall, leaf_stage

TIMELINE_STAGES: tuple[str, ...] = ("vision", "sam", "clip", "projector", "prefill", "decode_step")
"""Rows of the timeline; ``prefill`` is the decoder part, ``decode_step`` one step of the window."""
_GROUPS: dict[str, tuple[str, ...]] = {
    "sam": ("vision", "sam"),
    "clip": ("vision", "clip"),
    "vision": ("vision",),
    "projector": ("projector",),
    "prefill": ("prefill",),
    "decode": ("decode_step",),
}
K = TypeVar("K")
Interval = tuple[float, float, int, str]
"""(start µs, end µs, kernels it counts as (0 for memcpy/memset), operator family)."""
HOST_BOUND_BUSY = 0.5
"""Busy fraction below which a stage is host-bound: the GPU idles more than it works, waiting for launches."""
_DEVICE_ACTIVITIES = ("kernel", "gpu_memcpy", "gpu_memset")
_NO_KERNEL = (
    "view _unsafe_view as_strided slice select transpose t permute expand expand_as unsqueeze squeeze "
    "reshape _reshape_alias view_as flatten unflatten alias detach resolve_conj resolve_neg empty "
    "empty_like empty_strided to contiguous lift_fresh split split_with_sizes chunk narrow unbind result_type"
)
VIEW_OPS: frozenset[str] = frozenset("aten::" + n for n in _NO_KERNEL.split(" "))
"""Operators that launch no kernel by themselves (views, metadata, allocation, no-op casts); one
counts as work only when an operator below it does (``aten::to`` that really copies)."""


def union_us(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of ``[start, end)`` intervals (overlaps counted once)."""
    total = 0.0
    cur_start = cur_end = None
    for start, end in sorted(intervals):
        if cur_end is None or start > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


@define
class StageTimeline:
    """Sums over the profiled calls (decode: over the window steps); :attr:`units` divides them."""

    stage: str
    units: int = 0
    """Profiled calls, or decode steps for ``decode_step``."""
    span_us: float = 0.0
    busy_us: float = 0.0
    launches: int = 0
    launch_us: float = 0.0
    """Sum of the activities' own durations (≥ busy when they overlap)."""

    @property
    def idle_us(self) -> float:
        return max(self.span_us - self.busy_us, 0.0)

    @property
    def busy_fraction(self) -> float | None:
        return self.busy_us / self.span_us if self.span_us > 0 else None

    def per_unit(self, value: float) -> float:
        return value / max(self.units, 1)

    @property
    def mean_launch_us(self) -> float | None:
        return self.launch_us / self.launches if self.launches else None


@define(kw_only=True)
class Timeline:
    """The per-stage breakdown of every profiled call, with the analytic cross-checks."""

    resource: str = "cpu"
    """``gpu`` (kernels) or ``cpu`` (top-level aten operators: no kernels on a CPU run)."""
    stages: dict[str, StageTimeline] = field(factory=lambda: {s: StageTimeline(s) for s in TIMELINE_STAGES})
    costs: dict[str, StageCost] = field(factory=dict)
    """Analytic cost of one unit of each stage (a call; a decode step for ``decode_step``)."""
    analytic_kernels_per_step: float | None = None
    timed_step_ms: float | None = None
    """Mean decode step of the timed runs (decode_ms / decode steps) to compare the window with."""
    decode_mode: str | None = None
    family_busy_us: dict[tuple[str, str], float] = field(factory=dict)
    """(stage, operator family) → busy µs summed like the stage's (see :mod:`.op_categories`)."""
    family_costs: dict[tuple[str, str], StageCost] = field(factory=dict)
    """(stage, operator family) → analytic cost of one unit (call, or decode step)."""
    host_bound_busy: float = HOST_BOUND_BUSY
    """The busy fraction below which :meth:`verdict` says host-bound (readable by the renderers)."""

    def add_call(self, call: ProfiledCall) -> None:
        """Add one profiled call's activities (kernels on a GPU, operators on a CPU)."""
        kernels = [ev for ev in call.events if _is_device_activity(ev)]
        if kernels:
            self.resource = "gpu"
            acts = _kernel_groups(call, kernels)
        elif self.resource == "cpu":
            acts = _operator_groups(call)
        else:
            return
        for name, intervals in acts.items():
            tl = self.stages[name]
            tl.units += call.decode_steps if name == "decode_step" else 1
            if not intervals:
                continue
            tl.span_us += max(e for _, e, _, _ in intervals) - min(s for s, _, _, _ in intervals)
            tl.busy_us += union_us((s, e) for s, e, _, _ in intervals)
            tl.launches += sum(n for _, _, n, _ in intervals)
            tl.launch_us += sum(e - s for s, e, _, _ in intervals)
            for fam in {f for _, _, _, f in intervals}:
                busy = union_us((s, e) for s, e, _, f in intervals if f == fam)
                self.family_busy_us[(name, fam)] = self.family_busy_us.get((name, fam), 0.0) + busy

    @property
    def empty(self) -> bool:
        return not any(t.launches for t in self.stages.values())

    def measured_kernels_per_step(self) -> float | None:
        step = self.stages["decode_step"]
        return step.launches / step.units if step.units and step.launches else None

    def window_step_ms(self) -> float | None:
        step = self.stages["decode_step"]
        return step.per_unit(step.span_us) / 1000 if step.units and step.span_us else None

    def verdict(self, stage: str, peaks: Peaks | None) -> str:
        """``host-bound``, ``memory-bound`` or ``compute-bound`` with the figure it rests on."""
        tl = self.stages[stage]
        frac = tl.busy_fraction
        if self.resource != "gpu":
            return "no GPU kernels (CPU run)"
        if frac is None:
            return "no kernels"
        if frac < self.host_bound_busy:
            return f"host-bound: GPU busy {frac:.0%} of the {'step' if stage == 'decode_step' else 'stage'}"
        cost = self.costs.get(stage)
        if cost is None or not cost.bytes or not (peaks and peaks.tflops and peaks.bandwidth_tbs):
            return f"GPU-bound (busy {frac:.0%}; no analytic cost to tell memory from compute)"
        intensity = cost.flops / cost.bytes
        ridge = peaks.tflops / peaks.bandwidth_tbs  # FLOP per byte where the two roofs meet
        busy_s = tl.per_unit(tl.busy_us) / 1e6
        if intensity < ridge:
            return f"memory-bound: {cost.bytes / busy_s / 1e12 / peaks.bandwidth_tbs:.0%} of peak bandwidth while busy"
        return f"compute-bound: {cost.flops / busy_s / 1e12 / peaks.tflops:.0%} of peak FLOP/s while busy"

    def roofline_points(self) -> dict[str, tuple[float, float]]:
        """Stage → (analytic FLOP/byte, achieved FLOP/s over busy time); stages with both only."""
        out = {}
        for stage, cost in self.costs.items():
            tl = self.stages.get(stage)
            if tl is None or not tl.busy_us or not cost.bytes or not cost.flops:
                continue
            out[stage] = (cost.flops / cost.bytes, cost.flops / (tl.per_unit(tl.busy_us) / 1e6))
        return out

    def category_points(self) -> dict[tuple[str, str], tuple[float, float]]:
        """(stage, family) → (analytic FLOP/byte, achieved FLOP/s over the family's busy time)."""
        out = {}
        for key, cost in self.family_costs.items():
            busy = self.family_busy_us.get(key, 0.0)
            units = self.stages[key[0]].units
            if busy <= 0 or not cost.bytes or not cost.flops or not units:
                continue
            out[key] = (cost.flops / cost.bytes, cost.flops / (busy / units / 1e6))
        return out


def stage_costs(measured: Mapping[str, StageCost], decode_steps: int) -> dict[str, StageCost]:
    """Analytic cost per timeline unit from the runner's per-call measured-stage costs."""
    out = {}
    pairs = (("vision", "vision"), ("sam", "sam"), ("clip", "clip"), ("projector", "projector"))
    for stage, key in (*pairs, ("prefill", "prefill_decoder")):
        if key in measured:
            out[stage] = measured[key]
    if "decode" in measured and decode_steps > 0:
        d = measured["decode"]
        out["decode_step"] = StageCost(
            flops=d.flops / decode_steps, bytes=d.bytes / decode_steps, kernels=d.kernels / decode_steps
        )
    return out


def mean_costs(costs: list[dict[K, StageCost]]) -> dict[K, StageCost]:
    """Stage-wise mean of the costs of several profiled calls (the timeline sums them the same way)."""
    out = {}
    for stage in {s for c in costs for s in c}:
        have = [c[stage] for c in costs if stage in c]
        out[stage] = StageCost(
            flops=sum(c.flops for c in have) / len(have),
            bytes=sum(c.bytes for c in have) / len(have),
            kernels=sum(c.kernels for c in have) / len(have),
        )
    return out


def _is_device_activity(ev: Any) -> bool:
    if getattr(ev, "device_type", None) != DeviceType.CUDA or getattr(ev, "is_user_annotation", False):
        return False
    return str(getattr(ev, "activity_type", "kernel")) in _DEVICE_ACTIVITIES


def _in_window(call: ProfiledCall, stage: str, start_us: float) -> bool:
    return stage != "decode" or call.window_start_us is None or start_us > call.window_start_us


def _kernel_groups(call: ProfiledCall, kernels: list[Any]) -> dict[str, list[Interval]]:
    """Timeline stage → (start, end, kernels) of each device activity its operators launched.

    The decode window is decided by the host time of the launch (the CUDA runtime call sharing the
    kernel's correlation id), not by the enclosing operator: a replayed CUDA graph is launched
    inside the long ``decode`` range itself, and the GPU may run well behind the host.
    """
    by_id: dict[int, Any] = {}
    launches: dict[int, Any] = {}
    for ev in call.events:
        if getattr(ev, "device_type", None) != DeviceType.CPU:
            continue
        kind = str(getattr(ev, "activity_type", "cpu_op"))
        if kind in ("cuda_runtime", "cuda_driver") or (kind == "cpu_op" and is_cuda_api(str(ev.name))):
            launches[ev.id] = ev  # without activity types (torch 2.11) a runtime call is told by its name
        elif kind in ("cpu_op", "user_annotation"):
            by_id[ev.id] = ev
    memo: dict[int, str] = {}
    ranges = stage_ranges(by_id.values())
    out: dict[str, list[Interval]] = {s: [] for s in TIMELINE_STAGES}
    for k in kernels:
        linked = getattr(k, "linked_correlation_id", 0)
        launch = launches.get(int(getattr(k, "id", -1)))
        op = by_id.get(linked)
        stage = leaf_stage(op, memo, include_self=True) if op is not None else "other"
        if stage not in _GROUPS:
            # Kernels replayed from a CUDA graph carry no operator link (or one to their graph launch)
            # on some torch releases (H200, torch 2.11): tie them to the range their graph launch (or,
            # lacking it, they) fell in.
            op = enclosing_range(ranges, float((launch or k).time_range.start))
            if op is None:
                continue
            linked, stage = op.id, leaf_stage(op, memo, include_self=True)
        assert op is not None  # a stage other than "other" came from an operator or a range
        is_op = str(getattr(op, "activity_type", "cpu_op")) == "cpu_op" and str(op.name) not in STAGE_RANGES
        # Without its runtime call: the operator's start, or for a kernel launched straight from a range
        # (graph replay) its own start, which trails the launch, rather than the range's start.
        issued = float(op.time_range.start if is_op else k.time_range.start)
        if launch is not None and (not is_op or getattr(launch, "linked_correlation_id", linked) in (linked, 0)):
            issued = float(launch.time_range.start)
        if stage not in _GROUPS or not _in_window(call, stage, issued):
            continue
        one = int(str(getattr(k, "activity_type", "kernel")) == "kernel")
        fam = op_family(op) if is_op else kernel_family(str(k.name))
        for group in _GROUPS[stage]:
            out[group].append((float(k.time_range.start), float(k.time_range.end), one, fam))
    return out


def _does_work(ev: Any) -> bool:
    if str(ev.name) not in VIEW_OPS:
        return True
    return any(_does_work(c) for c in ev.cpu_children if str(getattr(c, "activity_type", "cpu_op")) == "cpu_op")


def _operator_groups(call: ProfiledCall) -> dict[str, list[Interval]]:
    """Timeline stage → (start, end, 1) of each top-level aten operator that does work (CPU run)."""
    memo: dict[int, str] = {}
    out: dict[str, list[Interval]] = {s: [] for s in TIMELINE_STAGES}
    for ev in call.events:
        if str(getattr(ev, "activity_type", "")) != "cpu_op" or getattr(ev, "device_type", None) != DeviceType.CPU:
            continue
        parent = ev.cpu_parent
        if parent is not None and str(getattr(parent, "activity_type", "")) == "cpu_op":
            continue  # nested: its time is inside its top-level operator
        stage = leaf_stage(ev, memo)
        start = float(ev.time_range.start)
        if stage not in _GROUPS or not _in_window(call, stage, start) or not _does_work(ev):
            continue
        fam = op_family(ev)
        for group in _GROUPS[stage]:
            out[group].append((start, float(ev.time_range.end), 1, fam))
    return out
