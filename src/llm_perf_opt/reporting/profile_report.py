"""``report.md``: the engineer's view of one ``profile`` run (stages, MFU, images, operators)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from llm_perf_opt.contracts.profile import Stats
from llm_perf_opt.data.profile import LLMProfileReport
from llm_perf_opt.data.stats import summarize
from llm_perf_opt.reporting.profile_format import METRIC_LABELS, STATS_HEADER, stats_row
from llm_perf_opt.reporting.profile_timeline import timeline_section
from llm_perf_opt.reporting.text import MISSING, num, pct, sig, table

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.profiling.records import RunRecord
    from llm_perf_opt.profiling.state import ProfileState

MFU_LABELS: dict[str, str] = {
    "vision": "Vision (SAM + CLIP)",
    "projector": "Projector",
    "prefill_decoder": "Decoder part of prefill",
    "prefill": "Prefill (whole first forward)",
    "decode": "Decode",
    "total": "Model level (whole call)",
}


def _peaks_text(state: ProfileState) -> str:
    peaks = state.peaks
    if peaks is None:
        return MISSING
    parts = []
    if peaks.tflops:
        parts.append(f"{peaks.tflops:g} TFLOP/s dense")
    if peaks.bandwidth_tbs:
        parts.append(f"{peaks.bandwidth_tbs:g} TB/s")
    return (", ".join(parts) + " — " if parts else "") + peaks.source


def _header(state: ProfileState) -> list[str]:
    cfg = state.config
    s = state.session
    env = state.env
    lines = [f"# Profile report: {s.spec.name if s else cfg.model} on {env.get('device_name', state.device)}", ""]
    if state.incomplete:
        lines += [
            f"> **INCOMPLETE** — {state.incomplete_reason}. Everything below covers only what finished "
            f"({len(state.records)} of {state.planned_runs or '?'} timed runs).",
            "",
        ]
    rows = [
        ["Run id", state.run_id],
        ["Created (UTC)", state.created_at.isoformat(timespec="seconds")],
        [
            "Model",
            f"{s.spec.name if s else cfg.model} ({s.parameter_count / 1e6:,.1f} M parameters)" if s else cfg.model,
        ],
        ["Weights", s.weights if s else str(cfg.weights or "random")],
        [
            "Device / dtype / attention",
            f"{state.device} ({env.get('device_name', '')}) / {state.dtype} / {cfg.attn_impl}",
        ],
        ["Mode / max crops", f"{cfg.mode} / {cfg.max_crops}"],
        ["Images / batch size", f"{len(state.inputs.pages)} / {cfg.batch_size}"],
        ["Repeats / warm-up passes", f"{cfg.repeats} / {cfg.warmup}"],
        [
            "New tokens per page",
            f"{cfg.max_new_tokens} (min {cfg.max_new_tokens if cfg.min_new_tokens is None else cfg.min_new_tokens})",
        ],
        ["Timed runs", f"{len(state.records)} of {state.planned_runs}"],
        ["Peaks for MFU", _peaks_text(state)],
    ]
    if state.session:
        rows.append(["Model load", f"{state.session.load_seconds:.1f} s"])
    lines += [table(["", ""], rows, "ll"), ""]
    return lines


def _stage_table(state: ProfileState, report: LLMProfileReport | None) -> list[str]:
    if not state.records:
        return ["## Stage times", "", "No timed run finished.", ""]
    agg = report.aggregates if report else {}
    rows = [stats_row(label, agg.get(key)) for key, label in METRIC_LABELS.items() if key in agg]
    lines = ["## Stage times (ms unless noted; over every image × repeat)", "", table(STATS_HEADER, rows, "lrrrrr"), ""]

    def mean(key: str) -> float:
        st = agg.get(key)
        return st.mean if st else 0.0

    lines += _modes_table(agg)
    parts = ["vision_ms", "projector_ms", "prefill_decoder_ms", "decode_ms", "other_ms"]
    total = mean("total_ms")
    summed = sum(mean(k) for k in parts)
    lines += [
        "Consistency: vision + projector + decoder part of prefill + decode + setup = "
        f"{num(summed)} ms vs total {num(total)} ms "
        f"({pct((summed - total) / total if total else None, 2)} difference). "
        "SAM and CLIP are inside vision, vision and projector inside prefill: never add nested rows.",
        "",
    ]
    return lines


def _modes_table(agg: dict[str, Stats]) -> list[str]:
    """Graph vs eager side by side (``--decode-mode both``): the per-mode means report_build aggregated."""
    modes = sorted({key[key.index("[") + 1 : -1] for key in agg if key.endswith("]") and "[" in key})
    if len(modes) < 2:
        return []
    rows = []
    for key, label in METRIC_LABELS.items():
        cells = [agg.get(f"{key}[{mode}]") for mode in modes]
        if any(c is not None for c in cells):
            rows.append([label.strip(), *(num(c.mean) if c else MISSING for c in cells)])
    return [
        "### Per execution mode (means; the table above is the first mode's runs)",
        "",
        "graph: vision, projector and prefill replayed from CUDA graphs per input shape, each decode step "
        "from one per KV bucket; eager: every kernel issued from Python.",
        "",
        table(["Metric", *modes], rows, "l" + "r" * len(modes)),
        "",
    ]


def _mfu_table(state: ProfileState, report: LLMProfileReport | None) -> list[str]:
    lines = ["## MFU and bandwidth utilisation", ""]
    analytic = report.analytic if report else {}
    if not any(k.endswith("_tflop_per_call") for k in analytic):
        reason = next((w for w in state.warnings if "analytic" in w), "no analytic costs")
        return [*lines, f"Not available: {reason}.", ""]
    peaks = state.peaks
    if not (peaks and peaks.tflops):
        lines += [
            f"**MFU is not available**: {peaks.source if peaks else 'no peak'}. "
            "Achieved rates below are measured against the analytic FLOPs and bytes only.",
            "",
        ]
    rows = []
    for key, label in MFU_LABELS.items():
        if f"{key}_tflop_per_call" not in analytic:
            continue
        mfu = analytic.get(f"{key}_mfu_raw")
        bw = analytic.get(f"{key}_bw_util_raw")
        flag = " ⚠ >1: estimator error" if (mfu or 0) > 1 or (bw or 0) > 1 else ""
        rows.append(
            [
                label,
                sig(analytic[f"{key}_tflop_per_call"] * 1000),
                sig(analytic[f"{key}_gb_per_call"]),
                sig(analytic.get(f"{key}_achieved_tflops")),
                sig(analytic.get(f"{key}_achieved_tbs")),
                pct(mfu, 2),
                pct(bw, 1) + flag,
            ]
        )
    header = [
        "Stage",
        "Analytic GFLOP / call",
        "Analytic GB / call",
        "Achieved TFLOP/s",
        "Achieved TB/s",
        "MFU",
        "Bandwidth util.",
    ]
    lines += [table(header, rows), ""]
    lines += [
        "MFU = analytic FLOPs of the exact input ÷ (measured time × dense peak); time-weighted over runs. "
        "Bandwidth utilisation = analytic DRAM bytes ÷ time ÷ peak bandwidth (the decode figure is the one "
        "that matters: decode is memory-bound). Values above 100% flag an estimator error.",
        "",
    ]
    return lines


def _routing(report: LLMProfileReport | None) -> list[str]:
    """The MoE routing census (profiling/routing.py), when the run took one."""
    agg = report.aggregates if report else {}
    keys = ("moe_expert_load_ratio", "moe_distinct_experts", "moe_top_expert_share")
    ratio, distinct, top = (agg.get(k) for k in keys)
    if ratio is None or distinct is None or top is None:
        return []
    return [
        "## MoE routing (census of the first batch's prefill)",
        "",
        f"Over {ratio.count} MoE layers: {distinct.min:.0f}–{distinct.max:.0f} experts got tokens; the busiest one "
        f"took {pct(top.min, 1)}–{pct(top.max, 1)} of the token-expert pairs; geometric load ratio "
        f"{ratio.mean:.3f} (min {ratio.min:.3f}, max {ratio.max:.3f}; 1 = uniform). `analyze --calibrate-from` "
        "this run predicts the MoE with that ratio (`roofline.expert_load_ratio`).",
        "",
    ]


def _per_image(state: ProfileState) -> list[str]:
    by_batch: dict[int, list[RunRecord]] = defaultdict(list)
    for r in state.primary_records:
        by_batch[r.batch_index].append(r)
    if not by_batch:
        return []
    rows = []
    for _, recs in sorted(by_batch.items()):
        first = recs[0]
        pages = ", ".join(first.pages)
        tot = summarize(r.total_ms for r in recs)
        rows.append(
            [
                pages,
                ", ".join(sorted(set(first.categories))),
                f"{first.image_tokens} ({first.tile_grid[0]}×{first.tile_grid[1]})",
                str(first.prompt_len),
                num(tot.mean if tot else None),
                pct(tot.std / tot.mean if tot and tot.mean else None),
                num(summarize(r.vision_ms for r in recs).mean),  # type: ignore[union-attr]
                num(summarize(r.prefill_ms for r in recs).mean),  # type: ignore[union-attr]
                num(summarize(r.decode_ms for r in recs).mean),  # type: ignore[union-attr]
                str(len(recs)),
            ]
        )
    header = [
        "Page(s)",
        "Category",
        "Image tokens (grid)",
        "Prompt len",
        "Total ms",
        "Spread",
        "Vision ms",
        "Prefill ms",
        "Decode ms",
        "Runs",
    ]
    return ["## Per image (mean over repeats)", "", table(header, rows, "lllrrrrrrr"), ""]


def _operators(state: ProfileState, report: LLMProfileReport | None) -> list[str]:
    lines = ["## Top operators", ""]
    if not state.config.torch_profiler:
        return [*lines, "Skipped (--no-torch-profiler).", ""]
    if state.tables is None or state.tables.empty:
        return [*lines, "No profiler pass finished.", ""]
    dev = state.tables.device_time
    rows = []
    for row in state.tables.top(10):
        rows.append(
            [
                f"`{row.name}`",
                row.stage or MISSING,
                str(round(row.calls)),
                num(row.self_cpu_us / 1000, 3),
                num(row.self_device_us / 1000, 3) if dev else MISSING,
            ]
        )
    lines += [
        table(["Operator", "Main stage", "Calls", "Self CPU ms", "Self CUDA ms"], rows, "llrrr"),
        "",
        f"Ranked by self {'CUDA' if dev else 'CPU'} time per pass over the inputs; full tables per stage in "
        "[operators.md](operators.md).",
        "",
    ]
    return lines


def _warnings(state: ProfileState, report: LLMProfileReport | None) -> list[str]:
    warnings = report.warnings if report else state.warnings
    lines = ["## Warnings and notes", ""]
    items = [f"- {w}" for w in warnings] + [f"- note: {n}" for n in state.notes]
    return [*lines, *(items or ["- none"]), ""]


def render_report(state: ProfileState, report: LLMProfileReport | None) -> str:
    lines = _header(state)
    lines += _stage_table(state, report)
    lines += ["![Stage breakdown](stage_breakdown.png)", ""]
    lines += _mfu_table(state, report)
    lines += _routing(report)
    lines += timeline_section(state)
    lines += _per_image(state)
    lines += _operators(state, report)
    lines += _warnings(state, report)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in state.phase_seconds.items())
    lines += [
        "## Files",
        "",
        "metrics.json (LLMProfileReport), summary.json (LLMProfileReportSummary), runs.jsonl (raw runs), "
        "operators.md, stakeholder_summary.md, assumptions.md, inputs.yaml, env.json, stage_breakdown.png, "
        "timeline.png, roofline.png"
        + (", trace.json (Chrome/Perfetto trace of the first profiled batch)" if state.trace_path else "")
        + ".",
        "",
    ]
    if phases:
        lines += [f"Wall time per phase: {phases}.", ""]
    return "\n".join(lines)
