"""The fused Triton MoE (routed + shared experts, batch-1 graph decode step), run in Triton's CPU interpreter.

The expectation is the MoE written out by hand, expert by expert, in fp32:
Σ_j w_j · W_down[e_j]·(silu(W_gate[e_j]·x) · W_up[e_j]·x) + W_sd·(silu(W_sg·x) · W_su·x), with the
shared SwiGLU's width two expert widths (as DeepSeek-OCR's 2 × 896). Odd sizes (not multiples of
the tiles) exercise the masks; two tile sets cover one and several reduction steps. The interpreter
must be switched on before Triton is imported, so the check runs in a subprocess.
"""

from __future__ import annotations

import textwrap

import pytest
from dsocr_helpers import run_in_triton_interpreter

pytest.importorskip("triton")

CHECK = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    from llm_perf_opt.models.deepseek_ocr.moe_triton import fused_moe

    g = torch.Generator().manual_seed(0)
    experts, hidden, inter, tokens, k, chunks = 5, 150, 40, 2, 3, 2  # 150 > one 128 tile, 40 not a multiple of 16
    gate_up = torch.randn(experts, 2 * inter, hidden, generator=g) / hidden**0.5
    down = torch.randn(experts, hidden, inter, generator=g) / inter**0.5
    s_gate = torch.randn(chunks * inter, hidden, generator=g) / hidden**0.5
    s_up = torch.randn(chunks * inter, hidden, generator=g) / hidden**0.5
    s_down = torch.randn(hidden, chunks * inter, generator=g) / (chunks * inter) ** 0.5
    x = torch.randn(tokens, hidden, generator=g)
    ids = torch.tensor([[4, 0, 2], [1, 4, 3]])
    weights = torch.rand(tokens, k, generator=g)
    routed = torch.zeros(tokens, hidden)
    for t in range(tokens):
        for j in range(k):
            e = int(ids[t, j])
            h = F.silu(gate_up[e, :inter] @ x[t]) * (gate_up[e, inter:] @ x[t])
            routed[t] += weights[t, j] * (down[e] @ h)
    shared_out = (F.silu(x @ s_gate.T) * (x @ s_up.T)) @ s_down.T
    shared = (torch.cat([s_gate, s_up]), s_down)
    tile_sets = [
        ({"BLOCK_N": 16, "BLOCK_K": 256, "num_warps": 4}, {"BLOCK_N": 32, "BLOCK_K": 64, "num_warps": 4}),
        ({"BLOCK_N": 8, "BLOCK_K": 64, "num_warps": 4}, {"BLOCK_N": 16, "BLOCK_K": 128, "num_warps": 4}),
    ]
    for tiles in tile_sets:
        got = fused_moe(x, ids, weights, gate_up, down, shared, tiles=tiles)
        assert got.dtype == torch.float32 and got.shape == (tokens, hidden)
        torch.testing.assert_close(got, routed + shared_out, rtol=1e-5, atol=1e-5)
        alone = fused_moe(x, ids, weights, gate_up, down, None, tiles=tiles)
        torch.testing.assert_close(alone, routed, rtol=1e-5, atol=1e-5)
    bf = fused_moe(
        x.bfloat16(), ids, weights, gate_up.bfloat16(), down.bfloat16(),
        (shared[0].bfloat16(), shared[1].bfloat16()), tiles=tile_sets[0],
    )
    assert bf.dtype == torch.bfloat16
    torch.testing.assert_close(bf.float(), routed + shared_out, rtol=0.05, atol=0.05)

    # The GPU probe's case (its shapes, tiles and fp32 reference) passes on a correct kernel.
    from llm_perf_opt.models.deepseek_ocr.moe_triton import PROBE_TILES, _reference
    shapes = ((2, 16), (3, 16, 16), (3, 16, 8), (32, 16), (16, 16))
    probe = [(torch.randn(*shape, generator=g) / 4).bfloat16() for shape in shapes]
    ids2, w2 = torch.tensor([[2, 0], [1, 2]]), torch.rand(2, 2, generator=g)
    got = fused_moe(probe[0], ids2, w2, probe[1], probe[2], (probe[3], probe[4]), tiles=PROBE_TILES)
    want = _reference(probe[0], ids2, w2, probe[1], probe[2], (probe[3], probe[4]))
    assert torch.allclose(got.float(), want, atol=3e-2, rtol=3e-2)
    print("ok")
    """
)


def test_fused_moe_kernels_equal_the_hand_written_moe() -> None:
    run_in_triton_interpreter(CHECK)
