"""Summary statistics over repeats and images: mean, population std, p50, p95, min, max, count.

Standard library only (``statistics``), so profiling, reporting and calibration share one definition.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

from llm_perf_opt.contracts.profile import Stats


def percentile(values: Sequence[float], q: int) -> float:
    """Linear-interpolated percentile, ``q`` an integer in [1, 99].

    ``statistics.quantiles(method="inclusive")``: the same as numpy's default ``linear`` method.
    """
    if not values:
        raise ValueError("percentile of no values")
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[q - 1])


def finite(values: Iterable[float | None]) -> list[float]:
    """The finite values as floats (None and NaN dropped)."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def summarize(values: Iterable[float | None]) -> Stats | None:
    """Stats of the finite values given (None and NaN dropped); None when nothing is left."""
    data = finite(values)
    if not data:
        return None
    return Stats(
        mean=statistics.fmean(data),
        std=statistics.pstdev(data),
        count=len(data),
        min=min(data),
        max=max(data),
        p50=percentile(data, 50),
        p95=percentile(data, 95),
    )


def summarize_columns(rows: Sequence[Mapping[str, float | None]], keys: Iterable[str]) -> dict[str, Stats]:
    """``{key: Stats}`` over rows for every key that has at least one finite value."""
    out: dict[str, Stats] = {}
    for key in keys:
        stats = summarize(row.get(key) for row in rows)
        if stats is not None:
            out[key] = stats
    return out


def relative_spread(stats: Stats) -> float | None:
    """Coefficient of variation std / mean (None when the mean is 0)."""
    return stats.std / stats.mean if stats.mean else None
