"""GPU table: dense peaks, bandwidth, memory, and where each figure comes from.

All figures are DENSE (no 2:4 sparsity). bf16/fp16 peaks are the FP32-accumulate tensor rates,
which is what PyTorch's bf16 matmuls use (on GeForce cards that is half the FP16-accumulate
figure). Memory in decimal GB (10^9 bytes), bandwidth in TB/s (10^12 bytes/s).
Source: shared/reference/hardware.md. This module imports no torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from attrs import field, fields, frozen

from llm_perf_opt.errors import UserError, unknown_id
from llm_perf_opt.io.documents import field_mapping, load_document
from llm_perf_opt.specs.limits import (
    MAX_BANDWIDTH_TBS,
    MAX_MEMORY_GB,
    MAX_TFLOPS,
    MIN_FIGURE,
    check_float,
    check_int,
)

DTYPES = ("bf16", "fp16", "fp8", "tf32", "fp32")


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise UserError(f"hardware field cuda_names must be a list of device names, got {value!r}")
    return tuple(value)


def _figure(limit: float) -> Any:
    """attrs validator: a finite number in (0, limit]; None is allowed for optional figures.

    Root cause of ZeroDivisionError / OverflowError / NaN in JSON: figures were only compared with
    0, which NaN and 1e308 pass. See :mod:`llm_perf_opt.specs.limits` for the bounds.
    """

    def check(inst: object, attr: Any, value: Any) -> None:
        if value is not None:
            check_float(f"hardware field {attr.name}", value, limit, positive=False, lo=MIN_FIGURE)

    return check


def _text(inst: object, attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise UserError(f"hardware field {attr.name} must be text, got {value!r}")


def _sms(inst: object, attr: Any, value: Any) -> None:
    if value is not None:
        check_int(f"hardware field {attr.name}", value, 1, 100_000)


@frozen(kw_only=True)
class HardwareSpec:
    """One accelerator's peak figures."""

    id: str = field(validator=_text)
    """Short id used on the command line (e.g. ``h100-sxm``)."""
    name: str = field(validator=_text)
    """Marketing name."""
    cuda_names: tuple[str, ...] = field(default=(), converter=_str_tuple)
    """Exact ``torch.cuda.get_device_name()`` strings that map to this row."""
    bf16_tflops: float = field(validator=_figure(MAX_TFLOPS))
    """Dense BF16/FP16 tensor TFLOP/s with FP32 accumulate."""
    fp8_tflops: float | None = field(default=None, validator=_figure(MAX_TFLOPS))
    """Dense FP8 tensor TFLOP/s (None where the GPU has no FP8 tensor cores)."""
    tf32_tflops: float | None = field(default=None, validator=_figure(MAX_TFLOPS))
    """Dense TF32 tensor TFLOP/s (used for fp32 matmuls with TF32 enabled)."""
    fp32_tflops: float | None = field(default=None, validator=_figure(MAX_TFLOPS))
    """Non-tensor FP32 TFLOP/s, when known."""
    bandwidth_tbs: float = field(validator=_figure(MAX_BANDWIDTH_TBS))
    """Peak DRAM (HBM/GDDR) bandwidth in TB/s (10^12 B/s)."""
    memory_gb: float = field(validator=_figure(MAX_MEMORY_GB))
    """Device memory in GB (10^9 B)."""
    sms: int | None = field(default=None, validator=_sms)
    """Streaming multiprocessors."""
    compute_capability: str | None = field(default=None, validator=_text)
    """CUDA compute capability, e.g. ``9.0``."""
    achievable_tflops: float | None = field(default=None, validator=_figure(MAX_TFLOPS))
    """Measured bf16 matmul ceiling (large GEMM), when one was measured."""
    achievable_bandwidth_tbs: float | None = field(default=None, validator=_figure(MAX_BANDWIDTH_TBS))
    """Measured device-to-device copy ceiling (read + write bytes), when measured."""
    source: str = field(default="", validator=_text)
    """Where the figures come from."""

    def peak_tflops(self, dtype: str) -> float:
        """Dense peak for a compute dtype; fp32 matmuls use the TF32 rate."""
        if dtype in ("bf16", "fp16"):
            return self.bf16_tflops
        if dtype == "fp8":
            if self.fp8_tflops is None:
                raise UserError(f"hardware {self.id} has no FP8 tensor cores; choose bf16 or fp16")
            return self.fp8_tflops
        if dtype in ("fp32", "tf32"):
            return self.tf32_tflops or self.fp32_tflops or self.bf16_tflops / 2
        raise unknown_id("dtype", dtype, DTYPES)


_H100_SRC = "NVIDIA H100 datasheet (dense)"
HARDWARE_TABLE: dict[str, HardwareSpec] = {
    hw.id: hw
    for hw in (
        HardwareSpec(
            id="h100-sxm", name="H100 SXM5 80GB", cuda_names=("NVIDIA H100 80GB HBM3",),
            bf16_tflops=989.4, fp8_tflops=1978.9, tf32_tflops=494.7, bandwidth_tbs=3.35, memory_gb=80,
            sms=132, compute_capability="9.0", achievable_tflops=798.0, achievable_bandwidth_tbs=3.0,
            source=_H100_SRC + "; achievable: 8192^3 bf16 GEMM and D2D copy measured on our H100",
        ),
        HardwareSpec(
            id="h100-pcie", name="H100 PCIe 80GB", cuda_names=("NVIDIA H100 PCIe",),
            bf16_tflops=756.5, fp8_tflops=1513.0, tf32_tflops=378.0, bandwidth_tbs=2.0, memory_gb=80,
            sms=114, compute_capability="9.0", source="NVIDIA H100 PCIe datasheet (dense)",
        ),
        HardwareSpec(
            id="h200", name="H200 SXM 141GB", cuda_names=("NVIDIA H200",),
            bf16_tflops=989.4, fp8_tflops=1978.9, tf32_tflops=494.7, bandwidth_tbs=4.8, memory_gb=141,
            sms=132, compute_capability="9.0", source="NVIDIA H200 datasheet (dense)",
        ),
        HardwareSpec(
            id="h20", name="H20", cuda_names=("NVIDIA H20",),
            bf16_tflops=148.0, fp8_tflops=296.0, tf32_tflops=74.0, bandwidth_tbs=4.0, memory_gb=96,
            sms=78, compute_capability="9.0", source="NVIDIA H20 product brief (dense)",
        ),
        HardwareSpec(
            id="a100-sxm", name="A100 SXM 80GB", cuda_names=("NVIDIA A100-SXM4-80GB",),
            bf16_tflops=312.0, tf32_tflops=156.0, bandwidth_tbs=2.039, memory_gb=80,
            sms=108, compute_capability="8.0", source="NVIDIA A100 datasheet (dense)",
        ),
        HardwareSpec(
            id="l40s", name="L40S", cuda_names=("NVIDIA L40S",),
            bf16_tflops=362.0, fp8_tflops=733.0, tf32_tflops=183.0, bandwidth_tbs=0.864, memory_gb=48,
            sms=142, compute_capability="8.9", source="NVIDIA L40S datasheet (dense)",
        ),
        HardwareSpec(
            id="rtx4090", name="GeForce RTX 4090", cuda_names=("NVIDIA GeForce RTX 4090",),
            bf16_tflops=165.2, fp8_tflops=330.3, tf32_tflops=82.6, bandwidth_tbs=1.008, memory_gb=24,
            sms=128, compute_capability="8.9",
            source="Ada whitepaper; bf16 with FP32 accumulate (330.3 with FP16 accumulate)",
        ),
        HardwareSpec(
            id="rtx5090", name="GeForce RTX 5090", cuda_names=("NVIDIA GeForce RTX 5090",),
            bf16_tflops=209.5, fp8_tflops=419.0, tf32_tflops=104.8, bandwidth_tbs=1.792, memory_gb=32,
            sms=170, compute_capability="12.0",
            source="Blackwell GeForce whitepaper; bf16 with FP32 accumulate (419 with FP16 accumulate)",
        ),
        HardwareSpec(
            id="b200", name="B200 (HGX)", cuda_names=("NVIDIA B200",),
            bf16_tflops=2250.0, fp8_tflops=4500.0, tf32_tflops=1125.0, bandwidth_tbs=8.0, memory_gb=180,
            sms=148, compute_capability="10.0", source="NVIDIA B200 datasheet (dense)",
        ),
    )
}
DEFAULT_HARDWARE = "rtx5090"
HARDWARE_FIELDS = tuple(f.name for f in fields(HardwareSpec))


def hardware_for_cuda_name(device_name: str) -> HardwareSpec | None:
    """Exact match of a ``torch.cuda.get_device_name()`` string; None when unknown.

    Deliberately not a substring match: "H100" would also match the PCIe part, whose peaks differ.
    """
    for hw in HARDWARE_TABLE.values():
        if device_name.strip() in hw.cuda_names:
            return hw
    return None


def hardware_from_mapping(data: Any, source: str) -> HardwareSpec:
    data = field_mapping(data, HARDWARE_FIELDS, "hardware", source)
    data.setdefault("id", Path(source).stem)
    data.setdefault("name", data["id"])
    missing = [k for k in ("bf16_tflops", "bandwidth_tbs", "memory_gb") if k not in data]
    if missing:
        raise UserError(f"{source}: hardware needs {', '.join(missing)}")
    try:
        return HardwareSpec(**data)
    except UserError as exc:
        raise UserError(f"{source}: invalid hardware: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source}: invalid hardware: {exc}") from None


def load_hardware(ref: str) -> HardwareSpec:
    """A table id (``h100-sxm``), an exact CUDA device name, or a YAML file of HardwareSpec fields."""
    if ref in HARDWARE_TABLE:
        return HARDWARE_TABLE[ref]
    by_name = hardware_for_cuda_name(ref)
    if by_name is not None:
        return by_name
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return hardware_from_mapping(load_document(ref, "hardware file"), str(path))
    raise unknown_id("hardware", ref, list(HARDWARE_TABLE))
