"""DeepSeek-V2 decoder layers as used by DeepSeek-OCR: plain MHA (use_mla = false) + MoE.

Architecture facts: deepseek-ocr-architecture.md §1.1, §2.1.

Speed notes (batch-1 decode is launch-bound: ~1 GFLOP per token spread over hundreds of kernels):
- q/k/v, gate/up and all routed experts are packed (:class:`~.common.PackedModule`), so attention
  uses one QKV matmul and every SwiGLU one gate-up matmul, while the official parameter names stay.
- RoPE is applied to q and k together with three kernels (mul, roll, addcmul).
- MoE dispatch on CUDA bf16 never waits for the device: no host sync per layer (see :class:`.mlp.MoE`).
- Measured on CPU with the tiny spec (fp32, batch 1, context 64): ~6× less time per decode step
  than transformers' DeepseekOcr2TextModel (grouped_mm or eager experts), logits equal to 2e-7.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llm_perf_opt.models.deepseek_ocr.common import PackedModule, attend, pack_parameters
from llm_perf_opt.models.deepseek_ocr.mlp import MOE_IMPLS, MoE, SwiGLU
from llm_perf_opt.models.deepseek_ocr.step_attention import StepAttention
from llm_perf_opt.specs.model_spec import DecoderSpec

__all__ = ["MOE_IMPLS", "DecoderAttention", "DecoderLayer", "MoE", "RMSNorm", "RotaryEmbedding", "SwiGLU"]


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · w. One fused kernel (F.rms_norm) instead of ~6 elementwise ones."""

    def __init__(self, hidden: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class RotaryEmbedding:
    """Rotate-half (NeoX) RoPE over the full head dim, θ = 1e4, no scaling.

    rope(x) = x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁]; we store
    sin_signed = [−sin, sin] so that rotate_half(x)·sin = roll(x, d/2)·sin_signed. Tables are
    computed in fp32 (angles t·θ^(−2i/d)) and cached per device/dtype; not module state, so they
    never appear in the state dict or need initialising after ``to_empty``.
    """

    def __init__(self, head_dim: int, theta: float, max_positions: int) -> None:
        self.head_dim = head_dim
        self.theta = theta
        self.max_positions = max_positions
        self._tables: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin_signed), each [≥ length, head_dim]; grows past max_positions only on demand."""
        key = (device, dtype)
        cached = self._tables.get(key)
        if cached is None or cached[0].shape[0] < length:
            n = max(length, self.max_positions)
            with torch.inference_mode(False), torch.no_grad():
                half = torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32) / self.head_dim
                inv_freq = 1.0 / (self.theta**half)
                freqs = torch.outer(torch.arange(n, device=device, dtype=torch.float32), inv_freq)
                cos = torch.cat([freqs.cos(), freqs.cos()], dim=-1).to(dtype)
                sin = torch.cat([-freqs.sin(), freqs.sin()], dim=-1).to(dtype)
            cached = self._tables[key] = (cos, sin)
        return cached


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """x [B, T, heads, d] with cos/sin [T, 1, d] → rotated copy."""
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), sin_signed)


class DecoderAttention(PackedModule):
    """Llama-style MHA: q/k/v/o_proj without bias, RoPE on q and k, causal, KV cache aware."""

    def __init__(self, spec: DecoderSpec, attn_impl: str) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, spec.head_dim
        self.attn_impl = attn_impl
        hidden = spec.hidden_size
        self.q_proj = nn.Linear(hidden, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, hidden, bias=False)
        self._pack()

    def _pack(self) -> None:
        self.qkv_weight = pack_parameters([[self.q_proj.weight, self.k_proj.weight, self.v_proj.weight]])[0]

    def _packed_views(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(p.weight, self.qkv_weight) for p in (self.q_proj, self.k_proj, self.v_proj)]

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor] | None,
        start: int,
    ) -> torch.Tensor:
        """x [B, T, H] at positions start..start+T−1; ``kv`` receives this step's keys/values."""
        t = x.shape[1]
        q, k, v = self._project(x, cos, sin)
        if kv is not None:
            cache_k, cache_v = kv
            cache_k[:, :, start : start + t] = k
            cache_v[:, :, start : start + t] = v
            k, v = cache_k[:, :, : start + t], cache_v[:, :, : start + t]
        if start == 0:
            return self._attend(q, k, v, is_causal=t > 1)
        if t == 1:  # one new token sees every cached position: no mask needed
            return self._attend(q, k, v)
        # a chunk after a cached prefix: bottom-right aligned causal mask
        pos = torch.arange(start + t, device=x.device)
        return self._attend(q, k, v, mask=pos[None, :] <= pos[start:, None])

    def forward_static(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor],
        pos: torch.Tensor,
        attention: StepAttention,
    ) -> torch.Tensor:
        """One decode token per row with shapes that never change (CUDA-graph capturable).

        x [B, 1, H]; ``pos`` [1] int64 on the device is the position written; ``kv`` are the
        layer's whole cache views [B, kv_heads, C, d]; ``attention`` (built once per step) reads
        positions 0..pos of them without asking the host (:mod:`.step_attention`).
        """
        b = x.shape[0]
        q, k, v = self._project(x, cos, sin)
        cache_k, cache_v = kv
        cache_k.index_copy_(2, pos, k)
        cache_v.index_copy_(2, pos, v)
        out = attention(q, cache_k, cache_v)
        return self.o_proj(out.transpose(1, 2).reshape(b, 1, self.num_heads * self.head_dim))

    def _project(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v [B, heads, T, d] of x [B, T, H]: one packed matmul, RoPE on q and k together."""
        b, t, _ = x.shape
        nh, nkv = self.num_heads, self.num_kv_heads
        qkv = F.linear(x, self.qkv_weight).view(b, t, nh + 2 * nkv, self.head_dim)
        qk = apply_rope(qkv[:, :, : nh + nkv], cos, sin)
        return qk[:, :, :nh].transpose(1, 2), qk[:, :, nh:].transpose(1, 2), qkv[:, :, nh + nkv :].transpose(1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **mask: Any) -> torch.Tensor:
        """Attention over k/v (KV heads repeated for GQA), heads merged, o_proj."""
        b, nh, t, _ = q.shape
        if self.num_kv_heads != nh:
            k = k.repeat_interleave(nh // self.num_kv_heads, dim=1)
            v = v.repeat_interleave(nh // self.num_kv_heads, dim=1)
        out = attend(q, k, v, impl=self.attn_impl, **mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, nh * self.head_dim))


class DecoderLayer(nn.Module):
    """Pre-norm layer: x + attn(norm(x)), then x + mlp(norm(x)); mlp dense or MoE by index."""

    def __init__(self, spec: DecoderSpec, index: int, attn_impl: str) -> None:
        super().__init__()
        self.self_attn = DecoderAttention(spec, attn_impl)
        self.mlp: nn.Module = MoE(spec) if spec.is_moe(index) else SwiGLU(spec.hidden_size, spec.intermediate_size)
        self.input_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor] | None,
        start: int,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, kv, start)
        return x + self.mlp(self.post_attention_layernorm(x))

    def forward_static(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor],
        pos: torch.Tensor,
        attention: StepAttention,
    ) -> torch.Tensor:
        """The decode step of :meth:`DecoderAttention.forward_static`; MoE with a routing-independent dispatch."""
        x = x + self.self_attn.forward_static(self.input_layernorm(x), cos, sin, kv, pos, attention)
        h = self.post_attention_layernorm(x)
        if isinstance(self.mlp, MoE):
            return x + self.mlp(h, impl=self.mlp.static_impl(h))
        return x + self.mlp(h)
