"""Helpers shared by the runnable-model tests (a uniquely named module: no package __init__ here)."""

from __future__ import annotations

import os
import subprocess
import sys

from PIL import Image


def striped_page(width: int, height: int) -> Image.Image:
    """A page with horizontal and vertical gradients, so that every view and tile differs."""
    down = Image.linear_gradient("L").resize((width, height))
    across = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize((width, height))
    return Image.merge("RGB", (across, down, Image.blend(across, down, 0.5)))


def run_in_triton_interpreter(check: str) -> None:
    """Run ``check`` (Python source ending in ``print("ok")``) in a subprocess with Triton's CPU interpreter
    on: it must be switched on before Triton is imported, so it cannot run in the test process."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
