"""Resolution modes, the official tile-grid rule and the image-token layout of one page.

Shared by the analytic model and the runnable model's preprocessing, so both count the same
image-token slots for the same page. Facts from deepseek-ocr-architecture.md §5.3–§5.5.
"""

from __future__ import annotations

from functools import lru_cache

from attrs import field, frozen

from llm_perf_opt.errors import UserError, unknown_id
from llm_perf_opt.specs.limits import MAX_CROPS_LIMIT, MAX_PAGE_SIDE, check_int


@frozen(kw_only=True)
class ResolutionMode:
    """One of the official resolution modes (deepseek-ocr-architecture.md §5.4)."""

    name: str
    """Mode name: tiny, small, base, large or gundam."""
    base_size: int
    """Side (px) of the global view."""
    image_size: int
    """Side (px) of each local tile in crop mode (equals base_size otherwise)."""
    crop_mode: bool
    """Whether large pages are cut into tiles of image_size beside the global view."""
    pad_global: bool
    """True: aspect-preserving pad to base_size; False: direct resize (Tiny, Small)."""


RESOLUTION_MODES: dict[str, ResolutionMode] = {
    m.name: m
    for m in (
        ResolutionMode(name="tiny", base_size=512, image_size=512, crop_mode=False, pad_global=False),
        ResolutionMode(name="small", base_size=640, image_size=640, crop_mode=False, pad_global=False),
        ResolutionMode(name="base", base_size=1024, image_size=1024, crop_mode=False, pad_global=True),
        ResolutionMode(name="large", base_size=1280, image_size=1280, crop_mode=False, pad_global=True),
        ResolutionMode(name="gundam", base_size=1024, image_size=640, crop_mode=True, pad_global=True),
    )
}

MIN_CROPS = 2
"""Smallest tile count of the candidate grids (both official paths)."""
DEFAULT_MAX_CROPS = 9
"""Largest tile count in the Hugging Face ``infer()`` path; the official vLLM path uses 6."""
FEATURE_DOWNSAMPLE = 4
"""Two stride-2 convolutions (net_2, net_3) shrink the SAM grid by 4 per side."""
PATCH_SIZE = 16
"""SAM patch side (px)."""


def resolution_mode(name: str) -> ResolutionMode:
    try:
        return RESOLUTION_MODES[name]
    except KeyError:
        raise unknown_id("resolution mode", name, list(RESOLUTION_MODES)) from None


def candidate_grids(min_num: int = MIN_CROPS, max_num: int = DEFAULT_MAX_CROPS) -> list[tuple[int, int]]:
    """All (tiles across, tiles down) with min_num ≤ i·j ≤ max_num, sorted by i·j (then by i).

    Enumerated directly (for each i, the j in [⌈min/i⌉, ⌊max/i⌋]): O(max_num · log max_num) pairs,
    not the official triple loop over n, i, j. Kept for reports and tests; the grid choice itself
    uses :func:`select_tile_grid`, which looks at two candidates per i.
    """
    pairs = [
        (i, j) for i in range(1, max_num + 1) for j in range(max(1, -(-min_num // i)), max_num // i + 1)
    ]
    return sorted(pairs, key=lambda r: (r[0] * r[1], r[0]))


def _closest_per_width(width: int, height: int, min_num: int, max_num: int) -> list[tuple[int, int]]:
    """For each tile count across i, the tile counts down j closest in aspect to width/height.

    i/j falls as j grows, so |W/H − i/j| is smallest at the j where i/j crosses W/H: ⌊i·H/W⌋ or one
    more (exact integer arithmetic), clamped to the j allowed for this i. Every candidate that can
    win the official search is among these, so the search is O(max_num) instead of O(max_num³).
    """
    out: list[tuple[int, int]] = []
    for i in range(1, max_num + 1):
        lo, hi = max(1, -(-min_num // i)), max_num // i
        if lo > hi:
            break  # hi only shrinks as i grows
        crossing = (i * height) // width
        out.extend((i, j) for j in sorted({min(max(crossing, lo), hi), min(max(crossing + 1, lo), hi)}))
    return sorted(out, key=lambda r: (r[0] * r[1], r[0]))


def select_tile_grid(
    width: int,
    height: int,
    *,
    tile_size: int = 640,
    min_num: int = MIN_CROPS,
    max_num: int = DEFAULT_MAX_CROPS,
) -> tuple[int, int]:
    """The official crop-mode grid (w_t, h_t) for a page of width × height pixels.

    Rule (deepseek-ocr-architecture.md §5.5): a page whose sides are both ≤ tile_size is not tiled ([1, 1]).
    Otherwise pick the candidate whose aspect i/j is closest to W/H (candidates in order of
    i·j); on an exact tie take the later (larger) candidate when W·H > 0.5 · tile_size² · i · j.
    Inputs are bounded first (sides ≤ MAX_PAGE_SIDE, max_num ≤ MAX_CROPS_LIMIT).
    """
    for name, side in (("width", width), ("height", height)):
        check_int(f"page size {name}", side, 1, MAX_PAGE_SIDE)
    check_int("--max-crops", max_num, min_num, MAX_CROPS_LIMIT)
    if width <= tile_size and height <= tile_size:
        return (1, 1)
    aspect = width / height
    area = width * height
    best_diff = float("inf")
    best = (1, 1)
    for i, j in _closest_per_width(width, height, min_num, max_num):
        diff = abs(aspect - i / j)
        if diff < best_diff:
            best_diff = diff
            best = (i, j)
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * i * j:
            best = (i, j)
    return best


@frozen(kw_only=True)
class ImageTokenLayout:
    """How one page becomes image-token slots in the language model's input."""

    mode: ResolutionMode
    """Resolution mode used."""
    tile_grid: tuple[int, int] = field(converter=lambda v: (int(v[0]), int(v[1])))
    """(tiles across, tiles down); (1, 1) means no local tiles."""
    global_side: int
    """g: side of the global feature grid (base_size / 16 / 4)."""
    tile_side: int
    """q: side of one tile's feature grid (image_size / 16 / 4)."""

    @property
    def num_tiles(self) -> int:
        w, h = self.tile_grid
        return w * h if self.tiled else 0

    @property
    def tiled(self) -> bool:
        return self.tile_grid != (1, 1)

    @property
    def global_slots(self) -> int:
        """g·(g+1): g rows of g features, each row followed by image_newline."""
        return self.global_side * (self.global_side + 1)

    @property
    def local_slots(self) -> int:
        """(q·w_t + 1)·(q·h_t): the stitched tile mosaic with a newline after each row."""
        if not self.tiled:
            return 0
        w, h = self.tile_grid
        return (self.tile_side * w + 1) * (self.tile_side * h)

    @property
    def total_slots(self) -> int:
        """All slots, the single view_seperator included (deepseek-ocr-architecture.md §5.3)."""
        return self.global_slots + self.local_slots + 1

    @property
    def feature_tokens(self) -> int:
        """Projected feature vectors only ("paper tokens": no newlines, no separator)."""
        return self.global_side**2 + self.num_tiles * self.tile_side**2

    @property
    def newline_tokens(self) -> int:
        return self.total_slots - 1 - self.feature_tokens

    @property
    def views(self) -> list[tuple[int, int]]:
        """(view side px, count) of every encoder pass: local tiles first, then the global view."""
        out: list[tuple[int, int]] = []
        if self.tiled:
            out.append((self.mode.image_size, self.num_tiles))
        out.append((self.mode.base_size, 1))
        return out


@lru_cache(maxsize=1024)  # pure and frozen in, frozen out: what-if grids ask for the same page often
def image_token_layout(
    mode: ResolutionMode,
    page_size: tuple[int, int] | None,
    *,
    max_crops: int = DEFAULT_MAX_CROPS,
    patch_size: int = PATCH_SIZE,
) -> ImageTokenLayout:
    """Layout of one page in ``mode``; ``page_size`` (W, H px) only matters in crop mode."""
    grid = (1, 1)
    if mode.crop_mode:
        if page_size is None:
            raise UserError(f"mode {mode.name!r} tiles the page, so a page size is needed")
        grid = select_tile_grid(*page_size, tile_size=mode.image_size, max_num=max_crops)
    return ImageTokenLayout(
        mode=mode,
        tile_grid=grid,
        global_side=mode.base_size // patch_size // FEATURE_DOWNSAMPLE,
        tile_side=mode.image_size // patch_size // FEATURE_DOWNSAMPLE,
    )
