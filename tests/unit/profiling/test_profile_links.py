"""Kernel → operator links on torch releases whose FunctionEvents lack them (the H200's torch 2.11)."""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from llm_perf_opt.profiling.profiler_links import with_links


def test_links_are_restored_from_the_kineto_events() -> None:
    with profile(activities=[ProfilerActivity.CPU]) as prof, record_function("decode"):
        torch.ones(3) + 1
    events = prof.events()
    want = {(ev.id, ev.name): (ev.activity_type, ev.linked_correlation_id) for ev in events}
    for ev in events:  # what an older torch hands out
        del ev.activity_type
        del ev.linked_correlation_id
    restored = with_links(prof, events)
    got = {(ev.id, ev.name): (ev.activity_type, ev.linked_correlation_id) for ev in restored}
    assert got == want
    assert got[(events[0].id, "decode")][0] == "user_annotation"
    assert any(kind == "cpu_op" for kind, _ in got.values())
