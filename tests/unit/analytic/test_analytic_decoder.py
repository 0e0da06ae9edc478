"""Decoder layers: per-token FLOPs of Appendix A, KV-cache bytes, MoE distinct experts, weights."""

from __future__ import annotations

import pytest

from llm_perf_opt.analytic.base import Precision
from llm_perf_opt.analytic.decoder import (
    DecoderAttention,
    DecoderLayer,
    DecoderStack,
    ExpertMLP,
    MoE,
    expected_distinct_experts,
)
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR, TINY

DEC = DEEPSEEK_OCR.decoder
ATTN_PROJ = 4 * 2 * 1280 * 1280  # 13.1 MF per token per layer
DENSE = 3 * 2 * 1280 * 6848  # 52.6 MF
MOE = 2 * 1280 * 64 + 6 * 3 * 2 * 1280 * 896 + 3 * 2 * 1280 * 1792  # 55.2 MF incl. router
LM_HEAD = 2 * 1280 * 129280  # 331.0 MF
MATMUL_PER_TOKEN = 12 * ATTN_PROJ + DENSE + 11 * MOE + LM_HEAD


@pytest.mark.parametrize("context", [1, 17, 913, 4096])
def test_decode_step_flops_per_token(context: int) -> None:
    """Matmuls 1.148 GF plus attention scores 4·L·1280 per layer (QKᵀ and PV over L keys)."""
    step = DecoderStack(batch=1, q_len=1, context=context, dec=DEC, stage="decode")
    assert step.forward_flops() == MATMUL_PER_TOKEN + 12 * 4 * context * 1280
    attn = DecoderAttention(batch=1, q_len=1, context=context, hidden=1280, heads=10, kv_heads=10, head_dim=128)
    assert attn.forward_flops() == ATTN_PROJ + 4 * context * 1280
    # Norms, RoPE, softmax, SiLU and adds are counted apart, never in forward_flops.
    assert step.cost().vector_flops > 0


def test_moe_and_dense_layer_flops_per_token() -> None:
    moe = MoE(tokens=1, dec=DEC)
    assert moe.forward_flops() == pytest.approx(MOE, rel=1e-12)
    dense = DecoderLayer(batch=1, q_len=1, context=1, dec=DEC, moe=False)
    assert dense.forward_flops() == ATTN_PROJ + 4 * 1280 + DENSE


def test_kv_cache_is_61440_bytes_per_token_in_bf16() -> None:
    for ctx in (1, 100, 8192):
        step = DecoderStack(batch=1, q_len=1, context=ctx, dec=DEC)
        assert step.kv_cache_bytes() == 61_440 * ctx
    fp8 = DecoderStack(batch=2, q_len=1, context=10, dec=DEC, prec=Precision(kv_dtype="fp8"))
    assert fp8.kv_cache_bytes() == 30_720 * 10 * 2


def test_expected_distinct_experts() -> None:
    assert expected_distinct_experts(1, 64, 6) == pytest.approx(6.0)
    assert expected_distinct_experts(2, 64, 6) == pytest.approx(64 * (1 - (58 / 64) ** 2))
    assert expected_distinct_experts(913, 64, 6) == pytest.approx(64.0, abs=1e-9)
    assert expected_distinct_experts(0, 64, 6) == 0.0


@pytest.mark.parametrize("tokens", [1, 4, 37, 913])
def test_moe_weight_traffic_is_distinct_experts(tokens: int) -> None:
    moe = MoE(tokens=tokens, dec=DEC)
    experts = dict((c.name, c) for c in moe.children())["experts"]
    assert (experts.repetition, experts.count) == ("parfor", 64)
    expert = experts.layer
    assert isinstance(expert, ExpertMLP)
    expert_bytes = 3 * 1280 * 896 * 2
    weight_read = 64 * expert.touch_prob * expert_bytes
    assert weight_read == pytest.approx(expected_distinct_experts(tokens, 64, 6) * expert_bytes)
    # FLOPs do not depend on routing: every token runs k = 6 experts.
    assert 64 * expert.forward_flops() == pytest.approx(tokens * 6 * 3 * 2 * 1280 * 896)
    assert moe.weight_params() == 81_920 + 64 * 3_440_640 + 6_881_280  # all experts resident


def test_decode_step_reads_the_active_weights() -> None:
    """Reference: a decode step reads attention, dense, shared, gate, 6 experts/layer and lm_head ≈ 1.148 GB."""
    step = DecoderStack(batch=1, q_len=1, context=1, dec=DEC)
    active_params = 574_127_360  # A570M incl. lm_head (deepseek-ocr-architecture.md §2.3 and Appendix A)
    assert step.bytes_read() == pytest.approx(2 * active_params, rel=5e-3)


def test_decoder_weights() -> None:
    stack = DecoderStack(batch=1, q_len=5, context=5, dec=DEC, image_slots=3)
    assert stack.weight_params() == 2_934_734_080
    layers = {c.name: c for c in stack.children()}
    assert (layers["layers.dense"].count, layers["layers.moe"].count) == (1, 11)
    assert layers["layers.dense"].layer.weight_params() == 32_852_480
    assert layers["layers.moe"].layer.weight_params() == 233_720_320


def test_prefill_lm_head_only_last_positions() -> None:
    stack = DecoderStack(batch=3, q_len=50, context=50, dec=TINY.decoder)
    head = {c.name: c.layer for c in stack.children()}["lm_head"]
    assert head.forward_flops() == 2 * 3 * TINY.decoder.hidden_size * TINY.decoder.vocab_size


def test_prefill_causal_attention_executes_the_lower_triangle() -> None:
    p = 100
    attn = DecoderAttention(batch=1, q_len=p, context=p, hidden=1280, heads=10, kv_heads=10, head_dim=128)
    core = {c.name: c.layer for c in attn.children()}["sdpa"]
    assert core.forward_flops() == 4 * p * p * 1280
    assert core.cost().executed_flops == 4 * 1280 * p * (p + 1) / 2


def test_grouped_dispatch_bytes_follow_the_runnable_combine() -> None:
    # mlp.MoE.routed at T tokens, k experts, width D, bf16 (a = 2), fp32 combine (4 B), by hand per step:
    #   index_select to expert order   read T·k·D·a        write T·k·D·a
    #   index_copy_ back to token order read T·k·D·a        write T·k·D·a
    #   .float()                       read T·k·D·a        write T·k·D·4
    #   × router weights               read T·k·D·4        write T·k·D·4
    #   sum over k                     read T·k·D·4        write T·D·4
    #   cast back                      read T·D·4          write T·D·a
    from llm_perf_opt.analytic.moe import MoEDispatch

    t, k, d = 100, 6, 1280
    cost = MoEDispatch(tokens=t, top_k=k, hidden=d).cost()
    rows = t * k * d
    assert cost.bytes_read == 2 * rows + 2 * rows + 2 * rows + 4 * rows + 4 * rows + 4 * t * d
    assert cost.bytes_written == 2 * rows + 2 * rows + 4 * rows + 4 * rows + 4 * t * d + 2 * t * d
    assert cost.kernels == 19  # + the uint8 cast of the sort keys


def test_swiglu_activation_reads_and_writes_the_silu_intermediate() -> None:
    # silu(gate) reads gate and writes s; s · up reads both and writes h: 3 reads + 2 writes of T·I (bf16).
    from llm_perf_opt.analytic.primitives import SwiGLU

    t, d, i = 10, 1280, 6848
    act = dict((c.name, c) for c in SwiGLU(tokens=t, hidden=d, inter=i).children())["act_fn"].layer.cost()
    assert (act.bytes_read, act.bytes_written, act.kernels) == (3 * t * i * 2, 2 * t * i * 2, 2)
