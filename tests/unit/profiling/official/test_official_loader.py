"""Building the official-structure code through transformers: random init, safetensors, bad directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from llm_perf_opt.errors import UserError
from llm_perf_opt.profiling.official import load_official_model

CPU = torch.device("cpu")


def test_random_weights_build_the_checkpoint_class_in_the_dtype(official_dir: Path) -> None:
    model = load_official_model(official_dir, weights=None, device=CPU, dtype=torch.float32)
    assert type(model).__name__ == "DeepseekOCRForCausalLM"
    assert not model.training
    names = dict(model.named_modules())
    for name in ("model.sam_model", "model.vision_model", "model.projector", "lm_head", "model.layers.1.mlp.gate"):
        assert name in names
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_weights_come_from_the_safetensors_file(official_dir: Path, tmp_path: Path) -> None:
    model = load_official_model(official_dir, weights=None, device=CPU, dtype=torch.float32)
    ckpt = tmp_path / "ckpt"
    shutil.copytree(official_dir, ckpt)
    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    state["lm_head.weight"] = torch.full_like(state["lm_head.weight"], 0.25)
    save_file(state, str(ckpt / "model.safetensors"), metadata={"format": "pt"})  # as HF checkpoints store it
    loaded = load_official_model(ckpt, weights=ckpt, device=CPU, dtype=torch.float32)
    assert torch.equal(loaded.lm_head.weight, state["lm_head.weight"])
    assert torch.equal(loaded.model.projector.layers.weight, state["model.projector.layers.weight"])


def test_weights_dir_without_safetensors_is_one_clear_error(official_dir: Path) -> None:
    with pytest.raises(UserError, match=r"no \*\.safetensors"):
        load_official_model(official_dir, weights=official_dir, device=CPU, dtype=torch.float32)


def test_broken_checkpoint_code_is_one_clear_error(official_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(official_dir, broken)
    path = broken / "modeling_deepseekocr.py"
    path.write_text(path.read_text().replace("self.projector = MlpProjector(", "self.projector = MissingName("))
    with pytest.raises(UserError, match=r"building the official model from .* failed: .*MissingName"):
        load_official_model(broken, weights=None, device=CPU, dtype=torch.float32)
