"""Hand-derived numbers for every primitive layer on small shapes (bf16 unless stated: a = w = kv = 2 B)."""

from __future__ import annotations

import pytest

from llm_perf_opt.analytic.base import Precision
from llm_perf_opt.analytic.primitives import (
    AttentionCore,
    Conv2d,
    Elementwise,
    Embedding,
    KVCacheWrite,
    LayerNorm,
    Linear,
    LMHead,
    RMSNorm,
    RoPE,
    SwiGLU,
    UnusedWeights,
)
from llm_perf_opt.errors import UserError


def test_linear_on_five_tokens() -> None:
    layer = Linear(tokens=5, in_features=4, out_features=3)
    assert layer.forward_flops() == 2 * 5 * 4 * 3 == 120
    assert layer.weight_params() == 12
    assert layer.bytes_read() == 5 * 4 * 2 + 12 * 2
    assert layer.bytes_written() == 5 * 3 * 2
    assert layer.kernel_launches() == 1
    assert layer.is_leaf and layer.children() == ()


def test_linear_bias_and_fp32_weights() -> None:
    layer = Linear(tokens=5, in_features=4, out_features=3, bias=True, prec=Precision(weight_dtype="fp32"))
    assert layer.forward_flops() == 120  # bias add is not a matmul FLOP (addmm counts the mm only)
    assert layer.cost().vector_flops == 5 * 3
    assert layer.weight_params() == 4 * 3 + 3
    assert layer.weight_bytes() == 15 * 4
    assert layer.bytes_read() == 5 * 4 * 2 + 15 * 4


def test_lm_head_is_a_linear_in_its_own_category() -> None:
    head = LMHead(tokens=2, in_features=8, out_features=100)
    assert head.forward_flops() == 2 * 2 * 8 * 100
    assert head.category == "lm_head"


def test_conv2d_output_side_and_flops() -> None:
    conv = Conv2d(batch=2, in_channels=3, out_channels=4, kernel=2, stride=2, in_side=8)
    assert conv.out_side == 4
    assert conv.forward_flops() == 2 * (2 * 4 * 4 * 4) * 3 * 2 * 2 == 3072
    assert conv.weight_params() == 4 * 3 * 2 * 2
    padded = Conv2d(batch=1, in_channels=2, out_channels=2, kernel=3, stride=2, padding=1, in_side=7, bias=True)
    assert padded.out_side == 4  # ⌊(7 + 2 − 3)/2⌋ + 1
    assert padded.forward_flops() == 2 * (2 * 16) * 2 * 9
    assert padded.weight_params() == 2 * 2 * 9 + 2


def test_unused_weights_cost_only_memory() -> None:
    w = UnusedWeights(params=1000)
    c = w.cost()
    assert (c.flops, c.bytes_read, c.bytes_written, c.kernels) == (0, 0, 0, 0)
    assert w.weight_params() == 1000 and w.weight_bytes() == 2000


def test_attention_core_full_and_causal() -> None:
    full = AttentionCore(batch=2, heads=3, q_len=4, kv_len=4, head_dim=5, kv_heads=3)
    assert full.forward_flops() == 4 * 2 * 3 * 4 * 4 * 5 == 1920
    causal = AttentionCore(batch=2, heads=3, q_len=4, kv_len=4, head_dim=5, kv_heads=3, causal=True)
    # The counter convention keeps the full matrix; the kernel executes 1+2+3+4 = 10 of 16 scores.
    assert causal.forward_flops() == 1920
    assert causal.cost().executed_flops == 4 * 2 * 3 * 5 * 10
    # Q and O: 2·4·3·5 elements each; K and V: 2·4·3·5 each.
    assert causal.bytes_read() == (2 * 4 * 3 * 5) * 2 * 3
    assert causal.bytes_written() == (2 * 4 * 3 * 5) * 2


def test_attention_decode_reads_the_cache_in_kv_dtype() -> None:
    step = AttentionCore(
        batch=1,
        heads=2,
        q_len=1,
        kv_len=7,
        head_dim=4,
        kv_heads=2,
        causal=True,
        kv_from_cache=True,
        prec=Precision(kv_dtype="fp8"),
    )
    assert step.forward_flops() == step.cost().executed_flops == 4 * 2 * 7 * 4
    assert step.bytes_read() == 1 * 2 * 4 * 2 + 2 * 7 * 2 * 4 * 1


def test_attention_bias_is_read() -> None:
    plain = AttentionCore(batch=1, heads=2, q_len=3, kv_len=3, head_dim=4, kv_heads=2)
    biased = AttentionCore(batch=1, heads=2, q_len=3, kv_len=3, head_dim=4, kv_heads=2, bias=True)
    assert biased.bytes_read() - plain.bytes_read() == 2 * 3 * 3 * 2
    assert biased.forward_flops() == plain.forward_flops()


def test_kv_cache_write() -> None:
    kv = KVCacheWrite(batch=2, new_tokens=3, context=10, kv_heads=4, head_dim=8)
    assert kv.bytes_written() == 2 * 3 * (2 * 4 * 8) * 2
    assert kv.kv_cache_bytes() == 2 * 10 * (2 * 4 * 8) * 2


def test_embedding_reads_only_gathered_rows() -> None:
    emb = Embedding(tokens=3, vocab=1000, dim=16)
    assert emb.forward_flops() == 0
    assert emb.weight_params() == 16_000
    assert emb.bytes_read() == 3 * 16 * 2 + 3 * 8


def test_norms() -> None:
    ln = LayerNorm(tokens=3, dim=8)
    rms = RMSNorm(tokens=3, dim=8)
    assert (ln.weight_params(), rms.weight_params()) == (16, 8)
    assert ln.forward_flops() == rms.forward_flops() == 0  # not matmul FLOPs
    assert ln.cost().vector_flops == 7 * 3 * 8 and rms.cost().vector_flops == 4 * 3 * 8
    assert ln.category == rms.category == "norm"


def test_rope() -> None:
    rope = RoPE(tokens=2, heads=3, kv_heads=1, head_dim=4)
    assert rope.cost().vector_flops == 3 * 2 * (3 + 1) * 4
    assert rope.forward_flops() == 0


def test_elementwise() -> None:
    add = Elementwise(label="add", elements=10, reads=2)
    assert add.bytes_read() == 40 and add.bytes_written() == 20 and add.cost().vector_flops == 10


def test_swiglu_composite() -> None:
    mlp = SwiGLU(tokens=5, hidden=4, inter=6)
    assert mlp.forward_flops() == 3 * 2 * 5 * 4 * 6
    assert mlp.weight_params() == 3 * 4 * 6
    assert [c.name for c in mlp.children()] == ["gate_up_proj", "act_fn", "down_proj"]
    assert mlp.kernel_launches() == 1 + 2 + 1
    assert mlp.category == "dense_mlp"
    assert mlp.cost().categories["dense_mlp"][1] == mlp.forward_flops()


def test_precision_validation() -> None:
    with pytest.raises(UserError, match="unknown weight_dtype 'int3'"):
        Precision(weight_dtype="int3")
    with pytest.raises(UserError, match="compute_dtype"):
        Precision(compute_dtype="fp4")
    assert Precision(kv_dtype="fp8").kv == 1 and Precision(activation_dtype="fp32").a == 4
