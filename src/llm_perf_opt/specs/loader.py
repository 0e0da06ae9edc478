"""Resolve ``--model``: a registry name, a checkpoint directory, or its ``config.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_perf_opt.errors import UserError, unknown_id
from llm_perf_opt.io.convert import structure
from llm_perf_opt.io.documents import expect_mapping, load_document
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY, ClipSpec, DecoderSpec, ModelSpec, SamSpec

# config.json key → DecoderSpec field. The HF remote code builds the model from the top-level
# keys (deepseek-ocr-architecture.md §1.1), so those win over language_config.
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


def _section(config: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    """``config[key]`` as a mapping (absent or null → empty); another shape is a UserError naming it."""
    value = config.get(key)
    return {} if value is None else expect_mapping(value, source, key, "a mapping (JSON object)")


def _token_id(config: dict[str, Any], key: str, default: int, source: str) -> int:
    value = config.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{source}: field {key} must be a non-negative integer, got {value!r}")
    return value


def spec_from_config(config: dict[str, Any], name: str, source: str | None = None) -> ModelSpec:
    """Build a ModelSpec from a DeepSeek-OCR ``config.json`` mapping; structure errors name ``source``.

    The encoders are hard-coded in the official code (deepseek-ocr-architecture.md §1.2), so SAM and CLIP keep the
    built-in numbers unless ``vision_config.width`` names other depths and widths. Every spec is
    validated as it is built (``ModelSpec`` and its parts check their own invariants), so analyze
    and profile refuse an impossible model before anything is computed or allocated.
    """
    source = source or name
    config = expect_mapping(config, source, "(top level)", "a JSON object of config fields")
    if config.get("llm_perf_opt_spec") is not None:
        # Written by our own save_checkpoint: the complete spec, including encoder widths that
        # the official config has no key for (tiny variants).
        full = _section(config, "llm_perf_opt_spec", source)
        return structure({**full, "name": name}, ModelSpec, source=source)
    if config.get("use_mla"):
        raise UserError(f"{name}: use_mla=true (MLA attention) is not DeepSeek-OCR's decoder; not supported")
    merged = dict(_section(config, "language_config", source))
    merged.update({k: v for k, v in config.items() if k in _DECODER_KEYS})
    decoder_kwargs = {field: merged[key] for key, field in _DECODER_KEYS.items() if merged.get(key) is not None}
    vision = _section(config, "vision_config", source)
    width = expect_mapping(vision.get("width") or {}, source, "vision_config.width", "a mapping of encoders")
    sam_cfg = expect_mapping(width.get("sam_vit_b") or {}, source, "vision_config.width.sam_vit_b", "a mapping")
    clip_key = "clip-l-14-224"
    clip_cfg = expect_mapping(width.get(clip_key) or {}, source, f"vision_config.width.{clip_key}", "a mapping")
    sam = SamSpec(
        width=sam_cfg.get("width", 768),
        depth=sam_cfg.get("layers", 12),
        num_heads=sam_cfg.get("heads", 12),
        global_attn_indexes=sam_cfg.get("global_attn_indexes", (2, 5, 8, 11)),
        downsample_channels=sam_cfg.get("downsample_channels", (512, 1024)),
    )
    clip = ClipSpec(
        width=clip_cfg.get("width", 1024),
        num_layers=clip_cfg.get("layers", 24),
        num_heads=clip_cfg.get("heads", 16),
        image_size=clip_cfg.get("image_size", 224),
        patch_size=clip_cfg.get("patch_size", 14),
    )
    model_id = config.get("_name_or_path") or "deepseek-ai/DeepSeek-OCR"
    return ModelSpec(
        name=name,
        model_id=str(model_id),
        sam=sam,
        clip=clip,
        decoder=DecoderSpec(**decoder_kwargs),
        bos_token_id=_token_id(config, "bos_token_id", 0, source),
        eos_token_id=_token_id(config, "eos_token_id", 1, source),
    )


def read_config_json(path: Path) -> dict[str, Any]:
    """The JSON object of a model config (regular file, size-capped); errors name the file."""
    data = load_document(path, "model config", kind="json")
    return expect_mapping(data, f"model config {path}", "(top level)", "a JSON object")


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
    source = f"model config {path}"
    try:
        return spec_from_config(config, name=str(path.parent.resolve()), source=source)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
