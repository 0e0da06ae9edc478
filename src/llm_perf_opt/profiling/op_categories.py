"""Operator categories for the roofline chart: GEMM, attention and the rest, per stage.

The analytic side sums FLOPs and bytes of the analytic layer tree's leaves by class (``Linear``,
``Conv2d``, ``LMHead`` and the grouped-GEMM ``ExpertMLP`` are GEMMs; ``AttentionCore`` is the
attention kernel); the measured side takes the busy time of the kernels (CPU: top-level operators)
whose operator chain contains a GEMM or an attention aten operator. The mapping is by name on both
sides, so a category is approximate where one layer spends time in another family's operators
(the MoE router's fp32 gate is a GEMM in the trace and "other" in the model); the roofline shows it
for orientation, the stage points carry the verdicts.
"""

from __future__ import annotations

from typing import Any

from llm_perf_opt.analytic.api import precision_for
from llm_perf_opt.analytic.base import BaseLayer
from llm_perf_opt.analytic.deepseek_ocr import build_stages
from llm_perf_opt.analytic.report_tree import walk
from llm_perf_opt.profiling.mfu import StageCost
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload

FAMILIES: tuple[str, ...] = ("GEMM", "attention", "other")
_ANALYTIC_FAMILY = {
    "Linear": "GEMM",
    "Conv2d": "GEMM",
    "LMHead": "GEMM",
    "ExpertMLP": "GEMM",
    "AttentionCore": "attention",
}
_GEMM_OPS = frozenset(
    "aten::" + n for n in ("linear", "matmul", "mm", "addmm", "bmm", "baddbmm", "conv2d", "convolution", "_grouped_mm")
)
_ATTENTION_PREFIX = (
    "aten::scaled_dot_product",
    "aten::_scaled_dot_product",
    "aten::_efficient_attention",
    "aten::_flash_attention",
)
CATEGORY_STAGES: tuple[str, ...] = ("vision", "prefill", "decode_step")
"""Timeline stages that get category points (the analytic tree of each: vision, prefill, one decode step)."""


def op_family(op: Any) -> str:
    """GEMM / attention when the operator or one of its enclosing operators is one, else other."""
    node = op
    while node is not None and str(getattr(node, "activity_type", "cpu_op")) == "cpu_op":
        name = str(node.name)
        if name in _GEMM_OPS:
            return "GEMM"
        if name.startswith(_ATTENTION_PREFIX):
            return "attention"
        node = getattr(node, "cpu_parent", None)
    return "other"


def kernel_family(name: str) -> str:
    """Family of a kernel launched outside any aten operator (a replayed CUDA graph), by its name."""
    low = name.lower()
    if any(k in low for k in ("flash", "fmha", "attention", "attn")):
        return "attention"
    if any(k in low for k in ("gemm", "gemv", "cutlass", "xmma", "matmul", "splitk")):
        return "GEMM"
    return "other"


def _step_layer(decode: BaseLayer) -> BaseLayer | None:
    """One decode step (the first) of the analytic decode stage; None without steps."""
    kids = decode.children()
    if not kids:
        return None
    step = kids[0].layer
    return getattr(step, "first", step)


def decode_kernels_per_step(spec: ModelSpec, workload: Workload, precision: str, execution: str) -> float | None:
    """Analytic kernel launches of one decode step (mean over the call's steps) in ``execution`` mode."""
    stages = build_stages(spec, workload, precision_for(precision), execution)
    decode = stages.get("decode")
    steps = max(workload.max_new_tokens - 1, 0)
    return decode.cost().kernels / steps if decode is not None and steps else None


def family_costs(
    spec: ModelSpec, workload: Workload, precision: str, execution: str = "eager"
) -> dict[tuple[str, str], StageCost]:
    """(timeline stage, family) → analytic FLOPs and bytes of one call (decode: of one step)."""
    stages = build_stages(spec, workload, precision_for(precision), execution)
    roots: dict[str, BaseLayer | None] = {
        "vision": stages.get("vision"),
        "prefill": stages.get("prefill"),
        "decode_step": _step_layer(stages["decode"]) if "decode" in stages else None,
    }
    out: dict[tuple[str, str], StageCost] = {}
    for stage, root in roots.items():
        if root is None:
            continue
        for visit in walk(root):
            if not visit.layer.is_leaf:
                continue
            cost = visit.layer.cost()
            key = (stage, _ANALYTIC_FAMILY.get(type(visit.layer).__name__, "other"))
            prev = out.get(key, StageCost(flops=0.0, bytes=0.0))
            out[key] = StageCost(
                flops=prev.flops + visit.calls * cost.flops, bytes=prev.bytes + visit.calls * cost.bytes_moved
            )
    return out
