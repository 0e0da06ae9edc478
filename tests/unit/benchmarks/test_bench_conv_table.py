"""benchmarks/bench_conv_table.py measures the convolutions the analytic model has, on the layout the model feeds."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from bench_conv_table import batch_grid, model_convs  # noqa: E402


def test_it_lists_sams_five_convolutions_per_view_side() -> None:
    convs = model_convs()
    # Views of 512, 640, 1024 and 1280 px: S/16 token grids of 32, 40, 64, 80 (deepseek-ocr-architecture.md §3).
    patch = {k for k in convs if k[0] == 3}
    assert patch == {(3, 768, 16, 16, 0, side, True) for side in (512, 640, 1024, 1280)}
    assert all(not convs[k][1] for k in patch)  # the image: contiguous NCHW
    neck = {(768, 256, 1, 1, 0, g, False) for g in (32, 40, 64, 80)}
    assert neck <= set(convs) and all(convs[k][1] for k in neck)  # SAM's [B, H, W, C] tokens, permuted
    assert (512, 1024, 3, 2, 1, 16, False) in convs  # net_3 after net_2 halves a 64 grid
    assert len(convs) == 20
    # Gundam's 640-px tiles: up to 6 per page at the default page size, 8 pages per batch.
    assert convs[(3, 768, 16, 16, 0, 640, True)][0] == 48


def test_batch_grid_reaches_half_again_the_largest_batch() -> None:
    assert batch_grid(8) == [1, 2, 3, 4, 6, 8, 12]
    grid = batch_grid(48)
    assert grid[-1] >= 72 and grid == sorted(set(grid))
