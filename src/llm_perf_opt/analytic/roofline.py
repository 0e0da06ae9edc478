"""Roofline time of a layer tree on one accelerator, with explicit, fittable efficiency factors.

Per leaf (one call):

    compute = executed_flops / (peak(compute_dtype) · eff[category])
    memory  = (bytes_read + bytes_written) / (bandwidth · eff_bw)
    launch  = kernels · launch_overhead
    time    = max(compute, memory) + launch

and the leaf's bound is ``launch`` when launch exceeds max(compute, memory), else ``compute`` or
``memory``. A composite's time is Σ count × child time; its bound is the class (compute / memory
/ launch) whose bound leaves take the most time. Non-matmul FLOPs do not enter the compute term:
elementwise and norm kernels are memory-bound, and their traffic is charged in full.

Decode steps (:class:`~llm_perf_opt.analytic.base.Swept`): compute and memory are affine in the
step index, so Σ_j max(c_j, m_j) splits at the crossover into two arithmetic series — closed form.
"""

from __future__ import annotations

import math
from typing import Any

from attrs import define, field

from llm_perf_opt.analytic.base import BaseLayer, Cost, Swept
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HardwareSpec

CATEGORY_IDS = (
    "vision_conv",
    "vision_attention",
    "vision_mlp",
    "norm",
    "embedding",
    "projector",
    "decoder_attention",
    "dense_mlp",
    "moe_router",
    "moe_experts",
    "lm_head",
    "elementwise",
)

DEFAULT_COMPUTE_EFFICIENCY: dict[str, float] = {
    "vision_conv": 0.7,  # cuDNN convs with few channels (patch embed) or small maps (net_2/net_3)
    "vision_attention": 0.5,  # memory-efficient SDPA reading a materialised bias (no flash kernel)
    "vision_mlp": 0.8,  # large GEMMs
    "norm": 0.8,
    "embedding": 0.8,
    "projector": 0.8,
    "decoder_attention": 0.7,  # projections + flash attention
    "dense_mlp": 0.8,
    "moe_router": 0.5,  # skinny fp32 GEMM (N = 64)
    "moe_experts": 0.6,  # many small per-expert GEMMs
    "lm_head": 0.8,
    "elementwise": 0.8,
}
"""Fraction of the dense datasheet peak each operator category reaches when compute-bound."""


def _efficiencies(value: Any) -> dict[str, float]:
    merged = dict(DEFAULT_COMPUTE_EFFICIENCY)
    merged.update({k: float(v) for k, v in dict(value).items()})
    return merged


def _check_efficiencies(_inst: object, _attr: Any, value: dict[str, float]) -> None:
    for key, eff in value.items():
        if key not in CATEGORY_IDS:
            valid = ", ".join(CATEGORY_IDS)
            raise UserError(f"unknown operator category {key!r} in compute_efficiency; valid: {valid}")
        if not 0.0 < eff <= 2.0:
            raise UserError(f"compute_efficiency[{key!r}] must be in (0, 2], got {eff!r}")


def _check_fraction(_inst: object, attr: Any, value: float) -> None:
    if not 0.0 < value <= 2.0:
        raise UserError(f"{attr.name} must be in (0, 2], got {value!r}")


def _check_non_negative(_inst: object, attr: Any, value: float) -> None:
    if not value >= 0.0:
        raise UserError(f"{attr.name} must be >= 0, got {value!r}")


@define(kw_only=True)
class RooflineParams:
    """Efficiency factors of the roofline; a calibration step fits them to measurements."""

    compute_efficiency: dict[str, float] = field(
        factory=lambda: dict(DEFAULT_COMPUTE_EFFICIENCY), converter=_efficiencies, validator=_check_efficiencies
    )
    """Per operator category: fraction of the compute peak reached (defaults: 0.8 GEMM-heavy, 0.5 SAM attention)."""
    bandwidth_efficiency: float = field(default=0.9, converter=float, validator=_check_fraction)
    """Fraction of the DRAM bandwidth reached by memory-bound kernels (measured copy ≈ 0.9 on H100)."""
    launch_overhead_us: float = field(default=5.0, converter=float, validator=_check_non_negative)
    """Fixed cost per kernel launch (µs), added to each kernel's roofline time (eager PyTorch ≈ 5 µs)."""
    use_achievable_peaks: bool = False
    """Use the hardware's measured ceilings (achievable_*) instead of datasheet peaks when present."""

    def efficiency(self, category: str) -> float:
        return self.compute_efficiency.get(category, 0.8)


class Timing:
    """Seconds of one call: raw compute, memory and launch terms, roofline total, and time by bound."""

    __slots__ = ("by_bound", "compute_s", "launch_s", "memory_s", "total_s")

    def __init__(self) -> None:
        self.compute_s = 0.0
        self.memory_s = 0.0
        self.launch_s = 0.0
        self.total_s = 0.0
        self.by_bound = {"compute": 0.0, "memory": 0.0, "launch": 0.0}

    @property
    def bound(self) -> str:
        if self.total_s <= 0:
            return "none"
        return max(self.by_bound.items(), key=lambda kv: kv[1])[0]

    def add(self, other: Timing, n: float) -> None:
        self.compute_s += n * other.compute_s
        self.memory_s += n * other.memory_s
        self.launch_s += n * other.launch_s
        self.total_s += n * other.total_s
        for key in self.by_bound:
            self.by_bound[key] += n * other.by_bound[key]


def peak_rates(hardware: HardwareSpec, params: RooflineParams, compute_dtype: str) -> tuple[float, float]:
    """(FLOP/s, byte/s) before efficiencies; achievable ceilings scale every dtype's peak alike."""
    flops = hardware.peak_tflops(compute_dtype) * 1e12
    bw = hardware.bandwidth_tbs * 1e12
    if params.use_achievable_peaks:
        if hardware.achievable_tflops:
            flops *= hardware.achievable_tflops / hardware.bf16_tflops
        if hardware.achievable_bandwidth_tbs:
            bw = hardware.achievable_bandwidth_tbs * 1e12
    return flops, bw


def _sum_max_affine(c0: float, c1: float, m0: float, m1: float, n: int) -> tuple[float, float]:
    """Σ_{j<n} max(c_j, m_j) split as (sum where compute wins, sum where memory wins).

    c_j and m_j are affine in j with c_0 = c0, c_{n−1} = c1 (same for m). The set where
    c_j ≥ m_j is an interval of j (a half-line cut at the crossover), so both parts are
    arithmetic series.
    """
    if n == 1:
        return (c0, 0.0) if c0 >= m0 else (0.0, m0)
    dc, dm = (c1 - c0) / (n - 1), (m1 - m0) / (n - 1)
    d0, dd = c0 - m0, dc - dm

    def series(x0: float, dx: float, lo: int, hi: int) -> float:  # Σ_{j=lo}^{hi} x0 + dx·j
        if hi < lo:
            return 0.0
        cnt = hi - lo + 1
        return cnt * x0 + dx * (lo + hi) * cnt / 2

    if dd == 0:
        lo, hi = (0, n - 1) if d0 >= 0 else (0, -1)
    elif dd > 0:  # compute wins for j ≥ −d0/dd
        lo, hi = max(0, math.ceil(-d0 / dd - 1e-12)), n - 1
    else:  # compute wins for j ≤ −d0/dd
        lo, hi = 0, min(n - 1, math.floor(-d0 / dd + 1e-12))
    lo, hi = min(lo, n), max(hi, -1)
    compute = series(c0, dc, lo, hi)
    memory = series(m0, dm, 0, lo - 1) + series(m0, dm, hi + 1, n - 1) if hi >= lo else series(m0, dm, 0, n - 1)
    return compute, memory


class Roofline:
    """Evaluates layer times on one accelerator; memoised per layer within one evaluation."""

    def __init__(self, hardware: HardwareSpec, params: RooflineParams, compute_dtype: str) -> None:
        self.hardware = hardware
        self.params = params
        self.flops_per_s, self.bytes_per_s = peak_rates(hardware, params, compute_dtype)
        self.bytes_per_s *= params.bandwidth_efficiency
        self.launch_s = params.launch_overhead_us * 1e-6
        self._memo: dict[BaseLayer, Timing] = {}

    def _terms(self, layer: BaseLayer, cost: Cost) -> tuple[float, float, float]:
        compute = cost.executed_flops / (self.flops_per_s * self.params.efficiency(layer.category))
        return compute, cost.bytes_moved / self.bytes_per_s, cost.kernels * self.launch_s

    def _leaf(self, layer: BaseLayer) -> Timing:
        t = Timing()
        if isinstance(layer, Swept) and layer.steps > 1:
            c0, m0, k0 = self._terms(layer.first, layer.first.cost())
            c1, m1, k1 = self._terms(layer.last, layer.last.cost())
            n = layer.steps
            comp_sum, mem_sum = _sum_max_affine(c0, c1, m0, m1, n)
            t.compute_s, t.memory_s, t.launch_s = (c0 + c1) / 2, (m0 + m1) / 2, (k0 + k1) / 2
            body = (comp_sum + mem_sum) / n
            t.total_s = body + t.launch_s
            if t.launch_s > body:
                t.by_bound["launch"] = t.total_s
            else:
                t.by_bound["compute"] = comp_sum / n + t.launch_s * (comp_sum / (body * n) if body else 0.0)
                t.by_bound["memory"] = t.total_s - t.by_bound["compute"]
            return t
        c, m, k = self._terms(layer, layer.cost())
        t.compute_s, t.memory_s, t.launch_s = c, m, k
        t.total_s = max(c, m) + k
        bound = "launch" if k > max(c, m) else ("compute" if c >= m else "memory")
        t.by_bound[bound] = t.total_s
        return t

    def time(self, layer: BaseLayer) -> Timing:
        """Per-call timing of ``layer`` (seconds)."""
        hit = self._memo.get(layer)
        if hit is not None:
            return hit
        kids = layer.children()
        if not kids:
            t = self._leaf(layer)
        else:
            t = Timing()
            for child in kids:
                t.add(self.time(child.layer), child.count)
        self._memo[layer] = t
        return t
