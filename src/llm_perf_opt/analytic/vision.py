"""Vision stage: every SAM → CLIP encoder pass of a request (layers in :mod:`.sam` and :mod:`.clip`)."""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer, Child
from llm_perf_opt.analytic.clip import ClipAttention, ClipEmbeddings, ClipEncoder, ClipLayer
from llm_perf_opt.analytic.sam import PositionAdd, RelPosBias, SamAttention, SamBlock, SamEncoder, VisionMLP
from llm_perf_opt.specs.model_spec import ClipSpec, SamSpec

__all__ = [
    "ClipAttention",
    "ClipEmbeddings",
    "ClipEncoder",
    "ClipLayer",
    "PositionAdd",
    "RelPosBias",
    "SamAttention",
    "SamBlock",
    "SamEncoder",
    "VisionMLP",
    "VisionPass",
    "VisionStage",
]


@frozen(kw_only=True, cache_hash=True)
class VisionPass(BaseLayer):
    """One encoder call on a batch of views of one size: SAM, then CLIP on SAM's output."""

    batch: int
    view: int
    sam: SamSpec
    clip: ClipSpec
    extra_kernels: tuple[int, int] = (0, 0)
    """Kernels the running code issues per SAM and per CLIP call beyond the trees (see :class:`VisionStage`)."""

    formula: ClassVar[str] = "SamEncoder(B, V) + ClipEncoder(B, g = V/64)"

    def build_children(self) -> tuple[Child, ...]:
        g = self.sam.out_grid(self.view)
        sam_x, clip_x = self.extra_kernels
        return (
            Child(
                name="sam_model",
                layer=self.sub(SamEncoder, batch=self.batch, view=self.view, sam=self.sam, extra_kernels=sam_x),
            ),
            Child(
                name="vision_model",
                layer=self.sub(ClipEncoder, batch=self.batch, grid=g, clip=self.clip, extra_kernels=clip_x),
            ),
        )


@frozen(kw_only=True, cache_hash=True)
class VisionStage(BaseLayer):
    """Every encoder pass of a request: (view side, views) pairs, e.g. 6·B tiles of 640 + B globals of 1024.

    Views of one size are batched into one pass (weights read once per pass). Later passes run the
    same encoder, so they add no resident weights (``shared_state``).
    """

    passes: tuple[tuple[int, int], ...]
    sam: SamSpec
    clip: ClipSpec
    extra_kernels: tuple[int, int] = (0, 0)
    """Kernels the running code issues per SAM and per CLIP call beyond the layer trees: (0, 0) for ours,
    the official code's autocast casts and hand-written norms for ``hf-official``."""

    formula: ClassVar[str] = "Σ over passes VisionPass(batch = views of that size × pages, view)"

    def sync_groups(self) -> list[list[tuple[BaseLayer, int]]]:
        """The synchronised ranges the runnable model times: every SAM pass, then every CLIP pass
        (one ``sam`` and one ``clip`` range; models/deepseek_ocr/model.py), so the roofline's eager
        queue runs per range, not per pass."""
        passes = [c.layer for c in self.children()]
        return [[(p.children()[0].layer, 1) for p in passes], [(p.children()[1].layer, 1) for p in passes]]

    def build_children(self) -> tuple[Child, ...]:
        return tuple(
            Child(
                name=f"pass@{view}",
                shared_state=i > 0,
                layer=self.sub(
                    VisionPass, batch=n, view=view, sam=self.sam, clip=self.clip, extra_kernels=self.extra_kernels
                ),
            )
            for i, (view, n) in enumerate(self.passes)
        )
