"""SAM windows (padding not masked), relative positions, position interpolation, encoder shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llm_perf_opt.models.deepseek_ocr import DeepseekOCRForCausalLM
from llm_perf_opt.models.deepseek_ocr.common import attend
from llm_perf_opt.models.deepseek_ocr.sam import (
    SamBlock,
    decomposed_rel_bias,
    resize_abs_pos,
    resize_rel_table,
    window_partition,
    window_unpartition,
)
from llm_perf_opt.specs.model_spec import ModelSpec


def test_partition_roundtrip_on_non_multiple_grid() -> None:
    x = torch.randn(2, 40, 40, 8)  # 640 px view: 40 → padded to 42, 3×3 windows
    windows, hp, wp = window_partition(x, 14)
    assert (hp, wp) == (42, 42) and windows.shape == (2 * 9, 14, 14, 8)
    assert torch.equal(windows[8, -2:], torch.zeros(2, 14, 8))  # bottom-right window: zero rows
    assert torch.equal(window_unpartition(windows, 14, hp, wp, 40, 40), x)


def test_windowed_block_matches_per_window_reference(tiny_model: DeepseekOCRForCausalLM) -> None:
    block = tiny_model.model.sam_model.blocks[0]
    assert isinstance(block, SamBlock) and block.window == 14
    x = torch.randn(1, 20, 20, block.norm1.normalized_shape[0], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = block(x)
        # Reference: LN1, zero-pad to 28×28, attend inside each 14×14 window (padding included as
        # keys/values, not masked), crop, residual, MLP.
        normed = F.pad(block.norm1(x), (0, 0, 0, 8, 0, 8))
        attn = torch.zeros_like(normed)
        for i in range(2):
            for j in range(2):
                win = normed[:, 14 * i : 14 * i + 14, 14 * j : 14 * j + 14]
                attn[:, 14 * i : 14 * i + 14, 14 * j : 14 * j + 14] = block.attn(win)
        ref = x + attn[:, :20, :20]
        ref = ref + block.mlp(block.norm2(ref))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # Masking the padded keys would give a different answer: the padding really participates.
    with torch.no_grad():
        win = normed[:, 14:28, 14:28]
        b, h, w, _ = win.shape
        heads, hd = block.attn.num_heads, block.attn.head_dim
        qkv = block.attn.qkv(win).reshape(b, h * w, 3, heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = decomposed_rel_bias(q, block.attn.rel_pos_h, block.attn.rel_pos_w, h, w)
        valid = torch.zeros(14, 14, dtype=torch.bool)
        valid[:6, :6] = True
        masked = bias.masked_fill(~valid.flatten(), float("-inf"))
        unmasked_out = attend(q, k, v, impl="sdpa", mask=bias)
        masked_out = attend(q, k, v, impl="sdpa", mask=masked)
    assert not torch.allclose(unmasked_out, masked_out, atol=1e-4)


def test_decomposed_bias_matches_explicit_loops() -> None:
    gen = torch.Generator().manual_seed(0)
    h, w, d = 3, 4, 5
    q = torch.randn(1, 2, h * w, d, generator=gen)
    rel_h, rel_w = torch.randn(2 * h - 1, d, generator=gen), torch.randn(2 * w - 1, d, generator=gen)
    bias = decomposed_rel_bias(q, rel_h, rel_w, h, w)
    for n in range(2):
        for qi in range(h * w):
            for ki in range(h * w):
                (y, x), (yk, xk) = divmod(qi, w), divmod(ki, w)
                want = q[0, n, qi] @ rel_h[y - yk + h - 1] + q[0, n, qi] @ rel_w[x - xk + w - 1]
                torch.testing.assert_close(bias[0, n, qi, ki], want, atol=1e-5, rtol=1e-5)


def test_rel_table_interpolation_lengths() -> None:
    table = torch.randn(127, 64)
    assert resize_rel_table(table, 127) is table
    for side, rows in [(40, 79), (80, 159), (32, 63)]:
        assert resize_rel_table(table, 2 * side - 1).shape == (rows, 64)
    ramp = torch.arange(127, dtype=torch.float32).unsqueeze(1)
    resized = resize_rel_table(ramp, 79)[:, 0]
    assert torch.all(resized[1:] > resized[:-1])  # linear interpolation keeps order


def test_abs_pos_interpolation() -> None:
    pos = torch.randn(1, 64, 64, 8)
    assert resize_abs_pos(pos, 64, 64) is pos
    assert resize_abs_pos(pos, 40, 40).shape == (1, 40, 40, 8)
    constant = torch.full((1, 64, 64, 8), 0.25)
    torch.testing.assert_close(resize_abs_pos(constant, 40, 40), torch.full((1, 40, 40, 8), 0.25))


@pytest.mark.parametrize(("side", "grid"), [(512, 8), (640, 10), (1024, 16)])
def test_encoder_shapes(tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec, side: int, grid: int) -> None:
    with torch.inference_mode():
        sam = tiny_model.model.sam_model(torch.zeros(1, 3, side, side))
        clip = tiny_model.model.vision_model(sam)
    assert sam.shape == (1, tiny_spec.sam.out_channels, grid, grid)
    assert clip.shape == (1, grid * grid + 1, tiny_spec.clip.width)


def test_clip_position_table(tiny_model: DeepseekOCRForCausalLM) -> None:
    emb = tiny_model.model.vision_model.embeddings
    assert emb.position_table(16, 16) is emb.position_embedding.weight
    table = emb.position_table(10, 10)
    assert table.shape == (101, emb.position_embedding.weight.shape[1])
    assert torch.equal(table[0], emb.position_embedding.weight[0])  # CLS row kept as is


def test_sam_residual_stream_stays_channel_major(tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec) -> None:
    # The analytic SamBlock charges a copy before each norm and strided residual adds because the patch
    # embedding's permute leaves [B, H, W, C] with C-major memory, and every block keeps that layout.
    sam = tiny_model.model.sam_model
    side = tiny_spec.sam.patch_size * 4
    with torch.no_grad():
        x = sam.patch_embed(torch.randn(1, 3, side, side))
        assert not x.is_contiguous() and x.permute(0, 3, 1, 2).is_contiguous()
        y = sam.blocks[0](x)
    assert not y.is_contiguous() and y.permute(0, 3, 1, 2).is_contiguous()
