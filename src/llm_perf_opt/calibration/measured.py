"""Measured stage times of one exact workload, compared stage by stage with the analytic model.

The stage definitions and the measured ↔ analytic map live in :mod:`llm_perf_opt.data.stages`
(one definition, shared with MFU). This module imports no torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from attrs import define, field

from llm_perf_opt.data.stages import MEASURED_STAGES
from llm_perf_opt.data.stats import finite
from llm_perf_opt.specs.workload import Workload

__all__ = ["FIT_STAGES", "GPU_STAGES", "MEASURED_STAGES", "MeasuredWorkload", "StageSample", "relative_sigma"]

GPU_STAGES: tuple[str, ...] = ("sam_gpu", "clip_gpu", "projector_gpu", "prefill_decoder_gpu", "decode_gpu")
"""Device-busy time of a stage: Σ self CUDA time of its operators in the run's torch.profiler pass
(top-k operators per stage, so a lower bound), per call. Its analytic counterpart is the roofline's
GPU body Σ max(compute, memory) without the per-kernel launch term. Diagnostics, not fitted: they tell
whether a stage is GPU-bound (busy ≈ wall) or waits on the CPU issuing kernels (busy ≪ wall)."""
FIT_STAGES: tuple[str, ...] = ("sam", "clip", "projector", "prefill_decoder", "decode")
"""Disjoint stages a calibration fits (vision, prefill and total are sums of these, plus glue)."""

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
        data = finite(values)
        if not data:
            return None
        return cls(mean_ms=statistics.fmean(data), std_ms=statistics.pstdev(data), n=len(data), values_ms=data)


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
