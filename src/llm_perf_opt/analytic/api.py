"""Facade of the analytic model: layer trees, stage totals, the full report, and its files.

Everything here is pure Python (attrs, cattrs, PyYAML): no torch, numpy or matplotlib, so
``analyze`` and ``what-if`` run anywhere in well under a second.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attrs import evolve

from llm_perf_opt.analytic.base import BF16, DTYPE_BYTES, BaseLayer, Precision, resident_bytes
from llm_perf_opt.analytic.categories import operator_categories
from llm_perf_opt.analytic.deepseek_ocr import STAGES, build_root, build_stages, decode_steps
from llm_perf_opt.analytic.implementations import build_implementation_stages
from llm_perf_opt.analytic.occupancy import gemm_source
from llm_perf_opt.analytic.report_io import load_report
from llm_perf_opt.analytic.report_tree import GB, MS, TB, TFLOP, module_metrics, module_nodes, walk
from llm_perf_opt.analytic.roofline import Roofline, RooflineParams, Timing
from llm_perf_opt.contracts.analytic import (
    AnalyticModuleSummary,
    DeepSeekOCRAnalyticReportSummary,
    DeepSeekOCRModelSpec,
    OCRWorkloadProfile,
)
from llm_perf_opt.data.analytic_report import (
    AnalyticInputs,
    AnalyticModelReport,
    ImageTokenFacts,
    MemorySummary,
    StageTotals,
)
from llm_perf_opt.errors import UserError, unknown_id
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload

__all__ = [
    "Precision",
    "RooflineParams",
    "StageTotals",
    "build_layer_tree",
    "build_report",
    "load_report",
    "load_roofline_params",
    "memory_of",
    "precision_for",
    "recompute",
    "stage_timings",
    "stage_totals",
    "summary_of",
    "write_report",
]


def precision_for(dtype: str | Precision) -> Precision:
    """One dtype for weights, activations, KV cache and compute (``--dtype``); a Precision passes through."""
    if isinstance(dtype, Precision):
        return dtype
    if dtype not in DTYPE_BYTES:
        raise unknown_id("dtype", dtype, list(DTYPE_BYTES))
    return Precision(weight_dtype=dtype, activation_dtype=dtype, kv_dtype=dtype, compute_dtype=dtype)


def load_roofline_params(path: str | Path) -> RooflineParams:
    """RooflineParams from a YAML/JSON file (e.g. fitted by a calibration run)."""
    from llm_perf_opt.io.convert import load

    return load(path, RooflineParams)


def build_layer_tree(spec: ModelSpec, workload: Workload, precision: Precision | str = BF16) -> dict[str, BaseLayer]:
    """stage → the stage's root layer (vision, projector, prefill, decode) for one call of B pages."""
    return build_stages(spec, workload, precision_for(precision))


def _stage_counts(name: str, workload: Workload) -> tuple[int, int]:
    """(calls, tokens) of a stage."""
    layout, b = workload.layout, workload.batch_size
    if name in ("vision", "projector"):
        return len(layout.views), b * layout.feature_tokens
    if name == "prefill":
        return 1, b * workload.prefill_tokens
    return decode_steps(workload), b * decode_steps(workload)


def stage_timings(root: BaseLayer, roofline: Roofline) -> dict[str, Timing]:
    """stage → roofline timing of one call of that stage, in call order.

    ``roofline.time(root).total_s`` is their sum in this order, so reports and what-if rows built
    from these agree to the last bit.
    """
    return {child.layer.stage: roofline.stage_time(child.layer) for child in root.children()}


def memory_of(root: BaseLayer) -> tuple[float, float, float]:
    """(weights, KV cache, activations) in GB: resident state plus the largest single-operator working set."""
    weights, kv, act = resident_bytes(root)
    return weights / GB, kv / GB, act / GB


def _totals(name: str, layer: BaseLayer, workload: Workload, t: Timing | None) -> StageTotals:
    c = layer.cost()
    calls, tokens = _stage_counts(name, workload)
    out = StageTotals(
        stage=name,
        calls=calls,
        tokens=tokens,
        flops_tflops=c.flops / TFLOP,
        executed_tflops=c.executed_flops / TFLOP,
        non_matmul_tflops=c.vector_flops / TFLOP,
        io_tb=c.bytes_moved / TB,
        kernels=round(c.kernels),
        weights_gb=c.weight_bytes / GB,
        kv_cache_gb=c.kv_cache_bytes / GB,
        activations_gb=c.activation_bytes / GB,
    )
    if t is not None:
        out.compute_ms, out.memory_ms, out.launch_ms = t.compute_s * MS, t.memory_s * MS, t.launch_s * MS
        out.predicted_ms, out.bound = t.total_s * MS, t.bound
    return out


def stage_totals(
    spec: ModelSpec,
    workload: Workload,
    *,
    precision: Precision | str = BF16,
    hardware: HardwareSpec | None = None,
    params: RooflineParams | None = None,
) -> dict[str, StageTotals]:
    """FLOPs, bytes, kernels (and roofline times when ``hardware`` is given) per stage, cheaply.

    Used by the profiler for the MFU of the exact measured input: pass a Workload whose page size,
    mode, prompt_tokens, max_new_tokens and batch_size match it. ``decode`` sums all steps.
    """
    prec = precision_for(precision)
    params = params or RooflineParams()
    stages = build_implementation_stages(
        spec, workload, prec, params.execution, params.implementation, params.expert_load_ratio
    )
    timings: dict[str, Timing] = {}
    if hardware is not None:
        roofline = Roofline(hardware, params, prec.compute_dtype)
        timings = stage_timings(build_root(stages, prec), roofline)
    return {name: _totals(name, stages[name], workload, timings.get(name)) for name in STAGES}


def _contract_model(spec: ModelSpec) -> DeepSeekOCRModelSpec:
    d = spec.decoder
    return DeepSeekOCRModelSpec(
        model_id=spec.model_id,
        model_variant=spec.name,
        hidden_size=d.hidden_size,
        intermediate_size=d.intermediate_size,
        num_layers=d.num_layers,
        num_attention_heads=d.num_heads,
        vision_backbone="sam_vit_b",
        uses_moe=d.num_moe_layers > 0,
    )


def _contract_workload(w: Workload) -> OCRWorkloadProfile:
    m = w.resolution
    return OCRWorkloadProfile(
        profile_id=w.profile_id,
        description=w.description or w.profile_id,
        seq_len=w.prefill_tokens,
        base_size=m.base_size,
        image_size=m.image_size,
        crop_mode=m.crop_mode,
        max_new_tokens=w.max_new_tokens,
        doc_kind=w.doc_kind,  # type: ignore[arg-type]
        num_pages=w.num_pages,
    )


def _token_facts(w: Workload) -> ImageTokenFacts:
    lay, m = w.layout, w.resolution
    return ImageTokenFacts(
        mode=m.name,
        base_size=m.base_size,
        image_size=m.image_size,
        crop_mode=m.crop_mode,
        page_size=list(w.page_size) if w.page_size else None,
        tile_grid=list(lay.tile_grid),
        num_tiles=lay.num_tiles,
        views=[[v, n] for v, n in lay.views],
        global_side=lay.global_side,
        tile_side=lay.tile_side,
        image_tokens=lay.total_slots,
        feature_tokens=lay.feature_tokens,
        newline_tokens=lay.newline_tokens,
        prompt_tokens=w.prompt_tokens,
        prefill_tokens=w.prefill_tokens,
        max_new_tokens=w.max_new_tokens,
        decode_steps=decode_steps(w),
        final_context=w.final_context,
        batch_size=w.batch_size,
    )


def _execution_text(params: RooflineParams) -> str:
    if params.execution == "graph":
        return (
            "Execution: graph (the default) — the decode step is replayed from captured CUDA graphs: per "
            f"step Σ over kernels max(compute, memory, {params.kernel_floor_us:g} µs floor) + one "
            f"{params.graph_launch_us:g} µs graph launch, no host term; split-KV attention reads the filled KV "
            "positions (B·h·⌈L/64⌉ CTAs); up to 96 token-expert pairs (batch 16) the MoE runs in three fused "
            "Triton kernels that read one copy of an expert's weights per pair, shared experts included. "
            + (
                "Vision (SAM, CLIP), the projector and the prefill are replayed the same way, one graph per "
                "stage and input shape: Σ over kernels max(compute, memory, floor) + one graph launch + the "
                "stage range's fixed cost."
                if params.prefill_execution == "graph"
                else "Vision, the projector and the prefill are eager (prefill_execution = eager): the eager "
                "queue model."
            )
        )
    return (
        "Execution: eager — every kernel is issued from Python; each decode step takes max(GPU time, "
        f"kernels × {params.host_overhead_us:g} µs of host issue), and vision and prefill the eager queue model."
    )


def _assumptions(spec: ModelSpec, w: Workload, hw: HardwareSpec, params: RooflineParams, prec: Precision) -> list[str]:
    d = spec.decoder
    e, k, b, r = d.n_routed_experts, d.num_experts_per_tok, w.batch_size, params.expert_load_ratio
    from llm_perf_opt.analytic.decoder import expected_distinct_experts as distinct

    return [
        "FLOPs count a multiply-add as 2 and follow torch.utils.flop_counter: matmuls, convolutions, "
        "attention QKᵀ/PV and einsums; causal attention counts the full score matrix (executed_tflops "
        "counts only the visible scores, as a flash kernel runs them, and drives the roofline). Norms, "
        "softmax, activations, RoPE and adds are non_matmul_tflops, kept apart.",
        "lm_head computes logits for the last position of each sequence only (as a serving engine and "
        "the runnable model's last_only path do), in prefill and in every decode step.",
        f"Decode = max_new_tokens − 1 = {decode_steps(w)} steps: prefill yields the first token; step j "
        f"attends over {w.prefill_tokens} + j keys, ending at final_context = {w.final_context}. Summed in "
        "closed form (every per-step term is affine in the context length).",
        (
            "MoE weight traffic = expected DISTINCT experts under uniform routing, E·(1 − (1 − k/E)^T): "
            if r >= 1.0
            else f"MoE routing skewed (expert_load_ratio {r:.3g}: the j-th busiest expert gets r^j of the top "
            "one's pairs, from a profile run's routing census); expected DISTINCT experts: "
        )
        + f"{distinct(b, e, k, r):.2f} of {e} per decode step (T = B = {b}), "
        f"{distinct(b * w.prefill_tokens, e, k, r):.2f} in prefill (T = {b * w.prefill_tokens}). "
        "All experts stay resident.",
        "activations_gb = largest working set of one operator (its inputs, outputs and materialised "
        "intermediates such as SAM's [B, 12, N, N] rel-pos bias), not a sum over live tensors.",
        "KV cache: preallocated, written in place (no re-copy per step); sized at final_context × B.",
        "Vision: views of one size from all B pages run as one batch (weights read once per pass); "
        "SAM windowed blocks compute the zero-padded tokens (grid padded to a multiple of 14).",
        "Kernel counts follow the runnable model (packed qkv and gate/up, fused RMSNorm, grouped-GEMM MoE); "
        f"each eager launch adds {params.launch_overhead_us:g} µs on top of max(compute, memory).",
        _execution_text(params),
        *(
            [
                "Implementation: hf-official — the checkpoint's own code (transformers 4.46.3): lm_head on every "
                "prompt position, per-expert MoE loop (a host sync per MoE layer), eager LlamaAttention, DynamicCache "
                "torch.cat; decode eager. Host syncs and the host n-gram ban are not in these times "
                "(analytic/implementations.py: decode_step_syncs, decode_step_host_ms)."
            ]
            if params.implementation == "hf-official"
            else []
        ),
        f"Roofline on {hw.name}: {'achievable' if params.use_achievable_peaks else 'datasheet'} peaks, "
        f"{prec.compute_dtype} compute, bandwidth efficiency {params.bandwidth_efficiency:g}, per-category "
        "compute efficiencies as listed in inputs.roofline. Non-matmul FLOPs do not enter the compute term. "
        + gemm_source(hw.id, prec.compute_dtype, params),
        f"Precision: weights {prec.weight_dtype}, activations {prec.activation_dtype}, KV {prec.kv_dtype}.",
        f"predicted_total_time_ms is one generation call of B = {b} page(s); predicted_job_time_ms costs "
        f"⌈num_pages / B⌉ = {math.ceil(w.num_pages / b)} such calls.",
    ]


def build_report(
    spec: ModelSpec,
    workload: Workload,
    hardware: HardwareSpec,
    *,
    params: RooflineParams | None = None,
    precision: Precision | str = BF16,
    report_id: str | None = None,
    profile_run_id: str | None = None,
    created_at: datetime | None = None,
) -> AnalyticModelReport:
    """The full analytic report of ``workload`` on ``hardware`` (module tree, metrics, stages, memory)."""
    prec = precision_for(precision)
    params = params or RooflineParams()
    stages = build_implementation_stages(
        spec, workload, prec, params.execution, params.implementation, params.expert_load_ratio
    )
    root = build_root(stages, prec)
    roofline = Roofline(hardware, params, prec.compute_dtype)
    timings = stage_timings(root, roofline)
    total_s = roofline.time(root).total_s
    visits = list(walk(root))
    weights, kv, act = memory_of(root)
    total_mem = weights + kv + act
    when = (created_at or datetime.now(UTC)).isoformat(timespec="seconds")
    return AnalyticModelReport(
        report_id=report_id or f"analytic-{spec.name.replace('/', '_')}-{workload.profile_id}-{hardware.id}",
        created_at=when,
        model=_contract_model(spec),
        workload=_contract_workload(workload),
        modules=module_nodes(visits),
        operator_categories=operator_categories(),
        module_metrics=module_metrics(visits, workload.profile_id, roofline, total_s),
        profile_run_id=profile_run_id,
        stages=[_totals(name, stages[name], workload, timings[name]) for name in STAGES],
        memory=MemorySummary(
            weights_gb=weights,
            kv_cache_gb=kv,
            activations_gb=act,
            total_gb=total_mem,
            device_memory_gb=float(hardware.memory_gb),
            fits=total_mem <= hardware.memory_gb,
        ),
        predicted_total_time_ms=total_s * MS,
        predicted_job_time_ms=total_s * MS * math.ceil(workload.num_pages / workload.batch_size),
        image_tokens=_token_facts(workload),
        assumptions=_assumptions(spec, workload, hardware, params, prec),
        inputs=AnalyticInputs(
            model_spec=spec, workload_spec=workload, hardware=hardware, roofline=params, precision=prec
        ),
    )


def recompute(report: AnalyticModelReport, **overrides: Any) -> AnalyticModelReport:
    """Rebuild a report from its ``inputs`` with some replaced (model_spec, workload_spec, hardware,
    roofline, precision), e.g. ``recompute(r, hardware=load_hardware("h100-sxm"))``."""
    unknown = sorted(set(overrides) - {"model_spec", "workload_spec", "hardware", "roofline", "precision"})
    if unknown:
        raise UserError(
            f"cannot override {', '.join(unknown)}; valid: model_spec, workload_spec, hardware, roofline, precision"
        )
    inp = evolve(report.inputs, **overrides)
    return build_report(
        inp.model_spec,
        inp.workload_spec,
        inp.hardware,
        params=inp.roofline,
        precision=inp.precision,
        profile_run_id=report.profile_run_id,
    )


def summary_of(
    report: AnalyticModelReport, *, top_n: int = 10, notes: str | None = None
) -> DeepSeekOCRAnalyticReportSummary:
    """Contract summary: predicted time, the top modules by time share (leaf operators), notes."""
    by_id = {m.module_id: m for m in report.modules}
    leaves = [s for s in report.module_metrics if not by_id[s.module_id].children]
    leaves.sort(key=lambda s: s.total_time_ms, reverse=True)
    top = []
    for snap in leaves[:top_n]:
        node = by_id[snap.module_id]
        top.append(
            AnalyticModuleSummary(
                module_id=snap.module_id,
                name=node.name,
                stage=node.stage,
                share_of_model_time=snap.share_of_model_time,
                total_time_ms=snap.total_time_ms,
                total_flops_tflops=snap.total_flops_tflops,
                memory_activations_gb=snap.memory_activations_gb,
            )
        )
    if notes is None:
        parts = [f"{s.stage} {s.predicted_ms:.1f} ms ({s.bound})" for s in report.stages if s.predicted_ms is not None]
        hw = report.inputs.hardware
        notes = (
            f"Analytic roofline on {hw.name}: " + ", ".join(parts) + f". Memory {report.memory.total_gb:.2f} GB "
            f"of {report.memory.device_memory_gb:g} GB ({'fits' if report.memory.fits else 'does NOT fit'})."
        )
    return DeepSeekOCRAnalyticReportSummary(
        report_id=report.report_id,
        model_variant=report.model.model_variant,
        workload_profile_id=report.workload.profile_id,
        predicted_total_time_ms=report.predicted_total_time_ms,
        top_modules=top,
        notes=notes,
    )


def write_report(report: AnalyticModelReport, out_dir: str | Path) -> list[Path]:
    """Write report.json, report.yaml, summary.json, report.md and layers/<Class>.md (see writer)."""
    from llm_perf_opt.analytic.writer import write_report_files

    return write_report_files(report, Path(out_dir), summary_of(report))
