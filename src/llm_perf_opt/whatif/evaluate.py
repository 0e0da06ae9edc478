"""Evaluate what-if scenarios: one :class:`WhatIfRow` per scenario, computed as the report was.

Every scenario is recomputed with the functions :func:`llm_perf_opt.analytic.api.build_report`
itself uses — ``build_stages`` / ``build_root`` for the layer tree, ``stage_timings`` and
``Roofline.time(root)`` for time, ``memory_of`` for memory — so a scenario without overrides
reproduces the report's stage times, total, job time and memory bit for bit. Only the per-module
metrics (not needed here) are skipped.

Speed (no torch or numpy; on one busy 2-core CPU: ~0.5 ms per scenario that only changes the token
budget — its decode sweep shares every context-independent layer — and ~5 ms per new batch size or
page, which rebuilds vision and prefill; ``benchmarks/bench_what_if.py`` times whole grids):

* one layer tree per (model, workload shape, precision), built once and reused by every device
  and roofline setting; scenarios are evaluated grouped by tree (the analytic package's per-shape
  caches are bounded) and the rows returned in grid order;
* one :class:`Roofline` per (hardware, roofline parameters, compute dtype): its per-layer timings
  are shared by every scenario on that device (a vision tree is timed once for a whole sweep of
  token budgets);
* memory from a walk of resident state only (``memory_of``: no FLOP or byte sums), and the largest
  batch in closed form (:meth:`Evaluator.max_batch`).

Row semantics (B = batch_size pages per ``generate`` call):

* ``latency_ms`` — one call of B pages: vision + projector + prefill + decode. Every page of the
  batch finishes when the call does, so this is the latency each page sees;
* ``ms_per_page`` = latency_ms / B — device time per page, amortised over the batch;
* ``pages_per_s`` = B / latency, ``tokens_per_s`` = B · max_new_tokens / latency (generated tokens);
* ``job_ms`` — ⌈num_pages / B⌉ calls, a last partial batch costed as a full one (as the report);
* memory — resident weights + KV cache at the final context + the largest single-operator
  working set, against the device memory; ``max_batch`` is the largest B that fits (0 if none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from attrs import fields, frozen

from llm_perf_opt.analytic.api import memory_of, stage_timings
from llm_perf_opt.analytic.base import BaseLayer, Precision
from llm_perf_opt.analytic.deepseek_ocr import build_root
from llm_perf_opt.analytic.implementations import build_implementation_stages
from llm_perf_opt.analytic.report_tree import MS
from llm_perf_opt.analytic.roofline import Roofline, RooflineParams
from llm_perf_opt.data.analytic_report import AnalyticInputs, AnalyticModelReport
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload
from llm_perf_opt.whatif.overrides import apply_parsed, inputs_of
from llm_perf_opt.whatif.scenarios import Scenario, build_grid

MAX_BATCH_LIMIT = 1 << 20
"""Largest batch ``max_batch`` reports; a model whose memory does not grow with B stops here."""
AFFINE_CHECK_BATCH = 1024
"""Batch at which the closed-form batch limit is confirmed (doubled while the limit exceeds it)."""
_REL_TOL = 1e-9
MAX_CACHED_SHAPES = 4096
"""Layer trees kept at once; past this the caches start afresh (only speed changes, never results)."""


@frozen(kw_only=True)
class StageResult:
    """Predicted time of one stage for one call of B pages, and what bounds it."""

    predicted_ms: float
    bound: str
    """compute, memory, launch (kernel-launch overhead dominates) or none (stage does nothing)."""


@frozen(kw_only=True)
class WhatIfRow:
    """One scenario's results (see the module docstring for the meaning of each figure)."""

    index: int
    """Position of the scenario in the grid (0-based; rows come back in this order)."""
    scenario: dict[str, Any]
    """The overridden keys (fixed and swept) with their values as shown (hardware id, ``WxH``)."""
    hardware: str
    """Hardware table id of the device (``h100-sxm``, ``rtx5090``, …)."""
    weight_dtype: str
    """Storage dtype of the weights (``bf16``, ``fp8``, …)."""
    activation_dtype: str
    """Storage dtype of activations."""
    kv_dtype: str
    """Storage dtype of the KV cache."""
    compute_dtype: str
    """Dtype the matmuls run in; picks the dense peak the roofline uses."""
    mode: str
    """Resolution mode (tiny, small, base, large, gundam)."""
    page_size: str | None
    """Page size as ``WxH`` pixels (None when the workload names none)."""
    batch_size: int
    """B: pages per ``generate`` call."""
    max_new_tokens: int
    """N: tokens generated per page (the first by prefill, N − 1 decode steps)."""
    num_pages: int
    """Pages in the job (``job_ms`` covers them all)."""
    image_tokens: int
    """Image-token slots per page."""
    prefill_tokens: int
    """Sequence length of the prefill per page: prompt + image slots."""
    stages: dict[str, StageResult]
    """vision / projector / prefill / decode → predicted ms for one call of B pages and its bound."""
    latency_ms: float
    """One call of B pages (every stage); each page of the batch waits this long."""
    ms_per_page: float
    """latency_ms / B: device time per page, amortised over the batch."""
    pages_per_s: float
    """B / latency: pages finished per second at this batch."""
    tokens_per_s: float
    """B · N / latency: generated tokens per second."""
    job_ms: float
    """⌈num_pages / B⌉ calls of latency_ms each (a last partial batch costed as a full one)."""
    weights_gb: float
    """Resident weights, GB (10⁹ bytes)."""
    kv_cache_gb: float
    """KV cache of B pages at the final context, GB (10⁹ bytes)."""
    activations_gb: float
    """Largest single-operator working set, GB (10⁹ bytes)."""
    memory_gb: float
    """weights + KV cache + activations, GB (10⁹ bytes)."""
    device_memory_gb: float
    """Memory of the device from the hardware table, GB (10⁹ bytes)."""
    fits: bool
    """memory_gb ≤ device_memory_gb."""
    max_batch: int
    """Largest B whose memory fits the device (0 when B = 1 does not; capped at ``MAX_BATCH_LIMIT``)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; ``stages`` nested as {stage: {predicted_ms, bound}}."""
        data = {name: getattr(self, name) for name in _ROW_FIELDS}
        data["scenario"] = dict(self.scenario)
        data["stages"] = {k: {"predicted_ms": s.predicted_ms, "bound": s.bound} for k, s in self.stages.items()}
        return data

    def to_flat(self) -> dict[str, Any]:
        """One flat record (CSV): scenario keys first, then ``<stage>_ms`` / ``<stage>_bound`` columns."""
        data = self.to_dict()
        out: dict[str, Any] = dict(data.pop("scenario"))
        stages = data.pop("stages")
        for key, value in data.items():
            out.setdefault(key, value)
        for name, res in stages.items():
            out[f"{name}_ms"] = res["predicted_ms"]
        for name, res in stages.items():
            out[f"{name}_bound"] = res["bound"]
        return out


_ROW_FIELDS = tuple(f.name for f in fields(WhatIfRow))


def _params_key(params: RooflineParams) -> tuple[Any, ...]:
    """Every field of ``params`` (dicts as sorted items), so a field added later can never be left out."""
    return tuple(
        tuple(sorted(value.items())) if isinstance(value, dict) else value
        for value in (getattr(params, f.name) for f in fields(RooflineParams))
    )


_Shape = tuple[ModelSpec, Workload, Precision, str, str, float]
"""What a layer tree depends on: the model, the workload (labels and page count normalised away), the dtypes,
the decode execution (graph steps read a KV bucket), the implementation and the MoE routing skew."""


class _ShapeData:
    """Per shape: the layer tree's root, the memory totals (GB) and the token counts."""

    __slots__ = ("image_tokens", "memory", "prefill_tokens", "root")

    def __init__(self, root: BaseLayer, image_tokens: int, prompt_tokens: int) -> None:
        self.root = root
        self.memory = memory_of(root)
        self.image_tokens = image_tokens
        self.prefill_tokens = prompt_tokens + image_tokens


class Evaluator:
    """Computes rows; keeps layer trees, rooflines, memory totals and batch limits across scenarios."""

    def __init__(self) -> None:
        self._shapes: dict[_Shape, _ShapeData] = {}
        self._rooflines: dict[tuple[Any, ...], Roofline] = {}
        self._max_batch: dict[tuple[_Shape, float], int] = {}
        self._slots: dict[tuple[Any, ...], int] = {}
        self._variants: dict[tuple[Workload, int | None], Workload] = {}

    # -- building blocks -------------------------------------------------------------------
    def _variant(self, work: Workload, batch: int | None = None) -> Workload:
        """``work`` without labels and page count (they do not change the tree), at ``batch`` if given."""
        memo = (work, batch)
        hit = self._variants.get(memo)
        if hit is None:
            changes: dict[str, Any] = {"profile_id": "", "description": "", "num_pages": 1, "doc_kind": "synthetic"}
            if batch is not None:
                changes["batch_size"] = batch
            hit = self._variants[memo] = work.replace(**changes)
        return hit

    def shape_key(self, inputs: AnalyticInputs) -> _Shape:
        """Scenarios with equal keys share one layer tree (they differ in hardware or roofline only)."""
        r = inputs.roofline
        return (
            inputs.model_spec, self._variant(inputs.workload_spec), inputs.precision, r.execution, r.implementation,
            r.expert_load_ratio,
        )  # fmt: skip

    def data(self, key: _Shape) -> _ShapeData:
        hit = self._shapes.get(key)
        if hit is None:
            if len(self._shapes) >= MAX_CACHED_SHAPES:  # bound memory on huge grids (scenarios come grouped)
                self._shapes.clear()
                self._rooflines.clear()
            spec, work, prec, execution, implementation, load_ratio = key
            stages = build_implementation_stages(spec, work, prec, execution, implementation, load_ratio)
            root = build_root(stages, prec)
            slots_key = (work.mode, work.page_size, work.max_crops)
            slots = self._slots.get(slots_key)
            if slots is None:
                slots = self._slots[slots_key] = work.image_tokens
            hit = self._shapes[key] = _ShapeData(root, slots, work.prompt_tokens)
        return hit

    def roofline(self, hardware: HardwareSpec, params: RooflineParams, compute_dtype: str) -> Roofline:
        """One Roofline per device and parameters: its per-layer timings are shared by every scenario."""
        key = (hardware, _params_key(params), compute_dtype)
        roof = self._rooflines.get(key)
        if roof is None:
            roof = self._rooflines[key] = Roofline(hardware, params, compute_dtype)
        return roof

    def total_memory(self, key: _Shape, batch: int) -> float:
        spec, work, prec, execution, implementation, load_ratio = key
        if work.batch_size != batch:
            key = (spec, self._variant(work, batch), prec, execution, implementation, load_ratio)
        weights, kv, act = self.data(key).memory
        return weights + kv + act

    def max_batch(self, key: _Shape, memory_gb: float) -> int:
        """Largest B whose memory fits ``memory_gb`` (0 when B = 1 does not), in closed form.

        Every memory term is affine in B — weights constant, KV cache B × per page, activations the
        largest of per-operator working sets each ∝ B (plus constants) — so memory m(B) is convex
        and non-decreasing. If m(1), m(2) and m(H) lie on one line, convexity makes m that line on
        [1, H] (and at least it beyond), so the largest B under the line is exact when it is below
        H. H is a power of two ≥ 1024 shared by every device, so a sweep over GPUs costs one extra
        layer tree per workload. Anything else (not collinear, or a tie within rounding at the
        boundary) falls back to bisection on exact evaluations: O(log B), never a loop over B.
        """
        memo = (key[0], self._variant(key[1], 1), key[2], key[3], key[4], key[5]), memory_gb
        hit = self._max_batch.get(memo)
        if hit is None:
            hit = self._max_batch[memo] = self._solve_max_batch(key, memory_gb)
        return hit

    def _solve_max_batch(self, key: _Shape, memory_gb: float) -> int:
        def fits(b: int) -> bool:
            return self.total_memory(key, b) <= memory_gb

        m1 = self.total_memory(key, 1)
        if m1 > memory_gb:
            return 0
        slope = self.total_memory(key, 2) - m1
        if slope <= 0:
            return _bisect(fits, MAX_BATCH_LIMIT)
        guess = min(MAX_BATCH_LIMIT, 1 + math.floor((memory_gb - m1) / slope))
        horizon = AFFINE_CHECK_BATCH
        while horizon <= guess and horizon < MAX_BATCH_LIMIT:
            horizon *= 2
        line = m1 + (horizon - 1) * slope
        affine = abs(self.total_memory(key, horizon) - line) <= _REL_TOL * line
        near_tie = any(abs(m1 + (b - 1) * slope - memory_gb) <= _REL_TOL * memory_gb for b in (guess, guess + 1))
        if affine and guess < horizon and not near_tie:
            return guess
        return _bisect(fits, guess)

    # -- one row ---------------------------------------------------------------------------
    def row(self, inputs: AnalyticInputs, scenario: Scenario | None = None) -> WhatIfRow:
        """The results of ``inputs`` (already overridden); ``scenario`` labels the row."""
        key = self.shape_key(inputs)
        data = self.data(key)
        work, hw, prec = inputs.workload_spec, inputs.hardware, inputs.precision
        roof = self.roofline(hw, inputs.roofline, prec.compute_dtype)
        timings = stage_timings(data.root, roof)
        results = {name: StageResult(predicted_ms=t.total_s * MS, bound=t.bound) for name, t in timings.items()}
        total_s = roof.time(data.root).total_s
        latency = total_s * MS
        b = work.batch_size
        weights, kv, act = data.memory
        total_mem = weights + kv + act
        per_s = 1e3 / latency if latency > 0 else math.inf
        return WhatIfRow(
            index=scenario.index if scenario else 0,
            scenario=scenario.display() if scenario else {},
            hardware=hw.id,
            weight_dtype=prec.weight_dtype,
            activation_dtype=prec.activation_dtype,
            kv_dtype=prec.kv_dtype,
            compute_dtype=prec.compute_dtype,
            mode=work.mode,
            page_size=f"{work.page_size[0]}x{work.page_size[1]}" if work.page_size else None,
            batch_size=b,
            max_new_tokens=work.max_new_tokens,
            num_pages=work.num_pages,
            image_tokens=data.image_tokens,
            prefill_tokens=data.prefill_tokens,
            stages=results,
            latency_ms=latency,
            ms_per_page=latency / b,
            pages_per_s=b * per_s,
            tokens_per_s=b * work.max_new_tokens * per_s,
            job_ms=total_s * MS * math.ceil(work.num_pages / b),
            weights_gb=weights,
            kv_cache_gb=kv,
            activations_gb=act,
            memory_gb=total_mem,
            device_memory_gb=float(hw.memory_gb),
            fits=total_mem <= hw.memory_gb,
            max_batch=self.max_batch(key, float(hw.memory_gb)),
        )


def _bisect(fits: Callable[[int], bool], guess: int) -> int:
    """Largest b in [1, MAX_BATCH_LIMIT] with fits(b), given fits(1); doubling then halving."""
    lo, hi = 1, guess
    if fits(hi):
        lo = hi
        hi = min(2 * hi, MAX_BATCH_LIMIT)
        while hi < MAX_BATCH_LIMIT and fits(hi):
            lo, hi = hi, min(2 * hi, MAX_BATCH_LIMIT)
        if fits(hi):
            return hi
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def evaluate(
    report: AnalyticModelReport | AnalyticInputs | str | Path,
    overrides: Mapping[str, Any] | None = None,
    sweeps: Mapping[str, Any] | None = None,
    *,
    evaluator: Evaluator | None = None,
) -> list[WhatIfRow]:
    """One row per scenario: ``overrides`` ({key: value}) in every scenario, times the grid of
    ``sweeps`` ({key: [values]} or {key: "V1,V2"}). Values may be text (as on the command line)
    or typed (``(1024, 1024)`` for a page). A report path is loaded first. With neither, one row
    that reproduces the report exactly. Bad keys/values raise :class:`UserError` before any work.
    """
    if isinstance(report, str | Path):
        from llm_perf_opt.analytic.report_io import load_report

        report = load_report(report)
    base = inputs_of(report)
    grid = build_grid(overrides, sweeps)
    ev = evaluator or Evaluator()
    prepared = []
    for scenario in grid:
        try:
            prepared.append(apply_parsed(base, scenario.values))
        except UserError as exc:
            raise UserError(f"scenario {scenario.label()}: {exc.message}") from None
    # Evaluate scenarios that share a layer tree one after another (the analytic package's
    # per-shape caches are bounded, so a grid walked device by device would rebuild every tree
    # once per device), then return the rows in grid order.
    groups: dict[Any, int] = {}
    keys = [groups.setdefault(ev.shape_key(inp), len(groups)) for inp in prepared]
    rows: list[WhatIfRow | None] = [None] * len(grid)
    for i in sorted(range(len(grid)), key=keys.__getitem__):
        try:
            rows[i] = ev.row(prepared[i], grid[i])
        except UserError as exc:
            raise UserError(f"scenario {grid[i].label()}: {exc.message}") from None
    return [r for r in rows if r is not None]
