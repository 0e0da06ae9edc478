"""Decoder layers: Llama-style MHA with RoPE and KV cache, dense SwiGLU, DeepSeek-V2 MoE, the stack.

One *call* of the stack processes B sequences of q new tokens each at context length L (keys
visible after the call): prefill is q = L = prompt + image slots; a decode step is q = 1 at L.
Logits come from the last position of each sequence only (:class:`LMHead`).

MoE weight traffic: T routed tokens each pick k of E experts. Under uniform, independent routing
an expert is missed by one token with probability 1 − k/E, so the expected number of DISTINCT
experts a call touches (and whose weights it must read) is E·(1 − (1 − k/E)^T): 6 at batch-1
decode, ≈ 64 for a long prefill. Real routing is skewed (tokens of one sequence favour the same
experts), so for 1 < T ≲ 100 this errs high; it is exact at T = 1. FLOPs do not depend on routing:
every token runs k experts.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer, Child, Cost
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

DA, MOE, ROUTER = "decoder_attention", "moe_experts", "moe_router"
DISPATCH_KERNELS = 18
"""Grouped-GEMM MoE of the runnable model, whatever k and E (CUDA kernel census of a decode step, H200,
torch 2.11: benchmarks/bench_decode_kernels.py): sort (arange + radix sort), ÷k, gather, searchsorted,
2 × (grouped-GEMM setup + GEMM), silu, mul, index_copy back, × weights in fp32, sum over k, cast, 3 copies."""

ROUTER_KERNELS = 6
"""MoEGate at decode (same census): x cast to fp32 (W_g's fp32 copy is cached), the fp32 GEMV
(dot + reduce, 2), softmax, top-k (sort + gather, 2)."""

ATTENTION_KERNELS_SPLIT_KV = 2
"""Eager decode attention: flash split-KV kernel + combine (same census)."""

ATTENTION_KERNELS_GRAPH = 1
"""Graph decode attention: the memory-efficient kernel with the step's additive mask (built once per step)."""

GRAPH_MASK_KERNELS = 3
"""Graph decode, once per step: positions > pos, zeros, masked_fill (same census)."""


def expected_distinct_experts(tokens: float, experts: int, top_k: int) -> float:
    """E·(1 − (1 − k/E)^T): expected distinct experts touched by T tokens under uniform routing."""
    if tokens <= 0:
        return 0.0
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


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
    """Cache positions attention reads (graph decode: a bucket, masked); 0 = exactly ``context``."""

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
class MoERouter(BaseLayer):
    """MoEGate: logits = x·W_gᵀ (no bias, fp32), softmax over E, greedy top-k (weights not renormalised)."""

    tokens: int
    hidden: int
    experts: int
    top_k: int
    norm_topk: bool = False

    DEFAULT_CATEGORY: ClassVar[str] = ROUTER
    formula: ClassVar[str] = "FLOPs = 2·T·D·E (= 163,840 per token); non-matmul ≈ 6·T·E (softmax, top-k)"

    def leaf_cost(self) -> Cost:
        """Gate matmul 2·T·D·E; softmax + top-k ≈ 6 per logit; writes fp32 scores, int64 ids, fp32 weights."""
        t, d, e, k, p = self.tokens, self.hidden, self.experts, self.top_k, self.prec
        params = e * d
        return self.make_cost(
            flops=2.0 * t * d * e,
            vector_flops=6.0 * t * e,
            bytes_read=t * d * p.a + params * p.w + t * e * 4,
            bytes_written=t * e * 4 + t * k * 12,
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=t * d * p.a + t * e * 8,
            kernels=ROUTER_KERNELS + (2 if self.norm_topk else 0),
        )


@frozen(kw_only=True, cache_hash=True)
class ExpertMLP(BaseLayer):
    """One routed expert (SwiGLU of width I) at its EXPECTED load: t = T·k/E tokens, touched with probability p.

    p = 1 − (1 − k/E)^T, so E experts × p = the expected distinct experts; weight reads scale
    with p, FLOPs with t. Resident weights are always 3·D·I. Launches are those of the grouped
    matmuls shared by all experts, counted in :class:`MoEDispatch`.
    """

    tokens: float
    touch_prob: float
    hidden: int
    inter: int

    DEFAULT_CATEGORY: ClassVar[str] = MOE
    formula: ClassVar[str] = "FLOPs = 3 · 2·t·D·I, t = T·k/E; weight read p·3·D·I·w, p = 1 − (1 − k/E)^T"

    def leaf_cost(self) -> Cost:
        """3 matmuls on t tokens; weights read only if the expert is touched (probability p)."""
        t, d, i, p = self.tokens, self.hidden, self.inter, self.prec
        params = 3 * d * i
        return self.make_cost(
            flops=6.0 * t * d * i,
            vector_flops=5.0 * t * i,
            bytes_read=self.touch_prob * params * p.w + t * (2 * d + 3 * i) * p.a,
            bytes_written=t * (3 * i + d) * p.a,
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=t * (d + 2 * i) * p.a,
            kernels=0,
        )


@frozen(kw_only=True, cache_hash=True)
class MoEDispatch(BaseLayer):
    """Token permutation to experts, the grouped expert launches, and the weighted combine back."""

    tokens: int
    top_k: int
    hidden: int

    DEFAULT_CATEGORY: ClassVar[str] = MOE
    formula: ClassVar[str] = "non-matmul 2·T·k·D (scale, sum); traffic ≈ (8·T·k + 2·T)·D·a (gather, cat, scatter)"

    def leaf_cost(self) -> Cost:
        """Gather T·k rows, concatenate expert outputs, scatter back, scale by weights and sum over k."""
        t, k, d, p = self.tokens, self.top_k, self.hidden, self.prec
        rows = t * k * d
        return self.make_cost(
            vector_flops=2.0 * rows,
            bytes_read=(4 * rows + t * d) * p.a,
            bytes_written=(4 * rows + t * d) * p.a,
            activation_bytes=(2 * rows + t * d) * p.a,
            kernels=DISPATCH_KERNELS,
        )


@frozen(kw_only=True, cache_hash=True)
class MoE(BaseLayer):
    """DeepSeek-V2 MoE: router, E routed experts (parfor, expected load), fused shared experts, add."""

    tokens: int
    dec: DecoderSpec

    DEFAULT_CATEGORY: ClassVar[str] = MOE
    formula: ClassVar[str] = (
        "FLOPs per token = 2·D·E + k·6·D·I + 6·D·I_shared (55.2 MF for DeepSeek-OCR); "
        "weights read = D_distinct·3·D·I + shared + gate"
    )

    def build_children(self) -> tuple[Child, ...]:
        c, t = self.dec, self.tokens
        e, k, d = c.n_routed_experts, c.num_experts_per_tok, c.hidden_size
        p_touch = expected_distinct_experts(t, e, k) / e
        kids = [
            Child(
                name="gate",
                layer=self.sub(MoERouter, tokens=t, hidden=d, experts=e, top_k=k, norm_topk=c.norm_topk_prob),
            ),
            Child(name="dispatch_combine", layer=self.sub(MoEDispatch, tokens=t, top_k=k, hidden=d)),
            Child(
                name="experts",
                repetition="parfor",
                count=e,
                layer=self.sub(
                    ExpertMLP, tokens=t * k / e, touch_prob=p_touch, hidden=d, inter=c.moe_intermediate_size
                ),
            ),
        ]
        if c.n_shared_experts:
            kids += [
                Child(
                    name="shared_experts",
                    layer=self.sub(SwiGLU, tokens=t, hidden=d, inter=c.shared_intermediate_size, op_category=MOE),
                ),
                Child(
                    name="shared_add",
                    layer=self.sub(Elementwise, label="routed + shared", elements=t * d, reads=2, op_category=MOE),
                ),
            ]
        return tuple(kids)


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

    formula: ClassVar[str] = "RMSNorm + DecoderAttention + add + RMSNorm + (SwiGLU(I=6848) | MoE) + add"

    def build_children(self) -> tuple[Child, ...]:
        c = self.dec
        t, d = self.batch * self.q_len, c.hidden_size
        mlp: BaseLayer = (
            self.sub(MoE, tokens=t, dec=c)
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

    formula: ClassVar[str] = "Embedding + layers (dense × first_k, MoE × rest) + RMSNorm + LMHead(B last positions)"

    def build_children(self) -> tuple[Child, ...]:
        c = self.dec
        b, t, d = self.batch, self.batch * self.q_len, c.hidden_size
        layer = {"batch": b, "q_len": self.q_len, "context": self.context, "dec": c, "kv_read": self.kv_read}
        kids = [Child(name="embed_tokens", layer=self.sub(Embedding, tokens=t, vocab=c.vocab_size, dim=d))]
        if self.kv_read:
            mask = self.sub(Elementwise, label="additive attention mask of the KV bucket", elements=self.kv_read,
                            flops_per_element=0.0, kernels=GRAPH_MASK_KERNELS, op_category=DA)  # fmt: skip
            kids.append(Child(name="attention_mask", layer=mask))
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
                    label="greedy pick: EOS mask, argmax, store the id",
                    elements=b * c.vocab_size,
                    writes=0,
                    flops_per_element=0.0,
                    kernels=3,
                    op_category="lm_head",
                ),
            ),
        ]
        return tuple(kids)
