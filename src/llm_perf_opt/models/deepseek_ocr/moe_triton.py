"""The whole MoE of a few tokens (routed + shared experts) in three Triton kernels: the ``fused`` dispatch.

Why: in the batch-1 graph decode step every MoE layer multiplies one token by k = 6 routed experts
and the shared experts. Gathering the six experts' weights first (``gather``) copies 41 MB per layer
that the batched matmuls then read again, and with the shared SwiGLU, the activation and the
combine it is 16 kernels per layer (H200 census, torch 2.11). These kernels read every selected
expert's weights in place, once, and treat the shared experts as ``S`` more "pairs" of the same
width (the shared SwiGLU of width S·I split into S column blocks):

1. ``gate_up``: h[p] = silu(W_gate[p]·x) · (W_up[p]·x) for every pair p (GEMV + SwiGLU);
2. ``down``: part[p] = W_down[p]·h[p] in fp32; a routed pair's output is rounded to the model dtype
   and scaled by its router weight, as the eager combine does;
3. ``combine``: y = round(Σ_routed part) + round(Σ_shared part), rounded once more: the eager
   model's ``(routed sum in fp32 → dtype) + shared(x)``.

``ROUTED`` (pairs) is a runtime argument, so one compiled kernel serves every batch size; tiles are
autotuned per shape on first use (outside any CUDA graph: the graph step's warm-up runs
first) and the timings cached on disk by Triton. Triton is optional: without it, off CUDA or where
the probe fails, the graph step gathers weights instead (:meth:`.mlp.MoE.static_impl`). CPU tests
run the kernels in Triton's interpreter.
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

GATE_UP_TILES = [(n, k, w) for n in (4, 8, 16) for k in (128, 256) for w in (4, 8)]
"""(rows, reduction, warps) candidates of ``gate_up``; 896 rows / 8 = 112 CTAs per pair. H200 sweep
(``bench_moe_kernels.py --sweep``, 1 token): 37.6–44 µs per MoE layer over these; 512-wide reductions
and 32-row tiles were no better (up to 54 µs) and are left out to keep first-use tuning short."""

DOWN_TILES = [(n, k, w) for n in (4, 8, 16) for k in (128, 256) for w in (4, 8)]
"""(rows, reduction, warps) candidates of ``down``; 1280 rows / 16 = 80 CTAs per pair."""

COMBINE_BLOCK = 256
"""Columns per CTA of ``combine`` (it moves ~40 KB at batch 1: not worth tuning)."""


def _configs(tiles: list[tuple[int, int, int]]) -> list[Any]:
    return [triton.Config({"BLOCK_N": n, "BLOCK_K": k}, num_warps=w) for n, k, w in tiles]


@functools.cache
def _kernels() -> tuple[Any, Any, Any]:
    """(gate_up, down, combine), defined on first use so importing this module never needs Triton."""
    assert triton is not None
    key = ["ROUTED", "SHARED_ROWS", "HIDDEN", "INTER"]

    @triton.autotune(configs=_configs(GATE_UP_TILES), key=key, cache_results=True)
    @triton.jit
    def gate_up(x_ptr, routed_ptr, shared_ptr, ids_ptr, h_ptr, HIDDEN: tl.constexpr, INTER: tl.constexpr,
                TOPK: tl.constexpr, ROUTED, SHARED: tl.constexpr, SHARED_ROWS,
                BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):  # fmt: skip
        pair = tl.program_id(0)
        rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < INTER
        if pair < ROUTED:
            token = pair // TOPK
            expert = tl.load(ids_ptr + pair).to(tl.int64)
            gate_ptr = routed_ptr + expert * (2 * INTER * HIDDEN)
            up_ptr = gate_ptr + INTER * HIDDEN
        else:  # shared block s of token t: rows s·I.. of the shared [2·S·I, H] gate-up weight
            chunk = pair - ROUTED
            token = chunk // SHARED
            gate_ptr = shared_ptr + (chunk % SHARED).to(tl.int64) * (INTER * HIDDEN)
            up_ptr = gate_ptr + SHARED * INTER * HIDDEN
        acc_gate = tl.zeros([BLOCK_N], dtype=tl.float32)
        acc_up = tl.zeros([BLOCK_N], dtype=tl.float32)
        for k0 in range(0, HIDDEN, BLOCK_K):
            cols = k0 + tl.arange(0, BLOCK_K)
            col_ok = cols < HIDDEN
            both = row_ok[:, None] & col_ok[None, :]
            x = tl.load(x_ptr + token * HIDDEN + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
            w_offsets = rows[:, None] * HIDDEN + cols[None, :]
            acc_gate += tl.sum(tl.load(gate_ptr + w_offsets, mask=both, other=0.0).to(tl.float32) * x, axis=1)
            acc_up += tl.sum(tl.load(up_ptr + w_offsets, mask=both, other=0.0).to(tl.float32) * x, axis=1)
        out_ty = h_ptr.dtype.element_ty
        gate = acc_gate.to(out_ty).to(tl.float32)  # rounded where the eager matmul rounds
        act = (gate * tl.sigmoid(gate)).to(out_ty).to(tl.float32)
        h = act * acc_up.to(out_ty).to(tl.float32)
        tl.store(h_ptr + pair * INTER + rows, h.to(out_ty), mask=row_ok)

    @triton.autotune(configs=_configs(DOWN_TILES), key=key, cache_results=True)
    @triton.jit
    def down(h_ptr, routed_ptr, shared_ptr, ids_ptr, weights_ptr, part_ptr, HIDDEN: tl.constexpr,
             INTER: tl.constexpr, ROUTED, SHARED: tl.constexpr, SHARED_ROWS,
             BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):  # fmt: skip
        pair = tl.program_id(0)
        rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        row_ok = rows < HIDDEN
        routed = pair < ROUTED
        stride = tl.where(routed, INTER, SHARED * INTER)  # a routed expert's [H, I] vs shared [H, S·I]
        if routed:
            expert = tl.load(ids_ptr + pair).to(tl.int64)
            w_ptr = routed_ptr + expert * (HIDDEN * INTER)
        else:  # shared block s: columns s·I.. of the shared down weight
            w_ptr = shared_ptr + ((pair - ROUTED) % SHARED).to(tl.int64) * INTER
        acc = tl.zeros([BLOCK_N], dtype=tl.float32)
        for k0 in range(0, INTER, BLOCK_K):
            cols = k0 + tl.arange(0, BLOCK_K)
            col_ok = cols < INTER
            h = tl.load(h_ptr + pair * INTER + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
            w = tl.load(w_ptr + rows[:, None] * stride + cols[None, :], mask=row_ok[:, None] & col_ok[None, :])
            acc += tl.sum(w.to(tl.float32) * h, axis=1)
        if routed:  # the eager combine: expert output in the model dtype, × router weight in fp32
            out_ty = h_ptr.dtype.element_ty
            acc = acc.to(out_ty).to(tl.float32) * tl.load(weights_ptr + pair)
        tl.store(part_ptr + pair * HIDDEN + rows, acc, mask=row_ok)

    @triton.jit
    def combine(part_ptr, y_ptr, HIDDEN: tl.constexpr, TOPK: tl.constexpr, ROUTED,
                SHARED: tl.constexpr, HAS_SHARED: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
        token = tl.program_id(0)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        ok = cols < HIDDEN
        out_ty = y_ptr.dtype.element_ty
        routed = tl.zeros([BLOCK], dtype=tl.float32)
        for j in tl.static_range(TOPK):
            routed += tl.load(part_ptr + (token * TOPK + j) * HIDDEN + cols, mask=ok, other=0.0)
        y = routed.to(out_ty).to(tl.float32)
        if HAS_SHARED:
            shared = tl.zeros([BLOCK], dtype=tl.float32)
            for s in tl.static_range(SHARED):
                shared += tl.load(part_ptr + (ROUTED + token * SHARED + s) * HIDDEN + cols, mask=ok, other=0.0)
            y = y + shared.to(out_ty).to(tl.float32)
        tl.store(y_ptr + token * HIDDEN + cols, y.to(out_ty), mask=ok)

    return gate_up, down, combine


def fused_moe(
    x: torch.Tensor,
    ids: torch.Tensor,
    weights: torch.Tensor,
    gate_up_weight: torch.Tensor,
    down_weight: torch.Tensor,
    shared: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    tiles: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> torch.Tensor:
    """Σ_j weights[:, j] · expert_{ids[:, j]}(x) + shared(x) for x [N, H].

    ``gate_up_weight`` [E, 2I, H] and ``down_weight`` [E, H, I] are the packed routed experts;
    ``shared`` is the shared SwiGLU's packed (gate-up [2·S·I, H], down [H, S·I]) or None; ``ids``
    [N, k] int64, ``weights`` [N, k] fp32. ``tiles`` = explicit (gate_up, down) launch parameters
    ({"BLOCK_N", "BLOCK_K", "num_warps"}) instead of the autotuned ones (probe and benchmarks).
    """
    gate_up, down, combine = _kernels()
    n, k = ids.shape
    hidden, inter = x.shape[-1], down_weight.shape[-1]
    routed = n * k
    if shared is not None:
        shared_gate_up, shared_down = shared
        chunks = shared_down.shape[-1] // inter  # the shared width is a whole number of expert widths
    else:
        shared_gate_up, shared_down, chunks = gate_up_weight, down_weight, 1  # never read: no shared pairs
    pairs = routed + (n * chunks if shared is not None else 0)
    shared_rows = pairs - routed
    x, ids, weights = x.contiguous(), ids.contiguous(), weights.contiguous().float()
    h = torch.empty(pairs, inter, dtype=x.dtype, device=x.device)
    part = torch.empty(pairs, hidden, dtype=torch.float32, device=x.device)
    y = torch.empty(n, hidden, dtype=x.dtype, device=x.device)
    sizes = {"HIDDEN": hidden, "INTER": inter, "ROUTED": routed, "SHARED": chunks, "SHARED_ROWS": shared_rows}
    up_tile, down_tile = tiles or (None, None)
    _launch(gate_up, up_tile, pairs, inter, x, gate_up_weight, shared_gate_up, ids, h, TOPK=k, **sizes)
    _launch(down, down_tile, pairs, hidden, h, down_weight, shared_down, ids, weights, part, **sizes)
    grid = (n, triton.cdiv(hidden, COMBINE_BLOCK))
    combine[grid](part, y, hidden, k, routed, chunks, shared_rows > 0, COMBINE_BLOCK)
    return y


def _launch(kernel: Any, tile: dict[str, Any] | None, pairs: int, rows: int, *args: Any, **sizes: Any) -> None:
    """One CTA row per pair, ``rows`` output rows tiled by BLOCK_N: autotuned, or with ``tile``'s parameters."""
    if tile is None:
        kernel[lambda meta: (pairs, triton.cdiv(rows, meta["BLOCK_N"]))](*args, **sizes)
    else:
        kernel.fn[(pairs, triton.cdiv(rows, tile["BLOCK_N"]))](*args, **sizes, **tile)


PROBE_TILES = ({"BLOCK_N": 8, "BLOCK_K": 128, "num_warps": 4}, {"BLOCK_N": 8, "BLOCK_K": 128, "num_warps": 4})


def _reference(x: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor, gate_up: torch.Tensor,
               down: torch.Tensor, shared: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:  # fmt: skip
    """The MoE written out in fp32, expert by expert (the probe's expectation)."""
    inter = down.shape[-1]
    x, gate_up, down = x.float(), gate_up.float(), down.float()
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(ids.shape[1]):
            e = int(ids[t, j])
            h = torch.nn.functional.silu(gate_up[e, :inter] @ x[t]) * (gate_up[e, inter:] @ x[t])
            out[t] += weights[t, j] * (down[e] @ h)
    s_gate_up, s_down = shared[0].float(), shared[1].float()
    width = s_down.shape[-1]
    return out + (torch.nn.functional.silu(x @ s_gate_up[:width].T) * (x @ s_gate_up[width:].T)) @ s_down.T


@functools.cache
def fused_moe_ok(device: torch.device) -> bool:
    """The kernels run on ``device`` and agree with the MoE written out in fp32 on a small case (Triton
    importable, CUDA sm80+; fixed tiles, so no autotuning). Cached per device."""
    if triton is None or device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 0):
        return False
    try:
        gen = torch.Generator(device=device).manual_seed(0)

        def rand(*shape: int) -> torch.Tensor:
            return (torch.randn(*shape, device=device, generator=gen) / 4).to(torch.bfloat16)

        x, gate_up, down, shared = rand(2, 16), rand(3, 16, 16), rand(3, 16, 8), (rand(32, 16), rand(16, 16))
        ids = torch.tensor([[2, 0], [1, 2]], device=device)
        weights = torch.rand(2, 2, device=device, generator=gen)
        got = fused_moe(x, ids, weights, gate_up, down, shared, tiles=PROBE_TILES)
        want = _reference(x, ids, weights, gate_up, down, shared)
        return bool(torch.allclose(got.float(), want, atol=3e-2, rtol=3e-2))
    except Exception:  # any compiler or driver failure means: use the gathered dispatch
        return False
