"""Two validation sets of the same workloads, made in separate device sessions: how far apart they measured.

Why: a held-out cell within ±10% says little if the same workload measures 10% apart from one machine
start to the next. This reads two ``validation.json`` files (``llm-perf-opt experiment validate``), pairs
their runs of the same name, and prints a Markdown table per stage: the measured ratio B / A (median
and the largest deviation) and, on the runs both sets hold out, each set's cells within ±10% calibrated.

    python scripts/compare_validation_sets.py docs/validation/h200/validation.json \
        docs/validation/h200/rerun-session8/validation.json --execution graph
    python scripts/compare_validation_sets.py docs/official/h200/validation/validation.json \
        docs/official/h200/validation-set2/validation.json --execution hf-official
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

Cell = tuple[str, str]


def load_rows(path: Path, execution: str) -> dict[Cell, dict[str, Any]]:
    """``(run, stage)`` → row of one execution mode's table."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data["executions"][execution]["rows"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"compare_validation_sets: {path}: no {execution!r} rows ({exc})") from None
    return {(r["run"], r["stage"]): r for r in rows}


def within(row: dict[str, Any], band: float = 0.10) -> bool:
    return abs(row["error_calibrated"]) <= band


def compare(a: dict[Cell, dict[str, Any]], b: dict[Cell, dict[str, Any]]) -> list[str]:
    common = sorted(set(a) & set(b))
    if not common:
        raise SystemExit("compare_validation_sets: the two sets share no run")
    stages = list(dict.fromkeys(stage for _, stage in common))
    lines = [
        "| stage | runs | measured B/A median | largest |B/A − 1| (run) | ±10% calibrated, A | ±10% calibrated, B |",
        "| :--- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for stage in stages:
        cells = [c for c in common if c[1] == stage]
        ratios = {c[0]: b[c]["measured_ms"] / a[c]["measured_ms"] for c in cells if a[c]["measured_ms"] > 0}
        worst = max(ratios, key=lambda run: abs(ratios[run] - 1))
        held = [c for c in cells if a[c]["held_out"] and b[c]["held_out"]]
        lines.append(
            f"| {stage} | {len(cells)} | {statistics.median(ratios.values()):.3f} | "
            f"{abs(ratios[worst] - 1):.1%} ({worst}) | {sum(within(a[c]) for c in held)}/{len(held)} | "
            f"{sum(within(b[c]) for c in held)}/{len(held)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set_a", type=Path, help="validation.json of the first set (A)")
    ap.add_argument("set_b", type=Path, help="validation.json of the second set (B)")
    ap.add_argument("--execution", default="graph", choices=("graph", "eager", "hf-official"),
                    help="which table of the two files: our model's graph or eager runs, or the official code's")
    args = ap.parse_args(argv)
    a, b = load_rows(args.set_a, args.execution), load_rows(args.set_b, args.execution)
    print("\n".join(compare(a, b)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
