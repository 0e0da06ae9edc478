"""Full-size model on the meta device: parameter count and the official state-dict names/shapes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from llm_perf_opt.models.deepseek_ocr import build_model
from llm_perf_opt.models.deepseek_ocr.decoder import MoE
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoint_names.txt"
FULL_PARAMS = 3_336_106_240


def _expand(name: str) -> list[str]:
    """Bash-style brace expansion: {a..b} ranges and {a,b,c} lists."""
    m = re.search(r"\{([^}]*)\}", name)
    if not m:
        return [name]
    body = m.group(1)
    if ".." in body:
        lo, hi = body.split("..")
        values = [str(v) for v in range(int(lo), int(hi) + 1)]
    else:
        values = body.split(",")
    return [x for v in values for x in _expand(name[: m.start()] + v + name[m.end() :])]


def official_names() -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        pattern, shape = line.split()
        for name in _expand(pattern):
            out[name] = tuple(int(d) for d in shape.split("x"))
    return out


@pytest.fixture(scope="module")
def full_meta() -> torch.nn.Module:
    return build_model(MODEL_REGISTRY["deepseek-ocr"], device="meta")


def test_fixture_is_the_official_set() -> None:
    names = official_names()
    assert len(names) == 2711
    params = sum(torch.Size(s).numel() for n, s in names.items() if not n.endswith("position_ids"))
    assert params == FULL_PARAMS


def test_full_size_parameter_count_on_meta(full_meta: torch.nn.Module) -> None:
    assert sum(p.numel() for p in full_meta.parameters()) == FULL_PARAMS
    assert all(p.device.type == "meta" for p in full_meta.parameters())
    assert not any(p.requires_grad for p in full_meta.parameters())


def test_state_dict_names_and_shapes_are_official(full_meta: torch.nn.Module) -> None:
    ours = {name: tuple(t.shape) for name, t in full_meta.state_dict().items()}
    official = official_names()
    assert sorted(set(official) - set(ours)) == []
    assert sorted(set(ours) - set(official)) == []
    assert {n: s for n, s in ours.items() if official[n] != s} == {}


def test_position_ids_is_an_int64_buffer(full_meta: torch.nn.Module) -> None:
    name = "model.vision_model.embeddings.position_ids"
    assert name in full_meta.state_dict()
    assert name not in dict(full_meta.named_parameters())
    buf = dict(full_meta.named_buffers())[name]
    assert buf.dtype == torch.int64 and tuple(buf.shape) == (1, 257)


def test_bf16_meta_model_keeps_integer_buffer() -> None:
    model = build_model(MODEL_REGISTRY["tiny"], device="meta", dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.model.vision_model.embeddings.position_ids.dtype == torch.int64


def _moe_views_intact(model: torch.nn.Module) -> bool:
    for module in model.modules():
        if isinstance(module, MoE):
            for param, packed in module._packed_views():
                if param.untyped_storage().data_ptr() != packed.untyped_storage().data_ptr():
                    return False
    return True


def test_packed_expert_views_survive_to_and_assign_load(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    model = build_model(tiny_spec, seed=3)
    assert _moe_views_intact(model)
    moe = model.model.layers[1].mlp
    # A parameter view and its packed slot are the same memory.
    torch.testing.assert_close(
        moe.experts[2].up_proj.weight, moe.gate_up_weight[2, tiny_spec.decoder.moe_intermediate_size :]
    )
    model.to(torch.float64)
    assert _moe_views_intact(model) and moe.gate_up_weight.dtype == torch.float64
    state = {k: v.clone() + 1 for k, v in model.state_dict().items() if v.is_floating_point()}
    model.load_state_dict(state, strict=False, assign=True)
    assert _moe_views_intact(model)
    torch.testing.assert_close(moe.down_weight[5], moe.experts[5].down_proj.weight)
