"""A preallocated key/value cache: one tensor, written in place, length tracked on the host.

Layout [layers, 2 (k, v), batch, max_len, kv_heads, head_dim]: positions before heads, the layout
flash attention's kernels read natively and the one whose layer slice flattens to [B·max_len,
kv_heads, d] without a copy (the graph decode step's varlen flash call, :mod:`.step_attention`).
:meth:`KVCache.layer` hands out [B, kv_heads, max_len, d] *views* (SDPA's order), so callers slice
``[:, :, :length]`` and write a step with one strided copy per tensor. The length is a Python int, so
decode never asks the device where it is (no host sync) and RoPE positions are plain slices.
"""

from __future__ import annotations

import torch

from llm_perf_opt.errors import UserError
from llm_perf_opt.specs.model_spec import DecoderSpec


class KVCache:
    """Keys and values of every decoder layer for ``batch`` sequences of up to ``max_len`` tokens."""

    def __init__(
        self,
        *,
        num_layers: int,
        batch: int,
        num_kv_heads: int,
        head_dim: int,
        max_len: int,
        device: torch.device | str,
        dtype: torch.dtype,
    ) -> None:
        # Allocated under inference_mode like the generation that writes it; torch.empty because
        # positions ≥ length are never read.
        with torch.inference_mode():
            self.buffer = torch.empty(
                (num_layers, 2, batch, max_len, num_kv_heads, head_dim), device=device, dtype=dtype
            )
        self.length = 0

    @classmethod
    def for_decoder(
        cls, spec: DecoderSpec, *, batch: int, max_len: int, device: torch.device | str, dtype: torch.dtype
    ) -> KVCache:
        return cls(
            num_layers=spec.num_layers,
            batch=batch,
            num_kv_heads=spec.num_kv_heads,
            head_dim=spec.head_dim,
            max_len=max_len,
            device=device,
            dtype=dtype,
        )

    @property
    def batch(self) -> int:
        return self.buffer.shape[2]

    @property
    def max_len(self) -> int:
        return self.buffer.shape[3]

    def layer(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(keys, values) of one layer, each a [B, kv_heads, max_len, head_dim] view of the buffer."""
        return self.buffer[index, 0].transpose(1, 2), self.buffer[index, 1].transpose(1, 2)

    def reserve(self, new_tokens: int) -> int:
        """Check room for ``new_tokens`` more positions; returns the start position."""
        if self.length + new_tokens > self.max_len:
            raise UserError(f"KV cache holds {self.max_len} positions; {self.length} used, {new_tokens} more requested")
        return self.length

    @property
    def bytes_per_token(self) -> int:
        """2 · layers · kv_heads · head_dim · dtype bytes (61,440 B for DeepSeek-OCR in bf16)."""
        layers, two, _, _, heads, dim = self.buffer.shape
        return layers * two * heads * dim * self.buffer.element_size()

    @property
    def used_bytes(self) -> int:
        """Bytes held by filled positions: bytes_per_token · batch · length."""
        return self.bytes_per_token * self.batch * self.length

    @property
    def allocated_bytes(self) -> int:
        return self.buffer.numel() * self.buffer.element_size()
