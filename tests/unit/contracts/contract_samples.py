"""Sample contract objects with every field set to a non-default value (shared by the contract tests)."""

from __future__ import annotations

from typing import Any

from llm_perf_opt.contracts.models import (
    CONTRACT_CLASSES,
    AnalyticModuleNode,
    AnalyticModuleSummary,
    DeepSeekOCRAnalyticAccepted,
    DeepSeekOCRAnalyticModel,
    DeepSeekOCRAnalyticReportSummary,
    DeepSeekOCRAnalyticRequest,
    DeepSeekOCRModelSpec,
    LLMProfileAccepted,
    LLMProfileReportSummary,
    LLMProfileRequest,
    ModuleMetricsSnapshot,
    OCRWorkloadProfile,
    OperatorCategory,
    OperatorMetrics,
    OperatorSummary,
    Stats,
)


def node(module_id: str, parent: str | None = None, children: tuple[str, ...] = (), **kw: Any) -> AnalyticModuleNode:
    """A module-tree node with sensible filler values."""
    return AnalyticModuleNode(
        module_id=module_id,
        name=module_id.split(".")[-1],
        qualified_class_name=f"llm_perf_opt.analytic.{module_id.title()}",
        stage=kw.pop("stage", "vision"),
        parent_id=parent,
        children=list(children),
        **kw,
    )


def op_metrics(category_id: str = "matmul") -> OperatorMetrics:
    return OperatorMetrics(category_id=category_id, calls=24, flops_tflops=1.25, io_tb=0.002, share_of_module_flops=0.9)


def snapshot(module_id: str, category_id: str = "matmul") -> ModuleMetricsSnapshot:
    return ModuleMetricsSnapshot(
        module_id=module_id,
        profile_id="dsocr-standard-v1",
        calls=3,
        total_time_ms=12.5,
        total_flops_tflops=1.4,
        total_io_tb=0.003,
        memory_weights_gb=0.19,
        memory_activations_gb=0.05,
        memory_kvcache_gb=0.01,
        share_of_model_time=0.25,
        operator_breakdown=[op_metrics(category_id)],
    )


def operator(name: str, total: float, **kw: Any) -> OperatorSummary:
    return OperatorSummary(op_name=name, total_time_ms=total, cuda_time_ms=total * 0.9, calls=12, **kw)


def full_stats() -> Stats:
    return Stats(mean=10.5, std=0.25, count=5, min=10.0, max=11.0, p50=10.4, p95=10.9)


def make_samples() -> dict[type, Any]:
    """One instance per contract class; optional fields carry non-default values."""
    module_summary = AnalyticModuleSummary(
        module_id="vision.sam",
        name="SAM ViT-B",
        stage="vision",
        share_of_model_time=0.31,
        total_time_ms=40.0,
        total_flops_tflops=2.5,
        memory_activations_gb=0.4,
    )
    model_spec = DeepSeekOCRModelSpec(
        model_id="deepseek-ai/DeepSeek-OCR",
        model_variant="deepseek-ocr-v1-base",
        hf_revision="abc123",
        hidden_size=1280,
        intermediate_size=6848,
        num_layers=12,
        num_attention_heads=10,
        vision_backbone="sam_vit_b",
        uses_moe=True,
    )
    workload = OCRWorkloadProfile(
        profile_id="dsocr-standard-v1",
        description="Gundam mode, A4 at 200 dpi",
        seq_len=1117,
        base_size=1024,
        image_size=640,
        crop_mode=True,
        max_new_tokens=512,
        doc_kind="mixed_layout",
        num_pages=4,
    )
    category = OperatorCategory(
        category_id="matmul", display_name="Matmul", description="GEMMs", match_classes=["Linear", "Conv2d"]
    )
    modules = [
        node("vision", None, ("vision.sam",), repetition="parfor", repetition_count=7),
        node("vision.sam", "vision", ("vision.sam.block",), repetition="for", repetition_count=12),
        node("vision.sam.block", "vision.sam"),
    ]
    samples: dict[type, Any] = {
        DeepSeekOCRAnalyticRequest: DeepSeekOCRAnalyticRequest(
            model_id="deepseek-ai/DeepSeek-OCR",
            model_variant="deepseek-ocr-v1-base",
            workload_profile_id="dsocr-standard-v1",
            profile_run_id="run-42",
            force_rebuild=True,
        ),
        DeepSeekOCRAnalyticAccepted: DeepSeekOCRAnalyticAccepted(report_id="r-1", status="running"),
        AnalyticModuleSummary: module_summary,
        DeepSeekOCRAnalyticReportSummary: DeepSeekOCRAnalyticReportSummary(
            report_id="r-1",
            model_variant="deepseek-ocr-v1-base",
            workload_profile_id="dsocr-standard-v1",
            predicted_total_time_ms=130.0,
            measured_total_time_ms=150.5,
            predicted_vs_measured_ratio=0.86,
            top_modules=[module_summary],
            notes="prefill dominated by SAM global attention",
        ),
        DeepSeekOCRModelSpec: model_spec,
        OCRWorkloadProfile: workload,
        AnalyticModuleNode: modules[1],
        OperatorCategory: category,
        OperatorMetrics: op_metrics(),
        ModuleMetricsSnapshot: snapshot("vision.sam"),
        DeepSeekOCRAnalyticModel: DeepSeekOCRAnalyticModel(
            report_id="r-1",
            model=model_spec,
            workload=workload,
            modules=modules,
            operator_categories=[category],
            module_metrics=[snapshot("vision"), snapshot("vision.sam")],
            profile_run_id="run-42",
        ),
        LLMProfileRequest: LLMProfileRequest(
            model="tiny",
            weights="/models/deepseek-ocr",
            images=["/data/pages/p1.png", "/data/pages/p2.png"],
            mode="base",
            max_crops=6,
            repeats=5,
            warmup=2,
            max_new_tokens=128,
            device="cpu",
            dtype="fp32",
            batch_size=2,
            top_k=7,
            output_dir="/tmp/profile-output/run-42",
            hardware="h100-sxm",
        ),
        LLMProfileAccepted: LLMProfileAccepted(run_id="run-42", status="completed", output_dir="/tmp/out/run-42"),
        OperatorSummary: operator("aten::mm", 12.0, self_time_ms=3.5, self_cuda_time_ms=10.0, stage="prefill"),
        Stats: full_stats(),
        LLMProfileReportSummary: LLMProfileReportSummary(
            run_id="run-42",
            mfu_model_level=0.42,
            mfu_per_stage={"prefill": 0.5, "decode": 0.03},
            top_operators=[operator("aten::mm", 12.0), operator("aten::bmm", 3.0, stage="decode")],
            aggregates={"prefill_ms": full_stats()},
            notes="decode is memory bound",
            incomplete=True,
            warnings=["peak unknown"],
        ),
    }
    assert set(samples) == set(CONTRACT_CLASSES)
    return samples
