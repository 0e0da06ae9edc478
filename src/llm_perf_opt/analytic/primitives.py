"""Primitive layers: linear, conv, norms, elementwise, embedding, RoPE, attention core, KV write, SwiGLU.

Notation in the formulas: T tokens, B batch (independent sequences or windows), h heads,
d head dim, a / w / kv bytes per activation / weight / KV element (from :class:`Precision`).
FLOPs count a multiply-add as 2. ``kernels`` is the launch count of the runnable eager PyTorch
model (:mod:`llm_perf_opt.models.deepseek_ocr`: packed q/k/v and gate/up matmuls, fused RMSNorm,
3-kernel RoPE, grouped-GEMM MoE), documented per class; the roofline multiplies it by a
per-launch overhead that a calibration can fit.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer, Child, Cost

LAYERNORM2D_KERNELS = 2
"""SAM neck LayerNorm2d: F.layer_norm on a channels-last permuted view (a contiguous copy + the norm)."""
RMSNORM_KERNELS = 1
"""F.rms_norm (one fused kernel); the official HF code spends ~8 elementwise kernels instead."""
ROPE_KERNELS = 3
"""q and k rotated together: x·cos, roll(x), addcmul (the official code uses ~12)."""


@frozen(kw_only=True, cache_hash=True)
class Linear(BaseLayer):
    """y = x·Wᵀ (+ b) over T tokens."""

    tokens: int
    in_features: int
    out_features: int
    bias: bool = False

    DEFAULT_CATEGORY: ClassVar[str] = "elementwise"
    formula: ClassVar[str] = "FLOPs = 2·T·in·out; read T·in·a + (in·out + out·bias)·w; write T·out·a"

    def leaf_cost(self) -> Cost:
        """FLOPs 2·T·in·out (the bias add is fused into addmm and not counted: T·out non-matmul)."""
        t, i, o, p = self.tokens, self.in_features, self.out_features, self.prec
        params = i * o + (o if self.bias else 0)
        return self.make_cost(
            flops=2.0 * t * i * o,
            vector_flops=float(t * o) if self.bias else 0.0,
            bytes_read=t * i * p.a + params * p.w,
            bytes_written=t * o * p.a,
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=t * (i + o) * p.a,
            kernels=1,
        )


@frozen(kw_only=True, cache_hash=True)
class LMHead(Linear):
    """The vocabulary projection, computed for the LAST position of each sequence only.

    A serving engine (vLLM, and HF ``generate`` since ``num_logits_to_keep``) projects only the
    position whose next token it samples, so T = B in prefill and in every decode step.
    """

    DEFAULT_CATEGORY: ClassVar[str] = "lm_head"
    formula: ClassVar[str] = "FLOPs = 2·B·hidden·vocab (last position of each of the B sequences only)"


@frozen(kw_only=True, cache_hash=True)
class Conv2d(BaseLayer):
    """2-D convolution over a square input of side S; output side O = ⌊(S + 2p − k)/s⌋ + 1."""

    batch: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    in_side: int
    bias: bool = False

    DEFAULT_CATEGORY: ClassVar[str] = "vision_conv"
    formula: ClassVar[str] = "FLOPs = 2·B·O²·C_out·C_in·k²; read B·C_in·S²·a + weights; write B·C_out·O²·a"

    @property
    def out_side(self) -> int:
        return (self.in_side + 2 * self.padding - self.kernel) // self.stride + 1

    def leaf_cost(self) -> Cost:
        """FLOPs 2·B·O²·C_out·C_in·k² (as the counter's convolution rule; bias add not counted)."""
        b, ci, co, k, p = self.batch, self.in_channels, self.out_channels, self.kernel, self.prec
        o = self.out_side
        params = co * ci * k * k + (co if self.bias else 0)
        out_elems = b * co * o * o
        in_elems = b * ci * self.in_side**2
        return self.make_cost(
            flops=2.0 * out_elems * ci * k * k,
            vector_flops=float(out_elems) if self.bias else 0.0,
            bytes_read=in_elems * p.a + params * p.w,
            bytes_written=out_elems * p.a,
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=(in_elems + out_elems) * p.a,
            kernels=1,
        )


@frozen(kw_only=True, cache_hash=True)
class UnusedWeights(BaseLayer):
    """Parameters stored in the checkpoint but never run (CLIP's patch embedding): memory only."""

    params: int
    formula: ClassVar[str] = "weights = params·w; no FLOPs, no traffic, no launches"

    def leaf_cost(self) -> Cost:
        """Resident weights only."""
        return self.make_cost(weight_params=self.params, weight_bytes=self.params * self.prec.w)


@frozen(kw_only=True, cache_hash=True)
class Elementwise(BaseLayer):
    """A memory-bound elementwise op (or a copy): reads ``reads`` tensors of E elements, writes ``writes``.

    Used for residual adds, activations, position adds, pads, permute copies and concatenations.
    """

    label: str
    elements: float
    reads: int = 1
    writes: int = 1
    flops_per_element: float = 1.0
    kernels: int = 1
    params: int = 0
    transposing: bool = False
    """A copy that reads an operand transposed (strided): timed at ``transpose_bandwidth_efficiency``."""

    formula: ClassVar[str] = "non-matmul FLOPs = f·E; read reads·E·a (+ params·w); write writes·E·a"

    def leaf_cost(self) -> Cost:
        """Non-matmul FLOPs f·E; traffic (reads + writes)·E·a; optional small parameters."""
        e, p = self.elements, self.prec
        return self.make_cost(
            vector_flops=self.flops_per_element * e,
            bytes_read=self.reads * e * p.a + self.params * p.w,
            bytes_written=self.writes * e * p.a,
            weight_params=self.params,
            weight_bytes=self.params * p.w,
            activation_bytes=(self.reads + self.writes) * e * p.a,
            kernels=self.kernels,
        )


@frozen(kw_only=True, cache_hash=True)
class LayerNorm(BaseLayer):
    """LayerNorm over the last dim of T tokens (``affine_bias``: weight and bias, else weight only)."""

    tokens: int
    dim: int
    affine_bias: bool = True
    kernels: int = 1

    DEFAULT_CATEGORY: ClassVar[str] = "norm"
    formula: ClassVar[str] = "non-matmul FLOPs ≈ 7·T·D (mean, var, normalise, scale, shift); traffic 2·T·D·a"

    def leaf_cost(self) -> Cost:
        """Non-matmul ≈ 7 FLOPs per element; one read and one write pass (a fused lower bound)."""
        t, d, p = self.tokens, self.dim, self.prec
        params = 2 * d if self.affine_bias else d
        return self.make_cost(
            vector_flops=7.0 * t * d,
            bytes_read=t * d * p.a + params * p.w,
            bytes_written=t * d * p.a,
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=2 * t * d * p.a,
            kernels=self.kernels,
        )


@frozen(kw_only=True, cache_hash=True)
class LayerNorm2d(LayerNorm):
    """SAM neck's channel LayerNorm on [B, C, H, W] (layer_norm over channels of a permuted view)."""

    kernels: int = LAYERNORM2D_KERNELS
    formula: ClassVar[str] = "as LayerNorm over T = B·H·W positions of C channels"


@frozen(kw_only=True, cache_hash=True)
class RMSNorm(BaseLayer):
    """x · rsqrt(mean(x²) + ε) · g over T tokens (weight only)."""

    tokens: int
    dim: int

    DEFAULT_CATEGORY: ClassVar[str] = "norm"
    formula: ClassVar[str] = "non-matmul FLOPs ≈ 4·T·D; traffic 2·T·D·a + D·w"

    def leaf_cost(self) -> Cost:
        """Non-matmul ≈ 4 FLOPs per element (square, sum, scale, gain); one fused pass of traffic."""
        t, d, p = self.tokens, self.dim, self.prec
        return self.make_cost(
            vector_flops=4.0 * t * d,
            bytes_read=t * d * p.a + d * p.w,
            bytes_written=t * d * p.a,
            weight_params=d,
            weight_bytes=d * p.w,
            activation_bytes=2 * t * d * p.a,
            kernels=RMSNORM_KERNELS,
        )


@frozen(kw_only=True, cache_hash=True)
class Embedding(BaseLayer):
    """Token embedding lookup: gathers T rows of a [vocab, D] table."""

    tokens: int
    vocab: int
    dim: int

    DEFAULT_CATEGORY: ClassVar[str] = "embedding"
    formula: ClassVar[str] = "no FLOPs; read T·D·w (gathered rows) + 8·T (int64 ids); write T·D·a; weights vocab·D"

    def leaf_cost(self) -> Cost:
        """Only the gathered rows are read; the whole table is resident."""
        t, d, p = self.tokens, self.dim, self.prec
        params = self.vocab * d
        return self.make_cost(
            bytes_read=t * d * p.w + 8 * t,
            bytes_written=t * d * p.a,
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=t * d * p.a,
            kernels=1,
        )


@frozen(kw_only=True, cache_hash=True)
class RoPE(BaseLayer):
    """Rotary position embedding (rotate-half form) applied to q (h heads) and k (h_kv heads)."""

    tokens: int
    heads: int
    kv_heads: int
    head_dim: int

    DEFAULT_CATEGORY: ClassVar[str] = "decoder_attention"
    formula: ClassVar[str] = "non-matmul FLOPs = 3·T·(h + h_kv)·d (x·cos + rot(x)·sin); traffic 2·T·(h+h_kv)·d·a"

    def leaf_cost(self) -> Cost:
        """3 FLOPs per rotated element; read q, k and the cos/sin rows, write q, k."""
        p = self.prec
        elems = self.tokens * (self.heads + self.kv_heads) * self.head_dim
        return self.make_cost(
            vector_flops=3.0 * elems,
            bytes_read=elems * p.a + 2 * self.tokens * self.head_dim * p.a,
            bytes_written=elems * p.a,
            activation_bytes=2 * elems * p.a,
            kernels=ROPE_KERNELS,
        )


@frozen(kw_only=True, cache_hash=True)
class AttentionCore(BaseLayer):
    """softmax(Q·Kᵀ/√d + bias)·V for B independent sequences (fused SDPA kernel).

    ``flops`` follow the counter: 4·B·h·q·kv·d (QKᵀ and PV over every score, masked or not).
    ``executed_flops`` for a causal mask count only visible scores — query i of q new tokens sees
    kv − q + i + 1 keys, i.e. q·(kv − q) + q·(q + 1)/2 scores per head — which a flash kernel
    executes. ``bias``: an additive [B, h, q, kv] bias is materialised elsewhere and read here
    (SAM's relative positions; it rules out the flash kernel). ``kv_from_cache``: K and V are read
    from the KV cache in the KV dtype.
    """

    batch: int
    heads: int
    q_len: int
    kv_len: int
    head_dim: int
    kv_heads: int
    causal: bool = False
    bias: bool = False
    kv_from_cache: bool = False
    read_len: int = 0
    """Key/value positions the kernel reads and scores (0: exactly ``kv_len``). Set for the graph decode
    step's attention (its split-KV kernels read the filled positions, = ``kv_len``, on B·h·⌈L/64⌉ CTAs)."""
    kernels: int = 1
    """Launches: 1 fused kernel; 2 for split-KV decode (partials + combine), eager or graph."""

    DEFAULT_CATEGORY: ClassVar[str] = "decoder_attention"
    formula: ClassVar[str] = (
        "FLOPs = 4·B·h·q·kv·d (QKᵀ + PV; causal kernels execute q·(kv−q) + q(q+1)/2 scores); "
        "non-matmul ≈ 5 per score (+1 with bias); read Q, K, V (+ bias B·h·q·kv·a); write O"
    )

    @property
    def visible_scores(self) -> float:
        q, kv = self.q_len, self.kv_len
        if not self.causal:
            return float(q * kv)
        return q * (kv - q) + q * (q + 1) / 2

    def leaf_cost(self) -> Cost:
        """See the class docstring; scores are never materialised (fused kernel)."""
        b, h, q, kv, d, p = self.batch, self.heads, self.q_len, self.kv_len, self.head_dim, self.prec
        kv_bytes = p.kv if self.kv_from_cache else p.a
        scores = b * h * q * kv
        qo = b * q * h * d * p.a
        read = self.read_len or kv
        k_v = 2 * b * read * self.kv_heads * d * kv_bytes
        bias = scores * p.a if self.bias else 0
        executed = float(q * read) if self.read_len else self.visible_scores  # masked slots are still computed
        return self.make_cost(
            flops=4.0 * scores * d,
            executed_flops=4.0 * b * h * d * executed,
            vector_flops=(6.0 if self.bias else 5.0) * b * h * executed,
            bytes_read=qo + k_v + bias,
            bytes_written=qo,
            activation_bytes=2 * qo + bias + (0 if self.kv_from_cache else k_v),
            kernels=self.kernels,
        )


@frozen(kw_only=True, cache_hash=True)
class KVCacheWrite(BaseLayer):
    """Append the new tokens' K and V to a preallocated cache of ``context`` tokens per sequence.

    A serving engine writes in place (paged or preallocated cache); HF's DynamicCache instead
    re-copies the whole cache with ``torch.cat`` every step, which this model does not charge.
    """

    batch: int
    new_tokens: int
    context: int
    kv_heads: int
    head_dim: int

    DEFAULT_CATEGORY: ClassVar[str] = "decoder_attention"
    formula: ClassVar[str] = "write 2·B·n·h_kv·d·kv bytes; KV cache resident 2·B·context·h_kv·d·kv bytes"

    def leaf_cost(self) -> Cost:
        """Traffic of the n new tokens; the resident cache holds ``context`` tokens."""
        p = self.prec
        per_token = 2 * self.kv_heads * self.head_dim
        new = self.batch * self.new_tokens * per_token
        return self.make_cost(
            bytes_read=new * p.a,
            bytes_written=new * p.kv,
            kv_cache_bytes=self.batch * self.context * per_token * p.kv,
            activation_bytes=new * p.a,
            kernels=2,
        )


@frozen(kw_only=True, cache_hash=True)
class SwiGLU(BaseLayer):
    """down(silu(gate(x)) · up(x)) over T tokens, hidden D, intermediate I, no biases.

    gate_proj and up_proj run as one packed matmul D → 2·I (same FLOPs and weights, one launch).
    """

    tokens: int
    hidden: int
    inter: int

    DEFAULT_CATEGORY: ClassVar[str] = "dense_mlp"
    formula: ClassVar[str] = (
        "FLOPs = 3 · 2·T·D·I (gate|up packed, down); non-matmul ≈ 5·T·I (silu, mul: 3 reads + 2 writes of T·I)"
    )

    def build_children(self) -> tuple[Child, ...]:
        cat = self.op_category or self.DEFAULT_CATEGORY
        t, d, i = self.tokens, self.hidden, self.inter
        return (
            Child(
                name="gate_up_proj",
                layer=self.sub(Linear, tokens=t, in_features=d, out_features=2 * i, op_category=cat),
            ),
            Child(
                name="act_fn",
                layer=self.sub(
                    Elementwise,
                    label="silu(gate)·up",
                    elements=t * i,
                    reads=3,  # silu reads gate and writes its output; the product reads it and up
                    writes=2,
                    flops_per_element=5.0,
                    kernels=2,
                    op_category=cat,
                ),
            ),
            Child(name="down_proj", layer=self.sub(Linear, tokens=t, in_features=i, out_features=d, op_category=cat)),
        )
