"""``llm-perf-opt profile``: measure stages and operators of the runnable model.

Thin layer: parse flags into a :class:`~llm_perf_opt.profiling.state.ProfileConfig`, show a rich
progress bar on stderr (``--quiet`` hides it), call the library, print a short table of stage
times. torch is imported only when the command runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from llm_perf_opt.cli.options import config_kwargs, options_from
from llm_perf_opt.contracts.profile_config import ProfileConfig

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

    from llm_perf_opt.reporting.profile_format import METRIC_LABELS
    from llm_perf_opt.reporting.text import num, pct

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
            table.add_row(METRIC_LABELS[key], num(st.mean), num(st.std), num(st.p50), num(st.p95), str(st.count))
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
@options_from(ProfileConfig)
@click.argument("more_images", nargs=-1, metavar="[IMAGES]...")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def profile(more_images: tuple[str, ...], quiet: bool, **options: Any) -> None:
    """Measure stage times (vision: SAM, CLIP, projector; prefill; decode), operators and MFU.

    Loads the model once, warms up, then times every image × repeat; operator tables come from a
    separate torch.profiler pass. Artifacts: report.md, operators.md, metrics.json, summary.json,
    stakeholder_summary.md, inputs.yaml, env.json, assumptions.md, runs.jsonl, stage_breakdown.png.
    """
    from llm_perf_opt.profiling.runner import LLMProfileRunner

    options["images"] = tuple(options.get("images", ())) + tuple(more_images)
    # Every option is a ProfileConfig field (options_from declares them), so they map one to one.
    config = ProfileConfig(**config_kwargs(ProfileConfig, options))
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
