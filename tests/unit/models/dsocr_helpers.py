"""Helpers shared by the runnable-model tests (a uniquely named module: no package __init__ here)."""

from __future__ import annotations

from PIL import Image


def striped_page(width: int, height: int) -> Image.Image:
    """A page with horizontal and vertical gradients, so that every view and tile differs."""
    down = Image.linear_gradient("L").resize((width, height))
    across = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize((width, height))
    return Image.merge("RGB", (across, down, Image.blend(across, down, 0.5)))
