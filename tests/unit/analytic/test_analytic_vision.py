"""Vision layers: small hand-derived shapes and the per-view figures of reference Appendix A."""

from __future__ import annotations

import pytest

from llm_perf_opt.analytic.projector import ProjectorPass
from llm_perf_opt.analytic.vision import ClipEncoder, RelPosBias, SamAttention, SamBlock, SamEncoder, VisionPass
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR, TINY


def test_windowed_attention_pads_to_a_multiple_of_the_window() -> None:
    # grid 5, window 3 → padded 6 → 4 windows of 9 tokens = 36 computed tokens (11 of them padding).
    attn = SamAttention(batch=1, grid=5, width=4, heads=2, window=3, rel_rows=5)
    assert attn.layout == (4, 3, 9)
    qkv = 2 * 36 * 4 * 12
    proj = 2 * 36 * 4 * 4
    scores = 4 * 4 * 2 * 9 * 9 * 2  # 4·S·h·N²·d
    relpos = 4 * 4 * 2 * 3**3 * 2  # 4·S·h·n³·d
    assert attn.forward_flops() == qkv + proj + scores + relpos == 11520
    assert attn.weight_params() == (4 * 12 + 12) + (4 * 4 + 4) + 2 * 5 * 2


def test_global_attention_and_materialised_bias() -> None:
    attn = SamAttention(batch=2, grid=5, width=4, heads=2, window=0, rel_rows=9)
    assert attn.layout == (2, 5, 25)
    t = 2 * 25
    expected = 2 * t * 4 * 12 + 2 * t * 4 * 4 + 4 * 2 * 2 * 25 * 25 * 2 + 4 * 2 * 2 * 5**3 * 2
    assert attn.forward_flops() == expected
    bias = RelPosBias(seqs=2, side=5, heads=2, head_dim=2, stored_rows=9)
    # [S, h, N, N] bias written once, rel_h and rel_w of S·h·n³ each, and the code's copies: the strided
    # queries made contiguous for each einsum (2 · S·h·n²·d) and each einsum output made contiguous.
    rel, copies = 2 * 2 * 2 * 5**3, 2 * (2 * 2 * 5**2 * 2) + 2 * 2 * 2 * 5**3
    assert bias.bytes_written() == (2 * 2 * 5**4 + rel + copies) * 2
    assert bias.cost().vector_flops == 2 * 2 * 5**4  # the broadcast add
    resized = RelPosBias(seqs=2, side=5, heads=2, head_dim=2, stored_rows=27)
    assert resized.kernel_launches() > bias.kernel_launches()


def test_windowed_bias_is_padded_to_16_keys_for_the_attention_kernel() -> None:
    # 14 × 14 windows: 196 keys → a padded copy with 208 (SDPA's memory-efficient kernel); 4096 keys: none.
    windowed = SamAttention(batch=1, grid=64, width=768, heads=12, window=14, rel_rows=27)
    pads = {c.name: c.layer for c in windowed.children()}
    s, _side, tok = windowed.layout
    assert pads["bias_pad"].cost().bytes_written == s * 12 * tok * 208 * 2
    glob = SamAttention(batch=1, grid=64, width=768, heads=12, window=0, rel_rows=127)
    assert "bias_pad" not in {c.name for c in glob.children()}


def test_sam_block_mlp_runs_on_unpadded_tokens() -> None:
    block = SamBlock(batch=1, grid=5, width=4, heads=2, mlp_dim=8, window=3, rel_rows=5)
    names = [c.name for c in block.children()]
    assert names == [
        "norm1_input",
        "norm1",
        "window_partition",
        "attn",
        "window_unpartition",
        "residual1",
        "norm2_input",
        "norm2",
        "mlp",
        "residual2",
    ]
    kids = dict((c.name, c.layer) for c in block.children())
    assert kids["mlp"].forward_flops() == 2 * 2 * 25 * 4 * 8


def test_sam_block_pays_for_its_channel_major_residual_stream() -> None:
    # The stream is [B, C, H, W] in memory (patch embedding's permute), so each norm first copies B·G²·C
    # elements to contiguous and both residual adds read it strided: all at the transposing rate.
    block = SamBlock(batch=2, grid=5, width=4, heads=2, mlp_dim=8, window=0, rel_rows=9)
    kids = dict((c.name, c.layer) for c in block.children())
    for name in ("norm1_input", "norm2_input"):
        assert kids[name].transposing and kids[name].cost().bytes_moved == 2 * (2 * 25 * 4) * 2
        assert kids[name].cost().flops == 0 and kids[name].kernel_launches() == 1
    for name in ("residual1", "residual2"):
        assert kids[name].transposing and kids[name].cost().bytes_moved == 3 * (2 * 25 * 4) * 2


def test_sam_encoder_groups_blocks_and_counts_weights() -> None:
    enc = SamEncoder(batch=1, view=1024, sam=DEEPSEEK_OCR.sam)
    kids = {c.name: c for c in enc.children()}
    assert (kids["blocks.windowed"].repetition, kids["blocks.windowed"].count) == ("for", 8)
    assert (kids["blocks.global"].repetition, kids["blocks.global"].count) == ("for", 4)
    assert kids["blocks.windowed"].layer.weight_params() == 7_091_328
    assert kids["blocks.global"].layer.weight_params() == 7_104_128
    assert enc.weight_params() == 95_569_152
    assert enc.weight_params() == SamEncoder(batch=3, view=640, sam=DEEPSEEK_OCR.sam).weight_params()


def test_clip_weights_include_the_unused_patch_embedding() -> None:
    clip = ClipEncoder(batch=1, grid=16, clip=DEEPSEEK_OCR.clip)
    assert clip.weight_params() == 303_177_728
    emb = dict((c.name, c.layer) for c in clip.children())["embeddings"]
    assert emb.weight_params() == 866_304
    patch = dict((c.name, c.layer) for c in emb.children())["patch_embedding"]
    assert patch.weight_params() == 602_112 and patch.forward_flops() == 0


# Reference Appendix A (GFLOP per view, batch 1); the projector column is printed to 2 decimals.
APPENDIX_A = {
    512: (228.3, 39.7, 0.34),
    640: (325.6, 62.0, 0.52),
    1024: (976.9, 161.7, 1.34),
    1280: (1683.1, 258.0, 2.10),
}


@pytest.mark.parametrize("view", sorted(APPENDIX_A))
def test_per_view_vision_flops_match_appendix_a(view: int) -> None:
    sam_gf, clip_gf, proj_gf = APPENDIX_A[view]
    vpass = VisionPass(batch=1, view=view, sam=DEEPSEEK_OCR.sam, clip=DEEPSEEK_OCR.clip)
    sam, clip = (c.layer for c in vpass.children())
    g = DEEPSEEK_OCR.sam.out_grid(view)
    proj = ProjectorPass(batch=1, grid=g, clip_width=1024, sam_channels=1024, n_embed=1280)
    assert sam.forward_flops() / 1e9 == pytest.approx(sam_gf, rel=5e-3)
    assert clip.forward_flops() / 1e9 == pytest.approx(clip_gf, rel=5e-3)
    assert proj.forward_flops() / 1e9 == pytest.approx(proj_gf, abs=0.005)  # 2·g²·2048·1280, exact
    assert proj.forward_flops() == 2 * g * g * 2048 * 1280


def test_sam_1024_breakdown_by_hand() -> None:
    sam = SamEncoder(batch=1, view=1024, sam=DEEPSEEK_OCR.sam)
    patch = 2 * 4096 * 768 * (3 * 16 * 16)
    lin_per_token = 2 * 768 * (2304 + 768)  # qkv + proj
    mlp_per_token = 2 * 2 * 768 * 3072
    glob = 4096 * (lin_per_token + mlp_per_token) + 4 * 12 * 4096**2 * 64 + 4 * 12 * 64**3 * 64
    window = 4900 * lin_per_token + 4096 * mlp_per_token + 25 * (4 * 12 * 196**2 * 64 + 4 * 12 * 14**3 * 64)
    neck = 2 * 4096 * 768 * 256 + 2 * 4096 * 256 * 256 * 9
    nets = 2 * 1024 * 512 * 256 * 9 + 2 * 256 * 1024 * 512 * 9
    assert sam.forward_flops() == patch + 4 * glob + 8 * window + neck + nets


def test_batch_scales_vision_flops_but_not_weights() -> None:
    one = VisionPass(batch=1, view=640, sam=TINY.sam, clip=TINY.clip)
    six = VisionPass(batch=6, view=640, sam=TINY.sam, clip=TINY.clip)
    assert six.forward_flops() == 6 * one.forward_flops()
    assert six.weight_params() == one.weight_params()
