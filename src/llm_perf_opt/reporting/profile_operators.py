"""``operators.md``: torch.profiler operator tables, overall and per stage, without double counting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_perf_opt.data.stages import OPERATOR_LEAF_STAGES, OPERATOR_TABLE_STAGES
from llm_perf_opt.reporting.profile_format import LEAF_LABELS
from llm_perf_opt.reporting.text import num, pct, table

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.profiling.state import ProfileState
    from llm_perf_opt.profiling.torch_profiler import OperatorTables

EXPLANATION = """\
How to read these tables:

- The operators come from a bounded torch.profiler window (timed runs are never profiled): per
  distinct batch shape, one generate call with the whole prefill (vision included) and a few decode
  steps; the window is named below.
- The stage sums and the overall table are **per pass over the input set** (every batch once): each
  shape's call counts once per batch of that shape, and decode is scaled from the window's steps to
  the run's decode steps. The per-stage tables are **per call** (vision, projector, prefill) and
  **per decode step** (decode), means over the window.
- **Total** time is inclusive: `aten::linear` includes the `aten::addmm` it calls. **Self** time
  excludes child operators. Only self times add up — summing totals counts nested operators twice.
- **CUDA** time is the device time of the kernels the operator launched (empty on CPU).
- Each operator is attributed to the innermost enclosing stage range (`record_function` / NVTX):
  sam, clip, projector, vision (glue), prefill (decoder part), decode, or other (outside all ranges).
  The `vision` table contains SAM, CLIP and the vision glue (not the projector).
- Tables are ranked by self {cost} time (the cost an operator adds on its own).
- Self times do not reach the stage wall times: Python between operators, synchronisation and idle
  gaps belong to no operator.
"""


def _rows(tables: OperatorTables, stage: str | None, k: int, per_unit: bool = False) -> list[list[str]]:
    dev = tables.device_time
    every = tables.unit_rows(stage) if per_unit and stage is not None else tables.rows(stage)
    rows = every[:k]
    total_cost = sum(r.cost_us(dev) for r in every) or 1.0
    div = 1000.0 if per_unit else max(tables.passes, 1) * 1000.0
    out = []
    for r in rows:
        line = [f"`{r.name}`"]
        if stage is None:
            line.append(r.stage or "—")
        line += [
            f"{r.calls:.3g}" if per_unit else str(round(r.calls / max(tables.passes, 1))),
            num(r.total_cpu_us / div, 3),
            num(r.self_cpu_us / div, 3),
        ]
        if dev:
            line += [num(r.total_device_us / div, 3), num(r.self_device_us / div, 3)]
        line.append(pct(r.cost_us(dev) / total_cost))
        out.append(line)
    return out


def _header(dev: bool, overall: bool) -> list[str]:
    h = ["Operator"] + (["Main stage"] if overall else []) + ["Calls", "Total CPU ms", "Self CPU ms"]
    if dev:
        h += ["Total CUDA ms", "Self CUDA ms"]
    return [*h, "Share of self"]


def render_operators(state: ProfileState) -> str:
    cfg = state.config
    lines = ["# Operators", ""]
    if not cfg.torch_profiler:
        return "\n".join([*lines, "The torch.profiler pass was skipped (--no-torch-profiler).", ""])
    tables = state.tables
    if tables is None or tables.empty:
        reason = state.incomplete_reason or "no profiler pass finished"
        return "\n".join([*lines, f"No operator data: {reason}.", ""])
    dev = tables.device_time
    lines += [EXPLANATION.format(cost="CUDA" if dev else "CPU"), ""]
    lines += ["Profiled window:", "", *(f"- {w}" for w in tables.windows), ""]
    if state.incomplete:
        lines += [f"> INCOMPLETE run: {state.incomplete_reason}", ""]
    sums = tables.stage_self_us()
    total_cpu = sum(c for c, _ in sums.values())
    total_dev = sum(d for _, d in sums.values())
    rows = []
    for leaf in OPERATOR_LEAF_STAGES:
        cpu, d = sums[leaf]
        rows.append(
            [LEAF_LABELS[leaf], num(cpu / 1000, 3), pct(cpu / total_cpu if total_cpu else None)]
            + ([num(d / 1000, 3), pct(d / total_dev if total_dev else None)] if dev else [])
        )
    rows.append(
        ["**sum (all operators)**", num(total_cpu / 1000, 3), "100.0%"]
        + ([num(total_dev / 1000, 3), "100.0%"] if dev else [])
    )
    head = ["Stage (disjoint)", "Self CPU ms", "Share"] + (["Self CUDA ms", "Share"] if dev else [])
    lines += ["## Where operator time goes (self times, disjoint stages: these add up)", "", table(head, rows), ""]
    k = cfg.top_k
    lines += [f"## Top {k} operators overall (per pass over the input set)", ""]
    lines += [table(_header(dev, True), _rows(tables, None, k)), ""]
    for stage in OPERATOR_TABLE_STAGES:
        body = _rows(tables, stage, k, per_unit=True)
        if body:
            unit = "per decode step" if stage == "decode" else "per call"
            lines += [f"## Top {k} operators in {stage} ({unit})", "", table(_header(dev, False), body), ""]
    if state.trace_path:
        lines += [
            f"Chrome/Perfetto trace of the first profiled window: `{state.trace_path.name}` "
            "(open in https://ui.perfetto.dev or chrome://tracing).",
            "",
        ]
    return "\n".join(lines)
