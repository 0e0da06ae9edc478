"""``stakeholder_summary.md``: where the time goes, in plain language, and what to try next."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_perf_opt.data.profile import LLMProfileReport
from llm_perf_opt.reporting.profile_format import LEAF_LABELS
from llm_perf_opt.reporting.profile_timeline import decode_advice, decode_sentence, summary_lines
from llm_perf_opt.reporting.text import num, pct

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.profiling.state import ProfileState

_PARTS: tuple[tuple[str, str], ...] = (
    ("vision_ms", "reading the page image (vision encoders SAM + CLIP)"),
    ("projector_ms", "projecting image features into the language model"),
    ("prefill_decoder_ms", "the language model reading the prompt and image tokens (prefill)"),
    ("decode_ms", "writing the output tokens one by one (decode)"),
    ("other_ms", "setup before the first forward pass"),
)


def _mean(report: LLMProfileReport, key: str) -> float | None:
    st = report.aggregates.get(key)
    return st.mean if st else None


def _where_time_goes(report: LLMProfileReport) -> list[str]:
    total = _mean(report, "total_ms")
    if not total:
        return ["No timed run finished, so there is no breakdown yet."]
    shares = sorted(((_mean(report, k) or 0.0) / total, label) for k, label in _PARTS)
    lines = [
        f"One page takes **{num(total)} ms** end to end on average "
        f"(first output token after {num(_mean(report, 'ttft_ms'))} ms). Of that time:",
        "",
    ]
    lines += [f"- {pct(share, 0)} {label}" for share, label in reversed(shares) if share >= 0.005]
    sam, clip = _mean(report, "sam_ms"), _mean(report, "clip_ms")
    if sam and clip:
        lines += ["", f"Inside vision, SAM takes {num(sam)} ms and CLIP {num(clip)} ms."]
    tpot = _mean(report, "tpot_ms")
    if tpot:
        lines += [
            f"Each output token after the first costs about {num(tpot, 3)} ms "
            f"({num(_mean(report, 'decode_tokens_per_s'), 1)} tokens/s per page batch)."
        ]
    return lines


def _cost_centres(state: ProfileState) -> list[str]:
    tables = state.tables
    if tables is None or tables.empty:
        why = "skipped (--no-torch-profiler)" if not state.config.torch_profiler else "did not finish"
        return [f"The operator profile {why}, so no cost centres are listed."]
    dev = tables.device_time
    total = sum(r.cost_us(dev) for r in tables.leaf.values()) or 1.0
    lines = []
    for i, row in enumerate(tables.cost_centres(3), 1):
        stage = LEAF_LABELS.get(row.stage or "other", row.stage or "other")
        lines.append(
            f"{i}. `{row.name}` in **{stage}** — {pct(row.cost_us(dev) / total)} of all operator "
            f"{'GPU' if dev else 'CPU'} time ({round(row.calls / max(tables.passes, 1))} calls per pass)"
        )
    return lines


def _mfu_words(state: ProfileState, report: LLMProfileReport) -> list[str]:
    peaks = state.peaks
    if not (peaks and peaks.tflops):
        return [
            f"MFU (model FLOPs utilisation) is **not available** for this run: "
            f"{peaks.source if peaks else 'no peak FLOP/s known'}."
        ]
    if not report.mfu_per_stage and not report.mfu_model_level:
        return ["MFU could not be computed (no analytic FLOPs for this input)."]
    a = report.analytic
    where = "the GPU's" if state.device.type == "cuda" else "the given"
    lines = [
        f"Overall the model uses **{pct(a.get('total_mfu_raw'))}** of {where} dense "
        f"{state.dtype} peak ({peaks.tflops:g} TFLOP/s) — the share of the chip's arithmetic doing "
        "useful model work."
    ]
    for key, words in (("vision", "the vision encoders"), ("prefill_decoder", "the prefill"), ("decode", "decode")):
        if f"{key}_mfu_raw" in a:
            lines.append(f"- {words}: {pct(a[f'{key}_mfu_raw'])} of peak compute")
    if "decode_bw_util_raw" in a:
        lines.append(
            f"- decode moves memory at {pct(a['decode_bw_util_raw'])} of peak bandwidth "
            "(decode is limited by memory traffic, so this is its real utilisation figure)"
        )
    if any(v > 1 for k, v in a.items() if k.endswith(("_mfu_raw", "_bw_util_raw"))):
        lines.append("- A figure above 100% is impossible: it flags an error in the analytic estimate.")
    return lines


def _next_steps(state: ProfileState, report: LLMProfileReport) -> list[str]:
    total = _mean(report, "total_ms") or 0.0
    steps = []
    if total:
        decode = (_mean(report, "decode_ms") or 0.0) / total
        vision = ((_mean(report, "vision_ms") or 0.0) + (_mean(report, "projector_ms") or 0.0)) / total
        bw = report.analytic.get("decode_bw_util_raw")
        measured = decode_sentence(state)
        if decode > 0.5 and measured:
            steps.append(f"Decode dominates, and {measured}. " + decode_advice(state))
        elif decode > 0.5:
            if bw is not None and bw < 0.3:
                steps.append(
                    "Decode dominates and uses little bandwidth, so it is bound by kernel-launch and Python "
                    "overhead: try CUDA graphs / torch.compile for the decode step, or fuse small kernels."
                )
            else:
                steps.append(
                    "Decode dominates: batch more pages per call (--batch-size) to share weight reads, and "
                    "consider a paged/static KV cache."
                )
        if vision > 0.3:
            steps.append(
                "Vision is a large share: check SAM's global-attention blocks (flash attention), or try a "
                "smaller resolution mode / fewer crops (--mode, --max-crops) where accuracy allows."
            )
        if (_mean(report, "prefill_decoder_ms") or 0.0) / total > 0.3:
            steps.append(
                "Prefill is heavy: the MoE expert dispatch over the long image-token prompt is the first "
                "place to look (grouped GEMM)."
            )
    tables = state.tables
    if tables is not None and not tables.empty:
        top = tables.cost_centres(1)[0]
        steps.append(f"Start with the top cost centre `{top.name}`; operators.md has the full per-stage tables.")
    if not (state.peaks and state.peaks.tflops):
        steps.append("Run on a GPU from the hardware table (or pass --peak-tflops) to get MFU.")
    return [f"- {s}" for s in steps] or ["- Nothing stands out; profile with more images or longer outputs."]


def _execution_words(state: ProfileState, report: LLMProfileReport) -> list[str]:
    """How decode ran (graph / eager) and whose code ran; the graph-vs-eager factor when both were timed."""
    session = state.session
    code = "the checkpoint's own code (--trust-remote-code)" if getattr(session, "remote_code", False) else "our model"
    modes = state.decode_modes
    how = {"graph": "replayed CUDA graphs", "eager": "eager PyTorch (kernels issued one by one)"}
    lines = [f"Implementation: {code}. Decode execution: {', '.join(f'{m} ({how[m]})' for m in modes)}."]
    a = report.analytic
    if "decode_speedup_graph_vs_eager" in a:
        lines.append(
            f"Replaying the decode step as CUDA graphs made decode {a['decode_speedup_graph_vs_eager']:.1f}x faster "
            f"than eager PyTorch here ({a['decode_tpot_ms_graph']:.2f} vs {a['decode_tpot_ms_eager']:.2f} ms "
            "per token)."
        )
    if "prefill_speedup_graph_vs_eager" in a:
        lines.append(
            f"The first forward (vision + prefill) took {a['prefill_ms_graph']:.2f} ms in graph mode vs "
            f"{a['prefill_ms_eager']:.2f} ms eager ({a['prefill_speedup_graph_vs_eager']:.1f}x)."
        )
    return [*lines, ""]


def render_stakeholder_summary(state: ProfileState, report: LLMProfileReport) -> str:
    cfg = state.config
    device = state.env.get("device_name", str(state.device))
    lines = ["# Profiling summary", ""]
    if state.incomplete:
        lines += [f"**This run is incomplete** ({state.incomplete_reason}); figures cover what finished.", ""]
    lines += [
        f"We ran DeepSeek-OCR ({report.model.id}, {state.dtype}) on {device} over {len(state.inputs.pages)} page "
        f"images in {cfg.mode} mode, {cfg.repeats} repeats each, {cfg.max_new_tokens} output tokens per page.",
        "",
        *_execution_words(state, report),
        "## Where the time goes",
        "",
        *_where_time_goes(report),
        *summary_lines(state),
        "",
        "## Top 3 cost centres",
        "",
        *_cost_centres(state),
        "",
        "## How well the hardware is used",
        "",
        *_mfu_words(state, report),
        "",
        "## What to try next",
        "",
        *_next_steps(state, report),
        "",
    ]
    return "\n".join(lines)
