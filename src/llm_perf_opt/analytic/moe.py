"""DeepSeek-V2 MoE of the decoder: router, routed experts at their expected load, dispatch, shared experts.

MoE weight traffic: T routed tokens each pick k of E experts. Under uniform, independent routing
an expert is missed by one token with probability 1 − k/E, so the expected number of DISTINCT
experts a call touches (and whose weights it must read) is E·(1 − (1 − k/E)^T): 6 at batch-1
decode, ≈ 64 for a long prefill. Real routing is skewed (tokens of one sequence favour the same
experts), so for 1 < T ≲ 100 this errs high; it is exact at T = 1. FLOPs do not depend on routing:
every token runs k experts.

Skewed routing (``load_ratio`` < 1, :func:`expert_shares`): the j-th most loaded expert receives
r^j of the top one's share of the T·k pairs (j = 0 … E − 1). The runnable model with random weights
routes that way: a census of its prefill (benchmarks/bench_moe_routing.py, H200, 83–7,304 prompt
tokens) gave the same sorted shares at every length (the top expert 14–15% of the pairs, the top six
64%), a geometric fit r = 0.84–0.86, and 23–50 distinct experts per layer where uniform routing
touches 64. Each expert is then its own child at its expected rows T·k·s_j, touched with probability
1 − (1 − s_j)^(T·k): tile padding and weight reads follow the real spread, FLOPs do not change.
A profile run measures r from its own prefill (``profile``'s routing census); trained weights are
closer to uniform (their training balances the load), which stays the default.

Dispatch (:class:`MoEDispatch`) follows the runnable model (``models/deepseek_ocr/mlp.py``): grouped
GEMMs over all experts, except in the graph decode step with at most
:data:`~llm_perf_opt.specs.execution.FUSED_MAX_PAIRS` token-expert pairs, which runs the whole MoE,
shared experts included, in three Triton kernels that read each pair's expert weights in place
(one copy per pair, so there the weight reads follow the pairs, not the distinct experts). The
runnable model's fallback where Triton cannot run (gathered weights) is not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer, Child, Cost
from llm_perf_opt.analytic.primitives import Elementwise, SwiGLU
from llm_perf_opt.specs.execution import FUSED_MAX_PAIRS
from llm_perf_opt.specs.model_spec import DecoderSpec

MOE, ROUTER = "moe_experts", "moe_router"
DISPATCH_KERNELS = 19
"""Grouped-GEMM MoE of the runnable model, whatever k and E (CUDA kernel census of a decode step, H200,
torch 2.11: benchmarks/bench_decode_kernels.py): sort (arange + radix sort), ÷k, gather, searchsorted,
2 × (grouped-GEMM setup + GEMM), silu, mul, index_copy back, × weights in fp32, sum over k, cast, 3 copies
(18 in the census), + the cast of the expert ids to uint8 sort keys added after it (models/deepseek_ocr/mlp.py)."""

FUSED_DISPATCH_KERNELS = 3
"""Fused MoE of the graph decode step at ≤ FUSED_MAX_PAIRS token-expert pairs (census of the step,
H200, torch 2.11, Triton 3.6): gate-up + SwiGLU, down (fp32 partials per pair), combine (routed sum,
shared sum, add). The shared experts run inside them: no kernels of their own, no separate add."""

ROUTER_KERNELS = 5
"""MoEGate at decode (same census): x cast to fp32 (W_g's fp32 copy is cached), the fp32 GEMV
(dot + reduce, 2), softmax, unsorted top-k (1)."""


def expert_shares(experts: int, ratio: float) -> tuple[float, ...]:
    """Share of the token-expert pairs per expert, largest first: s_j ∝ ratio^j (ratio 1: uniform, 1/E each)."""
    weights = [ratio**j for j in range(experts)]
    total = sum(weights)
    return tuple(w / total for w in weights)


CENSUS_MIN_PAIRS = 3
"""Experts with fewer pairs in a census are left out of the fit of :func:`fit_load_ratio` (counting noise)."""


def fit_load_ratio(counts: Sequence[int]) -> float:
    """The ``load_ratio`` r of one MoE layer's census (pairs per expert): least squares of log(count) on the
    rank among the experts with ≥ CENSUS_MIN_PAIRS pairs, r = exp(slope), clipped to (0, 1]; 1.0 when fewer
    than two experts qualify."""
    ranked = sorted((c for c in counts if c >= CENSUS_MIN_PAIRS), reverse=True)
    if len(ranked) < 2:
        return 1.0
    xs, ys = range(len(ranked)), [math.log(c) for c in ranked]
    mx, my = (len(ranked) - 1) / 2, sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return min(max(math.exp(slope), 1e-3), 1.0)


def expected_distinct_experts(tokens: float, experts: int, top_k: int, load_ratio: float = 1.0) -> float:
    """Expected distinct experts touched by T tokens. Uniform routing: E·(1 − (1 − k/E)^T). Skewed
    (``load_ratio`` < 1): Σ_j 1 − (1 − s_j)^(T·k) over the pairs' shares, at least min(k, T·k) (one token's
    k picks are distinct experts)."""
    if tokens <= 0:
        return 0.0
    if load_ratio >= 1.0:
        return experts * (1.0 - (1.0 - top_k / experts) ** tokens)
    pairs = tokens * top_k
    touched = sum(1.0 - (1.0 - s) ** pairs for s in expert_shares(experts, load_ratio))
    return min(float(experts), max(min(float(top_k), pairs), touched))

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
    with p, FLOPs with t. The fused dispatch reads one copy per pair and passes p = T·k/E (reads
    per expert, which may exceed 1). Resident weights are always 3·D·I. Launches are those of the grouped
    matmuls shared by all experts, counted in :class:`MoEDispatch`.
    """

    tokens: float
    touch_prob: float
    hidden: int
    inter: int
    layer_pairs: float = 0.0
    """Token-expert pairs of the grouped expert GEMMs this expert runs in (0: no grouped call: the fused
    decode kernels, a shared expert). With a measured grouped table the layer's time comes from it."""
    pair_share: float = 0.0
    """This expert's share of those pairs: its part of the layer's measured grouped-GEMM time."""
    experts: int = 0
    """Routed experts of the layer (the grouped table's key, with ``hidden`` and ``inter``)."""
    load_ratio: float = 1.0
    """Routing skew of the layer (see :func:`expert_shares`)."""

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
    """Token permutation to experts, the grouped expert launches, and the weighted combine back.

    ``fused_pairs`` > 0: the graph step's fused kernels instead, which write each pair's SwiGLU
    output (model dtype) and its fp32 down-projection partial, and read both back once.
    """

    tokens: int
    top_k: int
    hidden: int
    fused_pairs: int = 0
    """Pairs the fused kernels run (routed token-expert pairs + shared-expert blocks); 0 = grouped GEMMs."""
    fused_inter: int = 0
    """Width of one fused pair (the routed expert's intermediate size)."""

    DEFAULT_CATEGORY: ClassVar[str] = MOE
    formula: ClassVar[str] = (
        "non-matmul 2·T·k·D (scale, sum); traffic T·k·D·(5a + 16) + T·D·(8 + a) (gather, scatter, fp32 "
        "combine); fused: P·(I·a + 4·D) written and read (P pairs)"
    )

    def leaf_cost(self) -> Cost:
        """Grouped: gather T·k rows to expert order, scatter the outputs back, scale and sum over k in fp32.
        Fused: the per-pair intermediates only (the kernels read x and write y once)."""
        t, k, d, p = self.tokens, self.top_k, self.hidden, self.prec
        rows = t * k * d
        if self.fused_pairs:
            scratch = self.fused_pairs * (self.fused_inter * p.a + 4 * d)
            return self.make_cost(
                vector_flops=2.0 * rows,
                bytes_read=scratch + t * d * p.a,
                bytes_written=scratch + t * d * p.a,
                activation_bytes=scratch,
                kernels=FUSED_DISPATCH_KERNELS,
            )
        # The runnable model's grouped path (mlp.MoE.routed): rows gathered to expert order
        # (index_select), scattered back (index_copy_), then the combine in fp32 as the official code
        # does it: .float(), × weights, sum over k, cast back. Bytes per step, a = activation width:
        # read Tk·D·(3a + 8) + 4·T·D, written Tk·D·(2a + 8) + T·D·(4 + a).
        f32 = 4
        return self.make_cost(
            vector_flops=2.0 * rows,
            bytes_read=rows * (3 * p.a + 2 * f32) + t * d * f32,
            bytes_written=rows * (2 * p.a + 2 * f32) + t * d * (f32 + p.a),
            activation_bytes=rows * (p.a + 2 * f32) + t * d * p.a,
            kernels=DISPATCH_KERNELS,
        )


@frozen(kw_only=True, cache_hash=True)
class MoE(BaseLayer):
    """DeepSeek-V2 MoE: router, E routed experts (parfor, expected load), fused shared experts, add."""

    tokens: int
    dec: DecoderSpec
    graph_step: bool = False
    """Inside the graph decode step: the fused dispatch at ≤ FUSED_MAX_PAIRS token-expert pairs."""
    load_ratio: float = 1.0
    """Routing skew of the grouped dispatch (see the module docstring): 1 = uniform; the fused kernels
    read one expert copy per pair whatever the spread, so it does not apply to them."""

    DEFAULT_CATEGORY: ClassVar[str] = MOE
    formula: ClassVar[str] = (
        "FLOPs per token = 2·D·E + k·6·D·I + 6·D·I_shared (55.2 MF for DeepSeek-OCR); "
        "weights read = D_distinct·3·D·I + shared + gate (fused: T·k·3·D·I, one copy per pair)"
    )

    def build_children(self) -> tuple[Child, ...]:
        c, t = self.dec, self.tokens
        e, k, d, i = c.n_routed_experts, c.num_experts_per_tok, c.hidden_size, c.moe_intermediate_size
        fused = self._fused()
        # Fused kernels read one copy of an expert per pair: T·k expert reads = E experts × (T·k/E).
        p_touch = t * k / e if fused else expected_distinct_experts(t, e, k) / e
        shared_blocks = c.shared_intermediate_size // i if c.n_shared_experts else 0
        dispatch = self.sub(
            MoEDispatch, tokens=t, top_k=k, hidden=d,
            fused_pairs=t * (k + shared_blocks) if fused else 0, fused_inter=i if fused else 0,
        )  # fmt: skip
        kids = [
            Child(
                name="gate",
                layer=self.sub(MoERouter, tokens=t, hidden=d, experts=e, top_k=k, norm_topk=c.norm_topk_prob),
            ),
            Child(name="dispatch_combine", layer=dispatch),
            *self._experts(fused, p_touch),
        ]
        if not c.n_shared_experts:
            return tuple(kids)
        if fused:  # computed inside the fused kernels: the work of a SwiGLU, no launches of its own
            shared: BaseLayer = self.sub(
                ExpertMLP, tokens=float(t), touch_prob=1.0, hidden=d, inter=c.shared_intermediate_size
            )
            return (*kids, Child(name="shared_experts", layer=shared))
        return (
            *kids,
            Child(
                name="shared_experts",
                layer=self.sub(SwiGLU, tokens=t, hidden=d, inter=c.shared_intermediate_size, op_category=MOE),
            ),
            Child(
                name="shared_add",
                layer=self.sub(Elementwise, label="routed + shared", elements=t * d, reads=2, op_category=MOE),
            ),
        )

    def _experts(self, fused: bool, p_touch: float) -> list[Child]:
        """The routed experts: one parfor child at the uniform load, or one child per expert of a skewed spread."""
        c, t = self.dec, self.tokens
        e, k, d, i = c.n_routed_experts, c.num_experts_per_tok, c.hidden_size, c.moe_intermediate_size
        pairs = t * k
        grouped = {"layer_pairs": 0.0 if fused else float(pairs), "experts": e, "load_ratio": self.load_ratio}
        if fused or self.load_ratio >= 1.0:
            layer = self.sub(
                ExpertMLP, tokens=t * k / e, touch_prob=p_touch, hidden=d, inter=i, pair_share=1.0 / e, **grouped
            )
            return [Child(name="experts", repetition="parfor", count=e, layer=layer)]
        shares = expert_shares(e, self.load_ratio)
        touch = [1.0 - (1.0 - s) ** pairs for s in shares]
        # One token's k picks are distinct experts: the floor of expected_distinct_experts, spread over all.
        lift = expected_distinct_experts(t, e, k, self.load_ratio) / sum(touch)
        return [
            Child(
                name=f"experts.{j}",
                layer=self.sub(
                    ExpertMLP, tokens=pairs * s, touch_prob=min(1.0, p * lift), hidden=d, inter=i, pair_share=s,
                    **grouped,
                ),
            )
            for j, (s, p) in enumerate(zip(shares, touch, strict=True))
        ]

    def _fused(self) -> bool:
        """The graph step's fused dispatch: at most FUSED_MAX_PAIRS token-expert pairs, shared width whole experts."""
        c = self.dec
        whole = not c.n_shared_experts or c.shared_intermediate_size % c.moe_intermediate_size == 0
        return self.graph_step and whole and self.tokens * c.num_experts_per_tok <= FUSED_MAX_PAIRS
