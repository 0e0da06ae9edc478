"""``llm-perf-opt analyze --mode analytic``: the analytic report, no GPU and no weights needed."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import DEFAULT_HARDWARE
from llm_perf_opt.specs.workload import DEFAULT_WORKLOAD

PAGE_SIZE_HELP = "Page size WxH in pixels (e.g. 1654x2339); decides the tile grid in crop mode."


def default_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


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
    run = run_id or default_run_id()
    if "/" in run or run in ("", ".", ".."):
        raise UserError(f"--run-id {run!r} must be a plain name")
    out = Path(output_dir) if output_dir else Path("tmp/profile-output") / run / "static_analysis" / "analytic_model"
    report, summary = analyze_to_dir(
        spec, work, hw, dtype=dtype, calibration=Path(calibration) if calibration else None,
        report_id=run, output_dir=out,
    )
    if as_json:
        from llm_perf_opt.contracts.convert import converter

        click.echo(json.dumps(converter.unstructure(summary), indent=2))
        return
    from llm_perf_opt.reporting.terminal import print_analytic_summary

    print_analytic_summary(report, out)
