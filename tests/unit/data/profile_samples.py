"""A complete LLMProfileReport with every optional field set (shared by the data tests)."""

from __future__ import annotations

from datetime import UTC, datetime

from llm_perf_opt.contracts.models import OperatorSummary, Stats
from llm_perf_opt.data.profile import (
    InputImage,
    InputSet,
    LLMProfileReport,
    ModelUnderTest,
    RunMeta,
    StageTiming,
)

RUN_ID = "0b5c4c1e-8d1f-4a57-9a57-2f7c2d0f1a11"


def op(name: str, total: float, stage: str | None = None) -> OperatorSummary:
    return OperatorSummary(
        op_name=name, total_time_ms=total, cuda_time_ms=total * 0.8, calls=4, self_time_ms=total / 2, stage=stage
    )


def make_report() -> LLMProfileReport:
    images = [
        InputImage(path="/data/pages/a.png", width=1654, height=2339, category="text_heavy"),
        InputImage(path="/data/pages/b.png", width=1240, height=1754, category="synthetic"),
    ]
    return LLMProfileReport(
        run_id=RUN_ID,
        model=ModelUnderTest(
            id="deepseek-ocr",
            model_path="/models/DeepSeek-OCR",
            dtype="bf16",
            device="cuda:0",
            use_flash_attn=True,
            n_layers=12,
            d_model=1280,
            d_ff=6848,
            n_heads=10,
            encoder_type="ViT",
        ),
        input_set=InputSet(id="pages", root_dir="/data/pages", count=2, images=images),
        timings=[
            StageTiming(stage="prefill", elapsed_ms=85.5, tokens=1117, throughput_toks_per_s=13064.3),
            StageTiming(stage="decode", elapsed_ms=2400, tokens=511, throughput_toks_per_s=212.9),
            StageTiming(stage="decode", elapsed_ms=2410.5, tokens=511, throughput_toks_per_s=212.0, repeat=0),
        ],
        operators_topk=[op("aten::mm", 900.0, "decode"), op("aten::bmm", 120.0), op("aten::add", 120.0, "other")],
        mfu_model_level=0.12,
        mfu_per_stage={"prefill": 0.45, "decode": 0.02},
        aggregates={"prefill_ms": Stats(mean=85.5, std=1.25, count=3, min=84, max=87, p50=85.4, p95=86.9)},
        notes="Decode dominates: memory bound at batch 1.",
        meta=RunMeta(
            run_id=RUN_ID,
            created_at=datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            repeats=3,
            repo_root="/work/main",
            gpu_name="NVIDIA H100 80GB HBM3",
            compute_capability="9.0",
            peak_tflops_bf16=989.4,
            torch_version="2.5.1",
            transformers_version="4.46.3",
            cuda_version="12.4",
            hardware_id="h100-sxm",
            git_commit="ae9fbd8",
            python_version="3.11.9",
        ),
        incomplete=True,
        warnings=["nvtx not installed: ranges are no-ops"],
        operators_per_stage={"decode": [op("aten::mm", 800.0, "decode"), op("aten::topk", 5.0, "decode")]},
        bandwidth_utilization={"decode": 0.71},
        analytic={"prefill_tflops": 3.5, "decode_time_ms": 1900},
    )
