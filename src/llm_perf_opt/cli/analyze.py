"""``llm-perf-opt analyze --mode analytic``: the analytic report, no GPU and no weights needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import DEFAULT_HARDWARE
from llm_perf_opt.specs.limits import check_run_id
from llm_perf_opt.specs.workload import DEFAULT_WORKLOAD

PAGE_SIZE_HELP = "Page size WxH in pixels (e.g. 1654x2339); decides the tile grid in crop mode."


def default_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


@click.command()
@click.option("--mode", "analysis_mode", type=click.Choice(["analytic"]), default="analytic", show_default=True,
              help="Analysis mode (only the analytic model exists).")
@click.option("--model", default="deepseek-ocr", show_default=True,
              help="Model spec: deepseek-ocr, tiny, a checkpoint directory or its config.json.")
@click.option("--workload", default=DEFAULT_WORKLOAD, show_default=True,
              help="Workload profile id (tiny, small, base, large, gundam, dsocr-standard-v1) or a YAML file.")
@click.option("--hardware", default=DEFAULT_HARDWARE, show_default=True,
              help="GPU id from the hardware table, an exact CUDA device name, or a YAML file.")
@click.option("--resolution", "resolution", default=None, help="Override the resolution mode of the workload.")
@click.option("--page-size", default=None, help=PAGE_SIZE_HELP)
@click.option("--max-crops", type=int, default=None, help="Most tiles per page in crop mode (9 HF path, 6 vLLM path).")
@click.option("--max-new-tokens", type=int, default=None, help="Generated tokens per page.")
@click.option("--prompt-tokens", type=int, default=None, help="Text tokens of the prompt, BOS included.")
@click.option("--batch-size", type=int, default=None, help="Pages per generation call.")
@click.option("--dtype", type=click.Choice(["bf16", "fp16", "fp8", "fp32"]), default="bf16", show_default=True,
              help="Weight, activation and KV-cache dtype.")
@click.option("--calibration", "calibration", type=click.Path(dir_okay=False), default=None,
              help="Roofline parameters (YAML/JSON) fitted from a profile run.")
@click.option("--calibrate-from", "calibrate_from", default=None, metavar="RUN_DIR",
              help="Fit the roofline's per-category compute efficiencies, bandwidth efficiency and per-kernel "
                   "overhead to a 'profile' run directory (its env.json names the GPU); the report uses them and "
                   "calibration.yaml is written beside it. Model, GPU and dtype default to the run's.")
@click.option("--compare-with", "compare_with", default=None, metavar="RUN_DIR",
              help="Compare with a 'profile' run: the report is built for the run's exact input (model, mode, page "
                   "size, tokens, batch, dtype, GPU); summary.json gets measured_total_time_ms and "
                   "predicted_vs_measured_ratio, report.md a per-stage measured-vs-predicted table.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Where to write; default tmp/profile-output/<run_id>/static_analysis/analytic_model/.")
@click.option("--run-id", default=None, help="Run id (default: UTC timestamp).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON instead of the table.")
def analyze(
    analysis_mode: str,
    model: str,
    workload: str,
    hardware: str,
    resolution: str | None,
    page_size: str | None,
    max_crops: int | None,
    max_new_tokens: int | None,
    prompt_tokens: int | None,
    batch_size: int | None,
    dtype: str,
    calibration: str | None,
    calibrate_from: str | None,
    compare_with: str | None,
    output_dir: str | None,
    run_id: str | None,
    as_json: bool,
) -> None:
    """Analytic FLOPs, bytes, memory and roofline time of DeepSeek-OCR per module and stage."""
    from llm_perf_opt.analysis import analyze_to_dir
    from llm_perf_opt.hardware.table import load_hardware
    from llm_perf_opt.specs.loader import load_model_spec
    from llm_perf_opt.specs.workload import load_workload, parse_page_size

    spec = load_model_spec(model)
    work = load_workload(workload)
    overrides: dict[str, object] = {}
    if resolution is not None:
        overrides["mode"] = resolution
    if page_size is not None:
        overrides["page_size"] = parse_page_size(page_size)
    for key, value in (("max_crops", max_crops), ("max_new_tokens", max_new_tokens),
                       ("prompt_tokens", prompt_tokens), ("batch_size", batch_size)):
        if value is not None:
            overrides[key] = value
    if overrides:
        work = work.replace(**overrides)
    hw = load_hardware(hardware)
    calib_run = compare_run = None
    if calibrate_from is not None or compare_with is not None:
        spec, work, hw, dtype, calib_run, compare_run = _with_runs(spec, work, hw, dtype, calibrate_from, compare_with)
    run = check_run_id(run_id) if run_id is not None else default_run_id()
    out = Path(output_dir) if output_dir else Path("tmp/profile-output") / run / "static_analysis" / "analytic_model"
    report, summary = analyze_to_dir(
        spec, work, hw, dtype=dtype, calibration=Path(calibration) if calibration else None,
        report_id=run, output_dir=out, calibrate_from=calib_run, compare_with=compare_run,
    )
    if as_json:
        from llm_perf_opt.contracts.convert import converter

        click.echo(json.dumps(converter.unstructure(summary), indent=2))
        return
    from rich.console import Console

    from llm_perf_opt.reporting.terminal import analytic_memory_line, analytic_stage_table

    console = Console()
    console.print(analytic_stage_table(report))
    console.print(analytic_memory_line(report))
    console.print(f"written to {out}/ (report.json, report.yaml, summary.json, report.md, layers/)")
    if calib_run is not None:
        click.echo(f"Calibrated to profile run {calib_run.run_id} ({calib_run.hardware.id}): {out}/calibration.yaml")
    ratio = summary.predicted_vs_measured_ratio
    if compare_run is not None and summary.measured_total_time_ms is not None and ratio is not None:
        click.echo(f"Measured {summary.measured_total_time_ms:,.1f} ms per call in profile run {compare_run.run_id}; "
                   f"predicted / measured = {ratio:.2f} (per stage: report.md)")


_WORKLOAD_OPTIONS = ("workload", "resolution", "page_size", "max_crops", "max_new_tokens", "prompt_tokens",
                     "batch_size", "dtype")


def _with_runs(spec: Any, work: Any, hw: Any, dtype: str, calibrate_from: str | None,
               compare_with: str | None) -> tuple[Any, Any, Any, str, Any, Any]:
    """Read the run directories; the report takes model, GPU and dtype (and, to compare, the exact
    input) from the run unless given on the command line."""
    from click.core import ParameterSource

    from llm_perf_opt.calibration import read_run_dir

    ctx = click.get_current_context()

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE

    hw_override = hw if given("hardware") else None
    spec_override = spec if given("model") else None
    calib = compare = None
    if compare_with is not None:
        clash = [f"--{n.replace('_', '-')}" for n in _WORKLOAD_OPTIONS if given(n)]
        if clash:
            raise UserError(f"--compare-with builds the report for the run's exact input; drop {', '.join(clash)}")
        compare = read_run_dir(compare_with, hardware=hw_override, model=spec_override)
        spec, work, hw, dtype = compare.spec, compare.primary.workload, compare.hardware, compare.precision
    if calibrate_from is not None:
        calib = read_run_dir(calibrate_from, hardware=hw_override, model=spec_override)
        if compare is None:
            spec = spec_override or calib.spec
            hw = hw_override or calib.hardware
            dtype = dtype if given("dtype") else calib.precision
    for r in (calib, compare):
        for warning in r.warnings if r is not None else []:
            click.echo(f"warning: {warning}", err=True)
    return spec, work, hw, dtype, calib, compare
