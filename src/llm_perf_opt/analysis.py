"""Library entry for ``analyze``: spec + workload + hardware → report files on disk."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from llm_perf_opt.contracts.models import DeepSeekOCRAnalyticReportSummary
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload

if TYPE_CHECKING:
    from llm_perf_opt.calibration.run_dir import ProfileRun


def analyze_to_dir(
    spec: ModelSpec,
    workload: Workload,
    hardware: HardwareSpec,
    *,
    dtype: str = "bf16",
    calibration: Path | None = None,
    report_id: str | None = None,
    output_dir: Path,
    calibrate_from: ProfileRun | None = None,
    compare_with: ProfileRun | None = None,
    execution: str | None = None,
    implementation: str | None = None,
) -> tuple[AnalyticModelReport, DeepSeekOCRAnalyticReportSummary]:
    """Build the analytic report and write report.json/.yaml, summary.json, report.md, layers/*.md.

    ``calibrate_from`` (a profile run, :func:`llm_perf_opt.calibration.read_run_dir`): fit the roofline
    parameters to it first (starting from ``calibration`` or the defaults) and build the report with
    them; also writes calibration.yaml and calibration_fit.json. ``compare_with``: fill the summary's
    measured_total_time_ms / predicted_vs_measured_ratio and add a per-stage measured-vs-predicted table
    to report.md, for the run's exact input (pass that input as ``workload`` for a consistent report).
    """
    from llm_perf_opt.analytic import api

    precision = api.precision_for(dtype)
    if calibration:
        params = api.load_roofline_params(calibration)
    elif calibrate_from is not None:  # fit from how the run executed and what its routing census measured
        params = calibrate_from.start_params()
    else:
        params = api.RooflineParams()
    if calibrate_from is not None:  # the run's census and clock, not a stored file's, describe what it measured
        params = attrs.evolve(
            params,
            expert_load_ratio=calibrate_from.expert_load_ratio,
            graph_stage_timing=calibrate_from.graph_stage_timing,
        )
    if execution is not None:  # graph | eager decode; otherwise the calibration file's, else graph
        params = attrs.evolve(params, execution=execution)
    if implementation is not None:  # ours | hf-official (the checkpoint's own code)
        params = attrs.evolve(params, implementation=implementation)
    if execution == "graph" and params.implementation == "hf-official":
        raise UserError("--execution graph: the official checkpoint code's generate has no graph path (use eager)")
    fit = None
    if calibrate_from is not None:
        from llm_perf_opt.calibration import fit_run

        fit = fit_run(calibrate_from, start=params)
        params = fit.params
    report = api.build_report(
        spec, workload, hardware, params=params, precision=precision, report_id=report_id,
        profile_run_id=compare_with.run_id if compare_with is not None else None,
    )
    summary = api.summary_of(report)
    if fit is None and compare_with is None:
        api.write_report(report, output_dir)
        return report, summary
    from llm_perf_opt.analytic.writer import render_files, write_files
    from llm_perf_opt.calibration import compare_run, with_measurement, write_extras
    from llm_perf_opt.io.artifact_set import ArtifactSet

    comparison = compare_run(compare_with, report) if compare_with is not None else None
    if comparison is not None and compare_with is not None:
        summary = with_measurement(summary, comparison, compare_with)
    # Report and calibration extras are one artifact set: staged together, renamed into place together.
    with ArtifactSet(output_dir, kind="analyze", run_id=report.report_id) as artifacts:
        write_files(render_files(report, summary), artifacts.work_dir)
        write_extras(artifacts.work_dir, fit=fit, fit_run_=calibrate_from, comparison=comparison,
                     compare_run_=compare_with)
        artifacts.commit()
    return report, summary
