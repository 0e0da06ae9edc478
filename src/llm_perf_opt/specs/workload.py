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
from llm_perf_opt.io_utils import field_mapping, read_yaml_file
from llm_perf_opt.specs.image_tokens import (
    DEFAULT_MAX_CROPS,
    MIN_CROPS,
    RESOLUTION_MODES,
    ImageTokenLayout,
    ResolutionMode,
    image_token_layout,
    resolution_mode,
)

A4_200DPI = (1654, 2339)
"""An A4 page scanned at 200 dpi, in pixels (width, height)."""

DEFAULT_PROMPT_TOKENS = 10
"""Text tokens of the default document prompt, BOS included.

"<image>\\n<|grounding|>Convert the document to markdown." is BOS plus about 9 pieces
(reference §6; the exact count needs the tokenizer, which is not shipped). Timings depend on the
count, not on the text.
"""

DOC_KINDS = ("text_heavy", "mixed_layout", "image_rich", "synthetic")


def _check_positive(inst: object, attr: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"workload field {attr.name} must be a positive integer, got {value!r}")


def _check_non_negative(inst: object, attr: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"workload field {attr.name} must be a non-negative integer, got {value!r}")


def _check_page(inst: object, attr: Any, value: tuple[int, int] | None) -> None:
    if value is None:
        return
    if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value):
        raise UserError(f"page size must be two positive integers WxH, got {value!r}")


def _check_mode(inst: object, attr: Any, value: str) -> None:
    resolution_mode(value)


def _check_doc_kind(inst: object, attr: Any, value: str) -> None:
    if value not in DOC_KINDS:
        raise unknown_id("doc_kind", value, DOC_KINDS)


def _page_tuple(value: Any) -> tuple[int, int] | None:
    if value is None or isinstance(value, tuple):
        return value
    if isinstance(value, str):
        return parse_page_size(value)
    if isinstance(value, list):
        return tuple(value)  # type: ignore[return-value]
    return value  # type: ignore[no-any-return]


@frozen(kw_only=True)
class Workload:
    """One inference request shape; the analytic model computes every stage for it."""

    profile_id: str
    """Name of the profile (built-in id or user-chosen)."""
    mode: str = field(default="gundam", validator=_check_mode)
    """Resolution mode: tiny, small, base, large or gundam."""
    page_size: tuple[int, int] | None = field(default=A4_200DPI, converter=_page_tuple, validator=_check_page)
    """Page (width, height) in px; decides the tile grid in crop mode."""
    max_crops: int = field(default=DEFAULT_MAX_CROPS, validator=_check_positive)
    """Most tiles per page in crop mode (9 as in the HF path, 6 as in the official vLLM path)."""
    prompt_tokens: int = field(default=DEFAULT_PROMPT_TOKENS, validator=_check_positive)
    """Text tokens of the prompt, BOS included, besides the image slots."""
    max_new_tokens: int = field(default=512, validator=_check_non_negative)
    """Generated tokens per page (the decode stage runs this many steps; the first comes from prefill)."""
    batch_size: int = field(default=1, validator=_check_positive)
    """Pages per generation call."""
    num_pages: int = field(default=1, validator=_check_positive)
    """Pages in the job (batches of batch_size)."""
    doc_kind: str = field(default="text_heavy", validator=_check_doc_kind)
    """Kind of document, for reports."""
    description: str = ""
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
    match = re.fullmatch(r"\s*(-?\d+)\s*[xX×]\s*(-?\d+)\s*", text)
    if not match:
        raise UserError(f"page size {text!r} is not WxH in pixels (e.g. 1654x2339)")
    w, h = int(match.group(1)), int(match.group(2))
    if w <= 0 or h <= 0:
        raise UserError(f"page size {text!r} must have positive width and height")
    return (w, h)


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
        return workload_from_mapping(read_yaml_file(ref, "workload"), str(path))
    raise unknown_id("workload", ref, list(WORKLOAD_PROFILES))
