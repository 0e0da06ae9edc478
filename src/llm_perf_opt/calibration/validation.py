"""Validation of the analytic model over a matrix of measured workloads: uncalibrated vs calibrated.

For every measured workload and stage: the measured mean, the prediction with the starting
parameters (package defaults) and with the parameters fitted to ONE calibration workload, and the
errors. Workloads that share the calibration's exact input (same mode, tile grid, prompt and batch:
its vision/prefill measurement, at any token budget) are flagged; accuracy statistics cover the
OTHER workloads only. No torch, numpy or matplotlib.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from attrs import define, field

from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration.fit import FitResult
from llm_perf_opt.calibration.measured import MEASURED_STAGES, MeasuredWorkload
from llm_perf_opt.calibration.predict import StagePredictor
from llm_perf_opt.data.stages import ACCURACY_TARGET
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload

TARGET = ACCURACY_TARGET
"""Accuracy target after calibration: |predicted / measured − 1| ≤ 15 %."""


def same_input(a: Workload, b: Workload) -> bool:
    """Same exact input apart from the token budget (vision and prefill identical)."""
    la, lb = a.layout, b.layout
    return (a.mode, la.tile_grid, la.total_slots, a.prompt_tokens, a.batch_size) == (
        b.mode,
        lb.tile_grid,
        lb.total_slots,
        b.prompt_tokens,
        b.batch_size,
    )


@define(kw_only=True)
class ValidationRow:
    key: str
    group: str
    stage: str
    measured_ms: float
    measured_std_ms: float
    n: int
    uncalibrated_ms: float
    calibrated_ms: float
    bound_uncalibrated: str
    bound_calibrated: str
    calibration_input: bool = False
    """True when this workload has the calibration workload's exact input (not an independent check)."""

    @property
    def error_uncalibrated(self) -> float:
        return self.uncalibrated_ms / self.measured_ms - 1.0

    @property
    def error_calibrated(self) -> float:
        return self.calibrated_ms / self.measured_ms - 1.0


@define(kw_only=True)
class StageStats:
    stage: str
    count: int
    within_uncalibrated: int
    within_calibrated: int
    median_abs_uncalibrated: float
    median_abs_calibrated: float
    worst: ValidationRow | None


@define(kw_only=True)
class ValidationResult:
    rows: list[ValidationRow]
    fit: FitResult
    calibration: str
    """Where the calibration came from (run directory or matrix entry)."""
    start: RooflineParams
    hardware: HardwareSpec
    precision: str
    workloads: dict[str, str] = field(factory=dict)
    """key → one-line description of the exact input."""

    def others(self, stages: Iterable[str] | None = None) -> list[ValidationRow]:
        wanted = set(stages) if stages is not None else None
        return [r for r in self.rows if not r.calibration_input and (wanted is None or r.stage in wanted)]

    def stage_stats(self, stages: Sequence[str] = MEASURED_STAGES) -> list[StageStats]:
        out = []
        for stage in stages:
            rows = self.others([stage])
            if not rows:
                continue
            out.append(
                StageStats(
                    stage=stage,
                    count=len(rows),
                    within_uncalibrated=sum(abs(r.error_uncalibrated) <= TARGET for r in rows),
                    within_calibrated=sum(abs(r.error_calibrated) <= TARGET for r in rows),
                    median_abs_uncalibrated=statistics.median(abs(r.error_uncalibrated) for r in rows),
                    median_abs_calibrated=statistics.median(abs(r.error_calibrated) for r in rows),
                    worst=max(rows, key=lambda r: abs(r.error_calibrated)),
                )
            )
        return out

    def misses(self, stages: Iterable[str] | None = None) -> list[ValidationRow]:
        """Rows of other workloads outside ±15 % after calibration, worst first."""
        rows = [r for r in self.others(stages) if abs(r.error_calibrated) > TARGET]
        return sorted(rows, key=lambda r: -abs(r.error_calibrated))


def validate(
    measured: Sequence[MeasuredWorkload],
    *,
    spec: ModelSpec,
    hardware: HardwareSpec,
    precision: str,
    fit: FitResult,
    calibration: str,
    calibration_workload: Workload | None,
    start: RooflineParams | None = None,
    stages: Sequence[str] = MEASURED_STAGES,
) -> ValidationResult:
    """Rows for every measured stage of every workload, with and without the calibration."""
    start = start or RooflineParams()
    rows = []
    for mw in measured:
        pred = StagePredictor(spec, mw.workload, hardware, precision)
        before, after = pred.predict(start), pred.predict(fit.params)
        flagged = calibration_workload is not None and same_input(mw.workload, calibration_workload)
        for stage in stages:
            sample = mw.stages.get(stage)
            if sample is None or sample.mean_ms <= 0:
                continue
            rows.append(
                ValidationRow(
                    key=mw.key,
                    group=mw.group or mw.key,
                    stage=stage,
                    measured_ms=sample.mean_ms,
                    measured_std_ms=sample.std_ms,
                    n=sample.n,
                    uncalibrated_ms=before.times_ms[stage],
                    calibrated_ms=after.times_ms[stage],
                    bound_uncalibrated=before.bounds.get(stage, "n/a"),
                    bound_calibrated=after.bounds.get(stage, "n/a"),
                    calibration_input=flagged,
                )
            )
    return ValidationResult(
        rows=rows,
        fit=fit,
        calibration=calibration,
        start=start,
        hardware=hardware,
        precision=precision,
        workloads={m.key: m.describe() for m in measured},
    )
