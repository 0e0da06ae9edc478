"""The little dense linear algebra a calibration fit needs, in plain Python (no numpy).

Systems are tiny (one row/column per fitted parameter, about a dozen), so Gauss-Jordan elimination
with partial pivoting is exact enough and takes microseconds.
"""

from __future__ import annotations

Matrix = list[list[float]]


def transpose_times(a: Matrix, b: Matrix) -> Matrix:
    """aᵀ·b for a (m × n) and b (m × k)."""
    n, k = len(a[0]), len(b[0])
    out = [[0.0] * k for _ in range(n)]
    for row_a, row_b in zip(a, b, strict=True):
        for i in range(n):
            ai = row_a[i]
            if ai:
                target = out[i]
                for j in range(k):
                    target[j] += ai * row_b[j]
    return out


def transpose_vec(a: Matrix, v: list[float]) -> list[float]:
    """aᵀ·v for a (m × n)."""
    n = len(a[0])
    out = [0.0] * n
    for row, x in zip(a, v, strict=True):
        if x:
            for i in range(n):
                out[i] += row[i] * x
    return out


def inverse(a: Matrix) -> Matrix:
    """Inverse of a square, non-singular matrix (ValueError when singular)."""
    n = len(a)
    aug = [[*row, *(1.0 if i == j else 0.0 for j in range(n))] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(aug[r][col]))
        if abs(aug[pivot][col]) < 1e-300:
            raise ValueError("singular matrix")
        aug[col], aug[pivot] = aug[pivot], aug[col]
        p = aug[col][col]
        aug[col] = [x / p for x in aug[col]]
        for r in range(n):
            if r != col and aug[r][col]:
                f = aug[r][col]
                aug[r] = [x - f * y for x, y in zip(aug[r], aug[col], strict=True)]
    return [row[n:] for row in aug]


def solve(a: Matrix, b: list[float]) -> list[float]:
    """x with a·x = b."""
    inv = inverse(a)
    return [sum(x * y for x, y in zip(row, b, strict=True)) for row in inv]
