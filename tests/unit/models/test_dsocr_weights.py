"""Checkpoints: save → reload gives identical outputs; bad directories are one-line UserErrors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr import DeepseekOCRForCausalLM, build_model, save_checkpoint
from llm_perf_opt.specs.model_spec import ModelSpec

IDS = torch.tensor([[0, 5, 77, 300, 12, 9, 600]])


def _logits(model: DeepseekOCRForCausalLM) -> torch.Tensor:
    with torch.inference_mode():
        return model(IDS)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, tiny_spec: ModelSpec) -> tuple[Path, torch.Tensor]:
    model = build_model(tiny_spec, seed=11)
    out = tmp_path_factory.mktemp("single")
    files = save_checkpoint(model, out)
    assert [f.name for f in files] == ["model.safetensors"]
    return out, _logits(model)


def test_single_file_roundtrip(saved: tuple[Path, torch.Tensor], tiny_spec: ModelSpec) -> None:
    path, expected = saved
    reloaded = build_model(tiny_spec, weights=path, seed=99)  # the seed must not matter
    assert torch.equal(_logits(reloaded), expected)
    also = build_model(tiny_spec, weights=path / "model.safetensors")
    assert torch.equal(_logits(also), expected)


def test_two_shards_with_index_roundtrip(tmp_path: Path, tiny_spec: ModelSpec) -> None:
    model = build_model(tiny_spec, seed=12)
    total = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    files = save_checkpoint(model, tmp_path, max_shard_bytes=total * 2 // 3)
    assert len(files) == 2
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {f.name for f in files}
    reloaded = build_model(tiny_spec, weights=tmp_path)
    assert torch.equal(_logits(reloaded), _logits(model))
    (tmp_path / "model.safetensors.index.json").unlink()  # shards alone are found by their names too
    assert torch.equal(_logits(build_model(tiny_spec, weights=tmp_path)), _logits(model))


def test_bf16_load_and_missing_position_ids(tmp_path: Path, saved: tuple[Path, torch.Tensor], tiny_spec) -> None:  # type: ignore[no-untyped-def]
    state = load_file(str(saved[0] / "model.safetensors"))
    del state["model.vision_model.embeddings.position_ids"]
    save_file({k: v.to(torch.bfloat16) for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    model = build_model(tiny_spec, weights=tmp_path, dtype=torch.bfloat16)
    ids = model.model.vision_model.embeddings.position_ids
    assert torch.equal(ids, torch.arange(257).unsqueeze(0))
    assert torch.equal(model.lm_head.weight, state["lm_head.weight"].to(torch.bfloat16))


def test_meta_device_checks_but_does_not_load(saved: tuple[Path, torch.Tensor], tiny_spec: ModelSpec) -> None:
    model = build_model(tiny_spec, weights=saved[0], device="meta")
    assert model.lm_head.weight.device.type == "meta"


def _broken(tmp_path: Path, saved: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    state = load_file(str(saved / "model.safetensors"))
    edit(state)
    save_file(state, str(tmp_path / "model.safetensors"))
    return tmp_path


def test_missing_tensor(tmp_path: Path, saved: tuple[Path, torch.Tensor], tiny_spec: ModelSpec) -> None:
    path = _broken(tmp_path, saved[0], lambda s: s.pop("model.layers.2.mlp.experts.3.up_proj.weight"))
    with pytest.raises(UserError, match=r"1 missing tensor\(s\): model\.layers\.2\.mlp\.experts\.3\.up_proj\.weight"):
        build_model(tiny_spec, weights=path)


def test_wrong_shape(tmp_path: Path, saved: tuple[Path, torch.Tensor], tiny_spec: ModelSpec) -> None:
    def edit(state: dict[str, torch.Tensor]) -> None:
        state["model.norm.weight"] = torch.ones(65)

    with pytest.raises(UserError, match=r"wrong shape: model\.norm\.weight \(checkpoint \[65\], model \[64\]\)"):
        build_model(tiny_spec, weights=_broken(tmp_path, saved[0], edit))


def test_unexpected_tensor(tmp_path: Path, saved: tuple[Path, torch.Tensor], tiny_spec: ModelSpec) -> None:
    def edit(state: dict[str, torch.Tensor]) -> None:
        state["model.extra_head.weight"] = torch.ones(3)

    with pytest.raises(UserError, match=r"unexpected tensor\(s\): model\.extra_head\.weight"):
        build_model(tiny_spec, weights=_broken(tmp_path, saved[0], edit))


def test_all_problems_in_one_error(tmp_path: Path, saved: tuple[Path, torch.Tensor], tiny_spec: ModelSpec) -> None:
    def edit(state: dict[str, torch.Tensor]) -> None:
        state.pop("lm_head.weight")
        state["bogus"] = torch.ones(1)
        state["model.norm.weight"] = torch.ones(2)

    with pytest.raises(UserError) as info:
        build_model(tiny_spec, weights=_broken(tmp_path, saved[0], edit))
    message = str(info.value)
    assert "lm_head.weight" in message and "bogus" in message and "model.norm.weight" in message
    assert "\n" not in message


def test_no_safetensors(tmp_path: Path, tiny_spec: ModelSpec) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match=r"has no model\*\.safetensors"):
        build_model(tiny_spec, weights=tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        build_model(tiny_spec, weights=tmp_path / "nowhere")


def test_unreadable_config(tmp_path: Path, saved: tuple[Path, torch.Tensor], tiny_spec: ModelSpec) -> None:
    (tmp_path / "model.safetensors").write_bytes((saved[0] / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match=r"config\.json"):
        build_model(tiny_spec, weights=tmp_path)


def test_corrupt_file_and_missing_shard(tmp_path: Path, tiny_spec: ModelSpec) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match=r"not a readable safetensors file"):
        build_model(tiny_spec, weights=tmp_path)
    index = {"weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match=r"missing shard file\(s\): model-00002-of-00002\.safetensors"):
        build_model(tiny_spec, weights=tmp_path)


def test_bad_arguments(tiny_spec: ModelSpec) -> None:
    with pytest.raises(UserError, match="attention implementation"):
        build_model(tiny_spec, attn_impl="flash")
    with pytest.raises(UserError, match="floating-point"):
        build_model(tiny_spec, dtype=torch.int32)


def test_saved_config_describes_the_spec(saved: tuple[Path, torch.Tensor], tiny_spec: ModelSpec) -> None:
    config = json.loads((saved[0] / "config.json").read_text())
    assert config["hidden_size"] == tiny_spec.decoder.hidden_size
    assert config["llm_perf_opt_spec"]["sam"]["mlp_dim"] == tiny_spec.sam.mlp_dim
