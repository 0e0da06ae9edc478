"""Helpers of the profiling tests: good and bad page images written on the fly."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR claims ``width``×``height`` (8-bit gray) with a tiny IDAT: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")
    )
    return path


def write_page(path: Path, mode: str = "RGB", size: tuple[int, int] = (320, 440)) -> Path:
    if mode == "I;16":
        data = np.linspace(0, 65535, size[0] * size[1]).reshape(size[1], size[0]).astype(np.uint16)
        Image.fromarray(data).save(path)
        return path
    colour: object = {"RGB": (200, 40, 40), "RGBA": (10, 20, 30, 128), "CMYK": (10, 20, 30, 40), "L": 90}[mode]
    Image.new(mode, size, colour).save(path)  # type: ignore[arg-type]
    return path
