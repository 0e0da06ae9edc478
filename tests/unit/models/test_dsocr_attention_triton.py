"""Split-KV step attention (``split`` form), run in Triton's CPU interpreter.

The expectation is softmax attention written out in fp32 over each row's first ``used_k`` keys,
with grouped KV heads (4 query heads on 2 KV heads), rows of different fill (1 key, a partial
block, several blocks), a bucket larger than the fill, so empty blocks must drop out, and head dims
of 32 and 24 (not a power of two: the kernels pad and mask it). The
interpreter must be switched on before Triton is imported, so the check runs in a subprocess.
"""

from __future__ import annotations

import textwrap

import pytest
from dsocr_helpers import run_in_triton_interpreter

pytest.importorskip("triton")

CHECK = textwrap.dedent(
    """
    import math
    import torch
    from llm_perf_opt.models.deepseek_ocr.attention_triton import BLOCK_L, split_kv_attention

    g = torch.Generator().manual_seed(0)
    for d in (32, 24):
        batch, heads, kv_heads, capacity = 3, 4, 2, 3 * BLOCK_L + 10
        buf = torch.randn(2, batch, capacity, kv_heads, d, generator=g)  # [B, C, h_kv, d], as KVCache
        keys, values = buf[0].transpose(1, 2), buf[1].transpose(1, 2)  # the [B, h_kv, C, d] views of the step
        qkv = torch.randn(batch, 1, heads + 2 * kv_heads, d, generator=g)
        q = qkv[:, :, :heads].transpose(1, 2)  # a slice of the packed projection, as in the model
        used = torch.tensor([1, BLOCK_L + 5, 2 * BLOCK_L + 3], dtype=torch.int32)
        got = split_kv_attention(q, keys, values, used, capacity)
        assert got.shape == (batch, heads, 1, d)
        for row in range(batch):
            n = int(used[row])
            for head in range(heads):
                k = keys[row, head // 2, :n]
                v = values[row, head // 2, :n]
                weights = torch.softmax(k @ q[row, head, 0] / math.sqrt(d), dim=0)
                torch.testing.assert_close(got[row, head, 0], weights @ v, rtol=1e-5, atol=1e-5)
    print("ok")
    """
)


def test_split_kv_attention_equals_softmax_attention_over_the_filled_keys() -> None:
    run_in_triton_interpreter(CHECK)
