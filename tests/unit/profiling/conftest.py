"""Fixtures of the profiling tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_image_helpers import png_header_only, write_page


@pytest.fixture
def bad_dir(tmp_path: Path) -> dict[str, Path]:
    """One file per kind of bad input, plus a good page."""
    d = tmp_path / "bad"
    d.mkdir()
    good = write_page(d / "good.png")
    corrupt = d / "corrupt.png"
    data = good.read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    text = d / "notes.png"
    text.write_text("this is not an image\n")
    empty = d / "empty.png"
    empty.write_bytes(b"")
    bomb = png_header_only(d / "bomb.png", 20000, 10000)
    return {"good": good, "corrupt": corrupt, "text": text, "empty": empty, "bomb": bomb}
