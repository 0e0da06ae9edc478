#!/usr/bin/env python3
"""Per-stage table of profile runs side by side (median over pages and calls, ms): official vs ours.

Reads each run directory's ``metrics.json`` (``aggregates``: p50 and mean of every stage) and prints
one Markdown table, a column per run, so runs of the same pages on the same machine can be compared.

    python3 scripts/stage_table.py official=RUN_DIR ours=RUN_DIR [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llm_perf_opt.reporting.text import table

STAGES = (
    ("SAM", "sam_ms"),
    ("CLIP", "clip_ms"),
    ("projector", "projector_ms"),
    ("decoder part of prefill", "prefill_decoder_ms"),
    ("decode, per token", "tpot_ms"),
    ("total (generate call)", "total_ms"),
)


def load(path: Path) -> dict[str, dict[str, float]]:
    """The run's stage aggregates; exits with one line when the directory holds no readable metrics."""
    try:
        return json.loads((path / "metrics.json").read_text())["aggregates"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"stage_table: {path}: no readable metrics.json aggregates ({exc})") from None


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__.strip().splitlines()[-1].strip())
        return 2
    runs = [(label, load(Path(path))) for label, path in (a.split("=", 1) for a in argv)]
    rows = []
    for name, key in STAGES:
        stats = [agg.get(key) for _, agg in runs]
        rows.append([name] + ["—" if not st else f"{st['p50']:.2f} ({st['mean']:.2f})" for st in stats])
    print(table(["stage"] + [f"{label} p50 (mean)" for label, _ in runs], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
