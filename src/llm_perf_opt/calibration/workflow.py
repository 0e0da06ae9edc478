"""``analyze --calibrate-from RUN_DIR`` and ``--compare-with RUN_DIR``: fit, compare, write the extra files.

* :func:`fit_run` fits RooflineParams to every workload a profile run measured (see :mod:`.fit`);
* :func:`compare_run` sets the run's measured stages beside the report's predictions for the run's
  exact input (the report's model, hardware, roofline parameters and precision);
* :func:`with_measurement` fills ``measured_total_time_ms`` / ``predicted_vs_measured_ratio`` of
  the summary;
* :func:`write_extras` writes ``calibration.yaml`` (loadable with ``--calibration``; provenance in
  its comment header), ``calibration_fit.json``, ``comparison.json`` and appends the calibration
  and comparison sections to ``report.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

from attrs import evolve

from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration.compare import WorkloadComparison, compare_workload
from llm_perf_opt.calibration.fit import FitResult, fit_params
from llm_perf_opt.calibration.predict import StagePredictor
from llm_perf_opt.calibration.run_dir import ProfileRun
from llm_perf_opt.contracts.analytic import DeepSeekOCRAnalyticReportSummary
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.io.convert import unstructure
from llm_perf_opt.io_utils import atomic_write_text
from llm_perf_opt.reporting.validation_compare import (
    render_calibration_md,
    render_calibration_yaml,
    render_comparison_md,
)

CALIBRATION_FILE = "calibration.yaml"
FIT_FILE = "calibration_fit.json"
COMPARISON_FILE = "comparison.json"


def fit_run(run: ProfileRun, *, start: RooflineParams | None = None) -> FitResult:
    """Fit the roofline parameters so the analytic model reproduces ``run`` (all its workloads); ``start``
    defaults to the package defaults for the way the run executed (graph or eager, prefill included)."""
    start = start or run.start_params()
    return fit_params(run.workloads, spec=run.spec, hardware=run.hardware, precision=run.precision, start=start)


def compare_run(run: ProfileRun, report: AnalyticModelReport) -> WorkloadComparison:
    """The run's measured stages vs the report's inputs applied to the run's exact input."""
    inp = report.inputs
    measured = run.primary
    predictor = StagePredictor(inp.model_spec, measured.workload, inp.hardware, inp.precision)
    return compare_workload(
        measured,
        spec=inp.model_spec,
        hardware=inp.hardware,
        # The report's scenario, timed the way the run was (in-graph spans or synchronised ranges).
        params=evolve(inp.roofline, graph_stage_timing=run.graph_stage_timing),
        predictor=predictor,
    )


def with_measurement(
    summary: DeepSeekOCRAnalyticReportSummary, comparison: WorkloadComparison, run: ProfileRun
) -> DeepSeekOCRAnalyticReportSummary:
    """The summary with the measured total and predicted / measured of the run's exact input."""
    measured, ratio = comparison.measured_total_ms, comparison.total_ratio
    if measured is None or ratio is None:
        return summary
    note = (
        f" Measured in profile run {run.run_id} on {run.gpu_name or run.hardware.name}: {measured:,.1f} ms per "
        f"generate call; predicted {comparison.predicted_total_ms:,.1f} ms for the same input "
        f"(predicted / measured = {ratio:.2f})."
    )
    return evolve(
        summary, measured_total_time_ms=measured, predicted_vs_measured_ratio=ratio, notes=summary.notes + note
    )


def write_extras(
    out_dir: Path,
    *,
    fit: FitResult | None = None,
    fit_run_: ProfileRun | None = None,
    comparison: WorkloadComparison | None = None,
    compare_run_: ProfileRun | None = None,
) -> list[Path]:
    """calibration.yaml / calibration_fit.json / comparison.json, and the report.md sections."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    sections: list[str] = []
    if fit is not None and fit_run_ is not None:
        written.append(atomic_write_text(out_dir / CALIBRATION_FILE, render_calibration_yaml(fit, fit_run_)))
        data = {
            "run_dir": str(fit_run_.path),
            "run_id": fit_run_.run_id,
            "gpu_name": fit_run_.gpu_name,
            "hardware_source": fit_run_.hardware_source,
            "mode_source": fit_run_.mode_source,
            "fit": unstructure(fit),
        }
        text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
        written.append(atomic_write_text(out_dir / FIT_FILE, text))
        sections.append(render_calibration_md(fit, fit_run_))
    if comparison is not None and compare_run_ is not None:
        data = {
            "run_dir": str(compare_run_.path),
            "run_id": compare_run_.run_id,
            "comparison": unstructure(comparison),
            "rows": [{"stage": r.stage, "ratio": r.ratio, "error": r.error} for r in comparison.rows],
        }
        text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
        written.append(atomic_write_text(out_dir / COMPARISON_FILE, text))
        sections.insert(0, render_comparison_md(comparison, compare_run_))
    if sections:
        md = out_dir / "report.md"
        base = md.read_text(encoding="utf-8") if md.is_file() else ""
        written.append(atomic_write_text(md, base.rstrip("\n") + "\n\n" + "\n\n".join(sections).rstrip("\n") + "\n"))
    return written
