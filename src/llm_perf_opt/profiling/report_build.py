"""Turn a :class:`~llm_perf_opt.profiling.state.ProfileState` into the domain ``LLMProfileReport``.

Timings are means over every timed run (each image × repeat); spreads go to ``aggregates``
(mean, population std, p50, p95, min, max and count). MFU per stage is time-weighted over runs:
Σ analytic FLOPs ÷ (Σ measured time × peak). Contract fields are capped at 1.5 (the contract's
guardrail); the raw value is kept in ``analytic`` and any value above 1 is listed in ``warnings``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llm_perf_opt.contracts.checks import SHARE_MAX
from llm_perf_opt.contracts.profile import TIMED_STAGES, OperatorSummary, Stats
from llm_perf_opt.data.profile import (
    InputImage,
    InputSet,
    LLMProfileReport,
    ModelUnderTest,
    RunMeta,
    StageTiming,
)
from llm_perf_opt.data.stats import summarize_columns
from llm_perf_opt.profiling import mfu as mfu_mod
from llm_perf_opt.profiling.records import METRIC_KEYS, RunRecord
from llm_perf_opt.profiling.state import ProfileState
from llm_perf_opt.profiling.torch_profiler import TABLE_STAGES

MFU_STAGES: tuple[str, ...] = ("vision", "projector", "prefill_decoder", "prefill", "decode")
_STAGE_MS = {
    "vision": "vision_ms",
    "sam": "sam_ms",
    "clip": "clip_ms",
    "projector": "projector_ms",
    "prefill": "prefill_ms",
    "decode": "decode_ms",
    "total": "total_ms",
}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def stage_tokens(record: RunRecord, stage: str) -> int:
    """Tokens a stage processes in one call (see ``StageTiming.tokens``)."""
    if stage == "decode":
        return record.decode_tokens
    if stage == "total":
        return record.generated_tokens
    if stage == "prefill":
        return record.batch_size * record.prompt_len
    return record.batch_size * record.image_tokens  # vision, sam, clip, projector: image slots


def build_timings(records: Sequence[RunRecord]) -> list[StageTiming]:
    """Mean per stage over all runs (``repeat`` None), then the mean of each repeat over its images."""
    out = _timings(records, None)
    repeats = sorted({r.repeat for r in records})
    if len(repeats) > 1:
        for rep in repeats:
            out += _timings([r for r in records if r.repeat == rep], rep)
    return out


def _timings(records: Sequence[RunRecord], repeat: int | None) -> list[StageTiming]:
    out = []
    for stage in TIMED_STAGES:
        key = _STAGE_MS[stage]
        values = [float(getattr(r, key)) for r in records if not (stage == "decode" and r.new_tokens <= 1)]
        ms = _mean(values)
        if ms <= 0:
            continue
        tokens = round(_mean([stage_tokens(r, stage) for r in records]))
        out.append(
            StageTiming(
                stage=stage,  # type: ignore[arg-type]
                elapsed_ms=ms,
                tokens=tokens,
                throughput_toks_per_s=tokens / ms * 1000,
                repeat=repeat,
            )
        )
    return out


def weighted_ratios(records: Sequence[RunRecord], peaks: mfu_mod.Peaks | None) -> tuple[dict[str, float], ...]:
    """Time-weighted (mfu, bandwidth utilisation, achieved TFLOP/s, achieved TB/s) per measured stage."""
    flops: dict[str, float] = {}
    nbytes: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for r in records:
        times = r.stage_times()
        for stage, tflop in r.analytic_tflop.items():
            ms = times.get(stage, 0.0)
            if ms > 0:
                flops[stage] = flops.get(stage, 0.0) + tflop * 1e12
                nbytes[stage] = nbytes.get(stage, 0.0) + r.analytic_gb.get(stage, 0.0) * 1e9
                seconds[stage] = seconds.get(stage, 0.0) + ms / 1000
    achieved = {s: flops[s] / seconds[s] / 1e12 for s in flops}
    achieved_bw = {s: nbytes[s] / seconds[s] / 1e12 for s in nbytes}
    mfu = {s: v / peaks.tflops for s, v in achieved.items()} if peaks and peaks.tflops else {}
    bw = {s: v / peaks.bandwidth_tbs for s, v in achieved_bw.items()} if peaks and peaks.bandwidth_tbs else {}
    return mfu, bw, achieved, achieved_bw


def _cap(values: Mapping[str, float]) -> dict[str, float]:
    return {k: min(max(v, 0.0), SHARE_MAX) for k, v in values.items()}


def build_report(
    state: ProfileState, operator_summaries: tuple[list[OperatorSummary], dict[str, list[OperatorSummary]]], notes: str
) -> LLMProfileReport:
    """The domain report; ``notes`` is the stakeholder summary text."""
    cfg = state.config
    # The report's numbers come from the first decode mode's runs; other modes appear side by side
    # as <metric>[<mode>] aggregates (``--decode-mode both``), never mixed into one mean.
    records = state.primary_records
    session = state.session
    spec = session.spec if session else None
    env = state.env
    mfu, bw, achieved, achieved_bw = weighted_ratios(records, state.peaks)
    warnings = list(state.warnings)
    warnings.extend(
        mfu_mod.estimator_errors(
            mfu_mod.Utilisation(mfu={("model" if k == "total" else k): v for k, v in mfu.items()}, bandwidth=bw)
        )
    )
    if state.incomplete_reason:
        warnings.insert(0, f"INCOMPLETE: {state.incomplete_reason}")
    analytic: dict[str, float] = {}
    for key in ("vision", "projector", "prefill_decoder", "prefill", "decode", "total"):
        tflop = [r.analytic_tflop[key] for r in records if key in r.analytic_tflop]
        gb = [r.analytic_gb[key] for r in records if key in r.analytic_gb]
        if tflop:
            analytic[f"{key}_tflop_per_call"] = _mean(tflop)
            analytic[f"{key}_gb_per_call"] = _mean(gb)
        if key in achieved:
            analytic[f"{key}_achieved_tflops"] = achieved[key]
            analytic[f"{key}_achieved_tbs"] = achieved_bw[key]
        if key in mfu:
            analytic[f"{key}_mfu_raw"] = mfu[key]
        if key in bw:
            analytic[f"{key}_bw_util_raw"] = bw[key]
    if state.peaks and state.peaks.tflops:
        analytic["peak_tflops"] = state.peaks.tflops
    if state.peaks and state.peaks.bandwidth_tbs:
        analytic["peak_bandwidth_tbs"] = state.peaks.bandwidth_tbs
    rows = [r.metrics() for r in records]
    keys = list(METRIC_KEYS) + sorted({k for row in rows for k in row if k not in METRIC_KEYS})
    aggregates: dict[str, Stats] = summarize_columns(rows, keys)
    aggregates.update(decode_mode_aggregates(state.records))
    aggregates.update(state.routing)  # over the MoE layers, not over repeats (profiling/routing.py)
    analytic.update(decode_mode_figures(aggregates))
    topk, per_stage = operator_summaries
    images = [
        InputImage(path=str(p.path), width=p.width, height=p.height, category=p.category)  # type: ignore[arg-type]
        for p in state.inputs.pages
    ]
    dec = spec.decoder if spec else None
    model = ModelUnderTest(
        id=spec.name if spec else cfg.model,
        model_path=session.model_path if session else cfg.model,
        dtype=state.dtype,  # type: ignore[arg-type]
        device=str(state.device),
        use_flash_attn=False,
        n_layers=dec.num_layers if dec else None,
        d_model=dec.hidden_size if dec else None,
        d_ff=dec.intermediate_size if dec else None,
        n_heads=dec.num_heads if dec else None,
        encoder_type="ViT",
    )
    git = env.get("git") if isinstance(env.get("git"), dict) else {}
    meta = RunMeta(
        run_id=state.run_id,
        created_at=state.created_at,
        repeats=cfg.repeats,
        repo_root=str(env.get("repo_root") or state.output_dir),
        gpu_name=str(env.get("device_name", "")) if state.device.type == "cuda" else "cpu",
        compute_capability=str(env.get("compute_capability", "")),
        peak_tflops_bf16=_bf16_peak(state),
        torch_version=str(env.get("torch_version", "")),
        transformers_version=str(env.get("transformers_version", "")),
        cuda_version=str(env.get("cuda_version", "")),
        hardware_id=state.peaks.hardware_id if state.peaks else None,
        git_commit=git.get("commit") if isinstance(git, dict) else None,
        python_version=str(env.get("python_version", "")),
    )
    return LLMProfileReport(
        run_id=state.run_id,
        model=model,
        input_set=InputSet(
            id=state.inputs.set_id, root_dir=str(state.inputs.root_dir), count=len(images), images=images
        ),
        timings=build_timings(records),
        operators_topk=topk,
        mfu_model_level=_cap(mfu).get("total", 0.0),
        mfu_per_stage={k: v for k, v in _cap(mfu).items() if k != "total"},
        aggregates=aggregates,
        notes=notes,
        meta=meta,
        incomplete=state.incomplete,
        warnings=warnings,
        operators_per_stage=per_stage,
        bandwidth_utilization=_cap(bw),
        analytic=analytic,
    )


DECODE_MODE_METRICS = (
    "sam_ms", "clip_ms", "projector_ms", "prefill_decoder_ms", "prefill_ms", "decode_ms", "tpot_ms", "total_ms",
)  # fmt: skip
"""Metrics shown per decode mode when several modes were timed (graph mode replays vision and prefill too)."""


def decode_mode_aggregates(records: Sequence[RunRecord]) -> dict[str, Stats]:
    """``<metric>[<mode>]`` aggregates for every decode mode present, when there is more than one."""
    modes = sorted({r.decode_mode for r in records})
    if len(modes) < 2:
        return {}
    out: dict[str, Stats] = {}
    for mode in modes:
        rows = [r.metrics() for r in records if r.decode_mode == mode and r.new_tokens > 1]
        for key, stats in summarize_columns(rows, list(DECODE_MODE_METRICS)).items():
            out[f"{key}[{mode}]"] = stats
    return out


def decode_mode_figures(aggregates: dict[str, Stats]) -> dict[str, float]:
    """Graph vs eager decode from measured per-token times: ms/token each and the factor (empty if not both)."""
    graph, eager = aggregates.get("tpot_ms[graph]"), aggregates.get("tpot_ms[eager]")
    if graph is None or eager is None or not graph.mean:
        return {}
    out = {
        "decode_tpot_ms_graph": graph.mean,
        "decode_tpot_ms_eager": eager.mean,
        "decode_speedup_graph_vs_eager": eager.mean / graph.mean,
    }
    pg, pe = aggregates.get("prefill_ms[graph]"), aggregates.get("prefill_ms[eager]")
    if pg is not None and pe is not None and pg.mean:  # vision + prefill (graphed too where the MoE allows)
        out.update(prefill_ms_graph=pg.mean, prefill_ms_eager=pe.mean, prefill_speedup_graph_vs_eager=pe.mean / pg.mean)
    return out


def _bf16_peak(state: ProfileState) -> float:
    """Dense bf16 peak of the detected GPU (or the override when the run is bf16/fp16); 0 = unknown."""
    from llm_perf_opt.profiling.env import detect_hardware

    if state.config.peak_tflops is not None and state.dtype in ("bf16", "fp16"):
        return state.config.peak_tflops
    hw = detect_hardware(state.device)
    return hw.bf16_tflops if hw else 0.0


def operator_summaries(
    state: ProfileState, top_k: int
) -> tuple[list[OperatorSummary], dict[str, list[OperatorSummary]]]:
    """(overall top-k, per-stage top-k) in contract form; empty without a profiler pass."""
    tables = state.tables
    if tables is None or tables.empty:
        return [], {}
    per_stage = {}
    for stage in TABLE_STAGES:
        rows = tables.summaries(top_k, stage)
        if rows:
            per_stage[stage] = rows
    return tables.summaries(top_k), per_stage
