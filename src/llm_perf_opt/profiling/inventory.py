"""Layer inventory of the model under test: torchinfo on the real input shapes, every unique module class.

``torchinfo-unique-layers.json`` / ``.md``: one row per module class that runs in one prefill of
the first batch (vision, projector, decoder, lm_head), with the number of instances, parameters
per instance and in total, the input and output shapes seen, and the analytic layer and operator
category (:mod:`llm_perf_opt.analytic.categories`, the seeds' TargetOperatorList) the class is
modelled by. Classes the analytic model has no layer for are listed as unmodelled. Works for
our model and for the official checkpoint code (its class names are mapped too).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

# class name → (analytic layer, operator category). Ours first, then the official code's names.
LAYER_MAP: dict[str, tuple[str, str]] = {
    # llm_perf_opt.models.deepseek_ocr
    "SamEncoder": ("SamEncoder", "vision_attention"),
    "SamBlock": ("SamBlock", "vision_attention"),
    "SamAttention": ("SamAttention", "vision_attention"),
    "SamMLP": ("VisionMLP", "vision_mlp"),
    "PatchEmbed": ("Conv2d", "vision_conv"),
    "LayerNorm2d": ("LayerNorm2d", "norm"),
    "ClipVisionModel": ("ClipEncoder", "vision_attention"),
    "ClipTransformer": ("ClipEncoder", "vision_attention"),
    "ClipLayer": ("ClipLayer", "vision_attention"),
    "ClipAttention": ("ClipAttention", "vision_attention"),
    "ClipMLP": ("VisionMLP", "vision_mlp"),
    "ClipEmbeddings": ("ClipEmbeddings", "embedding"),
    "MlpProjector": ("ProjectorPass", "projector"),
    "DeepseekOCRModel": ("DecoderStack", "embedding"),
    "DeepseekOCRForCausalLM": ("DeepseekOCRGeneration", "lm_head"),
    "DecoderLayer": ("DecoderLayer", "decoder_attention"),
    "DecoderAttention": ("DecoderAttention", "decoder_attention"),
    "PackedModule": ("Linear", "decoder_attention"),
    "RotaryEmbedding": ("RoPE", "decoder_attention"),
    "RMSNorm": ("RMSNorm", "norm"),
    "SwiGLU": ("SwiGLU", "dense_mlp"),
    "MoE": ("MoE", "moe_experts"),
    "MoEGate": ("MoERouter", "moe_router"),
    # official checkpoint code (deepencoder.py, modeling_deepseekv2.py, modeling_deepseekocr.py)
    "ImageEncoderViT": ("SamEncoder", "vision_attention"),
    "Block": ("SamBlock", "vision_attention"),
    "Attention": ("SamAttention", "vision_attention"),
    "MLPBlock": ("VisionMLP", "vision_mlp"),
    "VitModel": ("ClipEncoder", "vision_attention"),
    "NoTPTransformer": ("ClipEncoder", "vision_attention"),
    "NoTPTransformerBlock": ("ClipLayer", "vision_attention"),
    "NoTPAttention": ("ClipAttention", "vision_attention"),
    "NoTPFeedForward": ("VisionMLP", "vision_mlp"),
    "CLIPVisionEmbeddings": ("ClipEmbeddings", "embedding"),
    "LayerNormfp32": ("LayerNorm", "norm"),
    "DeepseekV2DecoderLayer": ("DecoderLayer", "decoder_attention"),
    "LlamaAttention": ("DecoderAttention", "decoder_attention"),
    "DeepseekV2Attention": ("DecoderAttention", "decoder_attention"),
    "LlamaRotaryEmbedding": ("RoPE", "decoder_attention"),
    "DeepseekV2RMSNorm": ("RMSNorm", "norm"),
    "DeepseekV2MLP": ("SwiGLU", "dense_mlp"),
    "DeepseekV2MoE": ("MoE", "moe_experts"),
    # torch.nn
    "Linear": ("Linear", "by parent"),
    "Conv2d": ("Conv2d", "vision_conv"),
    "LayerNorm": ("LayerNorm", "norm"),
    "Embedding": ("Embedding", "embedding"),
}
"""Module class → the analytic layer class that models it and its operator category."""
UNMODELLED_OK = {"ModuleList", "Sequential", "Identity", "Dropout", "GELU", "SiLU", "QuickGELU", "ActivationWrapper"}
"""Containers and activations: the analytic model counts them inside their parent layer (not unmodelled)."""


def _shape(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, (list, tuple)):
        shapes = [_shape(v) for v in value]
        return [s for s in shapes if s is not None] or None
    if isinstance(value, dict):
        return _shape(list(value.values()))
    if hasattr(value, "logits"):
        return _shape(value.logits)
    if hasattr(value, "last_hidden_state"):
        return _shape(value.last_hidden_state)
    return None


class _Runner(nn.Module):
    """Wraps a model so that torchinfo hooks every submodule while ``call`` runs one prefill."""

    def __init__(self, model: nn.Module, call: Callable[[], Any]) -> None:
        super().__init__()
        self.model = model
        self._call = call

    def forward(self) -> Any:
        return self._call()


def inventory(model: nn.Module, call: Callable[[], Any], *, label: str) -> dict[str, Any]:
    """Run ``call`` (one prefill of ``model``) under torchinfo and group the modules by class."""
    import torchinfo

    was_training = model.training
    try:  # the wrapper is new (training=True): eval mode explicitly, so the model's eval-only paths run
        stats = torchinfo.summary(
            _Runner(model, call).eval(), input_data=[], depth=64, verbose=0, col_names=(), mode="eval"
        )
    finally:
        model.train(was_training)
    seen: dict[int, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    for info in stats.summary_list:
        module = info.module
        cls = type(module).__name__
        if module is model or cls == "_Runner":
            continue
        row = rows.setdefault(
            cls,
            {"class_name": cls, "first_path": info.var_name, "count": 0, "calls": 0, "params_per_instance": [],
             "params_total": 0, "input_shapes": [], "output_shapes": []},
        )  # fmt: skip
        row["calls"] += 1
        if id(module) not in seen:
            seen[id(module)] = module
            params = sum(int(p.numel()) for p in module.parameters())
            row["count"] += 1
            row["params_total"] += params
            if params not in row["params_per_instance"]:
                row["params_per_instance"].append(params)
        for key, shape in (("input_shapes", info.input_size), ("output_shapes", info.output_size)):
            if shape and shape not in row[key] and len(row[key]) < 4:
                row[key].append(shape)
    unmodelled = []
    for cls, row in rows.items():
        layer, category = LAYER_MAP.get(cls, (None, None))
        row["analytic_layer"], row["operator_category"] = layer, category
        if layer is None and cls not in UNMODELLED_OK:
            unmodelled.append(cls)
    return {
        "model": label,
        "model_class": type(model).__name__,
        "total_params": sum(int(p.numel()) for p in model.parameters()),
        "layers": sorted(rows.values(), key=lambda r: -r["params_total"]),
        "unmodelled": sorted(unmodelled),
        "note": "one prefill of the first batch; count = module instances, calls = forward calls seen",
    }


def render_markdown(inv: dict[str, Any]) -> str:
    lines = [
        f"# Unique layers of {inv['model_class']} ({inv['model']})",
        "",
        f"{inv['total_params']:,} parameters; {inv['note']}.",
        "",
        "| class | count | calls | params / instance | params total | input shapes | output shapes | "
        "analytic layer | category |",
        "|---|---:|---:|---|---:|---|---|---|---|",
    ]
    for r in inv["layers"]:
        per = ", ".join(f"{p:,}" for p in r["params_per_instance"])
        lines.append(
            f"| {r['class_name']} | {r['count']} | {r['calls']} | {per} | {r['params_total']:,} | "
            f"{r['input_shapes'][:2]} | {r['output_shapes'][:2]} | {r['analytic_layer'] or '—'} | "
            f"{r['operator_category'] or '—'} |"
        )
    lines += ["", "Unmodelled classes (no analytic layer): " + (", ".join(inv["unmodelled"]) or "none") + "."]
    return "\n".join(lines) + "\n"


def prefill_call(session: Any, batch: Any) -> Callable[[], Any]:
    """One prefill forward of ``batch`` through the session's model (ours or the official code)."""
    if getattr(batch.inputs, "images", None) is not None:  # official inputs

        def official() -> Any:
            from llm_perf_opt.profiling.official.session import cuda_calls_stay_on

            inp = batch.inputs
            with cuda_calls_stay_on(session.device):
                return session.model(
                    input_ids=inp.input_ids,
                    images=inp.images,
                    images_seq_mask=inp.images_seq_mask,
                    images_spatial_crop=inp.images_spatial_crop,
                    use_cache=True,
                )

        return official
    gen = importlib.import_module("llm_perf_opt.models.deepseek_ocr.generate")  # the module, not the function

    def ours() -> Any:
        inputs = batch.inputs.to(session.device, session.torch_dtype)
        cache = gen.new_cache(session.model, inputs.batch_size, inputs.prompt_len)
        return gen.prefill(session.model, inputs, cache)

    return ours


def write_inventory(session: Any, batch: Any, out_dir: Path) -> dict[str, Any]:
    """Write ``torchinfo-unique-layers.json`` and ``.md`` for the session's model on ``batch``."""
    label = "hf-official" if getattr(session, "remote_code", False) else "ours"
    with torch.inference_mode():
        inv = inventory(session.model, prefill_call(session, batch), label=f"{session.model_path} ({label})")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "torchinfo-unique-layers.json").write_text(json.dumps(inv, indent=1) + "\n", encoding="utf-8")
    (out_dir / "torchinfo-unique-layers.md").write_text(render_markdown(inv), encoding="utf-8")
    return inv
