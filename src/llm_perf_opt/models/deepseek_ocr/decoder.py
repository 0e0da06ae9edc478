"""DeepSeek-V2 decoder layers as used by DeepSeek-OCR: plain MHA (use_mla = false) + MoE.

Architecture facts: deepseek-ocr-architecture.md §1.1, §2.1.

Speed notes (batch-1 decode is launch-bound: ~1 GFLOP per token spread over hundreds of kernels):
- q/k/v, gate/up and all routed experts are packed (:class:`~.common.PackedModule`), so attention
  uses one QKV matmul and every SwiGLU one gate-up matmul, while the official parameter names stay.
- RoPE is applied to q and k together with three kernels (mul, roll, addcmul).
- MoE dispatch on CUDA bf16 never waits for the device: no host sync per layer (see :class:`MoE`).
- Measured on CPU with the tiny spec (fp32, batch 1, context 64): ~6× less time per decode step
  than transformers' DeepseekOcr2TextModel (grouped_mm or eager experts), logits equal to 2e-7.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import flop_registry, register_flop_formula

from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr.common import PackedModule, attend, pack_parameters
from llm_perf_opt.specs.model_spec import DecoderSpec

MOE_IMPLS = ("auto", "grouped", "loop", "gather")
"""Routed-expert dispatch: see :class:`MoE`."""

_GROUPED_MM = getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)


@functools.cache
def _cuda_grouped_mm_ok(device: torch.device) -> bool:
    """grouped_mm has native CUDA kernels from sm80 on (torch ≥ 2.9); cached: asked every layer."""
    return _GROUPED_MM is not None and torch.cuda.get_device_capability(device) >= (8, 0)


def _register_grouped_mm_flops() -> None:
    """Teach FlopCounterMode about ``aten._grouped_mm`` (torch has no formula and counts 0).

    FLOPs = 2·M·K·N for the rows of A actually multiplied. Our MoE always covers every row of A
    (offs[-1] = M), so this is exactly tokens·k expert matmuls. Registered once, globally.
    """
    op = getattr(torch.ops.aten, "_grouped_mm", None)
    if op is None or op in flop_registry:
        return

    @register_flop_formula(op)
    def _grouped_mm_flops(
        a_shape: list[int], b_shape: list[int], *args: object, out_shape: list[int], **kwargs: object
    ) -> int:
        if len(a_shape) == 2 and len(b_shape) == 2:  # groups split the reduction dim
            return 2 * a_shape[0] * a_shape[1] * b_shape[1]
        out = 1
        for d in out_shape:
            out *= d
        return 2 * out * a_shape[-1]


_register_grouped_mm_flops()


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
        visible: torch.Tensor,
    ) -> torch.Tensor:
        """One decode token per row with shapes that never change (CUDA-graph capturable).

        x [B, 1, H]; ``pos`` [1] int64 on the device is the position written; ``kv`` are the
        cache views of one KV-length bucket [B, kv_heads, L, d]; ``visible`` [1, 1, 1, L] bool
        masks the positions after ``pos``. Attention reads all L slots of the bucket, so the work
        depends on the bucket, not on the exact length: the price of never asking the host.
        """
        q, k, v = self._project(x, cos, sin)
        cache_k, cache_v = kv
        cache_k.index_copy_(2, pos, k)
        cache_v.index_copy_(2, pos, v)
        return self._attend(q, cache_k, cache_v, mask=visible)

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


class SwiGLU(PackedModule):
    """DeepseekV2MLP: down(silu(gate(x)) · up(x)), no bias. ``pack`` fuses gate and up."""

    def __init__(self, hidden: int, intermediate: int, *, pack: bool = True) -> None:
        super().__init__()
        self.intermediate = intermediate
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)
        self.pack = pack  # routed experts are packed by their MoE instead
        self.gate_up_weight: torch.Tensor | None = None
        self._pack()

    def _pack(self) -> None:
        if self.pack:
            self.gate_up_weight = pack_parameters([[self.gate_proj.weight, self.up_proj.weight]])[0]

    def _packed_views(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.gate_up_weight is None:
            return []
        return [(self.gate_proj.weight, self.gate_up_weight), (self.up_proj.weight, self.gate_up_weight)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up_weight is None:
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        gate_up = F.linear(x, self.gate_up_weight)
        return self.down_proj(F.silu(gate_up[..., : self.intermediate]) * gate_up[..., self.intermediate :])


class MoEGate(nn.Module):
    """Router: softmax over E experts (fp32), greedy top-k, optional renorm, × routed_scaling_factor."""

    def __init__(self, spec: DecoderSpec) -> None:
        super().__init__()
        self.top_k = spec.num_experts_per_tok
        self.norm_topk_prob = spec.norm_topk_prob
        self.scaling = spec.routed_scaling_factor
        self.weight = nn.Parameter(torch.zeros(spec.n_routed_experts, spec.hidden_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, H] → (weights fp32 [N, k], expert ids int64 [N, k])."""
        scores = F.linear(x.float(), self.weight.float()).softmax(dim=-1)
        weights, ids = torch.topk(scores, self.top_k, dim=-1)
        if self.norm_topk_prob:  # false for DeepSeek-OCR
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        if self.scaling != 1.0:
            weights = weights * self.scaling
        return weights, ids


class MoE(PackedModule):
    """Routed experts (each computed only on its tokens) plus the fused shared experts.

    y = Σ_k w_k · expert_{id_k}(x) + shared(x); the weighted sum is taken in fp32 as the official
    inference code does. Token-expert pairs are sorted by expert once; dispatch then uses
    (``impl``, ``"auto"`` picks):

    - ``grouped``: two ``grouped_mm`` calls over the packed [E, 2I, H] / [E, H, I] weights with
      device-side group offsets: no host sync, ~20 kernels per layer whatever k is. Auto on CUDA
      bf16 (the kernel's dtype), which is the decode-speed case.
    - ``loop``: one matmul pair per expert that got tokens; needs the group sizes on the host, so
      one device→host copy per layer. Any dtype/device; auto on CPU and non-bf16 CUDA.
    - ``gather``: batched matmuls over per-pair gathered weights; shape-only, used on ``meta``.

    All three multiply exactly tokens·k expert matmuls, so FlopCounterMode counts the same FLOPs.
    """

    def __init__(self, spec: DecoderSpec) -> None:
        super().__init__()
        self.num_experts = spec.n_routed_experts
        self.intermediate = spec.moe_intermediate_size
        self.impl = "auto"
        self.gate = MoEGate(spec)
        self.experts = nn.ModuleList(
            SwiGLU(spec.hidden_size, spec.moe_intermediate_size, pack=False) for _ in range(spec.n_routed_experts)
        )
        self.shared_experts = (
            SwiGLU(spec.hidden_size, spec.shared_intermediate_size) if spec.n_shared_experts > 0 else None
        )
        self._pack()

    def _expert_list(self) -> list[SwiGLU]:
        return [cast(SwiGLU, e) for e in self.experts]

    def _pack(self) -> None:
        experts = self._expert_list()
        self.gate_up_weight = pack_parameters([[e.gate_proj.weight, e.up_proj.weight] for e in experts])
        self.down_weight = pack_parameters([[e.down_proj.weight] for e in experts])
        self._expert_range: torch.Tensor | None = None

    def _packed_views(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for e in self._expert_list():
            out += [(e.gate_proj.weight, self.gate_up_weight), (e.up_proj.weight, self.gate_up_weight)]
            out.append((e.down_proj.weight, self.down_weight))
        return out

    def resolve_impl(self, x: torch.Tensor) -> str:
        if self.impl not in MOE_IMPLS:
            raise UserError(f"unknown MoE implementation {self.impl!r}; valid: {', '.join(MOE_IMPLS)}")
        if self.impl != "auto":
            return self.impl
        if x.device.type == "meta":
            return "gather"
        if x.device.type == "cuda" and x.dtype == torch.bfloat16 and _cuda_grouped_mm_ok(x.device):
            return "grouped"
        return "loop"

    def static_impl(self, x: torch.Tensor) -> str:
        """A dispatch whose shapes do not depend on the routing: ``grouped`` where it runs, else ``gather``."""
        if x.device.type == "cuda" and x.dtype == torch.bfloat16 and _cuda_grouped_mm_ok(x.device):
            return "grouped"
        return "gather"

    def forward(self, x: torch.Tensor, impl: str | None = None) -> torch.Tensor:
        """``impl`` overrides :attr:`impl` for this call (the static decode step passes its own)."""
        flat = x.reshape(-1, x.shape[-1])
        weights, ids = self.gate(flat)
        y = self.routed(flat, weights, ids, impl)
        if self.shared_experts is not None:
            y = y + self.shared_experts(flat)
        return y.view_as(x)

    def _act(self, gate_up: torch.Tensor) -> torch.Tensor:
        return F.silu(gate_up[..., : self.intermediate]) * gate_up[..., self.intermediate :]

    def routed(
        self, x: torch.Tensor, weights: torch.Tensor, ids: torch.Tensor, impl: str | None = None
    ) -> torch.Tensor:
        """Σ_k weights[:, k] · expert_{ids[:, k]}(x) for x [N, H]."""
        n, k = ids.shape
        impl = impl or self.resolve_impl(x)
        flat_ids = ids.reshape(-1)
        if impl == "gather":
            pairs = x.unsqueeze(1).expand(n, k, x.shape[-1]).reshape(n * k, -1, 1)
            h = self._act(torch.bmm(self.gate_up_weight[flat_ids], pairs).squeeze(-1))
            y = torch.bmm(self.down_weight[flat_ids], h.unsqueeze(-1)).squeeze(-1)
        else:
            sorted_ids, order = torch.sort(flat_ids, stable=True)
            xs = x.index_select(0, order // k)
            if self._expert_range is None or self._expert_range.device != x.device:
                self._expert_range = torch.arange(self.num_experts, device=x.device)
            # ends[e] = number of pairs routed to experts ≤ e (grouped_mm's cumulative offsets).
            ends = torch.searchsorted(sorted_ids, self._expert_range, right=True, out_int32=True)
            ys = self._grouped(xs, ends) if impl == "grouped" else self._loop(xs, ends)
            y = torch.empty_like(ys).index_copy_(0, order, ys)  # back to (token, k) order
        return (y.view(n, k, -1).float() * weights.unsqueeze(-1)).sum(dim=1).to(x.dtype)

    def _grouped(self, xs: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        assert _GROUPED_MM is not None
        h = self._act(_GROUPED_MM(xs, self.gate_up_weight.transpose(1, 2), offs=ends))
        return _GROUPED_MM(h, self.down_weight.transpose(1, 2), offs=ends)

    def _loop(self, xs: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        bounds = ends.tolist()  # the one host sync of this layer
        outs, start = [], 0
        for e, end in enumerate(bounds):
            if end > start:
                h = self._act(F.linear(xs[start:end], self.gate_up_weight[e]))
                outs.append(F.linear(h, self.down_weight[e]))
            start = end
        return torch.cat(outs)


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
        visible: torch.Tensor,
    ) -> torch.Tensor:
        """The decode step of :meth:`DecoderAttention.forward_static`; MoE with a routing-independent dispatch."""
        x = x + self.self_attn.forward_static(self.input_layernorm(x), cos, sin, kv, pos, visible)
        h = self.post_attention_layernorm(x)
        if isinstance(self.mlp, MoE):
            return x + self.mlp(h, impl=self.mlp.static_impl(h))
        return x + self.mlp(h)
