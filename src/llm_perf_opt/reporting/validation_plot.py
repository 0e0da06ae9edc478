"""predicted_vs_measured.png: log-log scatter of every (workload, stage), uncalibrated and calibrated."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from llm_perf_opt.data.stages import ACCURACY_TARGET as TARGET
from llm_perf_opt.data.stages import MEASURED_STAGE_LABELS, MEASURED_STAGES

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.calibration.validation import ValidationResult

_PLOT_STAGES = ("sam", "clip", "projector", "prefill_decoder", "decode", "total")


def render_scatter(result: ValidationResult, title: str = "") -> bytes:
    """PNG bytes: measured ms (x) vs predicted ms (y), y = x and the ±15 % band; two panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result.rows if r.stage in _PLOT_STAGES]
    if not rows:
        rows = [r for r in result.rows if r.stage in MEASURED_STAGES]
    values = [v for r in rows for v in (r.measured_ms, r.uncalibrated_ms, r.calibrated_ms) if v > 0]
    lo, hi = (min(values) / 2, max(values) * 2) if values else (0.01, 1e4)
    fig, axes = plt.subplots(1, 2, figsize=(13, 6), sharex=True, sharey=True)
    colors = plt.get_cmap("tab10")
    for ax, which, name in (
        (axes[0], "uncalibrated_ms", "uncalibrated (defaults)"),
        (axes[1], "calibrated_ms", "calibrated on one workload"),
    ):
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="y = x")
        ax.fill_between(
            [lo, hi],
            [lo * (1 - TARGET), hi * (1 - TARGET)],
            [lo * (1 + TARGET), hi * (1 + TARGET)],
            color="grey",
            alpha=0.25,
            label=f"±{TARGET:.0%}",
        )
        for i, stage in enumerate(_PLOT_STAGES):
            pts = [r for r in rows if r.stage == stage]
            if not pts:
                continue
            xs = [r.measured_ms for r in pts if not r.calibration_input]
            ys = [getattr(r, which) for r in pts if not r.calibration_input]
            ax.scatter(xs, ys, s=22, color=colors(i), label=MEASURED_STAGE_LABELS.get(stage, stage), alpha=0.85)
            cx = [r.measured_ms for r in pts if r.calibration_input]
            cy = [getattr(r, which) for r in pts if r.calibration_input]
            if cx:
                ax.scatter(cx, cy, s=60, marker="x", color=colors(i))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("measured ms")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.25)
    axes[0].set_ylabel("predicted ms")
    axes[1].legend(loc="upper left", fontsize=8, title="× = calibration input", title_fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
