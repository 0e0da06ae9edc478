"""Kernel → operator links of a torch.profiler run, on every torch release we support."""

from __future__ import annotations

from typing import Any


def with_links(prof: Any, events: Any) -> Any:
    """``events`` whose every entry has ``activity_type`` and ``linked_correlation_id``.

    torch ≥ 2.13 puts both on each FunctionEvent; older releases (the H200's torch 2.11 among them)
    keep them only on the profiler's kineto events, and without the link a kernel cannot be tied to
    the operator (and so the stage) that launched it. They are copied over here, matching each
    FunctionEvent to the kineto event of the same correlation id, device and name, in order.
    """
    if not events or all(hasattr(ev, "linked_correlation_id") and hasattr(ev, "activity_type") for ev in events):
        return events
    pending: dict[tuple[int, str, str], list[Any]] = {}
    for k in prof.profiler.kineto_results.events():
        pending.setdefault((int(k.correlation_id()), str(k.device_type()), str(k.name())), []).append(k)
    for ev in events:
        match = pending.get((int(ev.id), str(ev.device_type), str(ev.name)))
        if not match:
            continue
        k = match.pop(0)
        ev.linked_correlation_id = int(k.linked_correlation_id())
        kind = getattr(k, "activity_type", None)
        if callable(kind):
            ev.activity_type = str(kind())
    return events
