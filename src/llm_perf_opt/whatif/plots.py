"""What-if plots (``--plot``): latency against the swept key per device, and stage shares per scenario.

matplotlib is imported here only, and only when plots are asked for; figures are drawn with the
Agg canvas directly (no pyplot, no global backend switch) and written atomically as PNG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_perf_opt.io_utils import atomic_write_bytes
from llm_perf_opt.whatif.evaluate import WhatIfRow

LATENCY_PNG, STAGES_PNG = "whatif_latency.png", "whatif_stages.png"
MAX_SERIES = 12
"""Lines drawn in the latency plot; further combinations are left out (and said so in the title)."""
MAX_BARS = 40
"""Scenarios drawn in the stage-share plot; larger grids are sampled evenly."""
STAGE_COLORS = {"vision": "#4e79a7", "projector": "#f28e2b", "prefill": "#59a14f", "decode": "#e15759"}


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def _x_key(keys: Sequence[str]) -> str | None:
    """The swept key on the x axis: the first one that is not the device (else the device)."""
    for key in keys:
        if key != "hardware":
            return key
    return keys[0] if keys else None


def latency_figure(rows: Sequence[WhatIfRow], swept: Sequence[str]) -> Any:
    """Latency per call and ms per page against the x key, one line per device / other-key combination."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    ax_lat, ax_page = fig.subplots(1, 2)
    x_key = _x_key(swept)
    series: dict[str, list[WhatIfRow]] = {}
    for row in rows:
        others = [f"{k}={row.scenario[k]}" for k in swept if k != x_key]
        label = ", ".join(others) if others else row.hardware
        series.setdefault(label, []).append(row)
    xs_all: list[Any] = [row.scenario.get(x_key) if x_key else "report" for row in rows]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in xs_all)
    categories = list(dict.fromkeys(str(v) for v in xs_all))
    for label, members in list(series.items())[:MAX_SERIES]:
        xs = [m.scenario.get(x_key) if x_key else "report" for m in members]
        pos = xs if numeric else [categories.index(str(v)) for v in xs]
        ax_lat.plot(pos, [m.latency_ms for m in members], marker="o", label=label)
        ax_page.plot(pos, [m.ms_per_page for m in members], marker="o", label=label)
    for ax, ylabel in ((ax_lat, "latency per call (ms)"), (ax_page, "ms per page (latency / batch)")):
        ax.set_xlabel(x_key or "scenario")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if not numeric:
            ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
        elif x_key in ("batch_size", "max_new_tokens") and len(set(xs_all)) > 2 and min(xs_all) > 0:
            ax.set_xscale("log", base=2)
    left_out = len(series) - MAX_SERIES
    title = "What-if: predicted latency" + (f" (first {MAX_SERIES} of {len(series)} series)" if left_out > 0 else "")
    fig.suptitle(title)
    ax_page.legend(fontsize=7, loc="best")
    return fig


def stages_figure(rows: Sequence[WhatIfRow], swept: Sequence[str] = ()) -> Any:
    """Stacked horizontal bars: each stage's share of the call's latency, one bar per scenario
    (labelled by the swept keys, or by every overridden key when nothing is swept)."""
    from matplotlib.figure import Figure

    picked = list(rows)
    if len(picked) > MAX_BARS:
        step = (len(picked) - 1) / (MAX_BARS - 1)
        picked = [rows[round(i * step)] for i in range(MAX_BARS)]
    fig = Figure(figsize=(10, 1.2 + 0.28 * len(picked)))
    ax = fig.subplots()
    labels = [
        ", ".join(f"{k}={v}" for k, v in r.scenario.items() if k in swept or not swept) or "report" for r in picked
    ]
    left = [0.0] * len(picked)
    for stage in picked[0].stages if picked else ():
        shares = [r.stages[stage].predicted_ms / r.latency_ms if r.latency_ms > 0 else 0.0 for r in picked]
        ax.barh(range(len(picked)), shares, left=left, label=stage, color=STAGE_COLORS.get(stage))
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_yticks(range(len(picked)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of latency per call")
    sampled = f" ({len(picked)} of {len(rows)} scenarios, evenly sampled)" if len(picked) < len(rows) else ""
    ax.set_title("What-if: stage shares" + sampled, pad=26)
    ax.legend(ncol=4, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def write_plots(rows: Sequence[WhatIfRow], out_dir: str | Path, swept: Sequence[str]) -> list[Path]:
    """Write ``whatif_latency.png`` and ``whatif_stages.png`` into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    return [_save(latency_figure(rows, swept), out / LATENCY_PNG), _save(stages_figure(rows, swept), out / STAGES_PNG)]
