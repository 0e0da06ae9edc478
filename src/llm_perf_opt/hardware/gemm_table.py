"""Measured dense-matmul, convolution and grouped expert GEMM times of one GPU
(``gemm_tables/<hardware>-<dtype>.json``), interpolated in the row count, the batch or the token-expert pairs.

Small matmuls do not follow a roofline: which tiles, split-K and waves the library picks for them
sets their time. A table measured once per GPU by ``benchmarks/bench_gemm_table.py`` gives µs per
``F.linear`` call for each (N out, K in, bias) of the model over a grid of row counts M; between two
grid points the time is linear in M, beyond the last one it grows in proportion to M. A shape the
table lacks, or a GPU without a table, gets None and the caller keeps its roofline.

The convolutions (SAM's patch embedding, neck and compressor; ``benchmarks/bench_conv_table.py``) are
listed per (C_in, C_out, k, stride, padding, input side, bias) over a grid of batch sizes: cuDNN's
kernel choice, the weight's layout conversion and the input's layout set their time, which runs at
28–72 TFLOP/s in the H200 operator tables where a matmul of the same FLOPs reaches 600. The MoE's grouped
expert GEMMs (``benchmarks/bench_grouped_table.py``) are listed per (experts, hidden, expert width) and routing
skew, µs per layer over token-expert pairs; a skew between two measured ones is interpolated linearly.

Pure Python (json): the analytic model uses it without torch.
"""

from __future__ import annotations

import bisect
import json
from functools import cache
from importlib import resources
from typing import Any

from attrs import field, frozen

from llm_perf_opt.errors import UserError

SCHEMA = "llm-perf-opt.gemm-table/1"


@frozen
class GemmShape:
    """One matmul shape's measured times: ``us[i]`` per call at ``rows[i]`` rows."""

    n: int
    """Output features."""
    k: int
    """Input features (the reduction)."""
    bias: bool
    """Whether the call adds a bias (addmm) or not (mm)."""
    rows: tuple[int, ...]
    """Row counts M measured, ascending."""
    us: tuple[float, ...]
    """µs per call at each row count."""

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "k": self.k, "bias": self.bias, "rows": list(self.rows), "us": list(self.us)}

    def time_us(self, m: float) -> float | None:
        """Interpolated µs at ``m`` rows; None below the first measured row count."""
        return _interpolate(self.rows, self.us, m)


ConvKey = tuple[int, int, int, int, int, int, bool]
"""(in channels, out channels, kernel, stride, padding, input side, bias) of a square 2-D convolution."""


@frozen
class ConvShape:
    """One convolution's measured times: ``us[i]`` per call at batch ``rows[i]``."""

    key: ConvKey
    """(C_in, C_out, kernel, stride, padding, input side, bias)."""
    channels_last: bool
    """Whether the input was a channels-last map (SAM's [B, H, W, C] tokens permuted), as the model feeds it."""
    rows: tuple[int, ...]
    """Batch sizes measured, ascending."""
    us: tuple[float, ...]
    """µs per call at each batch size."""

    def to_json(self) -> dict[str, Any]:
        ci, co, k, s, p, side, bias = self.key
        return {"in_channels": ci, "out_channels": co, "kernel": k, "stride": s, "padding": p, "in_side": side,
                "bias": bias, "channels_last": self.channels_last,
                "rows": list(self.rows), "us": list(self.us)}  # fmt: skip


GroupedKey = tuple[int, int, int]
"""(experts, hidden, expert width) of one MoE layer's grouped expert GEMMs."""


@frozen
class GroupedShape:
    """One MoE layer's grouped expert GEMMs (gate-up, SwiGLU, down) at one routing skew: ``us[i]`` per layer
    at ``rows[i]`` token-expert pairs."""

    experts: int
    hidden: int
    inter: int
    """Width of one routed expert."""
    load_ratio: float
    """Routing skew: the j-th most loaded expert gets r^j of the top one's pairs (1 = uniform)."""
    rows: tuple[int, ...]
    """Token-expert pairs measured, ascending."""
    us: tuple[float, ...]
    """µs per layer at each pair count."""

    def to_json(self) -> dict[str, Any]:
        return {"experts": self.experts, "hidden": self.hidden, "inter": self.inter, "load_ratio": self.load_ratio,
                "rows": list(self.rows), "us": list(self.us)}  # fmt: skip


def _interpolate(rows: tuple[int, ...], us: tuple[float, ...], m: float) -> float | None:
    """µs at ``m``: linear between grid points, proportional beyond the last; None below the first."""
    if m < rows[0]:
        return None
    if m >= rows[-1]:
        return us[-1] * m / rows[-1]
    i = bisect.bisect_right(rows, m) - 1
    if rows[i] == m:
        return us[i]
    frac = (m - rows[i]) / (rows[i + 1] - rows[i])
    return us[i] + frac * (us[i + 1] - us[i])


@frozen
class GemmTable:
    """Every measured shape of one GPU and dtype, with where the numbers come from."""

    hardware: str
    dtype: str
    shapes: dict[tuple[int, int, bool], GemmShape]
    source: str
    """Device, torch and CUDA versions and the command that measured the table."""
    convs: dict[ConvKey, ConvShape] = field(factory=dict)
    """Measured convolutions (empty for a table measured before they were added)."""
    grouped: dict[GroupedKey, tuple[GroupedShape, ...]] = field(factory=dict)
    """Measured grouped expert GEMMs per MoE shape, by ascending routing skew (empty if not measured)."""

    def time_s(self, m: float, n: int, k: int, bias: bool) -> float | None:
        """Seconds per call of an [m, k] × [k, n] matmul, or None when the table lacks the shape."""
        shape = self.shapes.get((n, k, bias))
        if shape is None:
            return None
        us = shape.time_us(m)
        return None if us is None else us * 1e-6

    def conv_time_s(self, batch: int, key: ConvKey) -> float | None:
        """Seconds per call of the convolution ``key`` over ``batch`` inputs, or None when the table lacks it."""
        shape = self.convs.get(key)
        us = None if shape is None else _interpolate(shape.rows, shape.us, batch)
        return None if us is None else us * 1e-6

    def grouped_time_s(self, pairs: float, key: GroupedKey, load_ratio: float) -> float | None:
        """Seconds per MoE layer of the grouped expert GEMMs at ``pairs`` token-expert pairs and skew
        ``load_ratio`` (linear between the two measured skews around it), or None outside the table."""
        skews = self.grouped.get(key, ())
        if not skews or not skews[0].load_ratio <= load_ratio <= skews[-1].load_ratio:
            return None
        i = max(0, bisect.bisect_left([g.load_ratio for g in skews], load_ratio) - 1)
        lo, hi = skews[i], skews[min(i + 1, len(skews) - 1)]
        t_lo, t_hi = _interpolate(lo.rows, lo.us, pairs), _interpolate(hi.rows, hi.us, pairs)
        if t_lo is None or t_hi is None:
            return None
        frac = 0.0 if hi.load_ratio == lo.load_ratio else (load_ratio - lo.load_ratio) / (hi.load_ratio - lo.load_ratio)
        return (t_lo + frac * (t_hi - t_lo)) * 1e-6


def _rows_and_times(item: dict[str, Any], what: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    rows, us = tuple(int(r) for r in item["rows"]), tuple(float(u) for u in item["us"])
    if not rows or len(rows) != len(us) or list(rows) != sorted(set(rows)) or min(us) <= 0:
        raise ValueError(f"{what}: rows must ascend, one positive time each")
    return rows, us


def _conv(item: dict[str, Any]) -> ConvShape:
    key: ConvKey = (int(item["in_channels"]), int(item["out_channels"]), int(item["kernel"]), int(item["stride"]),
                    int(item["padding"]), int(item["in_side"]), bool(item["bias"]))  # fmt: skip
    rows, us = _rows_and_times(item, f"convolution {key}")
    return ConvShape(key=key, channels_last=bool(item["channels_last"]), rows=rows, us=us)


def _grouped(item: dict[str, Any]) -> GroupedShape:
    rows, us = _rows_and_times(item, f"grouped GEMMs at skew {item.get('load_ratio')}")
    return GroupedShape(experts=int(item["experts"]), hidden=int(item["hidden"]), inter=int(item["inter"]),
                        load_ratio=float(item["load_ratio"]), rows=rows, us=us)  # fmt: skip


def parse_table(data: Any, where: str) -> GemmTable:
    """A :class:`GemmTable` from the JSON document ``data`` (``where`` names it in errors)."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"{where}: not a GEMM table (schema {SCHEMA!r} expected)")
    shapes: dict[tuple[int, int, bool], GemmShape] = {}
    try:
        for item in data["shapes"]:
            rows, us = _rows_and_times(item, f"shape {item.get('n')}x{item.get('k')}")
            shape = GemmShape(n=int(item["n"]), k=int(item["k"]), bias=bool(item["bias"]), rows=rows, us=us)
            shapes[(shape.n, shape.k, shape.bias)] = shape
        convs = {conv.key: conv for conv in map(_conv, data.get("convs", []))}
        grouped: dict[GroupedKey, list[GroupedShape]] = {}
        for g in map(_grouped, data.get("grouped", [])):
            grouped.setdefault((g.experts, g.hidden, g.inter), []).append(g)
        source = f"{data['device_name']}, torch {data['torch']}, CUDA {data['cuda']}: {data['command']}"
        if convs:
            source += f"; convolutions: {data['conv_command']}"
        if grouped:
            source += f"; grouped expert GEMMs: {data['grouped_command']}"
        by_skew = {key: tuple(sorted(gs, key=lambda g: g.load_ratio)) for key, gs in grouped.items()}
        return GemmTable(hardware=str(data["hardware"]), dtype=str(data["dtype"]), shapes=shapes, source=source,
                         convs=convs, grouped=by_skew)  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: malformed GEMM table ({exc})") from None


@cache
def gemm_table(hardware_id: str, dtype: str) -> GemmTable | None:
    """The packaged table of ``hardware_id`` for compute ``dtype``, or None when none was measured."""
    name = f"{hardware_id}-{dtype}.json"
    path = resources.files("llm_perf_opt.hardware").joinpath("gemm_tables", name)
    if not path.is_file():
        return None
    return parse_table(json.loads(path.read_text()), f"gemm_tables/{name}")
