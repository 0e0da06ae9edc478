"""The elementwise pieces of the vision blocks: residual adds, layout copies and a code's extra kernels.

Shared by SAM (:mod:`.sam`) and CLIP (:mod:`.clip`); each is an :class:`~.primitives.Elementwise` of
the caller's stage and precision.
"""

from __future__ import annotations

from llm_perf_opt.analytic.base import BaseLayer
from llm_perf_opt.analytic.primitives import Elementwise

VA, VM, EW = "vision_attention", "vision_mlp", "elementwise"
"""Operator categories of the vision layers."""


def residual(layer: BaseLayer, elements: int, *, strided: bool = False) -> Elementwise:
    """``strided``: one operand is SAM's channel-major residual stream, so the add runs as a strided kernel."""
    return layer.sub(
        Elementwise, label="residual add", elements=elements, reads=2, op_category=EW, transposing=strided
    )


def code_extra(layer: BaseLayer, kernels: int) -> Elementwise:
    """Kernels another implementation's code issues beyond the tree (no FLOPs, negligible bytes): the official
    code's autocast casts and hand-written norms (``HF_OFFICIAL.sam_extra_kernels``, ``clip_extra_kernels``)."""
    return layer.sub(
        Elementwise, label="code's extra kernels (casts)", elements=0, flops_per_element=0.0, kernels=kernels,
        op_category=EW,
    )  # fmt: skip


def stream_copy(layer: BaseLayer, elements: int) -> Elementwise:
    """The copy a LayerNorm makes of SAM's residual stream before it normalises: the patch embedding's
    output is [B, C, H, W] in memory seen as [B, H, W, C] (the official ``permute(0, 2, 3, 1)``), and every
    add keeps that layout, so each of the block's two norms first copies it to contiguous (H200,
    benchmarks/bench_sam_ops.py: 32 copies of [B, H, W, 768] per pass at 0.55–0.74 TB/s)."""
    return layer.sub(
        Elementwise,
        label="residual stream to contiguous (copy)",
        elements=elements,
        flops_per_element=0.0,
        op_category=EW,
        transposing=True,
    )


def head_merge(layer: BaseLayer, elements: int) -> Elementwise:
    """The copy that permutes a vision attention's heads back to [tokens, width] (SAM and CLIP alike)."""
    return layer.sub(
        Elementwise, label="permute heads back (copy)", elements=elements, flops_per_element=0.0, op_category=VA
    )
