"""transformers' native DeepseekOcr2TextModel holding our decoder's weights, and one step API for both.

DeepSeek-OCR-2 ships the same language model as DeepSeek-OCR v1 (hidden 1280, 12 layers, 10-head
MHA, dense layer 0, 64 routed experts top-6 greedy softmax without renormalisation, 2 shared
experts, vocab 129280); transformers has it as ``DeepseekOcr2TextModel``. :func:`build_hf` makes
one with exactly our decoder's config and copies our weights into it (attention / norms /
embedding by name, per-expert weights into its packed ``experts.gate_up_proj [E, 2I, H]`` and
``experts.down_proj [E, H, I]``). Its TextModel has no lm_head, so :class:`HFRunner` applies ours
to the last position after its final norm, exactly as our ``decode_step`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llm_perf_opt.specs.model_spec import DecoderSpec


def hf_text_config(dec: DecoderSpec, attn_impl: str) -> Any:
    """A DeepseekOcr2TextConfig with exactly our decoder's shape and routing."""
    from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2TextConfig

    if dec.norm_topk_prob:
        raise ValueError("DeepseekOcr2TextModel never renormalises top-k weights; our spec has norm_topk_prob=True")
    k = dec.first_k_dense_replace
    return DeepseekOcr2TextConfig(  # type: ignore[call-arg]
        vocab_size=dec.vocab_size, hidden_size=dec.hidden_size, intermediate_size=dec.intermediate_size,
        num_hidden_layers=dec.num_layers, num_attention_heads=dec.num_heads, num_key_value_heads=dec.num_kv_heads,
        hidden_act="silu", max_position_embeddings=dec.max_position_embeddings, rms_norm_eps=float(dec.rms_norm_eps),
        rope_parameters={"rope_type": "default", "rope_theta": float(dec.rope_theta)}, attention_bias=False,
        mlp_bias=False, tie_word_embeddings=False, n_routed_experts=dec.n_routed_experts,
        num_experts_per_tok=dec.num_experts_per_tok, n_shared_experts=dec.n_shared_experts,
        moe_intermediate_size=dec.moe_intermediate_size, routed_scaling_factor=float(dec.routed_scaling_factor),
        topk_method="greedy", mlp_layer_types=["dense"] * k + ["sparse"] * (dec.num_layers - k),
        bos_token_id=0, eos_token_id=1, pad_token_id=None, attn_implementation=attn_impl,
    )


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def copy_weights_into_hf(ours: Any, hf: nn.Module) -> int:
    """Copy every tensor of HF's state dict from ours (strict: a missing source or shape raises); the count.

    ours ``model.layers.N.mlp.experts.E.{gate,up,down}_proj.weight`` → HF
    ``layers.N.mlp.experts.gate_up_proj[E] = cat(gate, up)`` and ``down_proj[E] = down``; every other
    HF name ``x`` comes from our ``model.x``.
    """
    src = dict(ours.state_dict())
    n_experts = int(ours.spec.decoder.n_routed_experts)  # type: ignore[union-attr]
    copied = 0
    with torch.no_grad():
        for name, dst in hf.state_dict(keep_vars=True).items():
            if name.endswith("mlp.experts.gate_up_proj"):
                p = "model." + name.removesuffix("gate_up_proj")
                value = torch.stack([torch.cat([src[f"{p}{e}.gate_proj.weight"], src[f"{p}{e}.up_proj.weight"]])
                                     for e in range(n_experts)])
            elif name.endswith("mlp.experts.down_proj"):
                p = "model." + name.removesuffix("down_proj")
                value = torch.stack([src[f"{p}{e}.down_proj.weight"] for e in range(n_experts)])
            else:
                if "model." + name not in src:
                    raise KeyError(f"no source for transformers tensor {name!r} (looked for 'model.{name}')")
                value = src["model." + name]
            if tuple(value.shape) != tuple(dst.shape):
                raise ValueError(f"{name}: ours {tuple(value.shape)} vs transformers {tuple(dst.shape)}")
            dst.copy_(value)
            copied += 1
    return copied


def build_hf(ours: Any, device: torch.device, dtype: torch.dtype, attn_impl: str) -> nn.Module:
    """DeepseekOcr2TextModel on ``device`` in ``dtype`` holding our weights."""
    from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2TextModel

    config = hf_text_config(ours.spec.decoder, attn_impl)
    # Like from_pretrained: parameters in ``dtype``; RoPE inv_freq stays fp32 (built with an explicit dtype).
    try:
        with default_dtype(dtype), torch.device(device):
            hf = DeepseekOcr2TextModel(config)
    except Exception:  # a version that dislikes the device context: build on the CPU, then move
        with default_dtype(dtype):
            hf = DeepseekOcr2TextModel(config)
    if any(t.device.type != device.type for t in [*hf.parameters(), *hf.buffers()]):
        hf.to(device)  # type: ignore[arg-type]
    hf.eval()
    hf.requires_grad_(False)
    copy_weights_into_hf(ours, hf)
    return hf


def cast_params_(module: nn.Module, dtype: torch.dtype) -> None:
    """Cast parameters only (buffers such as HF's fp32 RoPE inv_freq keep their dtype)."""
    with torch.no_grad():
        for p in module.parameters():
            p.data = p.data.to(dtype)


def _set_impl(hf: nn.Module, setter_name: str, attr: str, impl: str) -> None:
    setter = getattr(hf, setter_name, None)
    if callable(setter):
        with contextlib.suppress(Exception):  # older / newer signatures: fall back to the config attribute
            setter(impl)
            return
    setattr(hf.config, attr, impl)


def set_hf_attn(hf: nn.Module, impl: str) -> None:
    _set_impl(hf, "set_attn_implementation", "_attn_implementation", impl)


def set_hf_experts(hf: nn.Module, impl: str) -> None:
    _set_impl(hf, "set_experts_implementation", "_experts_implementation", impl)


def hf_experts_impl(hf: nn.Module) -> str | None:
    return getattr(hf.config, "_experts_implementation", None)


class OursRunner:
    """Our decoder: prefill into a preallocated KVCache, then ``decode_step`` (lm_head included)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: Any = None

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, extra_steps: int) -> torch.Tensor:
        from llm_perf_opt.models.deepseek_ocr import new_cache

        self.cache = new_cache(self.model, ids.shape[0], ids.shape[1] + extra_steps)
        return self.model(ids, cache=self.cache, last_only=True)[:, -1]

    @torch.inference_mode()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        from llm_perf_opt.models.deepseek_ocr import decode_step

        return decode_step(self.model, token, self.cache)

    @torch.inference_mode()
    def full_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids)

    def release(self) -> None:
        self.cache = None


class HFRunner:
    """transformers' DeepseekOcr2TextModel with its DynamicCache, plus our lm_head weight after its norm."""

    def __init__(self, model: nn.Module, lm_head_weight: torch.Tensor) -> None:
        self.model = model
        self.lm_head_weight = lm_head_weight
        self.cache: Any = None

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, extra_steps: int) -> torch.Tensor:
        out = self.model(input_ids=ids, use_cache=True)
        self.cache = out.past_key_values
        return F.linear(out.last_hidden_state[:, -1], self.lm_head_weight)

    @torch.inference_mode()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=token.reshape(1, 1), past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return F.linear(out.last_hidden_state[:, -1], self.lm_head_weight)

    @torch.inference_mode()
    def full_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return F.linear(self.model(input_ids=ids, use_cache=False).last_hidden_state, self.lm_head_weight)

    def release(self) -> None:
        self.cache = None


Runner = OursRunner | HFRunner


def logits_diff(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Max / mean |Δ|, the largest |logit|, max |Δ| relative to it, and the argmax agreement."""
    a32, b32 = a.float(), b.float()
    diff = (a32 - b32).abs()
    scale = max(float(a32.abs().max()), 1e-30)
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "max_abs_logit": scale,
            "rel_max_diff": float(diff.max()) / scale,
            "argmax_agree": float((a32.argmax(-1) == b32.argmax(-1)).float().mean())}


def equivalence(ours: OursRunner, hf: HFRunner, ids: torch.Tensor, cached_steps: int) -> dict[str, Any]:
    """Full-sequence logits, then prefill of T − k tokens and k cached single-token steps."""
    full = logits_diff(ours.full_logits(ids), hf.full_logits(ids))
    t = ids.shape[1]
    k = min(cached_steps, t - 1)
    ours_steps, hf_steps = [ours.prefill(ids[:, : t - k], k)], [hf.prefill(ids[:, : t - k], k)]
    for j in range(t - k, t):
        ours_steps.append(ours.step(ids[:, j : j + 1]))
        hf_steps.append(hf.step(ids[:, j : j + 1]))
    ours.release()
    hf.release()
    return {"tokens": t, "cached_steps": k, "full_sequence": full,
            "kv_cached": logits_diff(torch.stack(ours_steps), torch.stack(hf_steps))}
