"""Which code runs the model: ``ours`` (llm_perf_opt's model) or ``hf-official`` (the checkpoint's own code).

The same weights and the same image tokens cost different time under different code. This
module states, for each implementation, what its code does per call and per decode step — FLOPs
as ``torch.utils.flop_counter`` counts them, kernels per layer, host synchronisations, the
positions the lm_head projects, the attention form and the MoE dispatch — and turns them into a
decode-step time. Pure Python: no torch, no numpy.

``hf-official`` (``modeling_deepseekocr.py`` + ``modeling_deepseekv2.py``, transformers 4.46.3,
``infer()`` → ``generate``; facts read from that code, kernel counts checked by
``scripts/official_flops.py`` with an operator counter on the code itself):

* lm_head on EVERY prompt position in prefill: ``DeepseekOCRForCausalLM.forward`` projects all
  hidden states and casts the logits to fp32 (no ``num_logits_to_keep``), and generate clones that
  whole tensor (``outputs.logits.clone()[:, -1, :]``): 2·B·P·D·V FLOPs and a B·P·V fp32 tensor
  (≈ 0.47 GB for a 913-token Gundam A4 page) written and copied, instead of 2·B·D·V;
* MoE dispatch ``moe_infer``: per-expert token counts are moved to the host
  (``tokens_per_expert.cpu().numpy()``) in every MoE layer of every forward — one host sync per
  MoE layer (11 per decode step) — then a Python loop launches one small SwiGLU (3 GEMMs + SiLU +
  mul) per expert that got tokens (6 at batch-1 decode);
* attention ``mha_eager`` → transformers' ``LlamaAttention`` (eager: matmul, fp32 softmax,
  materialised 4-D causal mask), RoPE recomputed in every layer from ``position_ids`` (one small
  fp32 bmm per layer) and ``DynamicCache`` growing by ``torch.cat`` (the whole cache is copied
  every step);
* the generate loop: ``prepare_inputs_for_generation`` (position ids from a cumsum of the
  attention mask), logits processors (``no_repeat_ngram_size`` bans n-grams on the HOST from
  ``input_ids.tolist()`` every step), the EOS stopping check (a host sync per step).

``ours``: one packed qkv GEMM + SDPA over a preallocated cache, grouped-GEMM MoE without host
syncs, lm_head on the last position only, the n-gram ban only when asked for.
"""

from __future__ import annotations

from attrs import frozen

from llm_perf_opt.analytic.base import BF16, BaseLayer, Precision
from llm_perf_opt.analytic.decoder import DISPATCH_KERNELS, DecoderStack
from llm_perf_opt.analytic.deepseek_ocr import build_stages
from llm_perf_opt.analytic.moe import expected_distinct_experts
from llm_perf_opt.errors import unknown_id
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload

IMPLEMENTATIONS = ("ours", "hf-official")
"""Valid values of the ``implementation`` input (``vllm`` and others may follow)."""


@frozen(kw_only=True)
class Implementation:
    """What one implementation's code does, in words and counts."""

    name: str
    """Id: ``ours`` or ``hf-official``."""
    lm_head_positions: str
    """``last`` (one position per sequence) or ``all`` (every prompt position in prefill)."""
    attention_form: str
    """How attention is computed."""
    moe_dispatch: str
    """How routed tokens reach the experts."""
    kv_cache: str
    """How the KV cache grows."""
    ngram_ban: str
    """Where ``no_repeat_ngram_size`` runs."""
    attention_kernels: int
    """Kernels of one decoder attention block in a decode step (norm before it excluded); hf-official only,
    ours takes its per-layer counts from the analytic layer tree."""
    dense_mlp_kernels: int
    """Kernels of one dense MLP block (layer 0) in a decode step."""
    moe_base_kernels: int
    """Kernels of one MoE block that do not depend on how many experts got tokens (gate, sort, combine, shared)."""
    moe_per_expert_kernels: int
    """Kernels per expert that got tokens (0 for a grouped GEMM over all experts)."""
    layer_kernels: int
    """Kernels of a decoder layer outside attention and MLP: 2 RMSNorms and 2 residual adds."""
    forward_kernels: int
    """Kernels of one decode forward outside the layers: embedding, masks, final norm, lm_head, logits cast."""
    loop_kernels: int
    """Kernels of the generate loop per step outside the forward (input prep, EOS mask, argmax, bookkeeping)."""
    syncs_per_moe_layer: int
    """Host synchronisations per MoE layer per forward."""
    loop_syncs: int
    """Host synchronisations of the generate loop per step (EOS / stopping check)."""
    ngram_size: int = 0
    """``no_repeat_ngram_size`` its generate call uses (0: no n-gram ban; the official ``infer()``: 20)."""
    sam_extra_kernels: int = 0
    """Kernels per SAM call beyond the analytic SAM tree (ours: 0, the tree follows our code)."""
    clip_extra_kernels: int = 0
    """Kernels per CLIP call beyond the analytic CLIP tree (ours: 0)."""


OURS = Implementation(
    name="ours",
    lm_head_positions="last",
    attention_form="packed qkv GEMM, RoPE, SDPA (flash / memory-efficient) over a preallocated cache; "
    "split-KV Triton kernels in the graph decode step",
    moe_dispatch="grouped GEMM over all experts on the device, no host sync; the graph decode step's "
    "fused Triton MoE (routed + shared experts) up to 96 token-expert pairs",
    kv_cache="preallocated, written in place",
    ngram_ban="host, only when no_repeat_ngram_size > 0",
    # Per-block counts of ours come from the analytic layer tree (layer_kernels), not from here.
    attention_kernels=0,
    dense_mlp_kernels=0,
    moe_base_kernels=DISPATCH_KERNELS,
    moe_per_expert_kernels=0,
    layer_kernels=0,
    forward_kernels=0,
    # generate's pick(): EOS mask, argmax, store the id; + where / or once EOS is allowed.
    loop_kernels=3,
    syncs_per_moe_layer=0,
    loop_syncs=0,
)

HF_OFFICIAL = Implementation(
    name="hf-official",
    lm_head_positions="all",
    attention_form="transformers 4.46.3 LlamaAttention eager: 3 GEMMs, RoPE recomputed per layer, matmul + "
    "fp32 softmax + matmul with a materialised 4-D mask",
    moe_dispatch="per-expert Python loop; tokens_per_expert.cpu() in every MoE layer (one host sync each)",
    kv_cache="DynamicCache, torch.cat of the whole cache every step",
    ngram_ban="host: input_ids.tolist() and a Python n-gram table every step (infer(): n = 20)",
    # Counted by scripts/official_flops.py (aten operators of one decode forward, bf16, autocast):
    # attention 3 proj GEMMs + RoPE recomputed (casts, bmm, cat, cos, sin, scaling, casts) + rotate_half
    # for q and k + 2 cache cats + QKᵀ, /√d, + mask, fp32 softmax, cast, PV, contiguous, o_proj = 33;
    # dense SwiGLU 3 GEMMs + SiLU + mul = 5; MoE: fp32 gate (casts, GEMM, softmax, top-k, scale),
    # counts (new_zeros, scatter_, sum), argsort, gather, .cpu(), cat, index_put, combine, shared
    # SwiGLU, add = 27, plus 3 GEMMs + SiLU + mul per expert that got tokens; RMSNorm = 8 (fp32 cast,
    # pow, mean, +eps, rsqrt, mul, cast back, weight mul); outside the layers: final norm, embedding,
    # 4-D mask from the 2-D one (4), lm_head, logits.float() = 15.
    attention_kernels=33,
    dense_mlp_kernels=5,
    moe_base_kernels=27,
    moe_per_expert_kernels=5,
    layer_kernels=2 * 8 + 2,
    forward_kernels=15,
    # From transformers 4.46.3 GenerationMixin._sample (read, not counted): position ids (cumsum, -1,
    # ==0, masked_fill_), cache_position arange, logits clone, MinNewTokens (arange, isin, clone,
    # where), argmax, EOS padding arithmetic (4), ids cat, mask new_ones + cat, cache_position +1,
    # stopping criteria (full, isin, ~, &, max, ==) = 27.
    loop_kernels=27,
    syncs_per_moe_layer=1,
    loop_syncs=1,
    ngram_size=20,
    # Vision runs the same layers with more kernels: the H200 operator tables of one tiny page
    # (docs/official/h200/operators/tiny-b1-n64 against docs/validation/h200/prefill-ops/ops-tiny-b1) count
    # 684 kernel-launching operator calls per SAM call against our 446 (+130 copies: autocast casts around
    # every norm and attention; the neck's hand-written LayerNorm2d: mean, sub, pow, mean, +eps, sqrt, div,
    # mul, add; +48 aranges of the rel-pos index) and 420 per CLIP call against 297 (+170 casts, fused
    # quick-GELU casts instead of mul + sigmoid + mul). Gundam's two passes: 667 and 418 per call.
    sam_extra_kernels=684 - 446,
    clip_extra_kernels=420 - 297,
)

NGRAM_US_PER_TUPLE = 1.27
"""Host µs per (n−1)-gram key of transformers 4.46.3's ``_get_ngrams`` (tuple slice, dict get, list +)."""
NGRAM_NS_PER_COPY = 4.0
"""Host ns per list element copied by ``table.get(key, []) + [next]`` for a repeated key. Both measured
with that function's exact Python (CPython 3.11, n = 20, a page's run of identical image ids): 0.13 ms
per step at 115 ids (tiny), 0.49 at 315 (base), 0.84 at 463 (large), 2.75 at 945 (Gundam A4): a
least-squares fit of tuples · 1.27 µs + copies · 4.0 ns. Not fitted: one calibration run cannot separate
it from the per-kernel host cost."""

_BY_NAME = {i.name: i for i in (OURS, HF_OFFICIAL)}


def implementation(name: str) -> Implementation:
    """The facts of ``name`` (``ours`` or ``hf-official``); an unknown name is a UserError."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise unknown_id("implementation", name, list(IMPLEMENTATIONS)) from None


def active_experts(spec: ModelSpec, tokens: int, load_ratio: float = 1.0) -> float:
    """Experts that get at least one of ``tokens`` routed tokens.

    Uniform routing (``load_ratio`` 1): the worst (spread) case min(E, T·k), exact at batch-1 decode
    (k distinct experts per token), an upper bound otherwise. Skewed routing (analytic/moe.py): the
    expected distinct experts Σ_j 1 − (1 − s_j)^(T·k) over the pairs' shares, at least k (one token's
    k experts are distinct).
    """
    dec = spec.decoder
    e, k = dec.n_routed_experts, dec.num_experts_per_tok
    if load_ratio >= 1.0:
        return float(min(e, tokens * k))
    return expected_distinct_experts(tokens, e, k, load_ratio)


def expert_loop_kernels(spec: ModelSpec, name: str = "ours", *, tokens: int, load_ratio: float = 1.0) -> float:
    """Kernels of one forward's per-expert Python loops (every MoE layer) over ``tokens`` routed tokens.

    hf-official: moe_per_expert_kernels × the experts that got tokens × MoE layers (a prefill of ≥ 11
    tokens touches all 64 experts in each of the 11 MoE layers: 3520 kernels); ours: 0 (grouped GEMM).
    """
    impl, dec = implementation(name), spec.decoder
    moe_layers = dec.num_layers - dec.first_k_dense_replace
    return float(moe_layers * impl.moe_per_expert_kernels * active_experts(spec, tokens, load_ratio))


def rope_bmm_flops(spec: ModelSpec, tokens: int) -> float:
    """hf-official: LlamaRotaryEmbedding's [B, d/2, 1] @ [B, 1, T] fp32 bmm in every layer: 2·(d/2)·T per layer."""
    dec = spec.decoder
    return float(dec.num_layers * dec.head_dim * tokens)


def stage_flops(
    spec: ModelSpec, workload: Workload, name: str = "ours", precision: Precision = BF16
) -> dict[str, float]:
    """FLOPs (flop-counter convention) of vision, projector, prefill and all decode steps of one call.

    hf-official = ours + the lm_head on the other B·(P − 1) prompt positions + RoPE's per-layer bmm.
    Vision and projector are the same code path in both (same FLOPs).
    """
    impl = implementation(name)
    stages = build_stages(spec, workload, precision)
    out = {stage: float(layer.cost().flops) for stage, layer in stages.items()}
    if impl.name == "hf-official":
        b, p, dec = workload.batch_size, workload.prefill_tokens, spec.decoder
        out["prefill"] += 2.0 * b * (p - 1) * dec.hidden_size * dec.vocab_size + rope_bmm_flops(spec, b * p)
        steps = max(workload.max_new_tokens - 1, 0)
        out["decode"] += steps * rope_bmm_flops(spec, b)
    return out


def decode_step_flops(
    spec: ModelSpec, workload: Workload, name: str = "ours", *, context: int, precision: Precision = BF16
) -> float:
    """FLOPs of one decode forward of B sequences whose keys (the new one included) number ``context``."""
    impl = implementation(name)
    b = workload.batch_size
    step = DecoderStack(batch=b, q_len=1, context=context, dec=spec.decoder, stage="decode", prec=precision)
    extra = rope_bmm_flops(spec, b) if impl.name == "hf-official" else 0.0
    return float(step.cost().flops) + extra


def layer_kernels(spec: ModelSpec, name: str = "ours", *, batch: int = 1, load_ratio: float = 1.0) -> dict[str, float]:
    """Kernels of one decode forward: per dense layer, per MoE layer, and outside the layers.

    hf-official: from the per-block counts above (MoE with min(E, B·k) experts looping). ours: the
    analytic layer tree's own kernel counts (DecoderStack of one decode step).
    """
    impl = implementation(name)
    if impl.name == "ours":
        step = DecoderStack(batch=batch, q_len=1, context=2, dec=spec.decoder, stage="decode", prec=BF16)
        per = {c.name: float(c.layer.cost().kernels) for c in step.children()}
        outside = sum(v for k, v in per.items() if not k.startswith("layers."))
        return {
            "dense_layer": per.get("layers.dense", 0.0),
            "moe_layer": per.get("layers.moe", 0.0),
            "outside": outside,
        }
    moe = impl.moe_base_kernels + impl.moe_per_expert_kernels * active_experts(spec, batch, load_ratio)
    shared = impl.attention_kernels + impl.layer_kernels
    return {
        "dense_layer": float(shared + impl.dense_mlp_kernels),
        "moe_layer": float(shared + moe),
        "outside": float(impl.forward_kernels),
    }


def decode_step_kernels(
    spec: ModelSpec, name: str = "ours", *, batch: int = 1, ngram: bool = False, load_ratio: float = 1.0
) -> int:
    """Kernels of one decode step: the forward (every layer) plus the generate loop's own."""
    impl = implementation(name)
    parts = layer_kernels(spec, name, batch=batch, load_ratio=load_ratio)
    dec = spec.decoder
    dense = dec.first_k_dense_replace
    total = (
        parts["outside"]
        + dense * parts["dense_layer"]
        + (dec.num_layers - dense) * parts["moe_layer"]
        + impl.loop_kernels
    )
    if ngram:
        total += 2  # the scores clone and the banned ids written into them (index_put)
    return round(total)


def decode_step_syncs(spec: ModelSpec, name: str = "ours", *, ngram: bool = False, eos_check: bool = True) -> int:
    """Host synchronisations per decode step: MoE layers × syncs per layer + the loop's (EOS check, n-gram ids)."""
    impl = implementation(name)
    moe_layers = spec.decoder.num_layers - spec.decoder.first_k_dense_replace
    loop = impl.loop_syncs if eos_check or impl.name == "hf-official" else 0
    return moe_layers * impl.syncs_per_moe_layer + loop + (1 if ngram else 0)


def decode_step_host_ms(
    spec: ModelSpec,
    workload: Workload,
    name: str = "ours",
    *,
    context: int,
    host_overhead_us: float,
    sync_us: float,
    ngram: int = 0,
    ngram_us_per_tuple: float = 0.0,
    ngram_ns_per_copy: float = 0.0,
) -> float:
    """Host time of one eager decode step at ``context`` keys, in ms.

    kernels · issue cost + syncs · round trip + (with ``ngram`` = n > 0) the host n-gram table
    (:func:`ngram_host_work`). In hf-official a sync in every MoE layer keeps the host from running
    ahead of the GPU, so a step costs this plus the GPU time of its kernels (no overlap); the
    coefficients are fitted on a measured run.
    """
    b = workload.batch_size
    kernels = decode_step_kernels(spec, name, batch=b, ngram=ngram > 0)
    syncs = decode_step_syncs(spec, name, ngram=ngram > 0)
    tuples, copies = ngram_host_work(workload, ngram, context=context) if ngram > 0 else (0, 0)
    us = kernels * host_overhead_us + syncs * sync_us + tuples * ngram_us_per_tuple + copies * ngram_ns_per_copy / 1e3
    return us / 1000.0


def prefill_extra_bytes(spec: ModelSpec, workload: Workload, name: str = "ours", precision: Precision = BF16) -> float:
    """hf-official prefill extra bytes: B·(P − 1) more logits: lm_head writes them (a bytes), ``.float()``
    reads and writes them (a + 4), generate's ``outputs.logits.clone()`` reads and writes them (4 + 4)."""
    if implementation(name).name != "hf-official":
        return 0.0
    from llm_perf_opt.analytic.base import DTYPE_BYTES

    b, p, v = workload.batch_size, workload.prefill_tokens, spec.decoder.vocab_size
    a = DTYPE_BYTES[precision.activation_dtype]
    return float(b * (p - 1) * v * (a + a + 4 + 4 + 4))


def decode_step_extra_bytes(
    spec: ModelSpec, workload: Workload, name: str = "ours", *, context: int, precision: Precision = BF16
) -> float:
    """Extra DRAM bytes of hf-official per step: DynamicCache's torch.cat reads and writes all K and V."""
    if implementation(name).name != "hf-official":
        return 0.0
    from llm_perf_opt.analytic.base import DTYPE_BYTES

    dec = spec.decoder
    kv = DTYPE_BYTES[precision.kv_dtype]
    per_layer = 2 * workload.batch_size * context * dec.num_kv_heads * dec.head_dim * kv
    return float(dec.num_layers * per_layer * 2)


def ngram_host_work(workload: Workload, n: int, *, context: int) -> tuple[int, int]:
    """(n-gram tuples built, list elements copied) by transformers' NoRepeatNGramLogitsProcessor in ONE step.

    hf-official rebuilds the whole table every step from ``input_ids.tolist()`` (B rows of ``context``
    ids): one (n−1)-tuple per position, and ``table[key] = table.get(key, []) + [next]`` copies the
    list of a repeated key each time. The image slots all hold one id, so the key of n−1 image ids
    repeats I − n + 1 times and its list copies sum to (I − n + 1)(I − n + 2)/2 elements — quadratic
    in the page's image tokens. Multiply by calibrated host costs (µs per tuple, ns per element).
    """
    if n < 2 or context < n:
        return 0, 0
    b = workload.batch_size
    tuples = b * (context - n + 1)
    repeats = max(workload.image_tokens - n + 1, 0)
    return tuples, b * repeats * (repeats + 1) // 2


def ngram_host_us(workload: Workload, n: int, *, context: int) -> float:
    """Host µs of one step's n-gram ban at ``context`` ids per row (:func:`ngram_host_work` × the measured costs)."""
    tuples, copies = ngram_host_work(workload, n, context=context)
    return tuples * NGRAM_US_PER_TUPLE + copies * NGRAM_NS_PER_COPY / 1e3


def build_implementation_stages(
    spec: ModelSpec, workload: Workload, precision: Precision, execution: str, name: str, load_ratio: float = 1.0
) -> dict[str, BaseLayer]:
    """The stage layers of ``name`` under the MoE routing skew ``load_ratio``: ours as built by ``build_stages``;
    hf-official always eager (its per-expert loop runs one SwiGLU per expert that got tokens)."""
    from llm_perf_opt.analytic.official_tree import official_stages  # that module builds on this one

    impl = implementation(name)
    if impl.name == "ours":
        return build_stages(spec, workload, precision, execution, load_ratio)
    stages = build_stages(spec, workload, precision, "eager", load_ratio)
    return official_stages(stages, spec, workload, precision, load_ratio)
