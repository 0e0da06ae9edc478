"""Split-KV attention of one query per row over the KV cache, in two Triton kernels (the ``split`` step form).

Why: the varlen flash kernel runs one CTA per (row, head) for a single query, so at batch 1 ten CTAs
walk ~300 keys each: 13.6 µs per layer for 1.5 MB of keys and values, 166 µs of a 1.12 ms step
(H200 census, torch 2.11). Here every CTA takes one block of ``BLOCK_L`` keys of one (row, head):

1. ``partial``: for its block, m = max s, l = Σ exp(s − m), acc = Σ exp(s − m)·v, with
   s = q·k / √d over the filled keys (key index < ``used_k[row]``, read on the device, so the step
   stays capturable; blocks past the filled keys load nothing);
2. ``reduce``: out = Σ_b e^(m_b − M) acc_b / Σ_b e^(m_b − M) l_b over the blocks, M = max m_b.

All softmax arithmetic is fp32; the output is rounded once to the model dtype. The number of blocks
is the graph's static KV bucket / ``BLOCK_L``: a runtime argument of ``partial``; ``reduce`` reads all
of them at once, compiled per power of two of the block count (4, 8, 16, … for 256-position buckets).
Triton is optional: where it is missing or the probe fails, the step uses ``flash``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from llm_perf_opt.specs.execution import SPLIT_KV_BLOCK

try:
    import triton
    import triton.language as tl
except ImportError:  # optional: the step attention falls back to flash / sdpa
    triton = None

BLOCK_L = SPLIT_KV_BLOCK
"""Keys per CTA (shared with the analytic model): at batch 1 and a 512-position bucket, 8 blocks × 10
heads = 80 CTAs, of which those past the filled keys load nothing."""


@functools.cache
def _kernels() -> tuple[Any, Any]:
    """(partial, reduce), defined on first use so importing this module never needs Triton."""
    assert triton is not None

    @triton.jit
    def partial(q_ptr, k_ptr, v_ptr, used_ptr, m_ptr, l_ptr, acc_ptr, sq_b, sq_h, sk_b, sk_h, sk_l,
                sv_b, sv_h, sv_l, n_blocks, scale, HEADS: tl.constexpr, GROUP: tl.constexpr, D: tl.constexpr,
                D_P2: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
        bh = tl.program_id(0)
        block = tl.program_id(1)
        row = bh // HEADS
        head = bh % HEADS
        kv_head = head // GROUP
        used = tl.load(used_ptr + row)
        keys = block * BLOCK + tl.arange(0, BLOCK)
        dims = tl.arange(0, D_P2)  # the head dim padded to a power of two, masked
        in_d = dims < D
        valid = keys < used
        both = valid[:, None] & in_d[None, :]
        q = tl.load(q_ptr + row * sq_b + head * sq_h + dims, mask=in_d, other=0.0).to(tl.float32)
        k = tl.load(k_ptr + row * sk_b + kv_head * sk_h + keys[:, None] * sk_l + dims[None, :], mask=both, other=0.0)
        s = tl.where(valid, tl.sum(k.to(tl.float32) * q[None, :], axis=1) * scale, float("-inf"))
        m = tl.max(s, axis=0)
        p = tl.exp(s - tl.where(m == float("-inf"), 0.0, m))  # an empty block: p = 0, not NaN
        v = tl.load(v_ptr + row * sv_b + kv_head * sv_h + keys[:, None] * sv_l + dims[None, :], mask=both, other=0.0)
        slot = bh * n_blocks + block
        tl.store(m_ptr + slot, m)
        tl.store(l_ptr + slot, tl.sum(p, axis=0))
        tl.store(acc_ptr + slot * D + dims, tl.sum(p[:, None] * v.to(tl.float32), axis=0), mask=in_d)

    @triton.jit
    def reduce(m_ptr, l_ptr, acc_ptr, out_ptr, so_b, so_h, n_blocks, HEADS: tl.constexpr, D: tl.constexpr,
               D_P2: tl.constexpr, BLOCKS_P2: tl.constexpr):  # fmt: skip
        bh = tl.program_id(0)
        dims = tl.arange(0, D_P2)
        in_d = dims < D
        idx = tl.arange(0, BLOCKS_P2)  # every block at once (block 0 always holds key 0: `big` is finite)
        ok = idx < n_blocks
        m = tl.load(m_ptr + bh * n_blocks + idx, mask=ok, other=float("-inf"))
        big = tl.max(m, axis=0)
        w = tl.exp(m - big)
        total = tl.sum(w * tl.load(l_ptr + bh * n_blocks + idx, mask=ok, other=0.0), axis=0)
        part = tl.load(acc_ptr + (bh * n_blocks + idx)[:, None] * D + dims[None, :],
                       mask=ok[:, None] & in_d[None, :], other=0.0)  # fmt: skip
        acc = tl.sum(w[:, None] * part, axis=0)
        out = acc / total
        row = bh // HEADS
        head = bh % HEADS
        tl.store(out_ptr + row * so_b + head * so_h + dims, out.to(out_ptr.dtype.element_ty), mask=in_d)

    return partial, reduce


def split_kv_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, used_k: torch.Tensor,
                       length: int) -> torch.Tensor:  # fmt: skip
    """softmax(q·kᵀ/√d)·v over the first ``used_k[b]`` keys of row b, for q [B, h, 1, d] and the layer's
    cache views keys/values [B, h_kv, C, d]; ``length`` (≥ every used_k, ≤ C) bounds the blocks
    launched. Returns [B, h, 1, d] (a view of a [B, 1, h, d] tensor, as o_proj wants it)."""
    partial, reduce = _kernels()
    b, heads, _, d = q.shape
    kv_heads = keys.shape[1]
    if q.stride(-1) != 1 or keys.stride(-1) != 1 or values.stride(-1) != 1:
        raise ValueError("split-KV attention needs contiguous head dims")
    d_p2 = triton.next_power_of_2(d)
    n_blocks = triton.cdiv(length, BLOCK_L)
    m = torch.empty(b * heads * n_blocks, device=q.device, dtype=torch.float32)
    total = torch.empty_like(m)
    acc = torch.empty(b * heads * n_blocks, d, device=q.device, dtype=torch.float32)
    out = torch.empty(b, 1, heads, d, device=q.device, dtype=q.dtype)
    partial[(b * heads, n_blocks)](
        q, keys, values, used_k, m, total, acc, q.stride(0), q.stride(1), keys.stride(0), keys.stride(1),
        keys.stride(2), values.stride(0), values.stride(1), values.stride(2), n_blocks, 1.0 / math.sqrt(d),
        HEADS=heads, GROUP=heads // kv_heads, D=d, D_P2=d_p2, BLOCK=BLOCK_L,
    )  # fmt: skip
    reduce[(b * heads,)](m, total, acc, out, out.stride(0), out.stride(2), n_blocks, HEADS=heads, D=d, D_P2=d_p2,
                         BLOCKS_P2=triton.next_power_of_2(n_blocks))  # fmt: skip
    return out.transpose(1, 2)


@functools.cache
def split_kv_ok(device: torch.device) -> bool:
    """The kernels run on ``device`` and agree with SDPA on a small case (Triton importable, CUDA sm80+)."""
    if triton is None or device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 0):
        return False
    try:
        gen = torch.Generator(device=device).manual_seed(0)
        q = torch.randn(2, 2, 1, 64, device=device, dtype=torch.bfloat16, generator=gen)
        cache = torch.randn(2, 2, 100, 2, 64, device=device, dtype=torch.bfloat16, generator=gen)
        keys, values = cache[0].transpose(1, 2), cache[1].transpose(1, 2)  # [B, h, C, d] views, as KVCache
        used = torch.tensor([70, 3], dtype=torch.int32, device=device)
        got = split_kv_attention(q, keys, values, used, 100)
        for row, n in enumerate(used.tolist()):
            want = torch.nn.functional.scaled_dot_product_attention(
                q[row : row + 1].float(), keys[row : row + 1, :, :n].float(), values[row : row + 1, :, :n].float()
            )
            if not torch.allclose(got[row : row + 1].float(), want, atol=2e-2, rtol=2e-2):
                return False
    except Exception:  # any compiler or driver failure means: use flash
        return False
    return True
