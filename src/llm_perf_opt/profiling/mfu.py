"""Model FLOPs utilisation and bandwidth utilisation from the analytic model of the exact input.

MFU = analytic FLOPs of the measured input ÷ (measured time × dense peak FLOP/s of the GPU for the
dtype). The peak comes from the hardware table by the exact CUDA device name, or from an explicit
override; on CPU or an unknown GPU there is no peak and MFU is reported as not available (no peak
is invented). Bandwidth utilisation = analytic DRAM bytes ÷ time ÷ peak bandwidth. A value above 1
means the analytic estimate (or the peak) is wrong and is flagged.

Stage mapping (measured ↔ analytic): :mod:`llm_perf_opt.data.stages` (the one definition).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import define, field

from llm_perf_opt.data.stages import MEASURED_TO_ANALYTIC, MODEL_STAGES, stage_parts
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload


@define(frozen=True)
class StageCost:
    """Analytic FLOPs and DRAM bytes of one stage for one generation call."""

    flops: float
    bytes: float
    kernels: float = 0.0
    """Kernel launches of the eager model (the analytic count), 0 when unknown."""


@define(kw_only=True)
class Peaks:
    """The peaks MFU is computed against; ``None`` means not available."""

    tflops: float | None
    bandwidth_tbs: float | None
    source: str
    """Where the peaks come from (hardware table row, override, or why none)."""
    hardware_id: str | None = None

    @property
    def available(self) -> bool:
        return self.tflops is not None


def resolve_peaks(
    hardware: HardwareSpec | None,
    dtype: str,
    *,
    device_type: str,
    device_name: str,
    peak_tflops: float | None = None,
    peak_bandwidth_tbs: float | None = None,
) -> Peaks:
    """Peaks for MFU: explicit overrides win, then the hardware-table row; never a guess."""
    tflops = bandwidth = None
    source = []
    hw_id = None
    if hardware is not None:
        tflops = hardware.peak_tflops(dtype)
        bandwidth = hardware.bandwidth_tbs
        hw_id = hardware.id
        source.append(f"hardware table row {hardware.id} ({hardware.name}; {hardware.source})")
    if peak_tflops is not None:
        tflops = peak_tflops
        source.append(f"--peak-tflops {peak_tflops:g}")
    if peak_bandwidth_tbs is not None:
        bandwidth = peak_bandwidth_tbs
        source.append(f"--peak-bandwidth-tbs {peak_bandwidth_tbs:g}")
    if tflops is None:
        if device_type != "cuda":
            why = "MFU is not available on CPU (no dense peak is defined; pass --peak-tflops to set one)"
        else:
            why = (
                f"MFU is not available: GPU {device_name!r} is not in the hardware table "
                "(pass --peak-tflops to set its dense peak)"
            )
        source.append(why)
    return Peaks(tflops=tflops, bandwidth_tbs=bandwidth, source="; ".join(source), hardware_id=hw_id)


def _number(obj: Any, *names: str, scale: float = 1.0) -> float | None:
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return float(value) * scale
    return None


def _cost_from(obj: Any) -> StageCost:
    flops = _number(obj, "flops")
    if flops is None:
        flops = _number(obj, "flops_tflops", "tflops", scale=1e12)
    nbytes = _number(obj, "io_bytes", "bytes", "dram_bytes", "memory_bytes")
    if nbytes is None:
        nbytes = _number(obj, "io_tb", "bytes_tb", scale=1e12)
    if nbytes is None:
        nbytes = _number(obj, "io_gb", "bytes_gb", scale=1e9)
    if flops is None:
        raise TypeError(f"analytic stage totals {type(obj).__name__} carry no flops / flops_tflops")
    return StageCost(flops=flops, bytes=nbytes or 0.0, kernels=_number(obj, "kernels") or 0.0)


def analytic_costs(
    spec: ModelSpec, workload: Workload, *, precision: str, implementation: str = "ours"
) -> dict[str, StageCost]:
    """Analytic FLOPs/bytes per stage (vision, projector, prefill, decode) for one call of ``implementation``."""
    from llm_perf_opt.analytic.api import RooflineParams, stage_totals

    params = RooflineParams(implementation=implementation)
    totals = stage_totals(spec, workload, precision=precision, params=params)
    out = {}
    for stage in MODEL_STAGES:
        if stage in totals:
            out[stage] = _cost_from(totals[stage])
    return out


def measured_costs(costs: Mapping[str, StageCost]) -> dict[str, StageCost]:
    """Costs of every measured stage of :data:`MEASURED_TO_ANALYTIC` (summed analytic stages)."""
    out = {}
    for measured in MEASURED_TO_ANALYTIC:
        parts = stage_parts(measured)  # sam/clip map to layer sub-trees, not to stage costs
        if parts and all(p in costs for p in parts):
            out[measured] = StageCost(
                flops=sum(costs[p].flops for p in parts),
                bytes=sum(costs[p].bytes for p in parts),
                kernels=sum(costs[p].kernels for p in parts),
            )
    return out


@define(kw_only=True)
class Utilisation:
    """MFU and bandwidth utilisation per measured stage (``total`` = model level)."""

    mfu: dict[str, float] = field(factory=dict)
    bandwidth: dict[str, float] = field(factory=dict)
    achieved_tflops: dict[str, float] = field(factory=dict)
    achieved_tbs: dict[str, float] = field(factory=dict)


def utilisation(costs: Mapping[str, StageCost], times_ms: Mapping[str, float], peaks: Peaks) -> Utilisation:
    """Achieved rates for every measured stage with a positive time; ratios when peaks exist."""
    out = Utilisation()
    for stage, cost in costs.items():
        ms = times_ms.get(stage)
        if ms is None or ms <= 0:
            continue
        seconds = ms / 1000.0
        out.achieved_tflops[stage] = cost.flops / seconds / 1e12
        out.achieved_tbs[stage] = cost.bytes / seconds / 1e12
        if peaks.tflops:
            out.mfu[stage] = out.achieved_tflops[stage] / peaks.tflops
        if peaks.bandwidth_tbs:
            out.bandwidth[stage] = out.achieved_tbs[stage] / peaks.bandwidth_tbs
    return out


def estimator_errors(util: Utilisation) -> list[str]:
    """One warning per ratio above 1 (physically impossible: the estimate or the peak is wrong)."""
    msgs = []
    for stage, value in util.mfu.items():
        if value > 1.0:
            msgs.append(f"MFU of {stage} is {value:.2f} > 1: estimator error (analytic FLOPs too high or peak too low)")
    for stage, value in util.bandwidth.items():
        if value > 1.0:
            msgs.append(
                f"bandwidth utilisation of {stage} is {value:.2f} > 1: estimator error "
                "(analytic bytes too high, caches served the traffic, or peak too low)"
            )
    return msgs
