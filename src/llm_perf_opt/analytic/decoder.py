"""Decoder layers: Llama-style MHA with RoPE and KV cache, dense SwiGLU, DeepSeek-V2 MoE, the stack.

One *call* of the stack processes B sequences of q new tokens each at context length L (keys
visible after the call): prefill is q = L = prompt + image slots; a decode step is q = 1 at L.
Logits come from the last position of each sequence only (:class:`LMHead`).

The MoE (router, experts at their expected load, dispatch) is in :mod:`.moe`.

Graph decode step (``kv_read`` > 0): attention is the split-KV Triton kernel pair over exactly the
filled positions (two kernels per layer, B·h·⌈L/64⌉ CTAs); its per-row key counts are written by
the host before each replay, together with the token ids and the position (three kernels outside
the graph: the ``step_inputs`` child of :class:`DecoderStack`). The attention output is already in
o_proj's layout, so there is no head-merge copy at batch 1; at batch > 1 one strided copy per layer
remains (census).
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer, Child
from llm_perf_opt.analytic.moe import (
    DISPATCH_KERNELS,
    FUSED_DISPATCH_KERNELS,
    ROUTER_KERNELS,
    ExpertMLP,
    MoE,
    MoEDispatch,
    MoERouter,
    expected_distinct_experts,
)
from llm_perf_opt.analytic.primitives import (
    AttentionCore,
    Elementwise,
    Embedding,
    KVCacheWrite,
    Linear,
    LMHead,
    RMSNorm,
    RoPE,
    SwiGLU,
)
from llm_perf_opt.specs.model_spec import DecoderSpec

__all__ = [
    "DISPATCH_KERNELS",
    "FUSED_DISPATCH_KERNELS",
    "ROUTER_KERNELS",
    "DecoderAttention",
    "DecoderLayer",
    "DecoderStack",
    "ExpertMLP",
    "MoE",
    "MoEDispatch",
    "MoERouter",
    "expected_distinct_experts",
]

DA = "decoder_attention"

ATTENTION_KERNELS_SPLIT_KV = 2
"""Eager decode attention: flash split-KV kernel + combine (same census)."""

ATTENTION_KERNELS_GRAPH = 2
"""Graph decode attention: the split-KV Triton kernels, per-block partials + combine (H200 census of the
step, torch 2.11, Triton 3.6)."""

GRAPH_STEP_INPUT_KERNELS = 3
"""Graph decode, once per step outside the graph: token ids copied in, position and key counts filled."""

GREEDY_PICK_KERNELS = 6
"""generate's pick per step: EOS mask, two-pass argmax (chunk max, argmax, gather, add), store the id."""


@frozen(kw_only=True, cache_hash=True)
class DecoderAttention(BaseLayer):
    """Packed q|k|v projection, RoPE, KV-cache append, causal SDPA over L keys, o_proj (no biases).

    q_proj, k_proj and v_proj are one matmul D → (h + 2·h_kv)·d in the runnable model: the same
    FLOPs and weights as three, one launch.
    """

    batch: int
    q_len: int
    context: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    kv_read: int = 0
    """Graph decode step: cache positions its attention reads (the filled ones, = ``context``); 0 = eager."""

    DEFAULT_CATEGORY: ClassVar[str] = DA
    formula: ClassVar[str] = (
        "FLOPs = 2·T·D·(h + 2·h_kv)·d (packed qkv) + 2·T·h·d·D + 4·B·h·q·L·d, T = B·q "
        "(decode: 8·D² + 4·L·h·d per token = 13.1 MF + 5120·L for DeepSeek-OCR)"
    )

    def build_children(self) -> tuple[Child, ...]:
        b, q, d = self.batch, self.q_len, self.hidden
        t, hq, hkv = b * q, self.heads * self.head_dim, self.kv_heads * self.head_dim

        def proj(i: int, o: int) -> Linear:
            return self.sub(Linear, tokens=t, in_features=i, out_features=o, op_category=DA)

        return (
            Child(name="qkv_proj", layer=proj(d, hq + 2 * hkv)),
            Child(
                name="rotary_emb",
                layer=self.sub(RoPE, tokens=t, heads=self.heads, kv_heads=self.kv_heads, head_dim=self.head_dim),
            ),
            Child(
                name="kv_cache",
                layer=self.sub(
                    KVCacheWrite,
                    batch=b,
                    new_tokens=q,
                    context=self.context,
                    kv_heads=self.kv_heads,
                    head_dim=self.head_dim,
                ),
            ),
            Child(
                name="sdpa",
                layer=self.sub(
                    AttentionCore,
                    batch=b,
                    heads=self.heads,
                    q_len=q,
                    kv_len=self.context,
                    head_dim=self.head_dim,
                    kv_heads=self.kv_heads,
                    causal=True,
                    kv_from_cache=q < self.context,
                    read_len=self.kv_read,
                    kernels=self._attention_kernels(),
                ),
            ),
            Child(
                name="head_merge",
                layer=self.sub(
                    Elementwise,
                    label="transpose heads back (copy)",
                    elements=t * hq,
                    flops_per_element=0.0,
                    kernels=0 if self.kv_read and b == 1 else 1,
                    op_category=DA,
                ),
            ),
            Child(name="o_proj", layer=proj(hq, d)),
        )

    def _attention_kernels(self) -> int:
        if self.kv_read:
            return ATTENTION_KERNELS_GRAPH
        return ATTENTION_KERNELS_SPLIT_KV if self.q_len == 1 and self.context > 1 else 1

@frozen(kw_only=True, cache_hash=True)
class DecoderLayer(BaseLayer):
    """input_layernorm → self_attn → add → post_attention_layernorm → MLP (dense or MoE) → add."""

    batch: int
    q_len: int
    context: int
    dec: DecoderSpec
    moe: bool
    kv_read: int = 0
    """See :class:`DecoderAttention` (graph decode)."""
    load_ratio: float = 1.0
    """Routing skew of the MoE (:class:`~llm_perf_opt.analytic.moe.MoE`); 1 = uniform."""

    formula: ClassVar[str] = "RMSNorm + DecoderAttention + add + RMSNorm + (SwiGLU(I=6848) | MoE) + add"

    def build_children(self) -> tuple[Child, ...]:
        c = self.dec
        t, d = self.batch * self.q_len, c.hidden_size
        mlp: BaseLayer = (
            self.sub(MoE, tokens=t, dec=c, graph_step=self.kv_read > 0, load_ratio=self.load_ratio)
            if self.moe
            else self.sub(SwiGLU, tokens=t, hidden=d, inter=c.intermediate_size, op_category="dense_mlp")
        )
        add = self.sub(Elementwise, label="residual add", elements=t * d, reads=2, op_category="elementwise")
        return (
            Child(name="input_layernorm", layer=self.sub(RMSNorm, tokens=t, dim=d)),
            Child(
                name="self_attn",
                layer=self.sub(
                    DecoderAttention,
                    batch=self.batch,
                    q_len=self.q_len,
                    context=self.context,
                    hidden=d,
                    heads=c.num_heads,
                    kv_heads=c.num_kv_heads,
                    head_dim=c.head_dim,
                    kv_read=self.kv_read,
                ),
            ),
            Child(name="residual1", layer=add),
            Child(name="post_attention_layernorm", layer=self.sub(RMSNorm, tokens=t, dim=d)),
            Child(name="mlp", layer=mlp),
            Child(name="residual2", layer=add),
        )


@frozen(kw_only=True, cache_hash=True)
class DecoderStack(BaseLayer):
    """One decoder call: embed, [scatter image embeddings], layers, final norm, lm_head (last positions).

    ``image_slots`` > 0 (prefill) adds the masked_scatter of the projected image vectors into the
    embedded sequence.
    """

    batch: int
    q_len: int
    context: int
    dec: DecoderSpec
    image_slots: int = 0
    kv_read: int = 0
    """See :class:`DecoderAttention` (graph decode)."""
    load_ratio: float = 1.0
    """Routing skew of the MoE layers (:class:`~llm_perf_opt.analytic.moe.MoE`); 1 = uniform."""

    formula: ClassVar[str] = "Embedding + layers (dense × first_k, MoE × rest) + RMSNorm + LMHead(B last positions)"

    def build_children(self) -> tuple[Child, ...]:
        c = self.dec
        b, t, d = self.batch, self.batch * self.q_len, c.hidden_size
        layer = {
            "batch": b, "q_len": self.q_len, "context": self.context, "dec": c, "kv_read": self.kv_read,
            "load_ratio": self.load_ratio,
        }  # fmt: skip
        kids = [Child(name="embed_tokens", layer=self.sub(Embedding, tokens=t, vocab=c.vocab_size, dim=d))]
        if self.kv_read:
            fills = self.sub(Elementwise, label="step inputs: ids copied, position and key counts filled",
                             elements=3 * b, flops_per_element=0.0, kernels=GRAPH_STEP_INPUT_KERNELS,
                             op_category="embedding")  # fmt: skip
            kids.append(Child(name="step_inputs", layer=fills))
        if self.image_slots:
            kids.append(
                Child(
                    name="image_scatter",
                    layer=self.sub(
                        Elementwise,
                        label="masked_scatter image vectors",
                        elements=t * d,
                        reads=2,
                        flops_per_element=0.0,
                        kernels=3,
                        op_category="embedding",
                    ),
                )
            )
        n_dense = min(c.first_k_dense_replace, c.num_layers)
        if n_dense:
            kids.append(
                Child(
                    name="layers.dense",
                    repetition="for",
                    count=n_dense,
                    layer=self.sub(DecoderLayer, moe=False, **layer),
                )
            )
        if c.num_layers - n_dense:
            kids.append(
                Child(
                    name="layers.moe",
                    repetition="for",
                    count=c.num_layers - n_dense,
                    layer=self.sub(DecoderLayer, moe=True, **layer),
                )
            )
        kids += [
            Child(name="norm", layer=self.sub(RMSNorm, tokens=t, dim=d)),
            Child(name="lm_head", layer=self.sub(LMHead, tokens=b, in_features=d, out_features=c.vocab_size)),
            Child(
                name="greedy_pick",
                layer=self.sub(
                    Elementwise,
                    label="greedy pick: EOS mask, two-pass argmax, store the id",
                    elements=b * c.vocab_size,
                    writes=0,
                    flops_per_element=0.0,
                    kernels=GREEDY_PICK_KERNELS,
                    op_category="lm_head",
                ),
            ),
        ]
        return tuple(kids)
