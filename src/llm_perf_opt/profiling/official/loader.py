"""Build the official DeepSeek-OCR checkpoint code (``--trust-remote-code``) through transformers, offline.

The official Hugging Face checkpoint ships its own model code (``modeling_deepseekocr.py``,
``deepencoder.py``, ``modeling_deepseekv2.py``, ``configuration_deepseek_v2.py``,
``conversation.py``) written for ``transformers==4.46.3``. This module builds that code's
``DeepseekOCRForCausalLM`` from the directory's ``config.json`` (``auto_map``), local files only:

* ``--weights random``: ``AutoModel.from_config`` under ``torch.device(device)`` in the run's dtype,
  so a full-size model is initialised directly on the GPU (no weights needed; timings do not
  depend on weight values);
* otherwise ``AutoModel.from_pretrained`` from the checkpoint's safetensors.

Attention: the official decoder picks ``"mha_" + attn_implementation`` and knows only ``eager``
and ``flash_attention_2``; ``sdpa`` is not one of its paths, so ``--attn-impl sdpa`` runs eager
(noted). SAM and CLIP always call ``F.scaled_dot_product_attention`` in that code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from llm_perf_opt.errors import UserError

OFFICIAL_CLASS = "DeepseekOCRForCausalLM"
"""Class name the official ``config.json`` maps ``AutoModel`` to (``auto_map``)."""
OFFICIAL_TRANSFORMERS = "4.46.3"
"""The transformers release the official code was written for (its config.json says so)."""
CONSTRAINTS_FILE = "constraints/official-transformers-4.46.3.txt"


def _auto_map(directory: Path) -> dict[str, str]:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    return auto_map if isinstance(auto_map, dict) else {}


def is_official_checkpoint(directory: Path | None) -> bool:
    """True when ``directory``'s config maps AutoModel to the official code's DeepseekOCRForCausalLM
    and that code file is present (a checkpoint wrapping our own module is not official)."""
    if directory is None or not directory.is_dir():
        return False
    target = str(_auto_map(directory).get("AutoModel", ""))
    module, _, cls = target.rpartition(".")
    if cls != OFFICIAL_CLASS or not (directory / f"{module}.py").is_file():
        return False
    return "llm_perf_opt" not in (directory / f"{module}.py").read_text(encoding="utf-8", errors="replace")


def official_attn_impl(requested: str) -> tuple[str, str | None]:
    """(attn_implementation passed to the official code, a note or None)."""
    if requested == "eager":
        return "eager", None
    return (
        "eager",
        f"--attn-impl {requested}: the official decoder has only eager and flash_attention_2 paths; eager used",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _version_hint() -> str:
    import transformers

    have = transformers.__version__
    if have == OFFICIAL_TRANSFORMERS:
        return ""
    return f" (the official code targets transformers {OFFICIAL_TRANSFORMERS}, this is {have}: see {CONSTRAINTS_FILE})"


def load_official_model(
    directory: Path, *, weights: Path | None, device: torch.device, dtype: torch.dtype, attn_impl: str = "eager"
) -> Any:
    """The official ``DeepseekOCRForCausalLM`` on ``device`` in ``dtype``, in eval mode.

    ``weights`` None → random initialisation directly on ``device``; else the safetensors of
    that directory (which must hold the official code too, as a Hugging Face checkpoint does).
    Any failure of the checkpoint's code to import or build is one UserError line.
    """
    from transformers import AutoConfig, AutoModel

    source = weights or directory
    if not (source / "config.json").is_file():
        raise UserError(f"--trust-remote-code: {source} has no config.json")
    try:
        config = AutoConfig.from_pretrained(str(source), trust_remote_code=True, local_files_only=True)
        if weights is None:
            with torch.device(device):
                model = AutoModel.from_config(
                    config, trust_remote_code=True, torch_dtype=dtype, attn_implementation=attn_impl
                )
            model = model.to(device=device, dtype=dtype)
        else:
            if not any(weights.glob("*.safetensors")):
                raise UserError(f"--weights {weights}: no *.safetensors files in that directory")
            model = AutoModel.from_pretrained(
                str(weights),
                trust_remote_code=True,
                local_files_only=True,
                torch_dtype=dtype,
                attn_implementation=attn_impl,
                use_safetensors=True,
            ).to(device)
    except UserError:
        raise
    except Exception as exc:  # the checkpoint's own code may fail in any way: a bad input, one line
        raise UserError(
            f"--trust-remote-code: building the official model from {source} failed: {_first_line(exc)}"
            + _version_hint()
        ) from None
    if type(model).__name__ != OFFICIAL_CLASS or not hasattr(model, "generate"):
        raise UserError(f"--trust-remote-code: {source} built {type(model).__name__}, not {OFFICIAL_CLASS}")
    for name in ("sam_model", "vision_model", "projector"):
        if not hasattr(model.model, name):
            raise UserError(f"--trust-remote-code: {source}: the model has no model.{name} (not the official code)")
    model.eval()
    return model


def official_image_token_id(model: Any) -> int:
    """The id the official ``infer()`` puts in image slots: 128815, hard-coded there.

    Its embeddings are overwritten by the image features, so only the count matters; a
    vocabulary too small for it (tiny test configs) takes the config's ``image_token_id`` or V − 1.
    """
    vocab = int(model.config.vocab_size)
    if vocab > 128815:
        return 128815
    return int(getattr(model.config, "image_token_id", vocab - 1))
