"""Pieces shared by SAM, CLIP, the decoder and generation: attention, stage ranges, packed weights.

Packed weights: the checkpoint stores q/k/v, gate/up and every routed expert as separate tensors
(official names must be kept), but running them as separate matmuls costs a kernel launch each,
which dominates batch-1 decode. :class:`PackedModule` keeps the official parameters and makes each
of them a *view* into one packed tensor, so the state dict, ``parameters()`` and the parameter count
are unchanged while the forward pass issues one matmul per packed group.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from llm_perf_opt.errors import UserError

Ranges = Callable[[str], AbstractContextManager[Any]]
"""Context-manager factory ``ranges(name)`` that a profiler passes in to time named stages. What a range
yields may take the GPU span of a graph replayed inside it (see :func:`report_device_span`)."""


def report_device_span(handle: Any, events: tuple[Any, Any] | None) -> None:
    """Hand a replayed graph's own timing events (captured as its first and last nodes) to the range
    ``handle`` it ran in, when that range takes them (the profiler's stage clock does: its
    ``device_span``); a no-op for plain ranges, eager stages (``events`` None) and unprofiled calls."""
    take = getattr(handle, "device_span", None)
    if events is not None and callable(take):
        take(*events)

ATTN_IMPLS = ("sdpa", "eager")
"""``sdpa``: torch.nn.functional.scaled_dot_product_attention; ``eager``: matmul-softmax-matmul."""


SDPA_BACKENDS = (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH)
"""SDPA kernels we allow. cuDNN attention is left out on purpose: on an H100 (torch 2.11) it was
picked for decode and built a new execution plan for every new key length, so each decode step at a
length not seen before cost tens of milliseconds of host time (measured: 40 ms/token in the first
1024-token generation vs 10–13 ms in the next one). Flash / memory-efficient kernels have
no per-shape plans."""


def sdpa_backends() -> AbstractContextManager[None]:
    """Restrict ``scaled_dot_product_attention`` to :data:`SDPA_BACKENDS` inside the block."""
    return sdpa_kernel(list(SDPA_BACKENDS))


def null_ranges(name: str) -> AbstractContextManager[None]:
    """The default ``ranges``: does nothing, so generation pays no profiling cost."""
    return contextlib.nullcontext()


def check_attn_impl(attn_impl: str) -> str:
    if attn_impl not in ATTN_IMPLS:
        raise UserError(f"unknown attention implementation {attn_impl!r}; valid: {', '.join(ATTN_IMPLS)}")
    return attn_impl


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    impl: str,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """softmax(q·kᵀ/√d + mask)·v over [..., L, d] tensors.

    ``mask`` is either a float bias added to the scores or a bool tensor (True = may attend).
    ``is_causal`` uses the top-left aligned lower triangle, exactly as SDPA does, so callers only
    pass it when query and key lengths are equal. The eager path takes the softmax in fp32, which
    is also what the fused SDPA kernels do internally, so the two agree to rounding.
    """
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-2, -1)).float() * scale
    if is_causal:
        lq, lk = q.shape[-2], k.shape[-2]
        causal = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    probs = torch.softmax(scores, dim=-1).to(v.dtype)
    return torch.matmul(probs, v)


def pack_parameters(groups: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """Copy parameters into one new tensor [G, rows, ...] and make each parameter a view of it.

    Group g is the concatenation (along dim 0) of its parameters; the groups are stacked along a
    new leading dim. E.g. experts: groups = [(gate_e, up_e) for e] → [E, 2·I, H].
    """
    first = groups[0][0]
    rows = sum(p.shape[0] for p in groups[0])
    packed = torch.empty((len(groups), rows, *first.shape[1:]), dtype=first.dtype, device=first.device)
    with torch.no_grad():
        for g, group in enumerate(groups):
            start = 0
            for p in group:
                n = p.shape[0]
                view = packed[g, start : start + n]
                view.copy_(p)
                # .data keeps the same Parameter object (and so the official name) but points it
                # at the packed storage; load_state_dict's in-place copy_ then fills the pack.
                p.data = view
                start += n
    return packed


class PackedModule(nn.Module):
    """A module whose official parameters are views into packed tensors (see module docstring).

    Subclasses implement :meth:`_pack`, which (re)builds the packed tensors from the current
    parameters. It runs after construction, after every ``_apply`` (``.to()``, ``to_empty()``,
    ``.cuda()``, ``.half()`` replace parameter storage) and after ``load_state_dict`` when a
    parameter no longer shares the packed storage (``assign=True``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_load_state_dict_post_hook(_repack_after_load)

    def _pack(self) -> None:
        raise NotImplementedError

    def _packed_views(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(parameter, packed tensor it must view) pairs, used to detect broken views."""
        return []

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> PackedModule:
        super()._apply(fn, recurse)
        self._pack()
        return self


def _repack_after_load(module: nn.Module, incompatible_keys: Any) -> None:
    assert isinstance(module, PackedModule)
    for param, packed in module._packed_views():
        if param.device.type != "meta" and (param.untyped_storage().data_ptr() != packed.untyped_storage().data_ptr()):
            module._pack()
            return
