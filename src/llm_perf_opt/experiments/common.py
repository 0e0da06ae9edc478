"""What the experiments share: decode options of ``generate``, repeat statistics, progress, JSON output.

The CUDA-graph decode (issue 9) adds ``decode_mode`` and ``on_token`` to
:func:`llm_perf_opt.models.deepseek_ocr.generate.generate` and ``decode_mode`` to
:class:`~llm_perf_opt.profiling.state.ProfileConfig`. The experiments pass those arguments only
where they exist (checked on the real signature), so they run on the code of today and pick the
graph mode up as soon as it lands; a mode that cannot run is reported, never silently replaced.
"""

from __future__ import annotations

import inspect
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import define

from llm_perf_opt.errors import UserError
from llm_perf_opt.io import atomic_write_json

Log = Callable[[str], None]
DECODE_MODES: tuple[str, ...] = ("graph", "eager")
"""Execution modes of the decode step; the names ``generate(decode_mode=…)`` accepts."""


def quiet(_: str) -> None:
    """A ``log`` that drops every message (the library default)."""


def clock_log(log: Log) -> Log:
    """``log`` with the seconds since this call in front of every message (for long GPU runs)."""
    t0 = time.perf_counter()
    return lambda msg: log(f"[{time.perf_counter() - t0:7.1f}s] {msg}")


# ---------------------------------------------------------------- decode options of generate


def generate_parameters() -> frozenset[str]:
    """Keyword parameters of the package's ``generate`` as it is installed now."""
    from llm_perf_opt.models.deepseek_ocr import generate

    return frozenset(inspect.signature(generate).parameters)


def graph_unavailable(device_type: str) -> str | None:
    """Why CUDA-graph decode cannot run here, or None when it can."""
    if "decode_mode" not in generate_parameters():
        # TODO(issue 9, lead): drop this branch once generate(decode_mode=…) is on main.
        return "generate() has no decode_mode parameter yet (CUDA-graph decode not on this branch)"
    if device_type != "cuda":
        return "CUDA-graph decode needs a CUDA device"
    return None


def decode_options(mode: str, on_token: Callable[[int, Any], None] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``generate`` selecting ``mode``; ``on_token`` only where supported.

    Without ``decode_mode`` in the signature only ``eager`` exists (today's loop), so asking for it
    passes nothing; asking for ``graph`` there is a UserError.
    """
    if mode not in DECODE_MODES:
        raise UserError(f"decode mode {mode!r}: valid: {', '.join(DECODE_MODES)}")
    params = generate_parameters()
    out: dict[str, Any] = {}
    if "decode_mode" in params:
        out["decode_mode"] = mode
    elif mode != "eager":
        raise UserError("decode mode graph: generate() has no decode_mode parameter yet")
    if on_token is not None and "on_token" in params:
        out["on_token"] = on_token
    return out


def default_decode_mode(device_type: str) -> str:
    """The mode ``generate`` runs when no ``decode_mode`` is passed (graph on CUDA once it exists)."""
    if "decode_mode" not in generate_parameters():
        return "eager"
    from llm_perf_opt.models.deepseek_ocr.generate import resolve_decode_mode

    return str(resolve_decode_mode(None, device_type))


def profile_config(device_type: str, **values: Any) -> Any:
    """A :class:`ProfileConfig` of ``values``; ``decode_mode`` is dropped while the config lacks it.

    Dropping it is only right when the requested mode is the one the runner runs anyway on
    ``device_type`` (:func:`default_decode_mode`); any other is a UserError naming the missing feature.
    """
    from llm_perf_opt.profiling.state import ProfileConfig

    mode = values.get("decode_mode")
    if "decode_mode" not in attrs.fields_dict(ProfileConfig):
        # TODO(issue 9, lead): remove once ProfileConfig.decode_mode exists.
        values.pop("decode_mode", None)
        runs = default_decode_mode(device_type)
        if mode not in (None, runs):
            raise UserError(f"decode mode {mode}: ProfileConfig has no decode_mode field yet (profile runs {runs})")
    return ProfileConfig(**values)


# ---------------------------------------------------------------- statistics and output


@define(frozen=True)
class Spread:
    """Mean, sample standard deviation and spread (std / mean) of repeated measurements."""

    n: int
    mean: float
    std: float
    """Sample standard deviation (n − 1); 0 for one value."""
    spread_pct: float
    """100 · std / mean."""
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        data = [float(v) for v in values if math.isfinite(v)]
        if not data:
            raise ValueError("no finite values")
        mean = statistics.fmean(data)
        std = statistics.stdev(data) if len(data) > 1 else 0.0
        return cls(len(data), mean, std, 100.0 * std / mean if mean else 0.0, min(data), max(data))

    def to_dict(self) -> dict[str, float | int]:
        return attrs.asdict(self)


def agreement_pct(a: float, b: float) -> float:
    """Process-to-process disagreement: 100 · |a − b| / mean(a, b)."""
    return 100.0 * abs(a - b) / ((a + b) / 2.0) if a + b else 0.0


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Strict JSON written atomically (a killed run leaves the previous complete file)."""
    return atomic_write_json(path, data)


def describe_error(exc: BaseException) -> str:
    """``Type: first line`` of an exception (for a JSON field or one log line)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
