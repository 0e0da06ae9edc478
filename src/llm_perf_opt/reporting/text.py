"""The text building blocks of every report: the one Markdown table and the number formatters.

Every formatter writes ``—`` for a missing value (``None``) so that a gap reads the same in each
report. Pick by what the number is:

* :func:`num` — a measured quantity with a fixed number of decimals (thousands lose them);
* :func:`ms` — a time in milliseconds, three decimals below 10 ms, one above;
* :func:`sig` — significant digits, for counts that span many orders (FLOPs, bytes);
* :func:`compact` — about three significant figures, for dense sweep tables;
* :func:`pct` — a fraction as a percentage (``signed`` for errors: ``+3.1%``);
* :func:`cell` — whatever a table cell holds (the default of :func:`table` for non-strings).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MISSING = "—"
"""What every formatter writes for a missing value."""


def num(value: float | None, digits: int = 2) -> str:
    """``digits`` decimals below 100, one below 1000, none above (with thousands separators)."""
    if value is None:
        return MISSING
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def ms(value: float | None) -> str:
    """Milliseconds: three decimals below 10 ms (microsecond steps stay visible), one above."""
    if value is None:
        return MISSING
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def sig(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits (small FLOP and byte counts stay readable)."""
    if value is None:
        return MISSING
    if abs(value) >= 10**digits or (abs(value) >= 1 and "e" in f"{value:.{digits}g}"):
        return f"{value:,.0f}"
    if value == 0 or abs(value) >= 1e-3:
        return f"{value:.{digits}g}"
    return f"{value:.{digits - 1}e}"


def compact(value: float | None) -> str:
    """About three significant figures: 1,322 / 17.5 / 5.48 / 0.0901 (NaN and inf as Python writes them)."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def pct(value: float | None, digits: int = 1, *, signed: bool = False) -> str:
    """``value`` (a fraction) as a percentage; ``signed`` writes the sign of an error (``+3.1%``)."""
    if value is None:
        return MISSING
    return f"{100 * value:{'+' if signed else ''}.{digits}f}%"


def cell(value: Any) -> str:
    """A table cell: ints with thousands separators, floats by size, booleans as yes/no, text with ``|`` escaped."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub Markdown table. Strings are written as given (``|`` escaped), anything else through
    :func:`cell`; ``align`` is one character per column, ``l`` or ``r`` (default: first column left,
    the rest right)."""
    align = align or ("l" + "r" * (len(header) - 1))
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
