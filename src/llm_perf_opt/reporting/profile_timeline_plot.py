"""``timeline.png`` (busy vs idle per stage) and ``roofline.png`` (achieved FLOP/s vs FLOP/byte).

Both render the :class:`~llm_perf_opt.profiling.timeline.Timeline` of the profiled window; nothing
is computed here beyond unit conversions.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from llm_perf_opt.reporting.profile_timeline import STAGE_TITLES
from llm_perf_opt.reporting.text import num

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.profiling.state import ProfileState
    from llm_perf_opt.profiling.timeline import Timeline

BUSY, IDLE = "#4C72B0", "#D9D9D9"
FAMILY_MARKERS = {"GEMM": "^", "attention": "s", "other": "v"}
SHORT = {"vision": "vision", "prefill": "prefill", "decode_step": "decode", "projector": "projector"}
STAGE_COLOURS = {
    "vision": "#4C72B0",
    "sam": "#64B5CD",
    "clip": "#8172B2",
    "projector": "#CCB974",
    "prefill": "#DD8452",
    "decode_step": "#C44E52",
}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _empty(message: str) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 2), dpi=110)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return _png(fig)


def _title(state: ProfileState, tl: Timeline) -> str:
    mode = f", {tl.decode_mode} decode" if tl.decode_mode else ""
    return f"{state.env.get('device_name', state.device)} {state.dtype}{mode}; profiled window"


def render_timeline(state: ProfileState) -> bytes:
    """One 100 % bar per stage: busy share (coloured) and idle share (grey), absolute times as labels."""
    tl = state.timeline
    if tl is None or tl.empty:
        return _empty("no profiled window (torch.profiler pass skipped or unfinished)")
    stages = [s for s, t in tl.stages.items() if t.units and t.span_us > 0]
    fig, ax = plt.subplots(figsize=(12, 1.6 + 0.5 * len(stages)), dpi=110)
    labels = [STAGE_TITLES[s].strip() + (" (per step)" if s == "decode_step" else " (per call)") for s in stages]
    gpu = tl.resource == "gpu"
    for i, stage in enumerate(stages):
        t = tl.stages[stage]
        frac = t.busy_fraction or 0.0
        ax.barh(i, frac, color=BUSY, label="busy" if i == 0 else None)
        ax.barh(i, 1 - frac, left=frac, color=IDLE, label="idle" if i == 0 else None)
        what = "kernels" if gpu else "ops"
        text = (
            f"busy {frac:.0%}: {num(t.per_unit(t.busy_us) / 1000, 3)} of {num(t.per_unit(t.span_us) / 1000, 3)} ms, "
            f"{t.per_unit(t.launches):.0f} {what}"
        )
        ax.text(1.02, i, text, va="center", fontsize=8, clip_on=False)
    ax.set_yticks(range(len(stages)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    what = "GPU busy (union of kernels)" if gpu else "CPU busy (top-level aten ops; no GPU kernels: CPU run)"
    ax.set_xlabel(f"share of the stage's span: {what} vs idle")
    ax.legend(ncol=2, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.suptitle(_title(state, tl), fontsize=9, y=0.02, va="bottom")
    fig.subplots_adjust(left=0.25, right=0.62, bottom=0.28 if len(stages) < 4 else 0.18, top=0.88)
    return _png(fig)


def render_roofline(state: ProfileState) -> bytes:
    """Stages as points (analytic FLOP/byte, analytic FLOPs ÷ measured busy time) under the roofs."""
    tl = state.timeline
    points = tl.roofline_points() if tl is not None else {}
    if tl is None or not points:
        return _empty("no roofline: needs the profiled window and the analytic FLOPs/bytes of each stage")
    peaks = state.peaks
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=110)
    cats = tl.category_points()
    xs = [x for x, _ in [*points.values(), *cats.values()]]
    ys = [y for _, y in [*points.values(), *cats.values()]]
    lo, hi = min(xs) / 4, max(xs) * 4
    if peaks and peaks.tflops and peaks.bandwidth_tbs:
        ridge = peaks.tflops / peaks.bandwidth_tbs
        lo, hi = min(lo, ridge / 8), max(hi, ridge * 8)
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        roof = [min(peaks.tflops * 1e12, peaks.bandwidth_tbs * 1e12 * x) for x in grid]
        label = f"roofs: {peaks.tflops:g} TFLOP/s, {peaks.bandwidth_tbs:g} TB/s"
        ax.plot(grid, roof, color="black", lw=1.5, label=label)
        ax.axvline(ridge, color="grey", lw=0.8, ls=":")
        ax.text(ridge, peaks.tflops * 1e12 * 1.15, f"ridge {ridge:.0f} FLOP/B", fontsize=7, ha="center")
    else:
        ax.text(
            0.02,
            0.97,
            "no GPU peaks (CPU run or unknown GPU): roofs not drawn",
            transform=ax.transAxes,
            fontsize=8,
            va="top",
        )
    for stage, (x, y) in points.items():
        ax.scatter([x], [y], s=70, color=STAGE_COLOURS.get(stage, "grey"), zorder=3, label=STAGE_TITLES[stage].strip())
        # Projector often sits right by vision or prefill: its label goes below right, the others above
        # left, each with a leader line so that two close dots never swap labels.
        dx, dy, ha = (22, -22, "left") if stage == "projector" else (-22, 16, "right")
        ax.annotate(
            SHORT.get(stage, stage),
            (x, y),
            textcoords="offset points",
            xytext=(dx, dy),
            fontsize=8,
            ha=ha,
            weight="bold",
            arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.35"},
        )
    for (stage, family), (x, y) in cats.items():
        ax.scatter(
            [x],
            [y],
            s=28,
            marker=FAMILY_MARKERS.get(family, "x"),
            color=STAGE_COLOURS.get(stage, "grey"),
            zorder=3,
            alpha=0.8,
        )
        ax.annotate(
            f"{SHORT.get(stage, stage)} {family}",
            (x, y),
            textcoords="offset points",
            xytext=(5, -9),
            fontsize=6.5,
            color="#444444",
        )
    for family, marker in FAMILY_MARKERS.items():  # legend entries for the category markers
        ax.scatter([], [], s=28, marker=marker, color="grey", label=f"{family} operators (per stage)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    top = max(ys) * 4
    if peaks and peaks.tflops:
        top = max(top, peaks.tflops * 1e12 * 2)
    ax.set_ylim(min(ys) / 4, top)
    ax.set_xlabel("arithmetic intensity, analytic FLOP per DRAM byte")
    ax.set_ylabel("achieved FLOP/s (analytic FLOPs ÷ measured busy time)")
    ax.set_title("stages (large dots) and their operator families (small markers)", fontsize=8)
    ax.grid(True, which="major", lw=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(_title(state, tl), fontsize=9, y=0.01, va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _png(fig)
