"""``llm-perf-opt what-if``: recompute an analytic report under other settings, one row per scenario."""

from __future__ import annotations

import sys
from pathlib import Path

import click

KEYS_HELP = """\b
Keys (--set KEY=VALUE, --sweep KEY=V1,V2,...):
  workload   mode, page_size (WxH), max_crops, max_new_tokens, batch_size, num_pages, prompt_tokens
  hardware   hardware (id such as h100-sxm, exact CUDA name, or YAML file),
             hardware.bf16_tflops, hardware.fp8_tflops, hardware.bandwidth_tbs, hardware.memory_gb, ...
  precision  dtype (all at once: bf16, fp16, fp8, fp32), weight_dtype, kv_dtype, activation_dtype,
             compute_dtype
  roofline   roofline.bandwidth_efficiency, roofline.launch_overhead_us, roofline.use_achievable_peaks,
             roofline.gemm_table (true/false: measured GEMM times where the GPU has a table),
             roofline.expert_load_ratio (MoE routing skew, 1 = uniform),
             roofline.compute_efficiency (every category), roofline.compute_efficiency.<category>
\b
Several --sweep options form a grid (cartesian product; the first varies slowest).
latency = one generate() call of batch_size pages (each page's wait); ms/page = latency / batch_size.
\b
Example:
  llm-perf-opt what-if --report tmp/profile-output/RUN/static_analysis/analytic_model/report.json \\
      --set dtype=fp8 --sweep hardware=h100-sxm,h200 --sweep batch_size=1,8,32
"""


@click.command("what-if", epilog=KEYS_HELP)
@click.option("--report", "report_path", metavar="PATH",
              help="report.json / report.yaml written by 'analyze' (or its directory).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one input in every scenario.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=V1,V2,…",
              help="Values of one key to sweep; several --sweep options form a grid.")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Where whatif.csv / whatif.json (and plots) go; default <report dir>/whatif/.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="What to print on stdout (the files are always written).")
@click.option("--plot", is_flag=True, help="Also write whatif_latency.png and whatif_stages.png (matplotlib).")
@click.option("--max-rows", type=click.IntRange(min=0), default=50, show_default=True,
              help="Rows shown in the table (0: all); files always hold every row.")
@click.option("--list-keys", is_flag=True, help="Print every valid key with what it expects, and exit.")
def what_if(
    report_path: str | None,
    sets: tuple[str, ...],
    sweeps: tuple[str, ...],
    output_dir: str | None,
    fmt: str,
    plot: bool,
    max_rows: int,
    list_keys: bool,
) -> None:
    """Recompute an analytic report for other GPUs, resolutions, token budgets, batches, dtypes and
    roofline factors: per-stage time, latency, throughput, memory and the largest batch that fits."""
    from llm_perf_opt.errors import UserError

    if list_keys:
        from llm_perf_opt.whatif.overrides import KEYS

        for info in KEYS.values():
            click.echo(f"{info.name:45s} {info.group:9s} {info.expects}")
        return
    if not report_path:
        raise UserError("--report PATH is required (the report.json or report.yaml written by 'analyze')")

    from llm_perf_opt.analytic.report_io import load_report, resolve_report_path
    from llm_perf_opt.whatif.evaluate import evaluate
    from llm_perf_opt.whatif.outputs import csv_text, json_document, json_text, render_table, write_outputs
    from llm_perf_opt.whatif.scenarios import parse_cli_sets, parse_cli_sweeps

    if plot:  # before any work: a missing optional package is one line (the CLI group words it)
        import matplotlib  # noqa: F401

    fixed, swept = parse_cli_sets(sets), parse_cli_sweeps(sweeps)
    path = resolve_report_path(report_path)
    report = load_report(path)
    rows = evaluate(report, fixed, swept)
    out_dir = Path(output_dir) if output_dir else path.parent / "whatif"
    document = json_document(rows, report, report_path=path, overrides=fixed, sweeps=swept)
    plots = None
    if plot:
        from llm_perf_opt.whatif.plots import write_plots

        def plots(directory: Path) -> list[Path]:
            return write_plots(rows, directory, list(swept))

    written = write_outputs(rows, document, out_dir, extra=plots)
    names = ", ".join(p.name for p in written)
    if fmt == "csv":
        sys.stdout.write(csv_text(rows))
    elif fmt == "json":
        sys.stdout.write(json_text(document))
    else:
        from rich.console import Console

        inp = report.inputs
        title = (f"what-if on report {report.report_id}: {inp.model_spec.name}, {inp.workload_spec.profile_id}, "
                 f"{inp.hardware.id} — {len(rows)} scenario(s)")
        console = Console(width=max(Console().width, 100) if sys.stdout.isatty() else 200)
        console.print(render_table(rows, title=title, max_rows=max_rows))
        console.print(f"wrote {names} to {out_dir}", highlight=False, soft_wrap=True)
        return
    click.echo(f"wrote {names} to {out_dir}", err=True)
