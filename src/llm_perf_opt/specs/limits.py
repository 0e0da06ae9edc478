"""Upper (and lower) bounds of every numeric input, checked before any work starts.

Root cause of hangs and overflows: inputs were checked for sign at most, so ``--max-crops 1000``,
a 400-digit page side or ``memory_gb=1e308`` reached code whose cost or arithmetic they break.
Each bound is far beyond any real use and states why it is where it is; anything outside is one
:class:`~llm_perf_opt.errors.UserError` naming the input, the value and the range.
"""

from __future__ import annotations

import math
from typing import Any

from llm_perf_opt.errors import UserError

MAX_CROPS_LIMIT = 64
"""Tiles per page in crop mode: official paths use 6 (vLLM) or 9 (HF); 64 tiles of 640 px already make
~6,700 image slots, most of the decoder's 8,192-token context."""
MAX_PAGE_SIDE = 65_535
"""Page side in px: the largest side JPEG and WebP can store."""
MAX_TOKENS = 1_048_576
"""Any token count (prompt, new tokens) before the model's own context limit is checked."""
MAX_BATCH_SIZE = 4_096
"""Pages per generate() call."""
MAX_NUM_PAGES = 1_000_000_000
"""Pages in a what-if job."""
MAX_REPEATS = 10_000
"""Timed runs per image."""
MAX_WARMUP = 1_000
"""Warm-up passes per batch shape."""
MAX_TOP_K = 10_000
"""Operators per table."""
MAX_SEED = 2**32 - 1
"""Seeds must fit numpy's and Python's seeding alike."""
MAX_TFLOPS = 1e6
"""Dense peak TFLOP/s of one device (an exaFLOP/s; a B200 has 2,250 dense bf16)."""
MAX_BANDWIDTH_TBS = 1e3
"""Memory bandwidth of one device in TB/s (a B200 has 8)."""
MAX_MEMORY_GB = 1e6
"""Device memory in GB (a petabyte)."""
MIN_FIGURE = 1e-3
"""Smallest TFLOP/s, TB/s or GB figure of a device: 1e-300 made every predicted time overflow to inf."""
MAX_OVERHEAD_US = 1e6
"""Per-kernel or per-step overheads of the roofline (µs): at most a second."""
MAX_MODEL_WIDTH = 1 << 17
"""Hidden sizes, head counts, expert widths of a model spec."""
MAX_MODEL_COUNT = 4_096
"""Layers, experts, heads of a model spec."""
MAX_VOCAB = 1 << 24
"""Vocabulary rows."""
MAX_RUN_ID_CHARS = 100
"""Run ids become directory names (NAME_MAX is 255 bytes, and a hidden staging name is built from it)."""


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` if it is an int (not bool) with lo ≤ value ≤ hi; otherwise a UserError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be an integer from {lo:,} to {hi:,}, got {value!r}")
    if not lo <= value <= hi:
        raise UserError(f"{name} must be from {lo:,} to {hi:,}, got {_short(value)}")
    return value


def check_float(name: str, value: Any, hi: float, *, positive: bool = True, lo: float = 0.0) -> float:
    """A finite real number in (lo, hi] (positive) or [lo, hi]; NaN, infinities and text are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{name} must be a number, got {value!r}")
    number = float(value) if not isinstance(value, int) or abs(value) < 1 << 1000 else math.inf
    if not math.isfinite(number):
        raise UserError(f"{name} must be a finite number, got {_short(value)}")
    if positive and number <= lo:
        raise UserError(f"{name} must be greater than {lo:g}, got {number:g}")
    if number < lo or number > hi:
        raise UserError(f"{name} must be from {lo:g} to {hi:g}, got {number:g}")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} digits)"


def check_run_id(run_id: str, option: str = "--run-id") -> str:
    """A run id usable as one directory name on any file system; otherwise a UserError."""
    if not isinstance(run_id, str) or not run_id or run_id != run_id.strip():
        raise UserError(f"{option} {run_id!r} must be a non-empty name without leading or trailing spaces")
    if len(run_id) > MAX_RUN_ID_CHARS:
        raise UserError(f"{option} is {len(run_id)} characters long; at most {MAX_RUN_ID_CHARS} are allowed")
    bad = sorted({c for c in run_id if not (c.isalnum() or c in "._+-=@,")} )
    if bad or run_id.startswith(".") or not run_id.isprintable():
        shown = ", ".join(repr(c) for c in bad) or "a leading '.'"
        raise UserError(f"{option} {run_id!r} may hold letters, digits and . _ + - = @ , only (found {shown})")
    return run_id
