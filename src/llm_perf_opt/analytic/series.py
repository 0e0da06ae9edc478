"""Closed-form sums of the larger of two lines over an integer range (the decode steps' roofline sums).

Compute and memory of a decode step are affine in the step index, so Σ_j max(c_j, m_j) splits at the
crossover into two arithmetic series (:mod:`.roofline`).
"""

from __future__ import annotations

import math


def sum_max_affine(c0: float, c1: float, m0: float, m1: float, n: int) -> tuple[float, float]:
    """Σ_{j<n} max(c_j, m_j) split as (sum where compute wins, sum where memory wins), for c_j and m_j
    affine in j with c_0 = c0, c_{n−1} = c1 (same for m): :func:`sum_max_lines` over j = 0 … n − 1."""
    dc, dm = ((c1 - c0) / (n - 1), (m1 - m0) / (n - 1)) if n > 1 else (0.0, 0.0)
    return sum_max_lines(c0, dc, m0, dm, 0, n - 1)


def sum_max_lines(a0: float, da: float, b0: float, db: float, lo: int, hi: int) -> tuple[float, float]:
    """Σ_{j=lo}^{hi} max(a0 + da·j, b0 + db·j) split as (sum where a wins, sum where b wins)."""
    if hi < lo:
        return 0.0, 0.0

    def series(x0: float, dx: float, first: int, last: int) -> float:
        if last < first:
            return 0.0
        cnt = last - first + 1
        return cnt * x0 + dx * (first + last) * cnt / 2

    d0, dd = a0 - b0, da - db  # a_j − b_j = d0 + dd·j
    if dd == 0:
        a_lo, a_hi = (lo, hi) if d0 >= 0 else (lo, lo - 1)
    elif dd > 0:  # a wins for j ≥ −d0/dd
        a_lo, a_hi = max(lo, math.ceil(-d0 / dd - 1e-12)), hi
    else:  # a wins for j ≤ −d0/dd
        a_lo, a_hi = lo, min(hi, math.floor(-d0 / dd + 1e-12))
    if a_hi < a_lo:
        return 0.0, series(b0, db, lo, hi)
    a_sum = series(a0, da, a_lo, a_hi)
    b_sum = series(b0, db, lo, a_lo - 1) + series(b0, db, a_hi + 1, hi)
    return a_sum, b_sum
