"""Attention of the graph decode step: one query per row over a preallocated KV cache, no host sync.

The step must not ask the host how long the sequence is, so every form reads the length from the
device tensor ``pos``. Built once per step (:meth:`StepAttention.build`) and then called by every
layer, so the per-step work (a mask, or the per-row key counts) is paid once, not per layer.

Forms (:data:`STEP_ATTENTIONS`; ``auto`` picks the first that runs):

- ``split``: split-KV attention in two Triton kernels (:mod:`.attention_triton`): one CTA per block
  of 64 keys of each (row, head), then a combine; reads the filled positions (``used_k`` on the
  device). CUDA with Triton; checked against SDPA once per device before use.
- ``flash``: the varlen flash-attention kernel with ``seqused_k`` = pos + 1 per row, so only the
  filled positions are read. It does not split the keys for a single query (B·h CTAs: 12.8 µs per
  layer at 300 keys, batch 1, vs 4.7 µs for ``split``; H200, torch 2.11, batch-1 decode 1.129 vs
  0.994 ms/token with ``split``).
  CUDA, fp16/bf16, flash available. Needs the cache laid out positions-before-heads
  ([B, L, h, d], :class:`.kv_cache.KVCache`), so a layer's keys are one [B·L, h, d] tensor.
- ``sdpa``: SDPA over the whole KV bucket with an additive mask (0 / −inf after ``pos``): no
  flash kernel takes a mask, so this runs the memory-efficient kernel, one CTA per (row, head)
  for a single query, over the whole bucket (23.7 µs per layer at batch 1 with the earlier
  heads-first cache layout).
- ``matmul``: q·kᵀ, mask, softmax in fp32, ·v as plain batched matmuls over the bucket (any device).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr.attention_triton import split_kv_attention, split_kv_ok

STEP_ATTENTIONS = ("auto", "split", "flash", "sdpa", "matmul")
"""Attention forms of the graph decode step (see the module docstring)."""


@functools.cache
def _flash_ok(device: torch.device) -> bool:
    """The varlen flash kernel with ``seqused_k`` runs on ``device``: sm80+, the op in this torch build,
    and a tiny probe call that does not raise (a build may lack kernels for a newer GPU, e.g. sm120)."""
    op = getattr(torch.ops.aten, "_flash_attention_forward", None)
    if op is None or device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 0):
        return False
    if "seqused_k" not in {a.name for a in op.default._schema.arguments}:
        return False
    try:
        q = torch.zeros(1, 1, 64, device=device, dtype=torch.bfloat16)
        k = torch.zeros(4, 1, 64, device=device, dtype=torch.bfloat16)
        cu_q = torch.tensor([0, 1], dtype=torch.int32, device=device)
        cu_k = torch.tensor([0, 4], dtype=torch.int32, device=device)
        used = torch.tensor([2], dtype=torch.int32, device=device)
        op(q, k, k, cu_q, cu_k, 1, 4, 0.0, False, False, seqused_k=used)
        torch.cuda.synchronize(device)
    except RuntimeError:
        return False
    return True


def resolve_step_attention(impl: str, device: torch.device, dtype: torch.dtype) -> str:
    """``auto`` → ``split``, else ``flash``, else ``sdpa``, the first that runs; checks explicit picks."""
    if impl not in STEP_ATTENTIONS:
        raise UserError(f"unknown decode-step attention {impl!r}; valid: {', '.join(STEP_ATTENTIONS)}")
    split = device.type == "cuda" and split_kv_ok(device)
    if impl == "split" and not split:
        raise UserError("decode-step attention 'split' needs Triton and a CUDA GPU (sm80+)")
    if impl == "auto" and split:
        return "split"
    flash = _flash_ok(device) and dtype in (torch.float16, torch.bfloat16)
    if impl == "auto":
        return "flash" if flash else "sdpa"
    if impl == "flash" and not flash:
        raise UserError("decode-step attention 'flash' needs a CUDA GPU (sm80+) with flash attention and fp16/bf16")
    return impl


@dataclass(frozen=True)
class StepAttention:
    """Per-step state of one form; ``__call__`` attends one layer.

    ``length`` is the KV bucket (the graph's static read length); ``pos`` [1] int64 the position
    written this step (so positions 0..pos are valid).
    """

    impl: str
    length: int
    bias: torch.Tensor | None = None
    """[1, 1, 1, length] additive mask in the model dtype (``sdpa``, ``matmul``)."""
    cu_q: torch.Tensor | None = None
    """[B + 1] int32 query offsets 0, 1, …, B (``flash``)."""
    cu_k: torch.Tensor | None = None
    """[B + 1] int32 key offsets 0, C, 2C, … into the flattened [B·C, h, d] cache of capacity C (``flash``)."""
    used_k: torch.Tensor | None = None
    """[B] int32 keys per row = pos + 1 (``split``, ``flash``)."""

    @staticmethod
    def offsets(batch: int, capacity: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(cu_q, cu_k) for ``flash``: static per cache, so built once, outside the captured step."""
        return (
            torch.arange(batch + 1, dtype=torch.int32, device=device),
            torch.arange(0, (batch + 1) * capacity, capacity, dtype=torch.int32, device=device),
        )

    @classmethod
    def build(
        cls, impl: str, *, length: int, pos: torch.Tensor, positions: torch.Tensor, dtype: torch.dtype,
        offsets: tuple[torch.Tensor, torch.Tensor] | None = None, used_k: torch.Tensor | None = None,
    ) -> StepAttention:  # fmt: skip
        """``positions`` is a cached arange over the cache (the mask then needs no arange kernel).
        ``flash`` takes ``offsets`` (:meth:`offsets`) and ``used_k`` [B] int32 = pos + 1, which the
        host fills with ``pos`` before each replay, so the step itself spends no kernel on them."""
        if impl == "split":
            if used_k is None:
                raise ValueError("split step attention needs the per-row key counts")
            return cls(impl, length, used_k=used_k)
        if impl == "flash":
            if offsets is None or used_k is None:
                raise ValueError("flash step attention needs the cache offsets and the per-row key counts")
            return cls(impl, length, cu_q=offsets[0], cu_k=offsets[1], used_k=used_k)
        hidden = positions[:length] > pos
        bias = torch.zeros(length, dtype=dtype, device=pos.device).masked_fill_(hidden, float("-inf"))
        return cls(impl, length, bias=bias.view(1, 1, 1, length))

    def __call__(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """q [B, h, 1, d]; keys/values the layer's whole cache [B, h_kv, C, d] (views of [B, C, h_kv, d]).

        Returns [B, h, 1, d].
        """
        if self.impl == "split":
            assert self.used_k is not None
            return split_kv_attention(q, keys, values, self.used_k, self.length)
        if self.impl == "flash":
            return self._flash(q, keys, values)
        k, v = keys[:, :, : self.length], values[:, :, : self.length]
        if q.shape[1] != k.shape[1]:  # grouped-query attention: repeat the KV heads
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
        if self.impl == "sdpa":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias)
        assert self.bias is not None
        scores = torch.matmul(q, k.transpose(-2, -1)).float() * (1.0 / math.sqrt(q.shape[-1])) + self.bias.float()
        return torch.matmul(torch.softmax(scores, dim=-1).to(v.dtype), v)

    def _flash(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        b, h, _, d = q.shape
        capacity, kv_heads = keys.shape[2], keys.shape[1]
        # [B, h_kv, C, d] views of a [B, C, h_kv, d] buffer → the buffer flattened to [B·C, h_kv, d] (no copy).
        k = keys.transpose(1, 2).reshape(b * capacity, kv_heads, d)
        v = values.transpose(1, 2).reshape(b * capacity, kv_heads, d)
        out = torch.ops.aten._flash_attention_forward(
            q.transpose(1, 2).reshape(b, h, d), k, v, self.cu_q, self.cu_k, 1, self.length, 0.0, False, False,
            seqused_k=self.used_k,
        )[0]  # fmt: skip
        return out.view(b, 1, h, d).transpose(1, 2)
