"""Measured stage times of one exact workload, and how measured stages map to analytic ones.

The profiler (and ``scripts/gpu_validation.py``, which times stages the same way) reports these
stages per generation call; the analytic model predicts each from its own stages:

==================  ===========================================  ====================================
measured stage      what the clock covers                        analytic counterpart
==================  ===========================================  ====================================
``sam``             the ``sam`` range (every SAM pass)           Σ SamEncoder sub-trees of ``vision``
``clip``            the ``clip`` range (every CLIP pass)         Σ ClipEncoder sub-trees of ``vision``
``vision``          ``vision`` range − ``projector`` range       ``vision`` (SAM + CLIP); measured also
                    (SAM + CLIP + view stacking + slot           holds the glue the analytic model
                    assembly)                                    does not cost (view stacking)
``projector``       the ``projector`` range                      ``projector`` (its newline/separator
                                                                 assembly runs just outside the range)
``prefill_decoder`` ``prefill`` − ``vision`` range               ``prefill`` (decoder only)
``prefill``         the whole first forward (vision inside)      vision + projector + prefill
``decode``          end of the first forward → end of the call   ``decode`` (max_new_tokens − 1 steps)
``total``           the whole ``generate`` call                  vision + projector + prefill + decode
==================  ===========================================  ====================================

The analytic ``prefill`` stage is the decoder only, while the profiler's ``prefill`` range is the
whole first forward with vision and projector inside it: compare ``prefill_decoder`` with analytic
prefill, or ``prefill`` with the sum of three analytic stages — never profiler prefill with
analytic prefill. This module imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from attrs import define, field

from llm_perf_opt.specs.workload import Workload

MEASURED_STAGES: tuple[str, ...] = (
    "sam",
    "clip",
    "vision",
    "projector",
    "prefill_decoder",
    "prefill",
    "decode",
    "total",
)
GPU_STAGES: tuple[str, ...] = ("sam_gpu", "clip_gpu", "projector_gpu", "prefill_decoder_gpu", "decode_gpu")
"""Device-busy time of a stage: Σ self CUDA time of its operators in the run's torch.profiler pass
(top-k operators per stage, so a lower bound), per call. Its analytic counterpart is the roofline's
GPU body Σ max(compute, memory) without the per-kernel launch term. Diagnostics, not fitted: they tell
whether a stage is GPU-bound (busy ≈ wall) or waits on the CPU issuing kernels (busy ≪ wall)."""
FIT_STAGES: tuple[str, ...] = ("sam", "clip", "projector", "prefill_decoder", "decode")
"""Disjoint stages a calibration fits (vision, prefill and total are sums of these, plus glue)."""

STAGE_LABELS: dict[str, str] = {
    "sam": "SAM",
    "clip": "CLIP",
    "vision": "vision (SAM + CLIP)",
    "projector": "projector",
    "prefill_decoder": "prefill, decoder only",
    "prefill": "prefill incl. vision",
    "decode": "decode",
    "total": "total (generate call)",
    "sam_gpu": "SAM, GPU busy",
    "clip_gpu": "CLIP, GPU busy",
    "projector_gpu": "projector, GPU busy",
    "prefill_decoder_gpu": "prefill (decoder), GPU busy",
    "decode_gpu": "decode, GPU busy",
}
ANALYTIC_PARTS: dict[str, tuple[str, ...]] = {
    "sam": ("vision/SamEncoder",),
    "clip": ("vision/ClipEncoder",),
    "vision": ("vision",),
    "projector": ("projector",),
    "prefill_decoder": ("prefill",),
    "prefill": ("vision", "projector", "prefill"),
    "decode": ("decode",),
    "total": ("vision", "projector", "prefill", "decode"),
}
"""Measured stage → the analytic stages (or sub-trees) whose predicted times it is compared with."""


@define(kw_only=True)
class StageSample:
    """Measured time of one stage over n timed calls."""

    mean_ms: float
    std_ms: float = 0.0
    """Population standard deviation over the calls (0 for one call)."""
    n: int = 1
    values_ms: list[float] = field(factory=list)

    @property
    def cv(self) -> float:
        """Coefficient of variation (std / mean)."""
        return self.std_ms / self.mean_ms if self.mean_ms > 0 else 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> StageSample | None:
        """Mean and population std of the finite values (None when there are none)."""
        data = [float(v) for v in values if v is not None and math.isfinite(v)]
        if not data:
            return None
        mean = sum(data) / len(data)
        std = math.sqrt(sum((v - mean) ** 2 for v in data) / len(data))
        return cls(mean_ms=mean, std_ms=std, n=len(data), values_ms=data)


@define(kw_only=True)
class MeasuredWorkload:
    """One exact analytic input and the stage times measured for it."""

    key: str
    """Short unique name, e.g. ``base-b1-n256`` or ``<run_id>#0``."""
    workload: Workload
    """The exact input: mode, page size (→ tile grid), prompt tokens, new tokens, batch."""
    stages: dict[str, StageSample]
    """Measured stage (see :data:`MEASURED_STAGES`) → time; stages that were not measured are absent."""
    source: str = ""
    """Where the numbers come from (run directory, matrix file and config)."""
    group: str = ""
    """Runs that share one prefill measurement (token budgets of one generation) share a group."""

    def describe(self) -> str:
        """One line: mode, page → grid, tokens, batch."""
        w, lay = self.workload, self.workload.layout
        grid = "×".join(str(v) for v in lay.tile_grid)
        page = "×".join(str(v) for v in w.page_size) if w.page_size else "–"
        return (
            f"{w.mode} mode, page {page} → grid {grid}, {lay.total_slots} image slots + {w.prompt_tokens} text "
            f"= {w.prefill_tokens} prompt tokens, {w.max_new_tokens} new tokens, batch {w.batch_size}"
        )


def relative_sigma(sample: StageSample, *, rel_floor: float = 0.02, abs_floor_ms: float = 0.05) -> float:
    """Uncertainty of log(measured): run-to-run spread, a 2 % floor, and ~50 µs of clock and
    synchronisation slack per stage boundary (which makes sub-millisecond stages weigh less)."""
    if sample.mean_ms <= 0:
        return float("inf")
    return math.sqrt(max(sample.cv, rel_floor) ** 2 + (abs_floor_ms / sample.mean_ms) ** 2)
