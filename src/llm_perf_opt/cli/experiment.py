"""``llm-perf-opt experiment e2e|validate|decode-vs-hf|decode-bench``: the GPU experiments.

Thin layer: parse flags into the experiment's config, call :mod:`llm_perf_opt.experiments`, print
progress lines (with elapsed seconds) and the result table. torch is imported only when a
command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from llm_perf_opt.errors import UserError

_OUT = click.Path(path_type=Path, file_okay=False)


def _ints(flag: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected comma-separated integers, e.g. 1,8,32") from None
    if not values:
        raise UserError(f"{flag}: give at least one value")
    return values


def _words(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _log(quiet: bool) -> Any:
    from llm_perf_opt.experiments.common import clock_log
    from llm_perf_opt.experiments.common import quiet as silent

    return silent if quiet else clock_log(lambda msg: click.echo(msg, err=True))


@click.group()
def experiment() -> None:
    """GPU experiments: decode benchmark, validation matrix, end-to-end run, comparison with transformers.

    \b
      decode-bench  decode ms/token, CUDA graph vs eager, batch 1/8/32, % of the HBM roofline
      validate      profile a matrix of workloads, calibrate on one, predict the others (resumable)
      e2e           one profile run of the full model next to the analytic prediction, with checks
      decode-vs-hf  our decode step next to transformers' DeepseekOcr2TextModel (same weights)
    """


def _common(f: Any) -> Any:
    f = click.option("--seed", type=int, default=0, show_default=True, help="seed of weights and pages")(f)
    f = click.option("--dtype", default=None, help="bf16|fp16|fp32 (default bf16 on CUDA, fp32 on CPU)")(f)
    f = click.option("--device", default=None, help="cuda[:N]|cpu (default CUDA when available)")(f)
    f = click.option("--model", default="deepseek-ocr", show_default=True, help="model spec, random weights")(f)
    return click.option("--quiet", is_flag=True, help="no progress lines on stderr")(f)


@experiment.command("decode-bench")
@_common
@click.option("--batches", default="1,8,32", show_default=True, help="batch sizes, comma-separated")
@click.option("--modes", default="graph,eager", show_default=True, help="decode modes to time")
@click.option("--new-tokens", type=int, default=256, show_default=True, help="tokens per call (N − 1 steps)")
@click.option("--repeats", type=int, default=5, show_default=True, help="timed calls per batch and mode")
@click.option("--warmup", type=int, default=1, show_default=True, help="untimed calls first (graph capture)")
@click.option("--page-mode", default="base", show_default=True, help="resolution mode of the prompt pages")
@click.option("--hardware", default=None, help="hardware id|YAML for the roofline (default: detected GPU)")
@click.option("--attn-impl", default="sdpa", show_default=True, help="sdpa|eager")
@click.option("--processes", type=click.IntRange(1, 2), default=1, show_default=True,
              help="2: run twice in fresh processes and report their agreement")
@click.option("--out", type=_OUT, default=None, help="directory for decode_bench.json and .md")
def decode_bench(quiet: bool, model: str, device: str | None, dtype: str | None, seed: int, batches: str,
                 modes: str, new_tokens: int, repeats: int, warmup: int, page_mode: str, hardware: str | None,
                 attn_impl: str, processes: int, out: Path | None) -> None:
    """Decode ms/token in CUDA-graph vs eager mode with spread, % of the HBM roofline and capture cost."""
    from llm_perf_opt.experiments.decode_bench import DecodeBenchConfig, render_table, run_decode_bench

    cfg = DecodeBenchConfig(model=model, device=device, dtype=dtype, batches=_ints("--batches", batches),
                            modes=_words(modes), new_tokens=new_tokens, repeats=repeats, warmup=warmup,
                            page_mode=page_mode, hardware=hardware, attn_impl=attn_impl, seed=seed,
                            processes=processes, out=out)
    click.echo(render_table(run_decode_bench(cfg, _log(quiet))))


@experiment.command("validate")
@_common
@click.option("--out", type=_OUT, required=True, help="directory: runs/, plan.json, validation.md/.json")
@click.option("--workloads", default="tiny,small,base,large,gundam-a4,gundam-wide", show_default=True)
@click.option("--batches", default="1,4,8", show_default=True)
@click.option("--tokens", default="64,256,1024", show_default=True)
@click.option("--executions", default="graph,eager", show_default=True, help="decode modes to measure")
@click.option("--calibrate-on", default="base-b1-n256", show_default=True, help="entry id of the calibration run")
@click.option("--repeats", type=int, default=2, show_default=True)
@click.option("--warmup", type=int, default=1, show_default=True)
@click.option("--budget-s", type=float, default=540.0, show_default=True,
              help="start no run after this many seconds (the next call resumes)")
@click.option("--only", default="", help="entry keys or ids to run, comma-separated (e.g. graph/base-b1-n256)")
@click.option("--hardware", default=None, help="hardware id|YAML for the table (default: the GPU each run names)")
@click.option("--list", "list_only", is_flag=True, help="print the plan and exit")
@click.option("--offline", is_flag=True, help="no runs: rebuild the table from the run directories under --out")
def validate(quiet: bool, model: str, device: str | None, dtype: str | None, seed: int, out: Path, workloads: str,
             batches: str, tokens: str, executions: str, calibrate_on: str, repeats: int, warmup: int,
             budget_s: float, only: str, hardware: str | None, list_only: bool, offline: bool) -> None:
    """Validation matrix: profile runs, then calibrate on ONE and predict every other (±10% / ±30%)."""
    from llm_perf_opt.experiments.validate import ValidateConfig, plan, run_validate
    from llm_perf_opt.experiments.validate_table import build_table

    log = _log(quiet)
    cfg = ValidateConfig(out=out, model=model, device=device, dtype=dtype, workloads=_words(workloads),
                         batches=_ints("--batches", batches), tokens=_ints("--tokens", tokens),
                         executions=_words(executions), calibrate_on=calibrate_on, repeats=repeats, warmup=warmup,
                         budget_s=budget_s, only=_words(only), seed=seed)
    if list_only:
        cfg.validate()
        click.echo("\n".join(e.key for e in plan(cfg)))
        return
    if not offline:
        done = run_validate(cfg, log)
        left = [e["id"] for e in done["entries"] if e["status"] != "done"]
        if left:
            click.echo(f"not done: {', '.join(left)} (run the same command again to resume)", err=True)
    # An explicit --model stands in for runs whose own spec cannot be rebuilt here; never the default, which
    # would silently predict another model for them.
    explicit = click.get_current_context().get_parameter_source("model") != click.core.ParameterSource.DEFAULT
    data = build_table(out, calibrate_on=calibrate_on, hardware=hardware, model=model if explicit else None, log=log)
    for execution, part in data["executions"].items():
        total = next((c for c in part["counts"] if c["stage"] == "all"), None)
        if total:
            click.echo(f"{execution}: {total['calibrated_within_10']}/{total['cells']} held-out cells within ±10% "
                       f"calibrated, {total['uncalibrated_within_30']}/{total['cells']} within ±30% uncalibrated")
    click.echo(f"wrote {out / 'validation.md'} and validation.json")


@experiment.command("e2e")
@_common
@click.option("--out", type=_OUT, required=True, help="directory: run/ and e2e.json")
@click.option("--mode", default="gundam", show_default=True, help="resolution mode")
@click.option("--new-tokens", type=int, default=256, show_default=True)
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--decode-mode", default=None, help="graph|eager (default graph on CUDA, eager on CPU)")
@click.option("--hardware", default=None, help="hardware id|YAML for the prediction (default: the run's GPU)")
def e2e(quiet: bool, model: str, device: str | None, dtype: str | None, seed: int, out: Path, mode: str,
        new_tokens: int, repeats: int, decode_mode: str | None, hardware: str | None) -> None:
    """One profile run of the full model next to the analytic prediction, with consistency checks."""
    from llm_perf_opt.experiments.e2e import E2EConfig, render_table, run_e2e

    cfg = E2EConfig(out=out, model=model, device=device, dtype=dtype, mode=mode, new_tokens=new_tokens,
                    repeats=repeats, decode_mode=decode_mode, hardware=hardware, seed=seed)
    result = run_e2e(cfg, _log(quiet))
    click.echo(render_table(result))
    if result["status"] != "ok":
        raise UserError(f"e2e checks failed: {', '.join(k for k, v in result['checks'].items() if not v)}")


@experiment.command("decode-vs-hf")
@_common
@click.option("--check-dtype", default="fp32", show_default=True, help="dtype of the tight logits check")
@click.option("--contexts", default="1024,4096", show_default=True, help="prefilled tokens before timing")
@click.option("--steps", type=int, default=128, show_default=True)
@click.option("--warmup-steps", type=int, default=16, show_default=True)
@click.option("--attn", default="eager,sdpa", show_default=True, help="attention implementations to time")
@click.option("--hf-experts", default="auto,eager", show_default=True, help="transformers experts implementations")
@click.option("--check-tokens", type=int, default=32, show_default=True)
@click.option("--no-hf", is_flag=True, help="time ours only")
@click.option("--out", type=_OUT, default=None, help="directory for decode_vs_hf.json")
def decode_vs_hf(quiet: bool, model: str, device: str | None, dtype: str | None, seed: int, check_dtype: str,
                 contexts: str, steps: int, warmup_steps: int, attn: str, hf_experts: str, check_tokens: int,
                 no_hf: bool, out: Path | None) -> None:
    """Our decode step next to transformers' DeepseekOcr2TextModel holding the same weights."""
    from llm_perf_opt.experiments.decode_vs_hf import DecodeVsHFConfig, render_table, run_decode_vs_hf

    cfg = DecodeVsHFConfig(model=model, device=device, dtype=dtype, check_dtype=check_dtype,
                           contexts=_ints("--contexts", contexts), steps=steps, warmup_steps=warmup_steps,
                           attn=_words(attn), hf_experts=_words(hf_experts), check_tokens=check_tokens, no_hf=no_hf,
                           seed=seed, out=out)
    result = run_decode_vs_hf(cfg, _log(quiet))
    click.echo(render_table(result))
    if result["status"] != "ok":
        raise UserError(f"decode-vs-hf: {result['status']} (logits of ours and transformers differ)")
