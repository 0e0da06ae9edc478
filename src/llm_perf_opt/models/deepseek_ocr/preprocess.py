"""Page → pixel views and prompt token ids, exactly as the official processor.

Rules: deepseek-ocr-architecture.md §5.3–§5.6, §6.

The tile grid and the number of image-token slots come from ``specs.image_tokens`` (the same
functions the analytic model uses), so a prepared page always has
``num_image_tokens == image_token_layout(mode, page size).total_slots``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from llm_perf_opt.errors import UserError
from llm_perf_opt.specs.image_tokens import ImageTokenLayout, ResolutionMode, image_token_layout
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import DEFAULT_PROMPT_TOKENS

DEFAULT_PROMPT = "<image>\n<|grounding|>Convert the document to markdown."
"""The official document prompt (deepseek-ocr-architecture.md §6)."""
IMAGE_PLACEHOLDER = "<image>"
PAD_COLOR = (127, 127, 127)
"""Fill of the aspect-preserving pad: int(0.5·255), i.e. 0 after normalisation."""
PLACEHOLDER_FIRST_ID = 3
"""Without a tokenizer, prompt text is represented by ids 3, 4, 5, … (skipping special ids).

Only the count matters for timing and FLOPs; 0/1/2 are BOS/EOS/pad in the official vocabulary.
"""


def load_page(path: str | Path) -> Image.Image:
    """Open an image as the official loader does: EXIF transpose, then ``.convert("RGB")``.

    CMYK, 16-bit, RGBA, palette and grayscale pages all go through Pillow's RGB conversion (alpha
    dropped, 16-bit values clipped by Pillow), like the official code. Missing, unreadable or
    corrupt files raise a one-line UserError naming the file.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"page image {p} does not exist" if not p.exists() else f"page image {p} is not a file")
    try:
        with Image.open(p) as opened:
            opened.load()  # decode now, so truncated data fails here and not later
            image = ImageOps.exif_transpose(opened) or opened
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise UserError(f"page image {p} is not an image format Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"page image {p} is corrupt or unreadable: {exc}") from None


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image → float32 [3, H, W] normalised with mean = std = 0.5, so values lie in [−1, 1]."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    w, h = rgb.size
    data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(h, w, 3)
    return (data.permute(2, 0, 1).float() / 255.0 - 0.5) / 0.5


@dataclass(frozen=True)
class PreparedPage:
    """One page as the model consumes it."""

    global_view: torch.Tensor
    """[3, S, S] float32, S = mode.base_size."""
    tiles: torch.Tensor | None
    """[n, 3, T, T] float32 row-major local tiles (T = mode.image_size), or None when not tiled."""
    tile_grid: tuple[int, int]
    """(tiles across, tiles down); (1, 1) when not tiled."""
    layout: ImageTokenLayout
    """Slot arithmetic shared with the analytic model."""
    page_size: tuple[int, int]
    """(width, height) of the source page in px."""

    @property
    def mode(self) -> ResolutionMode:
        return self.layout.mode

    def to(self, device: torch.device | str, dtype: torch.dtype) -> PreparedPage:
        """The same page with its pixels on ``device`` in ``dtype`` (a no-op when already there)."""
        tiles = None if self.tiles is None else self.tiles.to(device=device, dtype=dtype)
        return replace(self, global_view=self.global_view.to(device=device, dtype=dtype), tiles=tiles)

    @property
    def num_image_tokens(self) -> int:
        """Image-token slots of this page in the LM input (= layout.total_slots)."""
        return self.layout.total_slots


def prepare_page(image: Image.Image, mode: ResolutionMode, *, max_crops: int = 9) -> PreparedPage:
    """Global view plus (crop mode) local tiles of one page.

    Global view: aspect-preserving ``ImageOps.pad`` to base_size with grey (127,127,127) in the
    base/large/gundam modes; a direct (aspect-changing) resize for tiny/small. Tiles: the page is
    resized (no padding) to (T·w_t, T·h_t) and cut row-major into T×T crops, the grid chosen by
    ``select_tile_grid`` with ``max_crops``. Resampling is bicubic throughout (Pillow's default).
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    layout = image_token_layout(mode, image.size, max_crops=max_crops)
    side = mode.base_size
    if mode.pad_global:
        global_img = ImageOps.pad(image, (side, side), method=Image.Resampling.BICUBIC, color=PAD_COLOR)
    else:
        global_img = image.resize((side, side), resample=Image.Resampling.BICUBIC)
    tiles = None
    if layout.tiled:
        across, down = layout.tile_grid
        t = mode.image_size
        resized = image.resize((t * across, t * down), resample=Image.Resampling.BICUBIC)
        crops = []
        for i in range(across * down):
            col, row = i % across, i // across
            crops.append(_to_tensor(resized.crop((col * t, row * t, (col + 1) * t, (row + 1) * t))))
        tiles = torch.stack(crops)
    return PreparedPage(
        global_view=_to_tensor(global_img),
        tiles=tiles,
        tile_grid=layout.tile_grid,
        layout=layout,
        page_size=image.size,
    )


@dataclass(frozen=True)
class ModelInputs:
    """A batch of prompts, one page each, all with the same length."""

    input_ids: torch.Tensor
    """[B, T] int64; image slots hold spec.image_token_id."""
    image_mask: torch.Tensor
    """[B, T] bool, True at image slots (filled in order by the page's image embeddings)."""
    pages: list[PreparedPage]

    @property
    def batch_size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def prompt_len(self) -> int:
        return self.input_ids.shape[1]

    @property
    def num_image_tokens(self) -> int:
        return self.pages[0].num_image_tokens

    def to(self, device: torch.device | str, dtype: torch.dtype) -> ModelInputs:
        """Ids, mask and pixels on ``device`` (pixels in ``dtype``).

        Like the official ``infer()``, which moves the preprocessed images to the GPU before
        ``generate``: the host→device copy is input staging, not vision work, and timing it
        inside the vision stage would charge SAM/CLIP for PCIe traffic.
        """
        return ModelInputs(
            input_ids=self.input_ids.to(device),
            image_mask=self.image_mask.to(device),
            pages=[page.to(device, dtype) for page in self.pages],
        )


def placeholder_ids(spec: ModelSpec, count: int) -> list[int]:
    """``count`` stand-in text ids 3, 4, 5, … skipping BOS/EOS/image ids, wrapping in the vocabulary."""
    special = {spec.bos_token_id, spec.eos_token_id, spec.image_token_id}
    ids: list[int] = []
    candidate = PLACEHOLDER_FIRST_ID
    while len(ids) < count:
        candidate %= spec.decoder.vocab_size
        if candidate not in special:
            ids.append(candidate)
        candidate += 1
    return ids


def _text_ids(spec: ModelSpec, prompt: str, tokenizer: Any, prompt_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids of the prompt text before and after ``<image>`` (BOS not included)."""
    if prompt.count(IMAGE_PLACEHOLDER) != 1:
        raise UserError(f"the prompt must contain {IMAGE_PLACEHOLDER!r} exactly once, got {prompt!r}")
    before, after = prompt.split(IMAGE_PLACEHOLDER)
    if tokenizer is not None:
        # The official processor encodes each text chunk separately, without special tokens.
        return (
            list(tokenizer.encode(before, add_special_tokens=False)) if before else [],
            list(tokenizer.encode(after, add_special_tokens=False)) if after else [],
        )
    if prompt_tokens < 1:
        raise UserError(f"prompt_tokens must be at least 1 (the BOS token), got {prompt_tokens}")
    # No tokenizer: prompt_tokens counts BOS too; split the rest by the characters on each side.
    n_text = prompt_tokens - 1
    n_before = round(n_text * len(before) / max(len(before) + len(after), 1))
    ids = placeholder_ids(spec, n_text)
    return ids[:n_before], ids[n_before:]


def build_inputs(
    spec: ModelSpec,
    pages: list[PreparedPage],
    *,
    tokenizer: Any = None,
    prompt: str = DEFAULT_PROMPT,
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
) -> ModelInputs:
    """ids = [BOS] + text before ``<image>`` + image slots + text after, one row per page.

    With a tokenizer the text is tokenized; without one it is ``prompt_tokens − 1`` placeholder
    ids (see :data:`PLACEHOLDER_FIRST_ID`), so the default gives the analytic model's prompt
    length. All pages of a batch must have the same number of image slots (no padding is used).
    """
    if not pages:
        raise UserError("build_inputs needs at least one page")
    counts = sorted({p.num_image_tokens for p in pages})
    if len(counts) > 1:
        raise UserError(
            f"pages of one batch must have the same number of image tokens, got {counts}; "
            "batch pages of the same size and mode together"
        )
    before, after = _text_ids(spec, prompt, tokenizer, prompt_tokens)
    n_image = counts[0]
    row = [spec.bos_token_id, *before, *([spec.image_token_id] * n_image), *after]
    input_ids = torch.tensor([row] * len(pages), dtype=torch.int64)
    image_mask = torch.zeros_like(input_ids, dtype=torch.bool)
    image_mask[:, 1 + len(before) : 1 + len(before) + n_image] = True
    return ModelInputs(input_ids=input_ids, image_mask=image_mask, pages=list(pages))


def load_tokenizer(checkpoint_dir: str | Path) -> Any:
    """The checkpoint's tokenizer via ``AutoTokenizer`` (local files only), or None if it has none.

    None means callers use placeholder ids (see :func:`build_inputs`). A directory that has
    tokenizer files that cannot be loaded is a UserError.
    """
    d = Path(checkpoint_dir)
    if not d.is_dir() or not any((d / f).is_file() for f in ("tokenizer.json", "tokenizer.model")):
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(d), local_files_only=True)
    except Exception as exc:  # transformers raises many types here; report one line
        raise UserError(
            f"cannot load the tokenizer in {d}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from None
