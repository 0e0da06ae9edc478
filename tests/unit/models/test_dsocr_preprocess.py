"""Pages → views/tiles and prompt ids: token counts agree with the shared image-token layout."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from dsocr_helpers import striped_page
from PIL import Image

from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr import build_inputs, load_page, load_tokenizer, prepare_page
from llm_perf_opt.specs.image_tokens import RESOLUTION_MODES, image_token_layout, resolution_mode
from llm_perf_opt.specs.workload import DEFAULT_PROMPT_TOKENS

PAGE_SIZES = [(300, 400), (640, 640), (641, 500), (900, 1200), (1654, 2339), (2000, 1000), (1024, 1024), (3000, 420)]


@pytest.mark.parametrize(
    ("size", "grid", "tokens"),
    [
        # Gundam: global 1024 px view -> 16x16 tokens + 16 row newlines = 272; 640 px tiles -> 10x10 each,
        # laid out as (rows*10) x (cols*10 + 1 newline); + 1 view separator.
        ((3000, 1000), (3, 1), 272 + 10 * (30 + 1) + 1),  # 583
        ((2000, 1000), (4, 2), 272 + 20 * (40 + 1) + 1),  # 1093
    ],
)
def test_gundam_token_count_by_hand(size: tuple[int, int], grid: tuple[int, int], tokens: int) -> None:
    page = prepare_page(Image.new("RGB", size, (10, 200, 30)), resolution_mode("gundam"))
    assert page.tile_grid == grid
    assert page.num_image_tokens == tokens


@pytest.mark.parametrize("mode_name", sorted(RESOLUTION_MODES))
@pytest.mark.parametrize("size", PAGE_SIZES)
def test_token_count_equals_layout(mode_name: str, size: tuple[int, int]) -> None:
    mode = resolution_mode(mode_name)
    page = prepare_page(Image.new("RGB", size, (10, 200, 30)), mode)
    layout = image_token_layout(mode, size)
    assert page.num_image_tokens == layout.total_slots
    assert page.tile_grid == layout.tile_grid
    assert tuple(page.global_view.shape) == (3, mode.base_size, mode.base_size)
    if layout.tiled:
        assert page.tiles is not None
        assert tuple(page.tiles.shape) == (layout.num_tiles, 3, mode.image_size, mode.image_size)
    else:
        assert page.tiles is None


def test_known_gundam_counts() -> None:
    gundam = resolution_mode("gundam")
    assert prepare_page(Image.new("RGB", (1654, 2339)), gundam).num_image_tokens == 903  # A4: 2×3
    assert prepare_page(Image.new("RGB", (1024, 1024)), gundam).num_image_tokens == 693  # 2×2
    assert prepare_page(Image.new("RGB", (2000, 1000)), gundam, max_crops=6).tile_grid == (2, 1)


def test_small_page_in_gundam_has_no_tiles() -> None:
    page = prepare_page(Image.new("RGB", (640, 480)), resolution_mode("gundam"))
    assert page.tiles is None and page.tile_grid == (1, 1)
    assert page.num_image_tokens == 273  # falls back to Base


def test_pad_is_grey_and_values_normalised() -> None:
    # A wide white page padded to a square: top/bottom bands are (127,127,127) → ≈ 0.
    page = prepare_page(Image.new("RGB", (1000, 500), (255, 255, 255)), resolution_mode("base"))
    view = page.global_view
    assert view.min() >= -1 and view.max() <= 1
    assert torch.allclose(view[:, 0, :], torch.full_like(view[:, 0, :], 127 / 127.5 - 1))
    assert torch.allclose(view[:, 512, :], torch.ones_like(view[:, 512, :]))


def test_tiny_mode_resizes_without_padding() -> None:
    page = prepare_page(Image.new("RGB", (1000, 500), (255, 0, 0)), resolution_mode("tiny"))
    assert tuple(page.global_view.shape) == (3, 512, 512)
    assert torch.allclose(page.global_view[0], torch.ones(512, 512))
    assert torch.allclose(page.global_view[1], -torch.ones(512, 512))


def test_tiles_are_row_major() -> None:
    # 1280×1920 → 2 across × 3 down; give every 640 px cell its own colour.
    img = Image.new("RGB", (1280, 1920))
    colours = [(i * 40, 255 - i * 40, 100) for i in range(6)]
    for i, c in enumerate(colours):
        img.paste(c, ((i % 2) * 640, (i // 2) * 640, (i % 2 + 1) * 640, (i // 2 + 1) * 640))
    page = prepare_page(img, resolution_mode("gundam"))
    assert page.tile_grid == (2, 3) and page.tiles is not None
    for i, c in enumerate(colours):
        centre = page.tiles[i, :, 320, 320]
        torch.testing.assert_close(centre, torch.tensor(c, dtype=torch.float32) / 127.5 - 1, atol=1e-2, rtol=0)


# ---------------------------------------------------------------- load_page


def _save(img: Image.Image, path: Path, fmt: str, **kw: object) -> Path:
    img.save(path, format=fmt, **kw)
    return path


@pytest.mark.parametrize(
    ("mode", "fmt"), [("CMYK", "JPEG"), ("I;16", "PNG"), ("RGBA", "PNG"), ("L", "PNG"), ("P", "PNG"), ("LA", "PNG")]
)
def test_load_page_converts_to_rgb(tmp_path: Path, mode: str, fmt: str) -> None:
    path = _save(Image.new(mode, (30, 20)), tmp_path / f"page.{fmt.lower()}", fmt)
    img = load_page(path)
    assert img.mode == "RGB" and img.size == (30, 20)


def test_load_page_applies_exif_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = _save(Image.new("RGB", (40, 20)), tmp_path / "rot.jpg", "JPEG", exif=exif.tobytes())
    assert load_page(path).size == (20, 40)


def test_load_page_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"missing\.png"):
        load_page(tmp_path / "missing.png")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(UserError, match=r"notes\.txt"):
        load_page(text)
    buf = io.BytesIO()
    Image.new("RGB", (200, 200), (1, 2, 3)).save(buf, format="PNG")
    broken = tmp_path / "broken.png"
    broken.write_bytes(buf.getvalue()[:80])
    with pytest.raises(UserError, match=r"broken\.png"):
        load_page(broken)
    with pytest.raises(UserError, match="is not a file"):
        load_page(tmp_path)


# ---------------------------------------------------------------- prompt ids


def test_build_inputs_without_tokenizer(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    page = prepare_page(striped_page(800, 600), resolution_mode("small"))
    inputs = build_inputs(tiny_spec, [page, page])
    n = page.num_image_tokens
    assert inputs.input_ids.shape == (2, DEFAULT_PROMPT_TOKENS + n)
    row = inputs.input_ids[0].tolist()
    assert row[0] == tiny_spec.bos_token_id
    assert row[1 : 1 + n] == [tiny_spec.image_token_id] * n  # the default prompt starts with <image>
    text = row[1 + n :]
    assert len(text) == DEFAULT_PROMPT_TOKENS - 1
    assert not {tiny_spec.bos_token_id, tiny_spec.eos_token_id, tiny_spec.image_token_id} & set(text)
    assert inputs.image_mask.sum().item() == 2 * n
    assert inputs.image_mask[0, 1 : 1 + n].all()


def test_build_inputs_with_tokenizer(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    class FakeTokenizer:
        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            assert not add_special_tokens
            return [10 + len(w) for w in text.split()]

    page = prepare_page(Image.new("RGB", (300, 300)), resolution_mode("tiny"))
    inputs = build_inputs(tiny_spec, [page], tokenizer=FakeTokenizer(), prompt="Look: <image> Free OCR.")
    n = page.num_image_tokens
    assert inputs.input_ids[0].tolist() == [0, 15, *[tiny_spec.image_token_id] * n, 14, 14]


def test_build_inputs_errors(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    gundam = resolution_mode("gundam")
    a = prepare_page(Image.new("RGB", (1654, 2339)), gundam)
    b = prepare_page(Image.new("RGB", (500, 500)), gundam)
    with pytest.raises(UserError, match="same number of image tokens"):
        build_inputs(tiny_spec, [a, b])
    with pytest.raises(UserError, match="<image>"):
        build_inputs(tiny_spec, [a], prompt="no image here")
    with pytest.raises(UserError, match="at least one page"):
        build_inputs(tiny_spec, [])


def test_load_tokenizer_without_files_is_none(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text("{}")
    assert load_tokenizer(tmp_path) is None
    assert load_tokenizer(tmp_path / "absent") is None
