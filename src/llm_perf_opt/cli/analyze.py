"""``llm-perf-opt analyze --mode analytic``: the analytic report, no GPU and no weights needed."""

from __future__ import annotations

import json
from typing import Any

import click

from llm_perf_opt.hardware.table import DEFAULT_HARDWARE
from llm_perf_opt.specs.workload import DEFAULT_WORKLOAD

PAGE_SIZE_HELP = "Page size WxH in pixels (e.g. 1654x2339); decides the tile grid in crop mode."


@click.command()
@click.option("--mode", "analysis_mode", type=click.Choice(["analytic"]), default="analytic", show_default=True,
              help="Analysis mode (only the analytic model exists).")
@click.option("--model", default="deepseek-ocr", show_default=True,
              help="Model spec: deepseek-ocr, tiny, a checkpoint directory or its config.json.")
@click.option("--workload-profile-id", "--workload", "workload", default=DEFAULT_WORKLOAD, show_default=True,
              help="Workload profile id (tiny, small, base, large, gundam, dsocr-standard-v1) or a YAML file "
                   "(--workload is an alias).")
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
@click.option("--execution", type=click.Choice(["graph", "eager"]), default=None,
              help="Decode execution: graph (replayed CUDA graphs: GPU time per kernel, no host term) or eager "
              "(kernels issued from Python) [default: graph, or the --calibration file's].")
@click.option("--implementation", type=click.Choice(["ours", "hf-official"]), default=None,
              help="Which code runs the model: ours (llm_perf_opt's model) or hf-official (the checkpoint's own code "
              "under transformers 4.46.3, always eager) [default: ours, or the --calibration file's].")
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
    execution: str | None,
    implementation: str | None,
    as_json: bool,
) -> None:
    """Analytic FLOPs, bytes, memory and roofline time of DeepSeek-OCR per module and stage."""
    from click.core import ParameterSource

    from llm_perf_opt import api

    ctx = click.get_current_context()

    def given(name: str, value: Any) -> Any:
        # Model, GPU and dtype left at their defaults are taken from a run directory when one is given.
        return value if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE else None

    overrides = {key: value for key, value in (
        ("mode", resolution), ("page_size", page_size), ("max_crops", max_crops), ("max_new_tokens", max_new_tokens),
        ("prompt_tokens", prompt_tokens), ("batch_size", batch_size)) if value is not None}  # fmt: skip
    result = api.build_report(
        model=given("model", model), workload=workload, hardware=given("hardware", hardware),
        dtype=given("dtype", dtype), overrides=overrides, calibration=calibration, calibrate_from=calibrate_from,
        compare_with=compare_with, run_id=run_id, output_dir=output_dir, execution=execution,
        implementation=implementation,
    )  # fmt: skip
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    report, summary, out = result.report, result.summary, result.output_dir
    calib_run, compare_run = result.calibrated_from, result.compared_with
    if as_json:
        from llm_perf_opt.io.convert import converter

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
