"""``llm-perf-opt profile``: measure stages and operators of the runnable model.

Thin layer: parse flags into a :class:`~llm_perf_opt.profiling.state.ProfileConfig`, show a rich
progress bar on stderr (``--quiet`` hides it), call the library, print a short table of stage
times. torch is imported only when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from llm_perf_opt.profiling.state import ProfileResult, ProgressEvent

_PHASE_LABELS = {
    "inputs": "Collecting images",
    "load": "Loading model",
    "prepare": "Preprocessing pages",
    "warmup": "Warm-up",
    "timed": "Timed runs",
    "profile": "torch.profiler pass",
    "report": "Writing artifacts",
}


class _RichProgress:
    """Progress callback: one rich task per phase, on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[message]}", style="dim"),
            console=Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        task = self.tasks.get(event.phase)
        if task is None:
            label = _PHASE_LABELS.get(event.phase, event.phase)
            task = self.progress.add_task(label, total=max(event.total, 1), message=event.message)
            self.tasks[event.phase] = task
        self.progress.update(task, completed=event.done, total=max(event.total, 1), message=event.message)


def _print_summary(result: ProfileResult) -> None:
    from rich.console import Console
    from rich.table import Table

    from llm_perf_opt.reporting.profile_format import STAGE_LABELS, num, pct

    state = result.state
    report: Any = result.report
    console = Console()
    title = f"Stage times, ms ({len(state.records)} runs; {state.device} {state.dtype}, {state.config.mode} mode)"
    table = Table(title=title, title_justify="left")
    for col in ("Stage", "Mean", "Std", "p50", "p95", "n"):
        table.add_column(col, justify="left" if col == "Stage" else "right")
    aggregates = report.aggregates if report is not None else {}
    for key in (
        "total_ms",
        "ttft_ms",
        "prefill_ms",
        "vision_ms",
        "sam_ms",
        "clip_ms",
        "projector_ms",
        "prefill_decoder_ms",
        "decode_ms",
        "tpot_ms",
    ):
        st = aggregates.get(key)
        if st is not None:
            table.add_row(STAGE_LABELS[key], num(st.mean), num(st.std), num(st.p50), num(st.p95), str(st.count))
    console.print(table)
    if report is not None:
        if state.peaks is not None and state.peaks.tflops and report.analytic.get("total_mfu_raw") is not None:
            a = report.analytic
            line = (
                f"MFU: model {pct(a.get('total_mfu_raw'), 2)}, vision {pct(a.get('vision_mfu_raw'), 2)}, "
                f"prefill {pct(a.get('prefill_mfu_raw'), 2)}, decode {pct(a.get('decode_mfu_raw'), 2)}"
            )
            if a.get("decode_bw_util_raw") is not None:
                line += f"; decode bandwidth {pct(a['decode_bw_util_raw'])} of peak"
            console.print(line)
        else:
            console.print("MFU: not available (" + (state.peaks.source if state.peaks else "no peak") + ")")
    status = "[bold red]INCOMPLETE[/] " if state.incomplete else ""
    console.print(f"{status}Artifacts: {state.output_dir}")


@click.command(context_settings={"show_default": True})
@click.option(
    "--model",
    default="deepseek-ocr",
    metavar="deepseek-ocr|tiny|CHECKPOINT_DIR",
    help="Model spec name, or a checkpoint directory (its config.json).",
)
@click.option(
    "--weights",
    default=None,
    metavar="random|CHECKPOINT_DIR",
    help="Weights: random init, or safetensors from a directory. Default: random for spec names, "
    "the checkpoint for --model DIR.",
)
@click.option(
    "--images",
    "images",
    multiple=True,
    metavar="DIR|FILE|LIST.txt",
    help="Page images: directories, files, or .txt lists (one path per line). Repeatable; without it "
    "the built-in synthetic pages are used.",
)
@click.argument("more_images", nargs=-1, metavar="[IMAGES]...")
@click.option(
    "--mode", type=click.Choice(["tiny", "small", "base", "large", "gundam"]), default="gundam", help="Resolution mode."
)
@click.option("--max-crops", type=int, default=9, help="Most tiles per page in crop mode.")
@click.option("--repeats", type=int, default=3, help="Timed runs per image.")
@click.option("--warmup", type=int, default=1, help="Untimed warm-up passes (per distinct batch shape).")
@click.option("--max-new-tokens", type=int, default=64, help="Tokens generated per page.")
@click.option(
    "--min-new-tokens",
    type=int,
    default=None,
    help="Suppress EOS until this many tokens [default: --max-new-tokens, fixed-length runs].",
)
@click.option("--device", default=None, metavar="cuda[:N]|cpu", help="Device [default: cuda:0 if present, else cpu].")
@click.option(
    "--dtype",
    type=click.Choice(["bf16", "fp16", "fp32"]),
    default=None,
    help="Compute dtype [default: bf16 on CUDA, fp32 on CPU].",
)
@click.option("--attn-impl", type=click.Choice(["sdpa", "eager"]), default="sdpa", help="Attention implementation.")
@click.option("--batch-size", type=int, default=1, help="Pages per generation call (equal token counts grouped).")
@click.option("--top-k", type=int, default=20, help="Operators per table.")
@click.option("--trace", is_flag=True, help="Write a Chrome/Perfetto trace (trace.json) of the first profiled batch.")
@click.option("--torch-profiler/--no-torch-profiler", default=True, help="Run the separate operator-profiling pass.")
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Artifact directory [default: tmp/profile-output/<run_id>].",
)
@click.option("--run-id", default=None, help="Run id [default: UTC time + random suffix].")
@click.option("--strict", is_flag=True, help="Fail on any unusable image instead of skipping it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--trust-remote-code",
    is_flag=True,
    help="Load the checkpoint's own Python model code through transformers (local directory, offline).",
)
@click.option("--peak-tflops", type=float, default=None, help="Dense peak TFLOP/s for MFU (overrides the table).")
@click.option("--peak-bandwidth-tbs", type=float, default=None, help="Peak DRAM TB/s (overrides the table).")
@click.option("--seed", type=int, default=0, help="Seed for random weights and synthetic pages.")
def profile(
    model: str,
    weights: str | None,
    images: tuple[str, ...],
    more_images: tuple[str, ...],
    mode: str,
    max_crops: int,
    repeats: int,
    warmup: int,
    max_new_tokens: int,
    min_new_tokens: int | None,
    device: str | None,
    dtype: str | None,
    attn_impl: str,
    batch_size: int,
    top_k: int,
    trace: bool,
    torch_profiler: bool,
    output_dir: Path | None,
    run_id: str | None,
    strict: bool,
    quiet: bool,
    trust_remote_code: bool,
    peak_tflops: float | None,
    peak_bandwidth_tbs: float | None,
    seed: int,
) -> None:
    """Measure stage times (vision: SAM, CLIP, projector; prefill; decode), operators and MFU.

    Loads the model once, warms up, then times every image × repeat; operator tables come from a
    separate torch.profiler pass. Artifacts: report.md, operators.md, metrics.json, summary.json,
    stakeholder_summary.md, inputs.yaml, env.json, assumptions.md, runs.jsonl, stage_breakdown.png.
    """
    from llm_perf_opt.profiling.runner import LLMProfileRunner
    from llm_perf_opt.profiling.state import ProfileConfig

    config = ProfileConfig(
        model=model,
        weights=weights,
        images=tuple(images) + tuple(more_images),
        mode=mode,
        max_crops=max_crops,
        repeats=repeats,
        warmup=warmup,
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        device=device,
        dtype=dtype,
        attn_impl=attn_impl,
        batch_size=batch_size,
        top_k=top_k,
        trace=trace,
        torch_profiler=torch_profiler,
        output_dir=output_dir,
        run_id=run_id,
        strict=strict,
        trust_remote_code=trust_remote_code,
        seed=seed,
        peak_tflops=peak_tflops,
        peak_bandwidth_tbs=peak_bandwidth_tbs,
    )
    runner = LLMProfileRunner(config)
    state = runner.prepare_state()
    for warning in state.warnings:
        if not quiet:
            click.echo(f"warning: {warning}", err=True)
    try:
        if quiet:
            result = runner.run(state)
        else:
            with _RichProgress() as progress:
                runner.set_progress(progress)
                result = runner.run(state)
    except KeyboardInterrupt:
        click.echo(f"interrupted; partial report (marked incomplete) in {state.output_dir}", err=True)
        sys.exit(130)
    _print_summary(result)
