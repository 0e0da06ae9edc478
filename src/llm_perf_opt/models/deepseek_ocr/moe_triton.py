"""Routed experts of a few token-expert pairs in two Triton kernels (the batch-1 graph decode step).

Why: at batch 1 a MoE layer multiplies one token by k = 6 experts. ``grouped_mm`` costs ~42 µs per
layer there (sort, setup, two 16 µs grouped GEMMs) and gathering the six experts' weights into a
batch ~23 µs, because the gather copies 21 MB per layer before the matmuls read it again (H200
census, torch 2.11). These kernels read each selected expert's weights in place, once:

1. ``gate_up``: h[p] = silu(W_gate[e_p]·x) · (W_up[e_p]·x) for every pair p (GEMV + SwiGLU fused);
2. ``down``: y[t] = Σ_j w[t, j] · W_down[e_{t,j}]·h[t·k + j], the weighted sum over k in fp32
   (as the official code sums it), rounded once to the model dtype.

Products are rounded to the model dtype where the torch path rounds its matmul outputs, so both
paths agree to bf16 rounding. Triton is optional: without it (or off CUDA) the MoE falls back to
gathered weights (:class:`.mlp.MoE`). CPU tests run the kernels in Triton's interpreter.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # optional: the MoE falls back to gathered weights
    triton = None


@functools.cache
def triton_moe_ok(device: torch.device) -> bool:
    """True when the kernels can run on ``device``: Triton importable and a CUDA device."""
    return triton is not None and device.type == "cuda"


def _kernels() -> tuple[Any, Any]:
    """The two jitted kernels, defined on first use (so importing this module never needs Triton)."""
    if _KERNELS:
        return _KERNELS[0], _KERNELS[1]
    assert triton is not None

    @triton.jit
    def gate_up(x_ptr, w_ptr, ids_ptr, h_ptr, HIDDEN: tl.constexpr, INTER: tl.constexpr, TOPK: tl.constexpr,
                BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):  # fmt: skip
        pair = tl.program_id(0)
        rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < INTER
        expert = tl.load(ids_ptr + pair).to(tl.int64)
        w_gate = w_ptr + expert * (2 * INTER * HIDDEN) + rows[:, None] * HIDDEN
        w_up = w_gate + INTER * HIDDEN
        x_row = x_ptr + (pair // TOPK) * HIDDEN
        acc_gate = tl.zeros([BLOCK_N], dtype=tl.float32)
        acc_up = tl.zeros([BLOCK_N], dtype=tl.float32)
        for k0 in range(0, HIDDEN, BLOCK_K):
            cols = k0 + tl.arange(0, BLOCK_K)
            col_ok = cols < HIDDEN
            both = row_ok[:, None] & col_ok[None, :]
            x = tl.load(x_row + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
            acc_gate += tl.sum(tl.load(w_gate + cols[None, :], mask=both, other=0.0).to(tl.float32) * x, axis=1)
            acc_up += tl.sum(tl.load(w_up + cols[None, :], mask=both, other=0.0).to(tl.float32) * x, axis=1)
        out_ty = h_ptr.dtype.element_ty
        gate = acc_gate.to(out_ty).to(tl.float32)
        act = (gate * tl.sigmoid(gate)).to(out_ty).to(tl.float32)
        h = act * acc_up.to(out_ty).to(tl.float32)
        tl.store(h_ptr + pair * INTER + rows, h.to(out_ty), mask=row_ok)

    @triton.jit
    def down(h_ptr, w_ptr, ids_ptr, weights_ptr, y_ptr, HIDDEN: tl.constexpr, INTER: tl.constexpr,
             TOPK: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):  # fmt: skip
        token = tl.program_id(0)
        rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < HIDDEN
        out_ty = y_ptr.dtype.element_ty
        total = tl.zeros([BLOCK_N], dtype=tl.float32)
        for j in tl.static_range(TOPK):
            pair = token * TOPK + j
            expert = tl.load(ids_ptr + pair).to(tl.int64)
            w_rows = w_ptr + expert * (HIDDEN * INTER) + rows[:, None] * INTER
            acc = tl.zeros([BLOCK_N], dtype=tl.float32)
            for k0 in range(0, INTER, BLOCK_K):
                cols = k0 + tl.arange(0, BLOCK_K)
                col_ok = cols < INTER
                h = tl.load(h_ptr + pair * INTER + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
                w = tl.load(w_rows + cols[None, :], mask=row_ok[:, None] & col_ok[None, :], other=0.0)
                acc += tl.sum(w.to(tl.float32) * h, axis=1)
            total += acc.to(out_ty).to(tl.float32) * tl.load(weights_ptr + pair)
        tl.store(y_ptr + token * HIDDEN + rows, total.to(out_ty), mask=row_ok)

    _KERNELS.extend([gate_up, down])
    return gate_up, down


_KERNELS: list[Any] = []

GATE_UP_BLOCKS = (32, 128)
"""(rows, reduction) tile of ``gate_up``: 896 / 32 = 28 CTAs per pair, 168 at batch 1."""

DOWN_BLOCKS = (16, 128)
"""(rows, reduction) tile of ``down``: 1280 / 16 = 80 CTAs per token."""


def routed_experts(
    x: torch.Tensor, gate_up_weight: torch.Tensor, down_weight: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Σ_j weights[:, j] · expert_{ids[:, j]}(x) for x [N, H], packed weights [E, 2I, H] / [E, H, I].

    ``ids`` [N, k] int64, ``weights`` [N, k] fp32; returns [N, H] in x's dtype.
    """
    n, k = ids.shape
    hidden, inter = x.shape[-1], down_weight.shape[-1]
    gate_up, down = _kernels()
    x, ids, weights = x.contiguous(), ids.contiguous(), weights.contiguous().float()
    h = torch.empty(n * k, inter, dtype=x.dtype, device=x.device)
    bn, bk = GATE_UP_BLOCKS
    gate_up[(n * k, triton.cdiv(inter, bn))](x, gate_up_weight, ids, h, hidden, inter, k, bn, bk)
    y = torch.empty(n, hidden, dtype=x.dtype, device=x.device)
    bn, bk = DOWN_BLOCKS
    down[(n, triton.cdiv(hidden, bn))](h, down_weight, ids, weights, y, hidden, inter, k, bn, bk)
    return y
