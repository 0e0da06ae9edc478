"""The library's one facade (in the spirit of HTA's ``TraceAnalysis``): every CLI command is one call here.

Each function computes and returns a result object; nothing prints. The CLI (``llm_perf_opt.cli``)
parses flags, calls one function and renders its result::

    from llm_perf_opt import api

    result = api.build_report(workload="gundam", hardware="h100-sxm", overrides={"max_new_tokens": 256})
    result.report.predicted_total_time_ms      # AnalyticModelReport, also written to result.output_dir
    rows = api.what_if(result.output_dir / "report.json", sweeps={"batch_size": [1, 8, 32]})
    fit = api.calibrate("tmp/profile-output/RUN")           # FitResult (roofline parameters)
    comparison = api.compare("tmp/profile-output/RUN", result.report)
    api.profile(ProfileConfig(model="tiny", device="cpu"))  # needs the [profile] extra (torch)

``build_report``, ``what_if``, ``calibrate`` and ``compare`` import no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define, field

from llm_perf_opt.analysis import analyze_to_dir
from llm_perf_opt.contracts.models import DeepSeekOCRAnalyticReportSummary
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import DEFAULT_HARDWARE, load_hardware
from llm_perf_opt.specs.limits import check_run_id
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.workload import DEFAULT_WORKLOAD, load_workload, parse_page_size

if TYPE_CHECKING:
    from llm_perf_opt.calibration.compare import WorkloadComparison
    from llm_perf_opt.calibration.fit import FitResult
    from llm_perf_opt.calibration.run_dir import ProfileRun
    from llm_perf_opt.contracts.profile_config import ProfileConfig
    from llm_perf_opt.profiling.state import ProfileResult, ProgressCallback
    from llm_perf_opt.whatif.evaluate import WhatIfRow

WORKLOAD_KEYS = ("mode", "page_size", "max_crops", "max_new_tokens", "prompt_tokens", "batch_size")
"""Workload fields ``build_report`` can override (``page_size`` as ``"WxH"`` or a (w, h) pair)."""
DEFAULT_OUTPUT_ROOT = Path("tmp/profile-output")


@define(kw_only=True)
class AnalyzeResult:
    """What ``analyze`` computed and where it wrote it."""

    report: AnalyticModelReport
    """The analytic report (written as report.json / report.yaml / report.md / layers/*.md)."""
    summary: DeepSeekOCRAnalyticReportSummary
    """The stakeholder summary (summary.json); measured figures filled when compared with a run."""
    output_dir: Path
    """Directory the files were written to."""
    calibrated_from: ProfileRun | None = None
    """The profile run the roofline parameters were fitted to (calibration.yaml beside the report)."""
    compared_with: ProfileRun | None = None
    """The profile run the prediction was compared with (per-stage table in report.md)."""
    warnings: list[str] = field(factory=list)
    """Caveats from reading the run directories."""


def default_run_id() -> str:
    """UTC timestamp, the default id of an analytic report."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def build_report(
    *,
    model: str | None = None,
    workload: str = DEFAULT_WORKLOAD,
    hardware: str | None = None,
    dtype: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    calibration: str | Path | None = None,
    calibrate_from: str | Path | None = None,
    compare_with: str | Path | None = None,
    run_id: str | None = None,
    output_dir: str | Path | None = None,
    execution: str | None = None,
    implementation: str | None = None,
) -> AnalyzeResult:
    """Build and write the analytic report of one workload on one GPU.

    ``None`` for ``model`` / ``hardware`` / ``dtype`` means "not given": deepseek-ocr, the default
    GPU and bf16, or — with ``calibrate_from`` / ``compare_with`` — the run's own model, GPU and
    dtype. ``overrides`` change fields of the workload (:data:`WORKLOAD_KEYS`); with ``compare_with``
    the report is built for the run's exact input, so overrides are refused.
    """
    changes = dict(overrides or {})
    unknown = sorted(set(changes) - set(WORKLOAD_KEYS))
    if unknown:
        raise UserError(f"unknown workload override {unknown[0]!r}; valid: {', '.join(WORKLOAD_KEYS)}")
    if isinstance(changes.get("page_size"), str):
        changes["page_size"] = parse_page_size(changes["page_size"])
    spec_given = load_model_spec(model) if model is not None else None
    hw_given = load_hardware(hardware) if hardware is not None else None
    spec = spec_given or load_model_spec("deepseek-ocr")
    hw = hw_given or load_hardware(DEFAULT_HARDWARE)
    work = load_workload(workload)
    if changes:
        work = work.replace(**changes)
    precision = dtype or "bf16"
    calib_run = compare_run = None
    warnings: list[str] = []
    if compare_with is not None:
        clash = (["--workload"] if workload != DEFAULT_WORKLOAD else []) + (["--dtype"] if dtype is not None else [])
        clash += ["--" + ("resolution" if k == "mode" else k).replace("_", "-") for k in changes]
        if clash:
            raise UserError(f"--compare-with builds the report for the run's exact input; drop {', '.join(clash)}")
        compare_run = read_run(compare_with, hardware=hw_given, model=spec_given)
        spec, work, hw = compare_run.spec, compare_run.primary.workload, compare_run.hardware
        precision = compare_run.precision
        warnings += compare_run.warnings
    if calibrate_from is not None:
        calib_run = read_run(calibrate_from, hardware=hw_given, model=spec_given)
        warnings += calib_run.warnings
        if compare_run is None:
            spec = spec_given or calib_run.spec
            hw = hw_given or calib_run.hardware
            precision = dtype or calib_run.precision
    run = check_run_id(run_id) if run_id is not None else default_run_id()
    out = Path(output_dir) if output_dir else DEFAULT_OUTPUT_ROOT / run / "static_analysis" / "analytic_model"
    report, summary = analyze_to_dir(
        spec, work, hw, dtype=precision, calibration=Path(calibration) if calibration else None,
        report_id=run, output_dir=out, calibrate_from=calib_run, compare_with=compare_run, execution=execution,
        implementation=implementation,
    )  # fmt: skip
    return AnalyzeResult(report=report, summary=summary, output_dir=out, calibrated_from=calib_run,
                         compared_with=compare_run, warnings=warnings)  # fmt: skip


def read_run(run_dir: str | Path, **kwargs: Any) -> ProfileRun:
    """A profile run directory read for calibration or comparison (GPU, model, dtype, exact inputs)."""
    from llm_perf_opt.calibration import read_run_dir

    return read_run_dir(run_dir, **kwargs)


def calibrate(run_dir: str | Path, **kwargs: Any) -> FitResult:
    """Fit the roofline parameters to a profile run (``FitResult.params`` feed ``build_report``)."""
    from llm_perf_opt.calibration import fit_run

    return fit_run(read_run(run_dir, **kwargs))


def compare(run_dir: str | Path, report: AnalyticModelReport) -> WorkloadComparison:
    """Predicted vs measured, per stage, for the run's exact input."""
    from llm_perf_opt.calibration import compare_run

    return compare_run(read_run(run_dir), report)


def what_if(
    report: str | Path | AnalyticModelReport,
    overrides: Mapping[str, Any] | None = None,
    sweeps: Mapping[str, Sequence[Any]] | None = None,
) -> list[WhatIfRow]:
    """Recompute a report for changed inputs; one row per scenario (no overrides: the report itself)."""
    from llm_perf_opt.whatif.evaluate import evaluate

    return evaluate(report, overrides, sweeps)


def profile(config: ProfileConfig, progress: ProgressCallback | None = None) -> ProfileResult:
    """Measure stage times, operators and MFU of the runnable model (needs the ``[profile]`` extra)."""
    from llm_perf_opt.profiling.runner import run_profile

    return run_profile(config, progress)
