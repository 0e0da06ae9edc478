"""Collecting and validating page images: every kind of bad input, conversions, synthetic pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from profile_image_helpers import png_header_only, write_page

from llm_perf_opt.errors import UserError
from llm_perf_opt.profiling.inputs import collect_image_paths, collect_inputs, load_page_image
from llm_perf_opt.profiling.synthetic import SYNTHETIC_KINDS, synthetic_page
from llm_perf_opt.specs.workload import A4_200DPI


def test_missing_path_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        collect_inputs([str(tmp_path / "nope.png")])


def test_empty_directory_alone_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no usable images: .*no image files"):
        collect_inputs([str(tmp_path / "empty")])


def test_empty_directory_beside_good_images_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    good = write_page(tmp_path / "good.png")
    got = collect_inputs([str(tmp_path / "empty"), str(good)])
    assert [p.name for p in got.pages] == ["good.png"]
    assert any("no image files" in i.problem for i in got.skipped)


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("corrupt", "corrupt or truncated"),
        ("text", "not a readable image"),
        ("empty", "empty file"),
        ("bomb", "decompression-bomb|decompression bomb"),
    ],
)
def test_bad_file_is_skipped_with_a_warning(bad_dir: dict[str, Path], kind: str, problem: str) -> None:
    got = collect_inputs([str(bad_dir[kind]), str(bad_dir["good"])])
    assert [p.name for p in got.pages] == ["good.png"]
    [issue] = got.skipped
    assert issue.path == str(bad_dir[kind].resolve())
    assert re.search(problem, issue.problem), issue.problem


@pytest.mark.parametrize("kind", ["corrupt", "text", "empty", "bomb"])
def test_bad_file_is_fatal_with_strict(bad_dir: dict[str, Path], kind: str) -> None:
    with pytest.raises(UserError, match="--strict"):
        collect_inputs([str(bad_dir[kind]), str(bad_dir["good"])], strict=True)


def test_only_bad_files_is_one_clear_error(bad_dir: dict[str, Path]) -> None:
    paths = [str(bad_dir[k]) for k in ("corrupt", "text", "empty", "bomb")]
    with pytest.raises(UserError, match=r"^no usable images: .*\(and 1 more\)$"):
        collect_inputs(paths)


def test_bomb_is_rejected_without_decoding(tmp_path: Path) -> None:
    page, issues = load_page_image(png_header_only(tmp_path / "huge.png", 20000, 10000))
    assert page is None
    assert "200 MP" in issues[0].problem or "bomb" in issues[0].problem


@pytest.mark.parametrize(
    ("mode", "suffix", "note"),
    [
        ("CMYK", ".jpg", "CMYK converted to RGB"),
        ("I;16", ".png", "16-bit"),
        ("RGBA", ".png", "alpha dropped"),
        ("L", ".png", "L converted to RGB"),
    ],
)
def test_unusual_modes_are_converted_and_noted(tmp_path: Path, mode: str, suffix: str, note: str) -> None:
    path = write_page(tmp_path / f"page{suffix}", mode)
    got = collect_inputs([str(path)])
    [page] = got.pages
    assert page.image.mode == "RGB"
    assert page.source_mode.startswith(mode[:3])
    [issue] = got.converted
    assert note in issue.problem
    assert not got.skipped


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    page, _ = load_page_image(write_page(tmp_path / "g16.png", "I;16"))
    assert page is not None
    lo, hi = page.image.convert("L").getextrema()  # type: ignore[misc]
    assert lo == 0 and hi == 255
    assert sum(page.image.convert("L").histogram()[1:255]) > 0, "mid-tones survive"


def test_list_file_and_directory_scan(tmp_path: Path) -> None:
    d = tmp_path / "pages"
    (d / "sub").mkdir(parents=True)
    a = write_page(d / "a_text_heavy.png")
    b = write_page(d / "sub" / "b.jpg")
    (d / ".hidden.png").write_bytes(a.read_bytes())
    (d / "readme.md").write_text("x")
    lst = tmp_path / "list.txt"
    lst.write_text(f"# pages\n{a}\nmissing.png\npages/sub/b.jpg\n")
    paths, _issues = collect_image_paths([str(d)])
    assert paths == [a.resolve(), b.resolve()]
    got = collect_inputs([str(lst)])
    assert [p.path for p in got.pages] == [a.resolve(), b.resolve()]
    assert got.pages[0].category == "text_heavy"
    assert got.pages[1].category == "unknown"
    assert any("missing.png" in i.path for i in got.skipped)
    assert len(got.pages[0].sha256) == 64


def test_synthetic_pages_are_written_deterministically(tmp_path: Path) -> None:
    got = collect_inputs(None, synthetic_dir=tmp_path / "a")
    again = collect_inputs(None, synthetic_dir=tmp_path / "b")
    assert got.synthetic
    assert [p.category for p in got.pages] == list(SYNTHETIC_KINDS)
    assert all((p.width, p.height) == A4_200DPI for p in got.pages)
    assert [p.sha256 for p in got.pages] == [p.sha256 for p in again.pages]
    assert len({p.sha256 for p in got.pages}) == 3


def test_synthetic_kinds_differ_in_content() -> None:
    def ink(kind: str) -> float:
        img = synthetic_page(kind, size=(400, 560)).convert("L")
        return sum(i * v for i, v in enumerate(img.histogram())) / (400 * 560)

    levels = {k: ink(k) for k in SYNTHETIC_KINDS}
    assert levels["image_rich"] < levels["mixed_layout"] < levels["text_heavy"]
    assert isinstance(synthetic_page("text_heavy"), Image.Image)
    with pytest.raises(ValueError):
        synthetic_page("poster")
