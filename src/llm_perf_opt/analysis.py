"""Library entry for ``analyze``: spec + workload + hardware → report files on disk."""

from __future__ import annotations

from pathlib import Path

from llm_perf_opt.contracts.models import DeepSeekOCRAnalyticReportSummary
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload


def analyze_to_dir(
    spec: ModelSpec,
    workload: Workload,
    hardware: HardwareSpec,
    *,
    dtype: str = "bf16",
    calibration: Path | None = None,
    report_id: str | None = None,
    output_dir: Path,
) -> tuple[AnalyticModelReport, DeepSeekOCRAnalyticReportSummary]:
    """Build the analytic report and write report.json/.yaml, summary.json, report.md, layers/*.md."""
    from llm_perf_opt.analytic import api

    precision = api.precision_for(dtype)
    params = api.load_roofline_params(calibration) if calibration else api.RooflineParams()
    report = api.build_report(spec, workload, hardware, params=params, precision=precision, report_id=report_id)
    api.write_report(report, output_dir)
    return report, api.summary_of(report)
