"""Summary statistics over repeats and images: mean, population std, p50, p95, min, max, count."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from llm_perf_opt.contracts.profile import Stats


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default ``linear`` method), ``q`` in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def summarize(values: Iterable[float | None]) -> Stats | None:
    """Stats of the finite values given (None and NaN dropped); None when nothing is left."""
    data = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not data:
        return None
    mean = sum(data) / len(data)
    var = sum((v - mean) ** 2 for v in data) / len(data)
    return Stats(
        mean=mean,
        std=math.sqrt(var),
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
