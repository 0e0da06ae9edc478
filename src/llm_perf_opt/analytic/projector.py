"""Projector stage: fuse CLIP and SAM features, project to the LM width, insert newline/separator.

Per pass of B views with a g×g feature grid (deepseek-ocr-architecture.md §4 "Fusion", §5.1–§5.3):
concat(CLIP_out[:, 1:], SAM_out.flatten(2).transpose(1, 2)) → [B, g², 2048] → Linear(2048 → 1280,
bias). The per-page assembly then lays out local mosaic rows and global rows each followed by
``image_newline`` and appends ``view_seperator``: ``total_slots`` vectors per page.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer, Child, Cost
from llm_perf_opt.analytic.primitives import Elementwise, Linear

PR = "projector"
ASSEMBLY_KERNELS_PER_PAGE = 8
"""Eager assembly per page: view + cat newline (global, local), permute copy, flatten, final cat."""


@frozen(kw_only=True, cache_hash=True)
class ProjectorPass(BaseLayer):
    """Feature concat + the linear projector for B views of a g×g grid (CLS dropped)."""

    batch: int
    grid: int
    clip_width: int
    sam_channels: int
    n_embed: int

    DEFAULT_CATEGORY: ClassVar[str] = PR
    formula: ClassVar[str] = "FLOPs = 2·B·g²·(C_clip + C_sam)·E; concat copies B·g²·(C_clip + C_sam)"

    def build_children(self) -> tuple[Child, ...]:
        t = self.batch * self.grid**2
        fin = self.clip_width + self.sam_channels
        return (
            Child(
                name="concat",
                layer=self.sub(
                    Elementwise,
                    label="concat CLIP[:,1:] and SAM features (copy)",
                    elements=t * fin,
                    flops_per_element=0.0,
                    # One aten::cat kernel reads the CLS-dropping slice and the transposed SAM view in place
                    # (H200 operator tables, docs/validation/h200/prefill-ops: 1 cat + 1 addmm per pass).
                    kernels=1,
                    transposing=True,  # SAM's [C, g²] read as [g², C]
                    op_category=PR,
                ),
            ),
            Child(
                name="projector.layers",
                layer=self.sub(Linear, tokens=t, in_features=fin, out_features=self.n_embed, bias=True, op_category=PR),
            ),
        )


@frozen(kw_only=True, cache_hash=True)
class ImageTokenAssembly(BaseLayer):
    """Lay out one page's projected features with image_newline after each row plus view_seperator.

    Reads the ``feature_tokens`` projected vectors of each of the B pages and writes its
    ``total_slots`` vectors; owns the two learned vectors (2 × hidden parameters).
    """

    pages: int
    feature_tokens: int
    total_slots: int
    hidden: int

    DEFAULT_CATEGORY: ClassVar[str] = "elementwise"
    formula: ClassVar[str] = "no FLOPs; read B·features·D·a; write B·slots·D·a; weights 2·D (newline, separator)"

    def leaf_cost(self) -> Cost:
        """Pure data movement; launches are per page because the reference code loops over images."""
        p, d, b = self.prec, self.hidden, self.pages
        params = 2 * d
        return self.make_cost(
            bytes_read=b * self.feature_tokens * d * p.a + params * p.w,
            bytes_written=b * self.total_slots * d * p.a,
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=b * (self.feature_tokens + self.total_slots) * d * p.a,
            kernels=ASSEMBLY_KERNELS_PER_PAGE * b,
        )


@frozen(kw_only=True, cache_hash=True)
class ProjectorStage(BaseLayer):
    """The projector over every pass ((feature grid side, views) pairs) plus the per-page assembly."""

    passes: tuple[tuple[int, int], ...]
    pages: int
    feature_tokens: int
    total_slots: int
    clip_width: int
    sam_channels: int
    n_embed: int

    formula: ClassVar[str] = "Σ passes ProjectorPass + ImageTokenAssembly"

    def build_children(self) -> tuple[Child, ...]:
        kids = [
            Child(
                name=f"pass@g{grid}",
                shared_state=i > 0,
                layer=self.sub(
                    ProjectorPass,
                    batch=n,
                    grid=grid,
                    clip_width=self.clip_width,
                    sam_channels=self.sam_channels,
                    n_embed=self.n_embed,
                ),
            )
            for i, (grid, n) in enumerate(self.passes)
        ]
        kids.append(
            Child(
                name="image_newline+view_seperator",
                layer=self.sub(
                    ImageTokenAssembly,
                    pages=self.pages,
                    feature_tokens=self.feature_tokens,
                    total_slots=self.total_slots,
                    hidden=self.n_embed,
                ),
            )
        )
        return tuple(kids)
