"""CLIP-L layers fed by SAM features (deepseek-ocr-architecture.md §4).

CLIP takes SAM's [B, 1024, G/4, G/4] output as its patch tokens (its own patch conv is unused),
prepends CLS (L = (G/4)² + 1) and adds the interpolated position table; 24 pre-LN layers with
quick-GELU MLPs follow, with no post-layernorm.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer, Child
from llm_perf_opt.analytic.primitives import AttentionCore, Elementwise, LayerNorm, Linear, UnusedWeights
from llm_perf_opt.analytic.sam import PositionAdd, VisionMLP
from llm_perf_opt.analytic.vision_ops import VA, code_extra, residual
from llm_perf_opt.specs.model_spec import ClipSpec


@frozen(kw_only=True, cache_hash=True)
class ClipEmbeddings(BaseLayer):
    """CLIP embeddings from SAM features: flatten, prepend CLS, add the (resized) position table.

    The checkpoint's patch-embedding conv (3 → W, 14×14, no bias) is never run: resident only.
    """

    batch: int
    grid: int
    clip: ClipSpec

    formula: ClassVar[str] = "copies B·L·W (L = g² + 1); position add B·L·W; weights CLS W + table 257·W + unused conv"

    def build_children(self) -> tuple[Child, ...]:
        c, b, g = self.clip, self.batch, self.grid
        w, table = c.width, round((c.num_positions - 1) ** 0.5)
        seq = g * g + 1
        return (
            Child(
                name="patch_embedding",
                layer=self.sub(UnusedWeights, params=w * 3 * c.patch_size**2, op_category="vision_conv"),
            ),
            Child(
                name="class_embedding+flatten",
                layer=self.sub(
                    Elementwise,
                    label="flatten SAM map, prepend CLS (copy)",
                    elements=b * seq * w,
                    flops_per_element=0.0,
                    kernels=2,
                    params=w,
                    op_category="embedding",
                ),
            ),
            Child(
                name="position_embedding",
                layer=self.sub(
                    PositionAdd, batch=b, grid=g, width=w, table_grid=table, extra_rows=1, op_category="embedding"
                ),
            ),
        )


@frozen(kw_only=True, cache_hash=True)
class ClipAttention(BaseLayer):
    """CLIP self-attention: qkv_proj (bias) → SDPA (no mask, flash-eligible) → out_proj (bias)."""

    batch: int
    seq: int
    width: int
    heads: int

    DEFAULT_CATEGORY: ClassVar[str] = VA
    formula: ClassVar[str] = "FLOPs = 2·B·L·W·3W + 4·B·h·L²·d + 2·B·L·W·W"

    def build_children(self) -> tuple[Child, ...]:
        t, w, h = self.batch * self.seq, self.width, self.heads
        return (
            Child(
                name="qkv_proj",
                layer=self.sub(Linear, tokens=t, in_features=w, out_features=3 * w, bias=True, op_category=VA),
            ),
            Child(
                name="sdpa",
                layer=self.sub(
                    AttentionCore,
                    batch=self.batch,
                    heads=h,
                    q_len=self.seq,
                    kv_len=self.seq,
                    head_dim=w // h,
                    kv_heads=h,
                    op_category=VA,
                ),
            ),
            # No head-merge copy: the flash kernel writes its output as [B, L, h, d], so transpose + reshape
            # is a view (CLIP's operator table has no copy_: docs/validation/h200/prefill-ops/ops-base-b1).
            Child(
                name="out_proj",
                layer=self.sub(Linear, tokens=t, in_features=w, out_features=w, bias=True, op_category=VA),
            ),
        )


@frozen(kw_only=True, cache_hash=True)
class ClipLayer(BaseLayer):
    """Pre-LN CLIP layer: h = x + attn(LN1(x)); out = h + MLP(LN2(h)) with quick-GELU."""

    batch: int
    seq: int
    clip: ClipSpec

    formula: ClassVar[str] = "per layer FLOPs = 2·T·W·(3W + W + 2·F) + 4·B·h·L²·d, T = B·L"

    def build_children(self) -> tuple[Child, ...]:
        c, t = self.clip, self.batch * self.seq
        return (
            Child(name="layer_norm1", layer=self.sub(LayerNorm, tokens=t, dim=c.width)),
            Child(
                name="self_attn",
                layer=self.sub(ClipAttention, batch=self.batch, seq=self.seq, width=c.width, heads=c.num_heads),
            ),
            Child(name="residual1", layer=residual(self, t * c.width)),
            Child(name="layer_norm2", layer=self.sub(LayerNorm, tokens=t, dim=c.width)),
            Child(name="mlp", layer=self.sub(VisionMLP, tokens=t, width=c.width, hidden=c.ffn_dim, quick_gelu=True)),
            Child(name="residual2", layer=residual(self, t * c.width)),
        )


@frozen(kw_only=True, cache_hash=True)
class ClipEncoder(BaseLayer):
    """CLIP-L over a batch of SAM feature maps of side g: embeddings, pre_layrnorm, layers (no post-LN)."""

    batch: int
    grid: int
    clip: ClipSpec
    extra_kernels: int = 0
    """Kernels the running code issues per call beyond this tree (0 for ours; the official code's casts)."""

    formula: ClassVar[str] = "embeddings + pre_layrnorm + num_layers × ClipLayer over L = g² + 1 tokens"

    def build_children(self) -> tuple[Child, ...]:
        c, b = self.clip, self.batch
        seq = self.grid**2 + 1
        extra = (Child(name="code_extra", layer=code_extra(self, self.extra_kernels)),) if self.extra_kernels else ()
        return (
            Child(name="embeddings", layer=self.sub(ClipEmbeddings, batch=b, grid=self.grid, clip=c)),
            Child(name="pre_layrnorm", layer=self.sub(LayerNorm, tokens=b * seq, dim=c.width)),
            Child(
                name="transformer.layers",
                repetition="for",
                count=c.num_layers,
                layer=self.sub(ClipLayer, batch=b, seq=seq, clip=c),
            ),
            *extra,
        )
