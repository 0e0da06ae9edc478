"""Feed-forward blocks of the DeepSeek-OCR decoder: the dense SwiGLU, the router and the MoE.

Architecture facts: deepseek-ocr-architecture.md §2.1. Split from :mod:`.decoder` so each file reads
in one sitting; the decoder layer picks a dense SwiGLU or a MoE by layer index.
"""

from __future__ import annotations

import functools
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import flop_registry, register_flop_formula

from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr.common import PackedModule, pack_parameters
from llm_perf_opt.models.deepseek_ocr.moe_triton import fused_moe, fused_moe_ok
from llm_perf_opt.specs.execution import FUSED_MAX_PAIRS, GATHER_MAX_PAIRS
from llm_perf_opt.specs.model_spec import DecoderSpec

MOE_IMPLS = ("auto", "grouped", "loop", "gather", "fused")
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
    """Router: softmax over E experts (fp32), greedy top-k, optional renorm, × routed_scaling_factor.

    Top-k is unsorted (``sorted=False``), as in the official MoEGate: the experts' order never
    matters to the output, and sorting them costs a kernel per MoE layer (H200 census: 4 µs).
    """

    def __init__(self, spec: DecoderSpec) -> None:
        super().__init__()
        self.top_k = spec.num_experts_per_tok
        self.norm_topk_prob = spec.norm_topk_prob
        self.scaling = spec.routed_scaling_factor
        self.weight = nn.Parameter(torch.zeros(spec.n_routed_experts, spec.hidden_size))
        self._weight32: tuple[tuple[int, int, torch.device], torch.Tensor] | None = None

    def weight_fp32(self) -> torch.Tensor:
        """The router weight in fp32, converted once per weight version instead of every step
        (one conversion kernel per MoE layer and step). Keyed on storage, version and device, so
        ``load_state_dict``, ``.to()`` and in-place copies are all seen."""
        w = self.weight
        if w.dtype == torch.float32:
            return w
        try:
            key = (w.data_ptr(), w._version, w.device)
        except RuntimeError:  # an inference tensor has no version counter: no safe cache, convert
            return w.float()
        if self._weight32 is None or self._weight32[0] != key:
            self._weight32 = (key, w.detach().float())
        return self._weight32[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, H] → (weights fp32 [N, k], expert ids int64 [N, k])."""
        scores = F.linear(x.float(), self.weight_fp32()).softmax(dim=-1)
        weights, ids = torch.topk(scores, self.top_k, dim=-1, sorted=False)
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
    - ``gather``: batched matmuls over per-pair gathered weights; shape-only, used on ``meta`` and
      by the graph decode step at ≤ :data:`GATHER_MAX_PAIRS` token-expert pairs (batch 1) where
      ``fused`` does not run.
    - ``fused``: the whole MoE, shared experts included, in three Triton kernels that read each
      selected expert in place (:mod:`.moe_triton`); the graph decode step's pick at
      ≤ :data:`FUSED_MAX_PAIRS` pairs (batch ≤ 16) on CUDA.

    All of them multiply exactly tokens·k expert matmuls. FlopCounterMode counts them for every
    dispatch but ``fused``, whose Triton kernels it cannot see (the analytic model has the FLOPs).
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
        """A dispatch whose shapes do not depend on the routing: an explicit ``grouped``, ``gather`` or
        ``fused`` :attr:`impl`; else ``fused`` where it runs and the step has at most
        :data:`FUSED_MAX_PAIRS` token-expert pairs; else ``grouped`` where it runs and the step has
        more than :data:`GATHER_MAX_PAIRS` pairs; else ``gather``."""
        if self.impl in ("grouped", "gather", "fused"):
            return self.impl
        pairs = x.reshape(-1, x.shape[-1]).shape[0] * self.gate.top_k
        if pairs <= FUSED_MAX_PAIRS and self._fused_ok(x):
            return "fused"
        if (
            pairs > GATHER_MAX_PAIRS
            and x.device.type == "cuda"
            and x.dtype == torch.bfloat16
            and _cuda_grouped_mm_ok(x.device)
        ):
            return "grouped"
        return "gather"

    def _fused_ok(self, x: torch.Tensor) -> bool:
        """``fused`` runs here: the kernels work on this device, and the shared width is whole experts."""
        shared = self.shared_experts
        whole = shared is None or shared.intermediate % self.intermediate == 0
        return x.device.type == "cuda" and whole and fused_moe_ok(x.device)

    def forward(self, x: torch.Tensor, impl: str | None = None) -> torch.Tensor:
        """``impl`` overrides :attr:`impl` for this call (the static decode step passes its own)."""
        flat = x.reshape(-1, x.shape[-1])
        weights, ids = self.gate(flat)
        if (impl or self.impl) == "fused":
            if not self._fused_ok(flat):
                raise UserError("the fused MoE needs Triton and a CUDA GPU (sm80+); use --moe-impl auto or gather")
            shared = self.shared_experts
            packed = None
            if shared is not None:
                assert shared.gate_up_weight is not None  # shared experts are always packed
                packed = (shared.gate_up_weight, shared.down_proj.weight)
            return fused_moe(flat, ids, weights, self.gate_up_weight, self.down_weight, packed).view_as(x)
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
            # Expert ids as uint8 keys where they fit: a radix sort runs one pass per 8-bit digit, so int64
            # ids cost eight (H200 prefill: 27–70 µs per MoE layer, ~10% of a batch-1 prefill).
            keys = flat_ids.to(torch.uint8) if self.num_experts <= 256 else flat_ids
            sorted_ids, order = torch.sort(keys, stable=True)
            xs = x.index_select(0, order // k)
            if self._expert_range is None or self._expert_range.device != x.device:
                self._expert_range = torch.arange(self.num_experts, device=x.device, dtype=keys.dtype)
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
