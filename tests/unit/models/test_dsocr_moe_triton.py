"""The Triton routed-expert kernels (batch-1 graph decode), run in Triton's CPU interpreter.

The expectation is the MoE written out by hand, expert by expert, in fp32: Σ_j w_j ·
W_down[e_j]·(silu(W_gate[e_j]·x) · W_up[e_j]·x). Odd sizes (not multiples of the kernels' tiles)
exercise the masks. The interpreter must be switched on before Triton is imported, so the check
runs in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

CHECK = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    from llm_perf_opt.models.deepseek_ocr.moe_triton import routed_experts

    g = torch.Generator().manual_seed(0)
    experts, hidden, inter, tokens, k = 5, 150, 40, 2, 3  # 150 > one 128 tile, 40 not a multiple of 32
    gate_up = torch.randn(experts, 2 * inter, hidden, generator=g) / hidden**0.5
    down = torch.randn(experts, hidden, inter, generator=g) / inter**0.5
    x = torch.randn(tokens, hidden, generator=g)
    ids = torch.tensor([[4, 0, 2], [1, 4, 3]])
    weights = torch.rand(tokens, k, generator=g)
    want = torch.zeros(tokens, hidden)
    for t in range(tokens):
        for j in range(k):
            e = int(ids[t, j])
            h = F.silu(gate_up[e, :inter] @ x[t]) * (gate_up[e, inter:] @ x[t])
            want[t] += weights[t, j] * (down[e] @ h)
    got = routed_experts(x, gate_up, down, ids, weights)
    assert got.dtype == torch.float32 and got.shape == (tokens, hidden)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    bf = routed_experts(x.bfloat16(), gate_up.bfloat16(), down.bfloat16(), ids, weights)
    assert bf.dtype == torch.bfloat16
    torch.testing.assert_close(bf.float(), want, rtol=0.05, atol=0.05)
    print("ok")
    """
)


def test_triton_moe_kernels_equal_the_hand_written_moe() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
