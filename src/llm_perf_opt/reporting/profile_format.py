"""Labels and the statistics row shared by the ``profile`` report writers (numbers and tables: :mod:`.text`)."""

from __future__ import annotations

from llm_perf_opt.contracts.profile import Stats
from llm_perf_opt.reporting.text import MISSING, num

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


def stats_row(label: str, stats: Stats | None, digits: int = 2) -> list[str]:
    if stats is None:
        return [label, MISSING, MISSING, MISSING, MISSING, "0"]
    return [
        label,
        num(stats.mean, digits),
        num(stats.std, digits),
        num(stats.p50, digits),
        num(stats.p95, digits),
        str(stats.count or 0),
    ]


STATS_HEADER = ["Metric", "Mean", "Std", "p50", "p95", "n"]
