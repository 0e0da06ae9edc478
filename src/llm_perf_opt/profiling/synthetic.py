"""Built-in synthetic document pages (drawn with Pillow, never downloaded).

Three kinds, like the seed's input categories: ``text_heavy`` (dense paragraphs),
``mixed_layout`` (two columns, a table, a chart) and ``image_rich`` (large picture regions with
captions). Pages are A4 at 200 dpi (1654×2339 px) by default and deterministic for a seed, so the
same run id and seed produce the same files and sha256.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from llm_perf_opt.io_utils import atomic_write_bytes
from llm_perf_opt.specs.workload import A4_200DPI

SYNTHETIC_KINDS: tuple[str, ...] = ("text_heavy", "mixed_layout", "image_rich")

_WORDS = (
    "the",
    "model",
    "page",
    "token",
    "vision",
    "encoder",
    "decoder",
    "layer",
    "attention",
    "memory",
    "latency",
    "throughput",
    "kernel",
    "document",
    "table",
    "figure",
    "result",
    "method",
    "section",
    "value",
    "image",
    "text",
    "layout",
    "column",
    "window",
    "global",
    "local",
    "compression",
    "optical",
    "context",
    "budget",
    "benchmark",
    "accuracy",
    "inference",
    "batch",
    "stage",
    "profile",
    "operator",
)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font only
        return ImageFont.load_default()


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[:1].upper() + text[1:] + "."


def _paragraph(draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int], size: int) -> int:
    """Fill ``box`` (x0, y0, x1, y1) with lines of text; return the y after the last line."""
    x0, y, x1, y1 = box
    font = _font(size)
    line_h = int(size * 1.45)
    words: list[str] = []
    while y + line_h <= y1:
        line = ""
        while True:
            if not words:
                words = _sentence(rng, rng.randint(4, 12)).split()
            candidate = f"{line} {words[0]}".strip()
            if line and draw.textlength(candidate, font=font) > x1 - x0:
                break
            line = candidate
            words.pop(0)
        draw.text((x0, y), line, fill=(20, 20, 20), font=font)
        y += line_h
    return y


def _title(draw: ImageDraw.ImageDraw, rng: random.Random, xy: tuple[int, int], size: int) -> None:
    draw.text(xy, _sentence(rng, 5).rstrip(".").title(), fill=(0, 0, 0), font=_font(size))


def _table(draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int], rows: int, cols: int) -> None:
    x0, y0, x1, y1 = box
    cw, rh = (x1 - x0) / cols, (y1 - y0) / rows
    font = _font(int(rh * 0.45))
    for r in range(rows + 1):
        draw.line([(x0, y0 + r * rh), (x1, y0 + r * rh)], fill=(0, 0, 0), width=3 if r in (0, 1, rows) else 1)
    for c in range(cols + 1):
        draw.line([(x0 + c * cw, y0), (x0 + c * cw, y1)], fill=(0, 0, 0), width=1)
    for r in range(rows):
        for c in range(cols):
            cell = rng.choice(_WORDS) if r == 0 else f"{rng.uniform(0, 100):.2f}"
            draw.text((x0 + c * cw + 10, y0 + r * rh + rh * 0.25), cell, fill=(0, 0, 0), font=font)


def _chart(draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(0, 0, 0), width=2)
    bars = 8
    w = (x1 - x0) / (bars * 1.5)
    for i in range(bars):
        h = rng.uniform(0.15, 0.9) * (y1 - y0)
        bx = x0 + w * 0.5 + i * w * 1.5
        colour = (40 + 25 * i, 90, 200 - 15 * i)
        draw.rectangle([bx, y1 - h, bx + w, y1 - 2], fill=colour)


def _picture(page: Image.Image, rng: random.Random, box: tuple[int, int, int, int]) -> None:
    """A photo-like region: a colour gradient, noise texture and a few shapes."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    gradient = Image.linear_gradient("L").resize((w, h)).rotate(rng.choice([0, 90, 180, 270]), expand=False)
    # Seeded texture (Image.effect_noise uses an unseeded C generator): coarse noise, upsampled.
    small = (max(w // 3, 1), max(h // 3, 1))
    noise = Image.frombytes("L", small, rng.randbytes(small[0] * small[1])).resize((w, h), Image.Resampling.BICUBIC)
    base = Image.merge("RGB", (gradient, noise, Image.radial_gradient("L").resize((w, h))))
    draw = ImageDraw.Draw(base)
    for _ in range(rng.randint(3, 7)):
        cx, cy, r = rng.randint(0, w), rng.randint(0, h), rng.randint(min(w, h) // 12, min(w, h) // 4)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)  # type: ignore[arg-type]
    page.paste(base, (x0, y0))


def synthetic_page(kind: str, *, size: tuple[int, int] = A4_200DPI, seed: int = 0) -> Image.Image:
    """Draw one synthetic page of ``kind`` (text_heavy, mixed_layout or image_rich), RGB."""
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"unknown synthetic page kind {kind!r}; valid: {', '.join(SYNTHETIC_KINDS)}")
    w, h = size
    rng = random.Random(f"{kind}-{seed}")
    page = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    m = w // 14
    body = max(12, w // 60)
    _title(draw, rng, (m, m), body * 2)
    top = m + body * 4
    if kind == "text_heavy":
        _paragraph(draw, rng, (m, top, w - m, h - m), body)
    elif kind == "mixed_layout":
        mid = w // 2
        y = _paragraph(draw, rng, (m, top, mid - m // 3, top + h // 4), body)
        _chart(draw, rng, (mid + m // 3, top, w - m, top + h // 4))
        _table(draw, rng, (m, y + body * 2, w - m, y + body * 2 + h // 5), rows=8, cols=5)
        ty = y + body * 4 + h // 5
        _paragraph(draw, rng, (m, ty, mid - m // 3, h - m), body)
        _picture(page, rng, (mid + m // 3, ty, w - m, ty + (h - m - ty) // 2))
        _paragraph(draw, rng, (mid + m // 3, ty + (h - m - ty) // 2 + body, w - m, h - m), body)
    else:
        pic_h = (h - top - m) // 3
        for i in range(3):
            y0 = top + i * pic_h
            _picture(page, rng, (m, y0, w - m, y0 + pic_h - body * 3))
            draw.text(
                (m, y0 + pic_h - body * 2),
                "Figure " + str(i + 1) + ": " + _sentence(rng, 8),
                fill=(0, 0, 0),
                font=_font(body),
            )
    return page


def write_synthetic_pages(
    directory: Path, *, size: tuple[int, int] = A4_200DPI, seed: int = 0, kinds: tuple[str, ...] = SYNTHETIC_KINDS
) -> list[tuple[Path, str]]:
    """Write one PNG per kind into ``directory`` (atomically); return (path, kind) pairs."""
    import io

    out: list[tuple[Path, str]] = []
    for kind in kinds:
        buf = io.BytesIO()
        synthetic_page(kind, size=size, seed=seed).save(buf, format="PNG", optimize=False)
        path = directory / f"synthetic_{kind}.png"
        atomic_write_bytes(path, buf.getvalue())
        out.append((path.resolve(), kind))
    return out
