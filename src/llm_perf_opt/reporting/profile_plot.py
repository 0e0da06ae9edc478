"""``stage_breakdown.png``: stacked stage times per batch (mean over repeats) as PNG bytes."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.profiling.records import RunRecord
    from llm_perf_opt.profiling.state import ProfileState


SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("sam_ms", "SAM", "#4C72B0"),
    ("clip_ms", "CLIP", "#64B5CD"),
    ("glue_ms", "vision glue", "#8172B2"),
    ("projector_ms", "projector", "#CCB974"),
    ("prefill_decoder_ms", "prefill (decoder)", "#DD8452"),
    ("decode_ms", "decode", "#C44E52"),
    ("other_ms", "setup", "#937860"),
)


def _segments(r: RunRecord) -> dict[str, float]:
    return {
        "sam_ms": r.sam_ms,
        "clip_ms": r.clip_ms,
        "glue_ms": max(r.vision_ms - r.sam_ms - r.clip_ms, 0.0),
        "projector_ms": r.projector_ms,
        "prefill_decoder_ms": r.prefill_decoder_ms,
        "decode_ms": r.decode_ms,
        "other_ms": r.other_ms,
    }


def render_stage_breakdown(state: ProfileState) -> bytes:
    by_batch: dict[int, list[RunRecord]] = defaultdict(list)
    for r in state.primary_records:
        by_batch[r.batch_index].append(r)
    labels: list[str] = []
    means: list[dict[str, float]] = []
    for _, recs in sorted(by_batch.items()):
        name = recs[0].pages[0] + (f" +{len(recs[0].pages) - 1}" if len(recs[0].pages) > 1 else "")
        labels.append(name if len(name) <= 40 else name[:37] + "...")
        segs = [_segments(r) for r in recs]
        means.append({k: sum(s[k] for s in segs) / len(segs) for k, _, _ in SEGMENTS})
    height = 1.6 + 0.45 * max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(10, height), dpi=110)
    try:
        if not labels:
            ax.text(0.5, 0.5, "no timed run finished", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        else:
            left = [0.0] * len(labels)
            for key, name, colour in SEGMENTS:
                values = [m[key] for m in means]
                ax.barh(labels, values, left=left, label=name, color=colour)
                left = [a + b for a, b in zip(left, values, strict=True)]
            ax.invert_yaxis()
            ax.set_xlabel("ms per generate call (mean over repeats)")
            ax.legend(ncol=4, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        title = f"{state.config.mode} mode, {state.config.max_new_tokens} new tokens, {state.device} {state.dtype}"
        if state.incomplete:
            title += " (INCOMPLETE)"
        fig.suptitle(title, fontsize=9, y=0.02, va="bottom")
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()
