"""Kernels replayed from a CUDA graph: no operator launched them, so tie them to a stage by their launch.

A replayed graph issues a whole decode step with one ``cudaGraphLaunch``. Its kernels share that
call's correlation id and carry no link to any operator (torch 2.11 on an H200: no "External id" in
the trace), so operator tables built from operators' device times miss them entirely, and a timeline
built from operator links cannot place them. The range open on the host when the graph was launched
(``decode``) is where they belong; the kernel's own start stands in when the launch was not recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from llm_perf_opt.profiling.nvtx_ranges import STAGE_RANGES

GRAPH_LAUNCH = "cudaGraphLaunch"
GRAPH_ROW_PREFIX = "CUDA graph: "
"""Operator-table rows of replayed kernels are named ``CUDA graph: <kernel>``."""


def is_cuda_api(name: str) -> bool:
    """A CUDA runtime / driver call (cudaLaunchKernel, cudaGraphLaunch, cuLaunchKernel, …)."""
    return name.startswith("cuda") or (name.startswith("cu") and name[2:3].isupper())


def stage_ranges(events: Iterable[Any]) -> list[Any]:
    """The host-side stage ranges among ``events``, sorted by start (for :func:`enclosing_range`)."""
    ranges = [ev for ev in events if on_cpu(ev) and str(ev.name) in STAGE_RANGES]
    return sorted(ranges, key=lambda ev: ev.time_range.start)


def enclosing_range(ranges: list[Any], at_us: float) -> Any | None:
    """The innermost (latest-starting) stage range open at ``at_us``; ``ranges`` sorted by start."""
    found = None
    for ev in ranges:
        if ev.time_range.start > at_us:
            break
        if at_us <= ev.time_range.end:
            found = ev
    return found


def graph_replayed(events: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    """(kernel or memcpy/memset, its ``cudaGraphLaunch``) for every device activity a graph launch issued."""
    events = list(events)
    launches = {ev.id: ev for ev in events if on_cpu(ev) and str(ev.name) == GRAPH_LAUNCH}
    for ev in events:
        if not on_cpu(ev) and not getattr(ev, "is_user_annotation", False) and ev.id in launches:
            yield ev, launches[ev.id]


def short_kernel_name(name: str, width: int = 72) -> str:
    """``void at::native::foo<8, …>(…)`` → ``at::native::foo``; mangled or long names are cut to ``width``."""
    text = re.sub(r"^void ", "", name)
    depth, out = 0, []
    for ch in text:  # drop template arguments and the parameter list
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            break
        elif depth == 0:
            out.append(ch)
    short = "".join(out).strip() or name
    return short if len(short) <= width else short[: width - 1] + "…"


def on_cpu(ev: Any) -> bool:
    """A host-side profiler event (operator, range, runtime call); events without a device type count too."""
    device_type = getattr(ev, "device_type", None)
    return device_type is None or getattr(device_type, "name", str(device_type)) in ("CPU", "DeviceType.CPU")
