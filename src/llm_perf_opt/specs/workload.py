"""Workload profiles: what one inference request looks like (page, mode, tokens, batch).

Built-in profiles are the five official resolution modes plus ``dsocr-standard-v1``; users add
their own in YAML with the same field names. This module imports no torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from attrs import evolve, field, fields, frozen

from llm_perf_opt.errors import UserError, unknown_id
from llm_perf_opt.io.documents import field_mapping, load_document, type_name
from llm_perf_opt.specs.image_tokens import (
    DEFAULT_MAX_CROPS,
    MIN_CROPS,
    RESOLUTION_MODES,
    ImageTokenLayout,
    ResolutionMode,
    image_token_layout,
    resolution_mode,
)
from llm_perf_opt.specs.limits import (
    MAX_BATCH_SIZE,
    MAX_CROPS_LIMIT,
    MAX_NUM_PAGES,
    MAX_PAGE_SIDE,
    MAX_TOKENS,
    check_int,
)

A4_200DPI = (1654, 2339)
"""An A4 page scanned at 200 dpi, in pixels (width, height)."""

DEFAULT_PROMPT_TOKENS = 10
"""Text tokens of the default document prompt, BOS included.

"<image>\\n<|grounding|>Convert the document to markdown." is BOS plus about 9 pieces
(deepseek-ocr-architecture.md §6; the exact count needs the tokenizer, which is not shipped). Timings depend on the
count, not on the text.
"""

DOC_KINDS = ("text_heavy", "mixed_layout", "image_rich", "synthetic")


def _bounded(lo: int, hi: int) -> Any:
    """attrs validator: an int in [lo, hi] (see :mod:`llm_perf_opt.specs.limits` for why each bound)."""

    def check(inst: object, attr: Any, value: int) -> None:
        check_int(f"workload field {attr.name}", value, lo, hi)

    return check


def _check_text(inst: object, attr: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise UserError(f"workload field {attr.name} must be text, got {type_name(value)}")


def _check_page(inst: object, attr: Any, value: tuple[int, int] | None) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or len(value) != 2:
        raise UserError(f"workload field page_size must be WxH or [width, height], got {value!r}")
    for name, side in zip(("width", "height"), value, strict=True):
        check_int(f"page size {name}", side, 1, MAX_PAGE_SIDE)


def _check_mode(inst: object, attr: Any, value: str) -> None:
    if not isinstance(value, str):
        raise UserError(f"workload field mode must be one of {', '.join(RESOLUTION_MODES)}, got {type_name(value)}")
    resolution_mode(value)


def _check_doc_kind(inst: object, attr: Any, value: str) -> None:
    if not isinstance(value, str) or value not in DOC_KINDS:
        raise unknown_id("doc_kind", value, DOC_KINDS)


def _page_tuple(value: Any) -> tuple[int, int] | None:
    if value is None or isinstance(value, tuple):
        return value
    if isinstance(value, str):
        return parse_page_size(value)
    if isinstance(value, list):
        return tuple(value)  # type: ignore[return-value]
    raise UserError(f"workload field page_size must be WxH or [width, height], got {type_name(value)}")


@frozen(kw_only=True)
class Workload:
    """One inference request shape; the analytic model computes every stage for it."""

    profile_id: str = field(validator=_check_text)
    """Name of the profile (built-in id or user-chosen)."""
    mode: str = field(default="gundam", validator=_check_mode)
    """Resolution mode: tiny, small, base, large or gundam."""
    page_size: tuple[int, int] | None = field(default=A4_200DPI, converter=_page_tuple, validator=_check_page)
    """Page (width, height) in px; decides the tile grid in crop mode."""
    max_crops: int = field(default=DEFAULT_MAX_CROPS, validator=_bounded(1, MAX_CROPS_LIMIT))
    """Most tiles per page in crop mode (9 as in the HF path, 6 as in the official vLLM path)."""
    prompt_tokens: int = field(default=DEFAULT_PROMPT_TOKENS, validator=_bounded(1, MAX_TOKENS))
    """Text tokens of the prompt, BOS included, besides the image slots."""
    max_new_tokens: int = field(default=512, validator=_bounded(0, MAX_TOKENS))
    """N, generated tokens per page: the first comes from prefill, so the decode stage runs N − 1 steps."""
    batch_size: int = field(default=1, validator=_bounded(1, MAX_BATCH_SIZE))
    """Pages per generation call."""
    num_pages: int = field(default=1, validator=_bounded(1, MAX_NUM_PAGES))
    """Pages in the job (batches of batch_size)."""
    doc_kind: str = field(default="text_heavy", validator=_check_doc_kind)
    """Kind of document, for reports."""
    description: str = field(default="", validator=_check_text)
    """One line for reports."""

    def __attrs_post_init__(self) -> None:
        if self.max_crops < MIN_CROPS and resolution_mode(self.mode).crop_mode:
            raise UserError(f"max_crops must be at least {MIN_CROPS} in crop mode, got {self.max_crops}")

    @property
    def resolution(self) -> ResolutionMode:
        return RESOLUTION_MODES[self.mode]

    @property
    def layout(self) -> ImageTokenLayout:
        return image_token_layout(self.resolution, self.page_size, max_crops=self.max_crops)

    @property
    def image_tokens(self) -> int:
        return self.layout.total_slots

    @property
    def prefill_tokens(self) -> int:
        """Prompt length per page: text tokens plus every image slot."""
        return self.prompt_tokens + self.image_tokens

    @property
    def final_context(self) -> int:
        """KV-cache length per page after generation (the last token is never fed back)."""
        return self.prefill_tokens + max(self.max_new_tokens - 1, 0)

    def replace(self, **changes: Any) -> Workload:
        return evolve(self, **changes)


def parse_page_size(text: str) -> tuple[int, int]:
    """'1654x2339' → (1654, 2339); anything else is a UserError naming the text."""
    # At most 7 digits a side: int() of a 400-digit side is fine, but the sizes derived from it overflow floats.
    match = re.fullmatch(r"\s*(-?\d{1,7})\s*[xX×]\s*(-?\d{1,7})\s*", text) if isinstance(text, str) else None
    if not match:
        shown = text if len(str(text)) <= 40 else f"{str(text)[:30]}…"
        raise UserError(f"page size {shown!r} is not WxH in pixels with sides up to {MAX_PAGE_SIDE} (e.g. 1654x2339)")
    w, h = int(match.group(1)), int(match.group(2))
    if w <= 0 or h <= 0:
        raise UserError(f"page size {text!r} must have positive width and height")
    check_int("page size width", w, 1, MAX_PAGE_SIDE)
    check_int("page size height", h, 1, MAX_PAGE_SIDE)
    return (w, h)


def check_context(workload: Workload, max_positions: int, model: str = "the model") -> None:
    """UserError when a page's final context (prompt + image slots + new tokens) exceeds the model's.

    The decoder's RoPE and KV cache are sized for ``max_position_embeddings`` (8,192 for
    DeepSeek-OCR); a longer context is not a workload the model can run, so it is never "fits".
    """
    if workload.final_context > max_positions:
        raise UserError(
            f"workload {workload.profile_id}: {workload.prefill_tokens:,} prompt tokens ({workload.image_tokens:,} "
            f"image slots) + {workload.max_new_tokens:,} new tokens = {workload.final_context:,} positions, beyond "
            f"{model}'s context of {max_positions:,}; lower max_new_tokens, max_crops or the resolution"
        )


def _builtin_profiles() -> dict[str, Workload]:
    profiles = {
        name: Workload(
            profile_id=name,
            mode=name,
            max_new_tokens=512,
            description=f"{name.capitalize()} mode ({m.base_size} px global"
            + (f", {m.image_size} px tiles" if m.crop_mode else "")
            + "), A4 page at 200 dpi, 512 new tokens",
        )
        for name, m in RESOLUTION_MODES.items()
    }
    profiles["dsocr-standard-v1"] = Workload(
        profile_id="dsocr-standard-v1",
        mode="gundam",
        page_size=A4_200DPI,
        max_new_tokens=512,
        description="Gundam mode, an A4 page at 200 dpi (1654x2339 px), 512 new tokens",
    )
    return profiles


WORKLOAD_PROFILES: dict[str, Workload] = _builtin_profiles()
DEFAULT_WORKLOAD = "dsocr-standard-v1"
WORKLOAD_FIELDS = tuple(f.name for f in fields(Workload))


def workload_from_mapping(data: Any, source: str) -> Workload:
    """Build a Workload from a parsed YAML/JSON mapping; errors name ``source``."""
    data = field_mapping(data, WORKLOAD_FIELDS, "workload", source)
    data.setdefault("profile_id", Path(source).stem)
    if isinstance(data.get("page_size"), dict):
        raise UserError(f"{source}: field page_size must be WxH or [width, height], got a mapping")
    try:
        return Workload(**data)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source}: invalid workload: {exc}") from None


def load_workload(ref: str) -> Workload:
    """A built-in profile id or a path to a workload YAML file."""
    if ref in WORKLOAD_PROFILES:
        return WORKLOAD_PROFILES[ref]
    path = Path(ref)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        return workload_from_mapping(load_document(ref, "workload file"), str(path))
    raise unknown_id("workload", ref, list(WORKLOAD_PROFILES))
