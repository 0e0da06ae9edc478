"""benchmarks/bench_grouped_table.py spreads pairs over experts as the analytic model's routing skew does."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from bench_grouped_table import expert_rows, token_grid


def test_expert_rows_are_whole_pairs_in_the_skews_order() -> None:
    rows = expert_rows(498, 64, 0.85)  # 83 prompt tokens × top-6
    assert sum(rows) == 498 and rows == sorted(rows, reverse=True)
    # Top share (1 − 0.85) / (1 − 0.85⁶⁴) ≈ 15.0% of 498 pairs, the next ones × 0.85 each.
    assert rows[:3] == [75, 64, 54]
    assert expert_rows(384, 64, 1.0) == [6] * 64  # uniform: 384 / 64 each
    assert sum(expert_rows(7, 64, 1.0)) == 7


def test_token_grid_is_geometric_up_to_the_largest_prefill() -> None:
    grid = token_grid(100)
    assert grid == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96]
    assert token_grid()[-1] == 12288
