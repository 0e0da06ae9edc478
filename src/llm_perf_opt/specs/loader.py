"""Resolve ``--model``: a registry name, a checkpoint directory, or its ``config.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llm_perf_opt.errors import UserError, unknown_id
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY, ClipSpec, DecoderSpec, ModelSpec, SamSpec

# config.json key → DecoderSpec field. The HF remote code builds the model from the top-level
# keys (reference §1.1), so those win over language_config.
_DECODER_KEYS = {
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "intermediate_size": "intermediate_size",
    "moe_intermediate_size": "moe_intermediate_size",
    "n_routed_experts": "n_routed_experts",
    "num_experts_per_tok": "num_experts_per_tok",
    "n_shared_experts": "n_shared_experts",
    "first_k_dense_replace": "first_k_dense_replace",
    "vocab_size": "vocab_size",
    "rms_norm_eps": "rms_norm_eps",
    "rope_theta": "rope_theta",
    "max_position_embeddings": "max_position_embeddings",
    "norm_topk_prob": "norm_topk_prob",
    "routed_scaling_factor": "routed_scaling_factor",
}


def spec_from_config(config: dict[str, Any], name: str) -> ModelSpec:
    """Build a ModelSpec from a DeepSeek-OCR ``config.json`` mapping.

    The encoders are hard-coded in the official code (reference §1.2), so SAM and CLIP keep the
    built-in numbers unless ``vision_config.width`` names other depths and widths.
    """
    if isinstance(config.get("llm_perf_opt_spec"), dict):
        # Written by our own save_checkpoint: the complete spec, including encoder widths that
        # the official config has no key for (tiny variants).
        from llm_perf_opt.contracts.convert import structure

        return structure({**config["llm_perf_opt_spec"], "name": name}, ModelSpec, source=name)
    if config.get("use_mla"):
        raise UserError(f"{name}: use_mla=true (MLA attention) is not DeepSeek-OCR's decoder; not supported")
    merged = dict(config.get("language_config") or {})
    merged.update({k: v for k, v in config.items() if k in _DECODER_KEYS})
    decoder_kwargs = {field: merged[key] for key, field in _DECODER_KEYS.items() if merged.get(key) is not None}
    width = (config.get("vision_config") or {}).get("width") or {}
    sam_cfg = width.get("sam_vit_b") or {}
    clip_cfg = width.get("clip-l-14-224") or {}
    sam = SamSpec(
        width=sam_cfg.get("width", 768),
        depth=sam_cfg.get("layers", 12),
        num_heads=sam_cfg.get("heads", 12),
        global_attn_indexes=tuple(sam_cfg.get("global_attn_indexes", (2, 5, 8, 11))),
        downsample_channels=tuple(sam_cfg.get("downsample_channels", (512, 1024))),
    )
    clip = ClipSpec(
        width=clip_cfg.get("width", 1024),
        num_layers=clip_cfg.get("layers", 24),
        num_heads=clip_cfg.get("heads", 16),
        image_size=clip_cfg.get("image_size", 224),
        patch_size=clip_cfg.get("patch_size", 14),
    )
    return ModelSpec(
        name=name,
        model_id=str(config.get("_name_or_path") or "deepseek-ai/DeepSeek-OCR"),
        sam=sam,
        clip=clip,
        decoder=DecoderSpec(**decoder_kwargs),
        bos_token_id=int(config.get("bos_token_id", 0)),
        eos_token_id=int(config.get("eos_token_id", 1)),
    )


def read_config_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read model config {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"model config {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"model config {path} must hold a JSON object, got {type(data).__name__}")
    return data


def load_model_spec(ref: str) -> ModelSpec:
    """``deepseek-ocr`` / ``tiny``, a checkpoint directory, or a path to its config.json."""
    if ref in MODEL_REGISTRY:
        return MODEL_REGISTRY[ref]
    path = Path(ref)
    if path.is_dir():
        path = path / "config.json"
        if not path.is_file():
            raise UserError(f"checkpoint directory {ref} has no config.json")
    elif not path.exists():
        if path.suffix == ".json" or "/" in ref:
            raise UserError(f"model config {ref} does not exist")
        raise unknown_id("model", ref, list(MODEL_REGISTRY))
    config = read_config_json(path)
    try:
        return spec_from_config(config, name=str(path.parent.resolve()))
    except (TypeError, ValueError) as exc:
        raise UserError(f"model config {path}: {exc}") from None
