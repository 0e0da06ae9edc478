"""torchinfo-unique-layers: module classes of one prefill, counted and mapped to analytic layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from llm_perf_opt.profiling.inputs import PageImage
from llm_perf_opt.profiling.inventory import LAYER_MAP, write_inventory
from llm_perf_opt.profiling.session import ProfileSession, group_batches
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

CPU = torch.device("cpu")


def one_batch(session: ProfileSession, mode: str) -> object:
    image = Image.new("RGB", (1300, 700), (200, 180, 160))
    page = PageImage(
        path=Path("p.png"),
        image=image,
        width=1300,
        height=700,
        category="test",
        sha256="0",
        source_mode="RGB",
        file_bytes=0,
    )
    batch = group_batches([session.prepare(page, mode, 9)], 1)[0]
    session.build_inputs(batch)
    return batch


@pytest.mark.parametrize("model", ["tiny", "official"])
def test_every_layer_class_is_counted_and_mapped(model: str, official_dir: Path, tmp_path: Path) -> None:
    ref = "tiny" if model == "tiny" else str(official_dir)
    session = ProfileSession.load(
        model=ref, weights="random", device=CPU, dtype="fp32", trust_remote_code=model != "tiny"
    )
    batch = one_batch(session, "gundam")  # 1300x700: tiled, so the encoders run twice (tiles, global view)
    inv = write_inventory(session, batch, tmp_path)
    rows = {r["class_name"]: r for r in inv["layers"]}
    dec = MODEL_REGISTRY["tiny"].decoder
    layer, moe, sam = (
        ("DecoderLayer", "MoE", "SamEncoder")
        if model == "tiny"
        else ("DeepseekV2DecoderLayer", "DeepseekV2MoE", "ImageEncoderViT")
    )
    assert rows[layer]["count"] == dec.num_layers
    assert rows[moe]["count"] == dec.num_layers - dec.first_k_dense_replace
    assert rows[sam]["count"] == 1 and rows[sam]["calls"] == 2
    assert rows[sam]["output_shapes"][0][1] == MODEL_REGISTRY["tiny"].sam.downsample_channels[-1]
    assert inv["total_params"] == sum(p.numel() for p in session.model.parameters())
    assert inv["unmodelled"] == []
    for cls, row in rows.items():
        assert row["analytic_layer"] == LAYER_MAP.get(cls, (None, None))[0]
    on_disk = json.loads((tmp_path / "torchinfo-unique-layers.json").read_text())
    assert on_disk["layers"] == inv["layers"]
    assert "| " + layer + " |" in (tmp_path / "torchinfo-unique-layers.md").read_text()
    assert not session.model.training  # the inventory pass leaves the model in eval mode
