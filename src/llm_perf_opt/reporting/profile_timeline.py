"""Markdown for the profiled window: busy/idle per stage, kernels per decode step, trace size.

Renders :class:`~llm_perf_opt.profiling.timeline.Timeline` data only; every figure and verdict is
computed in :mod:`llm_perf_opt.profiling.timeline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_perf_opt.reporting.text import num, pct, table

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.profiling.state import ProfileState
    from llm_perf_opt.profiling.timeline import Timeline

STAGE_TITLES: dict[str, str] = {
    "vision": "vision (SAM + CLIP + glue)",
    "sam": "  SAM",
    "clip": "  CLIP",
    "projector": "projector",
    "prefill": "decoder part of prefill",
    "decode_step": "decode step",
}
AGREEMENT = 0.05
"""Relative difference within which measured and analytic kernel counts (and window and timed
decode steps) are called in agreement."""


def decode_sentence(state: ProfileState) -> str | None:
    """The measured decode verdict as one sentence, e.g. "decode is host-bound: the GPU is busy 17%
    of the step"; None without a GPU window."""
    tl = state.timeline
    if tl is None or tl.resource != "gpu":
        return None
    step = tl.stages["decode_step"]
    frac = step.busy_fraction
    if frac is None:
        return None
    per_step = step.per_unit(step.span_us) / 1000
    verdict = tl.verdict("decode_step", state.peaks).split(":")[0]
    mode = f" ({tl.decode_mode} decode)" if tl.decode_mode else ""
    return (
        f"decode is {verdict}{mode}: the GPU is busy {frac:.0%} of the step "
        f"({num(step.per_unit(step.busy_us) / 1000, 3)} of {num(per_step, 3)} ms, "
        f"{step.per_unit(step.launches):.0f} kernels per step, measured in the profiled window)"
    )


def _stage_rows(state: ProfileState, tl: Timeline) -> list[list[str]]:
    rows = []
    for stage, t in tl.stages.items():
        if not t.units:
            continue
        unit = "per step" if stage == "decode_step" else "per call"
        rows.append(
            [
                f"{STAGE_TITLES[stage]} ({unit})",
                num(t.per_unit(t.span_us) / 1000, 3),
                num(t.per_unit(t.busy_us) / 1000, 3),
                num(t.per_unit(t.idle_us) / 1000, 3),
                pct(t.busy_fraction, 0),
                f"{t.per_unit(t.launches):.0f}",
                num(t.mean_launch_us, 1),
                tl.verdict(stage, state.peaks),
            ]
        )
    return rows


def _kernel_table(tl: Timeline) -> list[str]:
    measured = tl.measured_kernels_per_step()
    analytic = tl.analytic_kernels_per_step
    what = "CUDA kernels launched" if tl.resource == "gpu" else "aten operators that do work (CPU stand-in)"
    diff = (measured - analytic) / analytic if measured is not None and analytic else None
    rows = [
        [f"Measured: {what}", num(measured, 1)],
        [f"Analytic kernel count ({tl.decode_mode or 'eager'} decode)", num(analytic, 1)],
        [
            "Difference",
            pct(diff)
            + (
                f" (within ±{AGREEMENT:.0%})"
                if diff is not None and abs(diff) <= AGREEMENT
                else f" (outside ±{AGREEMENT:.0%})"
                if diff is not None
                else ""
            ),
        ],
    ]
    lines = ["### Kernels per decode step: measured vs analytic", "", table(["", "Per decode step"], rows), ""]
    if tl.resource == "gpu":
        lines += [
            "Kernels of the window's decode steps (memcpy/memset not counted) ÷ steps, against the analytic "
            "count of the same execution mode. In graph mode one graph launch replays the step's kernels; "
            "they are counted by the range their launch fell in, as the few launched outside the graph are.",
            "",
        ]
    else:
        lines += [
            "CPU run: there are no kernels, and the difference is structural, not an error. The stand-in counts "
            "top-level aten operators that do work (views, allocations and no-op casts excluded; composites such as "
            "`aten::linear` or `aten::rms_norm` counted once, as the fused CUDA kernel). The analytic count follows "
            "the CUDA kernel census: fp32 casts of the router, the flash split-KV combine, grouped-GEMM setup and "
            "device copies exist only on CUDA, and on a CPU the MoE experts run without grouped_mm. Layers whose CPU "
            "operators are the CUDA kernels one for one (RMSNorm, embedding, KV-cache writes, RoPE, attention "
            "calls) agree exactly (tests/unit/profiling/test_profile_timeline.py).",
            "",
        ]
    return lines


def timeline_section(state: ProfileState) -> list[str]:
    """``## GPU timeline per stage`` of report.md (or why there is none)."""
    tl = state.timeline
    tables = state.tables
    title = "## GPU timeline per stage (profiled window)"
    if tl is None or tables is None:
        why = "skipped (--no-torch-profiler)" if not state.config.torch_profiler else "no profiler window finished"
        return [title, "", f"Not available: {why}.", ""]
    lines = [title, ""]
    lines += ["Window, one generate call per distinct batch shape:", ""]
    lines += [f"- {w}" for w in tables.windows] + [""]
    if tl.decode_mode:
        lines += [f"Decode mode in the window: **{tl.decode_mode}** (the timed runs' mode).", ""]
    if tl.resource != "gpu":
        lines += [
            "**No GPU kernels (CPU run).** The table shows CPU-busy time instead: the union of the top-level "
            "aten operators' intervals; idle is Python and framework time between operators.",
            "",
        ]
    head = [
        "Stage",
        "Span ms",
        "Busy ms",
        "Idle ms",
        "Busy",
        "Kernels" if tl.resource == "gpu" else "Ops",
        "Mean µs",
        "Verdict",
    ]
    lines += [table(head, _stage_rows(state, tl), "lrrrrrrl"), ""]
    lines += [
        "Span: first to last activity of the stage (kernels on a GPU, attributed to the stage whose range "
        "launched them); busy: union of their intervals; idle = span − busy. "
        f"Host-bound when busy < {tl.host_bound_busy:.0%} of the span (the GPU waits for launches); otherwise "
        "memory- or compute-bound by the analytic FLOP/byte of the stage against the GPU's ridge point, with the "
        "achieved share of that roof over busy time. Times are under the profiler, which slows the host.",
        "",
    ]
    sentence = decode_sentence(state)
    if sentence:
        lines += [f"**Measured:** {sentence}.", ""]
    window, timed = tl.window_step_ms(), tl.timed_step_ms
    if window and timed and tl.resource == "gpu":
        diff = (window - timed) / timed
        lines += [
            f"Decode step in the window: {num(window, 3)} ms (GPU span ÷ steps) vs {num(timed, 3)} ms in the "
            f"timed runs ({pct(diff)}; {'within' if abs(diff) <= AGREEMENT else 'outside'} ±{AGREEMENT:.0%}). "
            "They agree when decode is GPU-bound; a host-bound step is slowed by the profiler's own host work.",
            "",
        ]
    lines += [
        "![GPU timeline per stage](timeline.png) ![Roofline](roofline.png)",
        "",
        "Roofline: each stage at its analytic FLOP/byte and analytic FLOPs ÷ measured busy time, with its GEMM, "
        "attention and other operators as small markers (families matched by layer class on the analytic side and "
        "by operator name on the measured side, so approximate).",
        "",
    ]
    lines += _kernel_table(tl)
    if state.trace_path is not None:
        try:
            size = state.trace_path.stat().st_size
            lines += [
                f"Trace of the first window: `{state.trace_path.name}`, {size / 1e6:.1f} MB (10⁶ bytes); "
                "open it in https://ui.perfetto.dev.",
                "",
            ]
        except OSError:
            pass
    return lines


def summary_lines(state: ProfileState) -> list[str]:
    """The measured busy fractions for stakeholder_summary.md (empty without a GPU window)."""
    sentence = decode_sentence(state)
    tl = state.timeline
    if sentence is None or tl is None:
        if tl is not None and tl.resource == "cpu" and not tl.empty:
            return ["", "This was a CPU run: there are no GPU kernels, so GPU busy and idle time are not measured."]
        return []
    lines = ["", f"Measured in the profiled window: {sentence}."]
    for stage in ("vision", "prefill"):
        t = tl.stages[stage]
        if t.busy_fraction is not None:
            what = "the vision encoders" if stage == "vision" else "the prefill (decoder part)"
            lines.append(f"- {what}: GPU busy {t.busy_fraction:.0%} of the stage ({tl.verdict(stage, state.peaks)})")
    return lines


def decode_advice(state: ProfileState) -> str:
    """What to try for decode, chosen by the measured verdict (host-bound vs GPU-bound)."""
    tl = state.timeline
    verdict = tl.verdict("decode_step", state.peaks) if tl is not None else ""
    if verdict.startswith("host-bound"):
        if tl is not None and tl.decode_mode == "graph":
            return "Graph replay still leaves the GPU idle: look for host syncs or small graphs between steps."
        return "Cut host work per step: CUDA-graph decode (--decode-mode graph), torch.compile or fused kernels."
    return "The GPU sets the pace: batch more pages per call (--batch-size) to share weight reads per step."
