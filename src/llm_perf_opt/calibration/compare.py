"""Predicted vs measured, stage by stage, for one exact workload (see :mod:`.measured` for the mapping)."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import define, field

from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration.measured import GPU_STAGES, MeasuredWorkload
from llm_perf_opt.calibration.predict import StagePredictor
from llm_perf_opt.data.stages import MEASURED_STAGE_LABELS, MEASURED_STAGES
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec


@define(kw_only=True)
class StageComparison:
    stage: str
    measured_ms: float
    measured_std_ms: float
    n: int
    predicted_ms: float
    bound: str = "n/a"
    """Roofline bound of the analytic stage (compute / memory / launch)."""

    @property
    def label(self) -> str:
        return MEASURED_STAGE_LABELS.get(self.stage, self.stage)

    @property
    def ratio(self) -> float:
        """predicted / measured."""
        return self.predicted_ms / self.measured_ms

    @property
    def error(self) -> float:
        """predicted / measured − 1 (+0.10 = over-predicted by 10 %)."""
        return self.ratio - 1.0


@define(kw_only=True)
class WorkloadComparison:
    """Every measured stage of one workload next to its prediction under one set of parameters."""

    key: str
    description: str
    hardware_id: str
    params: RooflineParams
    rows: list[StageComparison] = field(factory=list)
    source: str = ""

    def row(self, stage: str) -> StageComparison | None:
        return next((r for r in self.rows if r.stage == stage), None)

    @property
    def measured_total_ms(self) -> float | None:
        r = self.row("total")
        return r.measured_ms if r else None

    @property
    def predicted_total_ms(self) -> float | None:
        r = self.row("total")
        return r.predicted_ms if r else None

    @property
    def total_ratio(self) -> float | None:
        r = self.row("total")
        return r.ratio if r else None


def compare_workload(
    measured: MeasuredWorkload,
    *,
    spec: ModelSpec,
    hardware: HardwareSpec,
    params: RooflineParams,
    precision: str = "bf16",
    stages: Sequence[str] = MEASURED_STAGES + GPU_STAGES,
    predictor: StagePredictor | None = None,
) -> WorkloadComparison:
    """Rows for every stage of ``stages`` that was measured (positive time)."""
    pred = (predictor or StagePredictor(spec, measured.workload, hardware, precision)).predict(params)
    rows = []
    for stage in stages:
        sample = measured.stages.get(stage)
        if sample is None or sample.mean_ms <= 0:
            continue
        rows.append(
            StageComparison(
                stage=stage,
                measured_ms=sample.mean_ms,
                measured_std_ms=sample.std_ms,
                n=sample.n,
                predicted_ms=pred.times_ms[stage],
                bound=pred.bounds.get(stage, "n/a"),
            )
        )
    return WorkloadComparison(
        key=measured.key,
        description=measured.describe(),
        hardware_id=hardware.id,
        params=params,
        rows=rows,
        source=measured.source,
    )
