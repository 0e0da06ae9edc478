"""SM fill of tiled matmuls (wave quantization) and the prefill attention's own floor and rate, by hand."""

from __future__ import annotations

import pytest

from llm_perf_opt.analytic.moe import ExpertMLP
from llm_perf_opt.analytic.occupancy import attention_floor_s, biased_attention_waves_s, sm_fill
from llm_perf_opt.analytic.primitives import AttentionCore, Conv2d, Elementwise, Linear
from llm_perf_opt.analytic.roofline import Roofline, RooflineParams
from llm_perf_opt.hardware.table import load_hardware

H200 = load_hardware("h200")  # 132 SMs, 989.4 TFLOP/s dense bf16
MEA = RooflineParams(biased_attention_cta_us=4.35, biased_attention_block_us=3.44)  # memory-efficient attention


def test_wave_quantization_by_hand() -> None:
    # CLIP-L fc2 at batch 1: 257 rows × 1024 outputs = 3 × 8 tiles of 128 on 132 SMs.
    fc2 = Linear(tokens=257, in_features=4096, out_features=1024, stage="vision")
    assert sm_fill(fc2, 132) == pytest.approx(24 / 132)
    # 133 tiles need two waves of 132: 133 / 264.
    wide = Linear(tokens=128 * 7, in_features=64, out_features=128 * 19, stage="prefill")
    assert sm_fill(wide, 132) == pytest.approx(133 / 264)
    # Implicit-GEMM convolution: 2 images × 64² outputs = 64 row tiles × 2 channel tiles.
    conv = Conv2d(batch=2, in_channels=768, out_channels=256, kernel=1, in_side=64, stage="vision")
    assert sm_fill(conv, 132) == pytest.approx(128 / 132)
    # Flash attention: one CTA per (sequence, head, 128 queries): 1 × 10 × 3 = 30.
    attn = AttentionCore(
        batch=1, heads=10, q_len=283, kv_len=283, head_dim=128, kv_heads=10, causal=True, stage="prefill"
    )
    assert sm_fill(attn, 132) == pytest.approx(30 / 132)


def test_no_fill_where_it_does_not_apply() -> None:
    fc2 = Linear(tokens=257, in_features=4096, out_features=1024, stage="vision")
    assert sm_fill(fc2, None) == 1.0  # SM count unknown
    gemv = Linear(tokens=1, in_features=1280, out_features=1280, stage="decode")
    assert sm_fill(gemv, 132) == 1.0  # decode GEMVs stream weights
    assert sm_fill(Elementwise(label="add", elements=1e6, stage="prefill"), 132) == 1.0


def test_grouped_experts_pad_rows_to_whole_tiles() -> None:
    # 283 tokens × k = 6 over 64 experts: 26.53 rows per expert in one 128-row tile; 212 rows in two.
    small = ExpertMLP(tokens=283 * 6 / 64, touch_prob=1.0, hidden=1280, inter=896, stage="prefill")
    assert sm_fill(small, 132) == pytest.approx((283 * 6 / 64) / 128)
    big = ExpertMLP(tokens=2264 * 6 / 64, touch_prob=1.0, hidden=1280, inter=896, stage="prefill")
    assert sm_fill(big, 132) == pytest.approx((2264 * 6 / 64) / 256)


def test_compute_time_divides_by_the_fill() -> None:
    params = RooflineParams(compute_efficiency={"vision_mlp": 0.5}, gemm_table=False)  # the roofline, not the table
    fc2 = Linear(tokens=257, in_features=4096, out_features=1024, op_category="vision_mlp", stage="vision")
    t = Roofline(H200, params, "bf16").time(fc2)
    assert t.compute_s == pytest.approx(2 * 257 * 4096 * 1024 / (989.4e12 * 0.5 * 24 / 132), rel=1e-9)


def test_prefill_attention_has_its_own_rate_and_vision_and_prefill_attention_a_floor() -> None:
    params = RooflineParams(prefill_attention_efficiency=0.14, attention_floor_us=12.0, kernel_floor_us=3.0)
    roof = Roofline(H200, params, "bf16")
    # One Gundam page: 913 causal queries, 10 heads of 128: 1 × 10 × ⌈913/128⌉ = 80 CTAs.
    big = AttentionCore(
        batch=1, heads=10, q_len=913, kv_len=913, head_dim=128, kv_heads=10, causal=True, stage="prefill"
    )
    visible = 913 * 914 / 2
    assert roof.time(big).compute_s == pytest.approx(4 * 10 * 128 * visible / (989.4e12 * 0.14 * 80 / 132))
    # A short prompt's attention needs far less than the floor: it takes the attention floor, not 3 µs.
    short = AttentionCore(
        batch=1, heads=10, q_len=83, kv_len=83, head_dim=128, kv_heads=10, causal=True, stage="prefill"
    )
    assert roof.time(short).total_s == pytest.approx(12e-6)
    # CLIP's flash attention (16 heads of 64) walks its keys: 4.7 µs + 27.6 ns per key, from the 6.5 µs
    # measured at 65 keys and 11.8 at 257 (4.7 + 1.79 = 6.49; 4.7 + 7.09 = 11.79).
    for keys, floor_us in ((65, 6.494), (257, 11.7932)):
        clip = AttentionCore(batch=1, heads=16, q_len=keys, kv_len=keys, head_dim=64, kv_heads=16, stage="vision")
        assert roof.time(clip).total_s == pytest.approx(floor_us * 1e-6)
    step = AttentionCore(batch=1, heads=10, q_len=1, kv_len=300, head_dim=128, kv_heads=10, stage="decode")
    assert roof.time(step).total_s < 12e-6  # a decode step's attention is not a prefill kernel


def test_vision_flash_attention_shares_the_sms_once_its_ctas_outnumber_them() -> None:
    params = RooflineParams(
        vision_attention_floor_us=4.7, attention_floor_per_key_ns=27.6,
        vision_attention_cta_us=0.85, vision_attention_cta_per_key_ns=35.6,
    )  # fmt: skip
    # Base CLIP at batch 8: 8·16·⌈257/128⌉ = 384 CTAs, each 0.85 + 257 × 0.0356 = 9.999 µs of SM time, over 132
    # SMs: 29.09 µs (the H200 operator table: 28.8), above one CTA's 4.7 + 257 × 0.0276 = 11.79 µs.
    b8 = AttentionCore(batch=8, heads=16, q_len=257, kv_len=257, head_dim=64, kv_heads=16, stage="vision")
    assert attention_floor_s(b8, params, 132) == pytest.approx(384 * 9.9992 / 132 * 1e-6)
    # At batch 1 its 48 CTAs run side by side: one CTA's latency.
    b1 = AttentionCore(batch=1, heads=16, q_len=257, kv_len=257, head_dim=64, kv_heads=16, stage="vision")
    assert attention_floor_s(b1, params, 132) == pytest.approx(11.7932e-6)
    # Causal prefill attention keeps its fixed floor whatever its CTAs.
    causal = AttentionCore(
        batch=8, heads=10, q_len=913, kv_len=913, head_dim=128, kv_heads=10, causal=True, stage="prefill"
    )
    assert attention_floor_s(causal, params, 132) == pytest.approx(params.attention_floor_us * 1e-6)


def test_biased_attention_runs_in_waves_of_ctas_by_hand() -> None:
    # SAM at a tiny page: a windowed block (9 windows of 196 tokens, 12 heads) has 9·12·⌈196/64⌉ = 432 CTAs,
    # 4 per SM on 132 SMs = 528 at a time → 1 wave of 4 key blocks: 4.35 + 4 × 3.44 µs with these params.
    window = AttentionCore(
        batch=9, heads=12, q_len=196, kv_len=196, head_dim=64, kv_heads=12, bias=True, stage="vision"
    )
    assert biased_attention_waves_s(window, 132, MEA) == pytest.approx((4.35 + 4 * 3.44) * 1e-6)
    # 3 tiny pages: 1296 CTAs → ⌈1296 / 528⌉ = 3 waves.
    three = AttentionCore(
        batch=27, heads=12, q_len=196, kv_len=196, head_dim=64, kv_heads=12, bias=True, stage="vision"
    )
    assert biased_attention_waves_s(three, 132, MEA) == pytest.approx(3 * (4.35 + 4 * 3.44) * 1e-6)
    # Its global block (1024 tokens): 12·16 = 192 CTAs, one wave of 16 key blocks.
    glob = AttentionCore(
        batch=1, heads=12, q_len=1024, kv_len=1024, head_dim=64, kv_heads=12, bias=True, stage="vision"
    )
    assert biased_attention_waves_s(glob, 132, MEA) == pytest.approx((4.35 + 16 * 3.44) * 1e-6)
    # The roofline takes the larger of the waves and the FLOPs at the kernel's rate (6.8% of the peak, over
    # 648 / 660 and 96 / 132 of the SMs in 128-query tiles): the waves for 3 pages' windows, the rate globally.
    roof = Roofline(H200, RooflineParams(biased_attention_efficiency=0.068, biased_attention_cta_us=4.35,
                                         biased_attention_block_us=3.44), "bf16")  # fmt: skip
    windows_rate = 4 * 27 * 12 * 196 * 196 * 64 / (989.4e12 * 0.068 * 648 / 660)
    assert windows_rate < 3 * (4.35 + 4 * 3.44) * 1e-6
    assert roof.time(three).compute_s == pytest.approx(3 * (4.35 + 4 * 3.44) * 1e-6)
    rate = 4 * 12 * 1024 * 1024 * 64 / (989.4e12 * 0.068 * 96 / 132)
    assert rate > (4.35 + 16 * 3.44) * 1e-6 and roof.time(glob).compute_s == pytest.approx(rate)


def test_the_default_biased_attention_rate_is_its_full_waves() -> None:
    # 4 CTAs per SM, each 4·64³ FLOPs per key block of biased_attention_block_us, on 132 SMs, is the rate
    # the waves approach when full; the default efficiency must not undercut it (the rate would then set
    # every global block instead of the waves).
    p = RooflineParams()
    full_waves_flops_per_s = 4 * 4 * 64**3 / (p.biased_attention_block_us * 1e-6) * 132
    assert p.biased_attention_efficiency * 989.4e12 == pytest.approx(full_waves_flops_per_s, rel=0.01)


def test_the_report_names_where_dense_matmuls_get_their_time() -> None:
    from llm_perf_opt.analytic.occupancy import gemm_source

    # Only the H200 has a packaged table (src/llm_perf_opt/hardware/gemm_tables/h200-bf16.json).
    assert "gemm_tables/h200-bf16.json" in gemm_source("h200", "bf16", RooflineParams())
    assert "no GEMM table is measured for rtx5090" in gemm_source("rtx5090", "bf16", RooflineParams())
    assert "roofline.gemm_table is off" in gemm_source("h200", "bf16", RooflineParams(gemm_table=False))
