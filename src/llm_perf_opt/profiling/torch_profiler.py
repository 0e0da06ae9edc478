"""Operator tables from separate torch.profiler passes (timed runs are never profiled).

Every CPU-side operator event is attributed to the innermost enclosing stage range
(``record_function`` names from :data:`~llm_perf_opt.profiling.nvtx_ranges.STAGE_RANGES`):
``sam``, ``clip``, ``projector``, ``vision`` (vision glue outside the three sub-ranges), ``prefill``
(the decoder part of the first forward), ``decode`` or ``other`` (outside every range).

Times: *total* is inclusive (an ``aten::linear`` includes its ``aten::addmm``), *self* excludes
child operators. Only self times may be summed — adding totals counts nested operators twice.
Device (CUDA) time is the time of the kernels an operator launched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from attrs import define, field
from torch.profiler import ProfilerActivity, profile

from llm_perf_opt.contracts.profile import OperatorSummary
from llm_perf_opt.profiling.nvtx_ranges import STAGE_RANGES

LEAF_STAGES: tuple[str, ...] = ("sam", "clip", "vision", "projector", "prefill", "decode", "other")
"""Disjoint attribution targets; ``vision`` here is the vision glue outside sam/clip/projector."""
TABLE_STAGES: tuple[str, ...] = ("vision", "sam", "clip", "projector", "prefill", "decode", "other")
"""Stages with a table; the ``vision`` table also holds sam and clip (not projector)."""
_VISION_PARTS = ("sam", "clip", "vision")
_SKIP_PREFIXES = ("ProfilerStep", "[memory]", "## ")


@define
class OpRow:
    """One operator in one stage (or overall), times in microseconds, per pass over the inputs."""

    name: str
    stage: str | None
    calls: int = 0
    total_cpu_us: float = 0.0
    self_cpu_us: float = 0.0
    total_device_us: float = 0.0
    self_device_us: float = 0.0

    def add(self, other: OpRow) -> None:
        self.calls += other.calls
        self.total_cpu_us += other.total_cpu_us
        self.self_cpu_us += other.self_cpu_us
        self.total_device_us += other.total_device_us
        self.self_device_us += other.self_device_us

    def cost_us(self, device_time: bool) -> float:
        """Ranking key: self device time on a GPU, self CPU time otherwise."""
        return self.self_device_us if device_time else self.self_cpu_us

    def to_summary(self, passes: int) -> OperatorSummary:
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
    """Aggregated operator rows by leaf stage; build tables with :meth:`top` and :meth:`rows`."""

    leaf: dict[tuple[str, str], OpRow] = field(factory=dict)
    passes: int = 0
    device_time: bool = False
    events: int = 0

    def merge_events(self, events: Iterable[Any]) -> None:
        """Add the CPU-side operator events of one profiler session."""
        stage_memo: dict[int, str] = {}
        for ev in events:
            if not _is_cpu_op(ev):
                continue
            name = str(ev.name)
            if name in STAGE_RANGES or name.startswith(_SKIP_PREFIXES):
                continue
            stage = _leaf_stage(ev, stage_memo)
            row = self.leaf.setdefault((stage, name), OpRow(name=name, stage=stage))
            self.events += 1
            row.add(
                OpRow(
                    name=name,
                    stage=stage,
                    calls=1,
                    total_cpu_us=float(ev.cpu_time_total),
                    self_cpu_us=float(ev.self_cpu_time_total),
                    total_device_us=_device_total(ev),
                    self_device_us=_device_self(ev),
                )
            )
        self.device_time = self.device_time or any(r.total_device_us > 0 for r in self.leaf.values())

    def rows(self, stage: str | None = None) -> list[OpRow]:
        """Rows of one table stage (``None`` = all stages, merged by operator name), by cost."""
        if stage is None:
            members: tuple[str, ...] = LEAF_STAGES
        elif stage == "vision":
            members = _VISION_PARTS
        else:
            members = (stage,)
        merged: dict[str, OpRow] = {}
        for (leaf, name), row in self.leaf.items():
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
    device_type = getattr(ev, "device_type", None)
    if device_type is not None and getattr(device_type, "name", str(device_type)) not in ("CPU", "DeviceType.CPU"):
        return False
    return not getattr(ev, "is_async", False)


def _leaf_stage(ev: Any, memo: dict[int, str]) -> str:
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
    """Write a Chrome/Perfetto trace atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        prof.export_chrome_trace(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def collect(
    run: Callable[[], object], device: torch.device, tables: OperatorTables, trace_path: Path | None = None
) -> None:
    """Profile one call of ``run`` and merge its operators into ``tables``."""
    with profiler_pass(device) as prof:
        run()
    tables.merge_events(prof.events())
    if trace_path is not None:
        export_trace(prof, trace_path)
