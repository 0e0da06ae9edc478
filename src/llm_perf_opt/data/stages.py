"""The one definition of the stages: analytic model stages, measured stages and how they map.

Stages of one ``generate`` call (DESIGN: vision and projector are separate stages; vision is shown
nested inside prefill, never summed twice):

==================  ===========================================  ====================================
measured stage      what the clock covers                        analytic counterpart
==================  ===========================================  ====================================
``sam``             the ``sam`` range (every SAM pass)           Σ SamEncoder sub-trees of ``vision``
``clip``            the ``clip`` range (every CLIP pass)         Σ ClipEncoder sub-trees of ``vision``
``vision``          ``vision`` range − ``projector`` range       ``vision`` (SAM + CLIP); measured also
                    (SAM + CLIP + view stacking + slot           holds the glue the analytic model
                    assembly) — the projector is NOT included    does not cost (view stacking)
``projector``       the ``projector`` range                      ``projector`` (its newline/separator
                                                                 assembly runs just outside the range)
``prefill_decoder`` ``prefill`` − ``vision`` range               ``prefill`` (decoder only)
``prefill``         the whole first forward (vision inside)      vision + projector + prefill
``decode``          end of the first forward → end of the call   ``decode`` (max_new_tokens − 1 steps)
``total``           the whole ``generate`` call                  vision + projector + prefill + decode
==================  ===========================================  ====================================

The analytic ``prefill`` stage is the decoder only, while the profiler's ``prefill`` range is the
whole first forward with vision and projector inside it: compare ``prefill_decoder`` with analytic
prefill, or ``prefill`` with the sum of three analytic stages — never profiler prefill with
analytic prefill. Used by MFU (``profiling.mfu``), calibration and the GPU experiments.
"""

from __future__ import annotations

MODEL_STAGES: tuple[str, ...] = ("vision", "projector", "prefill", "decode")
"""The analytic model's stages of one generation call, in execution order (disjoint; they sum to the call)."""

MEASURED_STAGES: tuple[str, ...] = (
    "sam",
    "clip",
    "vision",
    "projector",
    "prefill_decoder",
    "prefill",
    "decode",
    "total",
)
"""Stages the profiler times per generation call (see the table above; some nest in others)."""

MEASURED_STAGE_KEYS: dict[str, str] = {stage: f"{stage}_ms" for stage in MEASURED_STAGES}
"""Measured stage → the field of a run record (``runs.jsonl``, GPU matrices) that holds its time in ms."""

MEASURED_TO_ANALYTIC: dict[str, tuple[str, ...]] = {
    "sam": ("vision/SamEncoder",),
    "clip": ("vision/ClipEncoder",),
    "vision": ("vision",),
    "projector": ("projector",),
    "prefill_decoder": ("prefill",),
    "prefill": ("vision", "projector", "prefill"),
    "decode": ("decode",),
    "total": MODEL_STAGES,
}
"""Measured stage → the analytic stages (``stage``) or layer sub-trees (``stage/LayerClass``) it is compared with."""

MEASURED_STAGE_LABELS: dict[str, str] = {
    "sam": "SAM",
    "clip": "CLIP",
    "vision": "vision (SAM + CLIP)",
    "projector": "projector",
    "prefill_decoder": "prefill, decoder only",
    "prefill": "prefill incl. vision",
    "decode": "decode",
    "total": "total (generate call)",
    "sam_gpu": "SAM, GPU busy",
    "clip_gpu": "CLIP, GPU busy",
    "projector_gpu": "projector, GPU busy",
    "prefill_decoder_gpu": "prefill (decoder), GPU busy",
    "decode_gpu": "decode, GPU busy",
}
"""Measured stage (and its ``*_gpu`` device-busy variant) → label in tables and plots."""

OPERATOR_LEAF_STAGES: tuple[str, ...] = ("sam", "clip", "vision", "projector", "prefill", "decode", "other")
"""Disjoint operator attribution targets; ``vision`` here is the vision glue outside sam/clip/projector."""
OPERATOR_TABLE_STAGES: tuple[str, ...] = ("vision", "sam", "clip", "projector", "prefill", "decode", "other")
"""Stages with an operator table; the ``vision`` table also holds sam and clip (not projector)."""


def stage_parts(measured: str) -> tuple[str, ...]:
    """Analytic stages of a measured stage, ignoring sub-tree entries (for stage-level FLOPs/bytes)."""
    return tuple(p for p in MEASURED_TO_ANALYTIC[measured] if "/" not in p)


ACCURACY_TARGET = 0.15
"""A stage prediction counts as accurate within ±15 % of the measured time (validation tables and plots)."""
