"""The profile phase: one bounded torch.profiler window per distinct batch shape.

Each window is one shortened generate call — the whole prefill (vision included) plus
``skip + --profile-decode-steps`` decode steps (:class:`~.torch_profiler.StepWindow`) — in the timed
runs' decode mode. Its operators go to the tables (scaled to the run where totals are shown), its
kernels (or, on a CPU, its top-level operators) to the per-stage :class:`~.timeline.Timeline`.
Decode steps are causal, so steps ``skip+1 … skip+K`` of the short call are the same work as those
steps of the full call; the profiler costs O(K) steps instead of every token of every batch.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch

from llm_perf_opt.contracts.profile_config import ProfileConfig
from llm_perf_opt.profiling.nvtx_ranges import annotated_range
from llm_perf_opt.profiling.op_categories import decode_kernels_per_step, family_costs
from llm_perf_opt.profiling.session import Batch, ProfileSession
from llm_perf_opt.profiling.state import ProfileState
from llm_perf_opt.profiling.step_window import StepWindow, forward_token_marks
from llm_perf_opt.profiling.timeline import Timeline, mean_costs, stage_costs
from llm_perf_opt.profiling.torch_profiler import OperatorTables, collect
from llm_perf_opt.specs.workload import Workload

Emit = Callable[[str, int, int, str], None]
"""The runner's progress callback: (phase, done, total, message)."""


def profile_windows(state: ProfileState, cfg: ProfileConfig, emit: Emit) -> None:
    """Profile every distinct batch shape once; fills ``state.tables`` and ``state.timeline``."""
    session = _loaded(state)
    tables = OperatorTables(passes=1)
    state.tables = tables
    timeline = state.timeline = Timeline(decode_mode=_decode_mode(state, cfg, session))
    shapes: dict[tuple[object, ...], list[Batch]] = {}
    for batch in state.batches:
        shapes.setdefault(batch.shape_key, []).append(batch)
    groups = list(shapes.values())
    costs = []
    families = []
    kernels = []
    execution = timeline.decode_mode or "eager"  # the analytic model of the mode the window ran in
    for i, group in enumerate(groups):
        batch = group[0]
        emit("profile", i, len(groups), f"torch.profiler window, batch {batch.index}")
        window = StepWindow.plan(cfg.max_new_tokens, cfg.profile_decode_steps)
        run_steps = _run_decode_steps(state, cfg, group)
        trace = state.work_dir / "trace.json" if cfg.trace and i == 0 else None
        call = collect(
            functools.partial(_profiled_generate, session, cfg, batch, window, timeline.decode_mode),
            state.device,
            tables,
            trace,
            window=window,
            weight=len(group),
            run_decode_steps=run_steps,
        )
        timeline.add_call(call)
        tables.windows.append(
            f"batch {batch.index} ({len(group)} batch(es) of this shape): " + window.describe(round(run_steps) + 1)
        )
        if trace is not None:
            state.trace_path = trace
        if batch.index in state.costs:
            costs.append(stage_costs(state.costs[batch.index], max(cfg.max_new_tokens - 1, 0)))
            workload = batch_workload(cfg, batch, cfg.max_new_tokens)
            families.append(family_costs(session.spec, workload, state.dtype, execution))
            kernels.append(decode_kernels_per_step(session.spec, workload, state.dtype, execution))
    timeline.costs = mean_costs(costs)
    timeline.family_costs = mean_costs(families)
    counted = [k for k in kernels if k]
    timeline.analytic_kernels_per_step = sum(counted) / len(counted) if counted else None
    steps = [
        r.decode_ms / (r.new_tokens - 1)
        for r in state.records
        if r.new_tokens > 1 and getattr(r, "decode_mode", None) in (None, timeline.decode_mode)
    ]
    timeline.timed_step_ms = sum(steps) / len(steps) if steps else None
    emit("profile", len(groups), len(groups), "")


def batch_workload(cfg: ProfileConfig, batch: Batch, tokens: int) -> Workload:
    """The analytic workload of one call over ``batch`` generating ``tokens`` per page (the exact input)."""
    first = batch.items[0]
    return Workload(
        profile_id=f"measured-batch-{batch.index}",
        mode=cfg.mode,
        page_size=(first.page.width, first.page.height),
        max_crops=cfg.max_crops,
        prompt_tokens=max(int(batch.inputs.prompt_len) - first.image_tokens, 1),
        max_new_tokens=tokens,
        batch_size=batch.size,
        num_pages=batch.size,
    )


def _loaded(state: ProfileState) -> ProfileSession:
    assert state.session is not None, "the model is loaded before the profile phase"
    return state.session


def _run_decode_steps(state: ProfileState, cfg: ProfileConfig, group: list[Batch]) -> float:
    """Decode steps of one timed call of this shape (mean over its timed runs; planned if none)."""
    indices = {b.index for b in group}
    steps = [r.new_tokens - 1 for r in state.records if r.batch_index in indices]
    return sum(steps) / len(steps) if steps else float(max(cfg.max_new_tokens - 1, 0))


def _decode_mode(state: ProfileState, cfg: ProfileConfig, session: ProfileSession) -> str | None:
    """The decode mode the window runs in: the timed runs' mode (``both``: graph on CUDA)."""
    mode = getattr(cfg, "decode_mode", None)
    if mode == "both" or (mode is None and "decode_mode" in inspect.signature(session.generate).parameters):
        return "graph" if state.device.type == "cuda" else "eager"
    return mode


def _profiled_generate(
    session: ProfileSession, cfg: ProfileConfig, batch: Batch, window: StepWindow, decode_mode: str | None
) -> Any:
    """The window's shortened generate call, with a marker range after every token."""
    tokens = window.new_tokens
    min_new = tokens if cfg.min_new_tokens is None else min(cfg.min_new_tokens, tokens)
    params = inspect.signature(session.generate).parameters
    kwargs: dict[str, Any] = {"ranges": annotated_range}
    marks: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if "on_token" in params:
        kwargs["on_token"] = window.on_token
    elif isinstance(session.model, torch.nn.Module):  # no callback: one marker per forward call
        marks = forward_token_marks(session.model, window)
    if "decode_mode" in params and decode_mode:
        kwargs["decode_mode"] = decode_mode
    with marks:
        return session.generate(
            batch,
            max_new_tokens=tokens,
            min_new_tokens=min_new,
            no_repeat_ngram_size=cfg.no_repeat_ngram_size,
            **kwargs,
        )
