"""Official ``infer()`` inputs built from a page: crop tensors, views, image-token mask, spatial crop list."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from llm_perf_opt.models import deepseek_ocr as dso
from llm_perf_opt.profiling.official import build_official_inputs, is_official_checkpoint
from llm_perf_opt.profiling.official.session import cuda_calls_stay_on
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

SPEC = MODEL_REGISTRY["deepseek-ocr"]


def infer_image_tokens(base_size: int, image_size: int, crop: tuple[int, int]) -> int:
    """Length of ``tokenized_image`` in the official infer() (crop mode), written out from its text."""
    nq = math.ceil((image_size // 16) / 4)
    nqb = math.ceil((base_size // 16) / 4)
    count = (nqb + 1) * nqb + 1
    w, h = crop
    if w > 1 or h > 1:
        count += (nq * w + 1) * (nq * h)
    return count


def build(page: Image.Image, mode: str) -> tuple[object, object]:
    prepared = dso.prepare_page(page, resolution_mode(mode))
    inputs = build_official_inputs(
        SPEC, [prepared], tokenizer=None, image_token_id=128815, device=torch.device("cpu"), dtype=torch.float32
    )
    return prepared, inputs


def test_gundam_a4_page_has_tiles_global_view_and_crop_list() -> None:
    prepared, inputs = build(Image.new("RGB", (1654, 2339), "white"), "gundam")
    across, down = prepared.tile_grid
    assert across * down >= 2  # an A4 page is tiled in Gundam mode
    crops, global_view = inputs.images[0]
    assert tuple(crops.shape) == (across * down, 3, 640, 640)
    assert tuple(global_view.shape) == (1, 3, 1024, 1024)
    assert inputs.images_spatial_crop.tolist() == [[across, down]]
    assert inputs.images_spatial_crop.device.type == "cpu"  # infer() leaves it on the host
    slots = infer_image_tokens(1024, 640, (across, down))
    assert int(inputs.images_seq_mask.sum()) == slots
    assert inputs.prompt_len == slots + 10  # BOS + 9 placeholder text ids of the default prompt
    assert bool((inputs.input_ids[inputs.images_seq_mask] == 128815).all())
    assert not bool((inputs.input_ids[~inputs.images_seq_mask] == 128815).any())
    assert inputs.input_ids[0, 0].item() == 0  # BOS first, as infer() prepends it
    assert inputs.projector_calls == 2


def test_small_page_in_gundam_mode_gets_zero_crops_and_one_projector_call() -> None:
    _, inputs = build(Image.new("RGB", (500, 400), "white"), "gundam")
    crops, _ = inputs.images[0]
    assert tuple(crops.shape) == (1, 3, 1024, 1024)
    assert float(crops.abs().sum()) == 0.0  # the official forward tests sum(patches) != 0
    assert inputs.images_spatial_crop.tolist() == [[1, 1]]
    assert int(inputs.images_seq_mask.sum()) == 16 * 17 + 1
    assert inputs.projector_calls == 1


def test_base_mode_uses_one_padded_view() -> None:
    _, inputs = build(Image.new("RGB", (1654, 2339), "white"), "base")
    crops, global_view = inputs.images[0]
    assert tuple(global_view.shape) == (1, 3, 1024, 1024)
    assert float(crops.abs().sum()) == 0.0
    # Non-crop infer(): ([id] * nq + [id]) * nq + [id] with nq = 1024 / 16 / 4 = 16.
    assert int(inputs.images_seq_mask.sum()) == (16 + 1) * 16 + 1


def test_official_checkpoint_detection(official_dir: Path, tmp_path: Path) -> None:
    assert is_official_checkpoint(official_dir)
    assert not is_official_checkpoint(tmp_path / "missing")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"auto_map": {"AutoModel": "modeling_x.SomethingElse"}}')
    (other / "modeling_x.py").write_text("")
    assert not is_official_checkpoint(other)
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "config.json").write_text('{"auto_map": {"AutoModel": "modeling_deepseekocr.DeepseekOCRForCausalLM"}}')
    (ours / "modeling_deepseekocr.py").write_text("from llm_perf_opt.models import deepseek_ocr\n")
    assert not is_official_checkpoint(ours)  # wraps our own module: the existing remote-code path


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU stand-in for .cuda()")
def test_cuda_calls_stay_on_the_device_and_are_restored() -> None:
    t = torch.ones(2)
    with cuda_calls_stay_on(torch.device("cpu")):
        assert t.cuda().device.type == "cpu"
    with pytest.raises((AssertionError, RuntimeError)):
        t.cuda()
