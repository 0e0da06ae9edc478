"""Operator categories of the analytic model and the runnable-model classes each one covers.

``match_classes`` names module classes of :mod:`llm_perf_opt.models.deepseek_ocr` (plain names)
or torch classes (dotted ``torch.nn.*`` names), so measured per-module times can be put in the
same buckets as the analytic breakdown. Kept as strings: this module imports no torch.
"""

from __future__ import annotations

from llm_perf_opt.analytic.roofline import CATEGORY_IDS
from llm_perf_opt.contracts.analytic import OperatorCategory

_CATEGORIES: dict[str, tuple[str, str, list[str]]] = {
    "vision_conv": (
        "Vision convolutions",
        "SAM patch embedding (16×16 stride 16), neck 1×1 and 3×3 convs, net_2/net_3 (3×3 stride 2); "
        "CLIP's unused patch embedding (weights only).",
        ["PatchEmbed", "torch.nn.Conv2d"],
    ),
    "vision_attention": (
        "Vision attention",
        "SAM and CLIP qkv/out projections, SDPA, SAM decomposed relative-position einsums and the "
        "materialised [B, heads, N, N] bias.",
        ["SamAttention", "ClipAttention"],
    ),
    "vision_mlp": (
        "Vision MLP",
        "SAM MLP (GELU) and CLIP MLP (quick-GELU) with their activations.",
        ["SamMLP", "ClipMLP"],
    ),
    "norm": (
        "Normalisation",
        "LayerNorm (SAM, CLIP), LayerNorm2d (SAM neck), RMSNorm (decoder).",
        ["LayerNorm2d", "RMSNorm", "torch.nn.LayerNorm"],
    ),
    "embedding": (
        "Embeddings",
        "Decoder token embedding and the image-vector scatter; CLIP embeddings (CLS, interpolated positions).",
        ["ClipEmbeddings", "torch.nn.Embedding"],
    ),
    "projector": ("Projector", "CLIP/SAM feature concat and the linear projector 2048 → 1280.", ["MlpProjector"]),
    "decoder_attention": (
        "Decoder attention",
        "Packed q/k/v projection, RoPE, KV-cache append, causal SDPA over the cache, o_proj.",
        ["DecoderAttention"],
    ),
    "dense_mlp": ("Dense MLP", "SwiGLU of the dense decoder layers (layer 0).", ["SwiGLU"]),
    "moe_router": ("MoE router", "Gate matmul (fp32), softmax over the experts, greedy top-k.", ["MoEGate"]),
    "moe_experts": (
        "MoE experts",
        "Routed experts (grouped GEMMs over the distinct experts touched), fused shared experts, dispatch/combine.",
        ["MoE"],
    ),
    "lm_head": (
        "LM head",
        "Vocabulary projection of the last position of each sequence (DeepseekOCRForCausalLM.lm_head, a "
        "torch.nn.Linear: no class of its own).",
        [],
    ),
    "elementwise": (
        "Elementwise and copies",
        "Residual adds, SAM absolute-position add, window partition/unpartition, permute copies, "
        "newline/separator insertion: functional code inside forward(), no module class.",
        [],
    ),
}


def operator_categories() -> list[OperatorCategory]:
    """The twelve categories, in :data:`CATEGORY_IDS` order."""
    return [
        OperatorCategory(category_id=cid, display_name=name, description=desc, match_classes=list(classes))
        for cid in CATEGORY_IDS
        for name, desc, classes in [_CATEGORIES[cid]]
    ]
