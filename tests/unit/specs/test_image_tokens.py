"""Image-token slots against the official rule, with expected numbers worked out by hand.

Rule (deepseek-ocr-architecture.md §5.3–5.5): slots = g·(g+1) + 1 + [tiled: (q·w_t + 1)·(q·h_t)], g = base/64,
q = tile/64. Gundam: g = 16, q = 10, so slots = 273 + (10·w_t + 1)·(10·h_t). The grid is the
candidate (i·j in [2, max]) whose i/j is closest to W/H; exact ties go to the larger grid when
W·H > 0.5·640²·i·j; pages with both sides ≤ 640 are not tiled.
Each expected value below was derived on paper from that text, not from the implementation.
"""

import pytest

from llm_perf_opt.errors import UserError
from llm_perf_opt.specs.image_tokens import (
    RESOLUTION_MODES,
    candidate_grids,
    image_token_layout,
    select_tile_grid,
)


@pytest.mark.parametrize(
    ("mode", "slots", "features"),
    [("tiny", 73, 64), ("small", 111, 100), ("base", 273, 256), ("large", 421, 400)],
)
@pytest.mark.parametrize("page", [(1654, 2339), (300, 200), (4000, 1000), (1024, 1024)])
def test_native_modes_ignore_page_size(mode: str, slots: int, features: int, page: tuple[int, int]) -> None:
    layout = image_token_layout(RESOLUTION_MODES[mode], page)
    assert layout.total_slots == slots
    assert layout.feature_tokens == features
    assert layout.num_tiles == 0


# (page W, H, max_crops) → (grid, slots); worked by hand from the rule in the module docstring.
GUNDAM_CASES = [
    ((1654, 2339), 9, (2, 3), 903),  # A4 200 dpi: 0.707 → 2/3 (Δ .040) beats 1/1, 1/2
    ((1700, 2200), 9, (2, 3), 903),  # US Letter: 0.773 → 2/3 (Δ .106) beats 1/1 (Δ .227)
    ((2480, 3508), 9, (2, 3), 903),  # A4 300 dpi
    ((1024, 1024), 9, (2, 2), 693),  # square: 2×2 and 3×3 tie; 1024² < 0.5·640²·9 → keep 2×2
    ((1400, 1400), 9, (3, 3), 1203),  # square, 1.96 M px > 1.84 M → the tie goes to 3×3
    ((800, 600), 9, (3, 2), 893),  # 1.333 → 3/2 (Δ .167); 4/3 needs 12 tiles
    ((2000, 1000), 9, (4, 2), 1093),  # 2:1 ties 2×1 and 4×2; 2 M px > 1.64 M → 4×2: 273 + 41·20
    ((2000, 1000), 6, (2, 1), 483),  # vLLM max 6: 4×2 not a candidate → 273 + 21·10
    ((640, 640), 9, (1, 1), 273),  # both sides ≤ 640 → no tiles, Base fallback
    ((600, 400), 9, (1, 1), 273),
    ((641, 100), 9, (6, 1), 883),  # 6.41 → 6/1 (Δ .41) beats 7/1 (Δ .59): 273 + 61·10
    ((1000, 3000), 9, (1, 3), 603),  # 1:3 exactly: 273 + 11·30
    ((3000, 1000), 9, (3, 1), 583),  # 3:1: 273 + 31·10
    ((500, 5000), 9, (1, 9), 1263),  # 0.1 → 1/9 (Δ .011): 273 + 11·90
    ((500, 5000), 6, (1, 6), 933),  # max 6 → 1/6: 273 + 11·60
    ((1700, 2200), 6, (2, 3), 903),
]


@pytest.mark.parametrize(("page", "max_crops", "grid", "slots"), GUNDAM_CASES)
def test_gundam_grid_and_slots(page: tuple[int, int], max_crops: int, grid: tuple[int, int], slots: int) -> None:
    layout = image_token_layout(RESOLUTION_MODES["gundam"], page, max_crops=max_crops)
    assert layout.tile_grid == grid
    assert layout.total_slots == slots


def test_paper_token_counts_for_gundam() -> None:
    # Paper counts features only: n·100 + 256.
    layout = image_token_layout(RESOLUTION_MODES["gundam"], (1654, 2339))
    assert layout.feature_tokens == 6 * 100 + 256
    assert layout.views == [(640, 6), (1024, 1)]


def test_candidate_counts_match_reference() -> None:
    # deepseek-ocr-architecture.md §5.5: 22 candidates for max 9, 13 for max 6.
    assert len(candidate_grids(2, 9)) == 22
    assert len(candidate_grids(2, 6)) == 13


def test_larger_pages_never_reduce_tokens_along_a_fixed_aspect() -> None:
    previous = 0
    for width in range(200, 4000, 97):
        slots = image_token_layout(RESOLUTION_MODES["gundam"], (width, int(width * 1.414))).total_slots
        assert slots >= previous
        previous = slots


@pytest.mark.parametrize("page", [(0, 100), (100, -1)])
def test_bad_page_sizes_are_user_errors(page: tuple[int, int]) -> None:
    with pytest.raises(UserError, match="page size"):
        select_tile_grid(*page)
