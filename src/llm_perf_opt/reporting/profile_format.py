"""Small formatting helpers shared by the ``profile`` report writers (Markdown tables, numbers)."""

from __future__ import annotations

from collections.abc import Sequence

from llm_perf_opt.contracts.profile import Stats

METRIC_LABELS: dict[str, str] = {
    "total_ms": "Total (generate call)",
    "ttft_ms": "Time to first token",
    "prefill_ms": "Prefill (first forward, vision included)",
    "vision_range_ms": "  Vision range (incl. projector)",
    "vision_ms": "  Vision: SAM + CLIP + glue",
    "sam_ms": "    SAM",
    "clip_ms": "    CLIP",
    "projector_ms": "  Projector",
    "prefill_decoder_ms": "  Decoder part of prefill",
    "decode_ms": "Decode (the rest)",
    "other_ms": "Setup before prefill",
    "tpot_ms": "Time per output token (decode)",
    "decode_tokens_per_s": "Decode tokens/s",
    "e2e_tokens_per_s": "End-to-end tokens/s",
    "peak_memory_gb": "Peak memory allocated (GB)",
}
"""Metric key → label, in report order."""

LEAF_LABELS: dict[str, str] = {
    "sam": "SAM",
    "clip": "CLIP",
    "vision": "vision glue (outside SAM/CLIP/projector)",
    "projector": "projector",
    "prefill": "decoder part of prefill",
    "decode": "decode",
    "other": "outside all stage ranges",
}


def num(value: float | None, digits: int = 2) -> str:
    """A number for a table: fixed digits, thousands kept readable, '—' for missing."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def sig(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits (small FLOP and byte counts stay readable), '—' for missing."""
    if value is None:
        return "—"
    if abs(value) >= 10**digits or (abs(value) >= 1 and "e" in f"{value:.{digits}g}"):
        return f"{value:,.0f}"
    if value == 0 or abs(value) >= 1e-3:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` is one character per column (l or r, default r after col 0)."""
    align = align or ("l" + "r" * (len(header) - 1))
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def stats_row(label: str, stats: Stats | None, digits: int = 2) -> list[str]:
    if stats is None:
        return [label, "—", "—", "—", "—", "0"]
    return [
        label,
        num(stats.mean, digits),
        num(stats.std, digits),
        num(stats.p50, digits),
        num(stats.p95, digits),
        str(stats.count or 0),
    ]


STATS_HEADER = ["Metric", "Mean", "Std", "p50", "p95", "n"]
