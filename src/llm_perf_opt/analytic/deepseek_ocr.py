"""The layer tree of one DeepSeek-OCR generation call (B pages) for one workload.

Stages (disjoint, so stage totals never double-count):

* ``vision`` — SAM + CLIP for every view of every page: one pass per view size, batched over the
  B pages (e.g. 6·B tiles of 640 px, then B global views of 1024 px);
* ``projector`` — feature fusion, the linear projector, newline/separator insertion;
* ``prefill`` — the decoder over B sequences of P = prompt + image-slot tokens, producing the
  first generated token (logits for the last position only);
* ``decode`` — one step per further generated token: max_new_tokens − 1 steps (the prefill
  produced the first token; the last token is never fed back). Step j = 1 … S attends over
  P + j keys, so the KV cache ends at ``Workload.final_context`` = P + S. The S steps are one
  :class:`~llm_perf_opt.analytic.base.Swept` node summed in closed form.

Vision and projector run inside the prefill call of ``generate``; reports show them as stages of
their own. This module imports no torch.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BF16, BaseLayer, Child, Cost, Precision, Swept
from llm_perf_opt.analytic.decoder import DecoderStack
from llm_perf_opt.analytic.projector import ProjectorStage
from llm_perf_opt.analytic.vision import VisionStage
from llm_perf_opt.errors import UserError
from llm_perf_opt.specs.execution import EXECUTIONS
from llm_perf_opt.specs.model_spec import DecoderSpec, ModelSpec
from llm_perf_opt.specs.workload import Workload

STAGES = ("vision", "projector", "prefill", "decode")


def decode_steps(workload: Workload) -> int:
    """Decoder calls after the prefill: max_new_tokens − 1 (the prefill yields the first token)."""
    return max(workload.max_new_tokens - 1, 0)


@frozen(kw_only=True, cache_hash=True)
class DecodeStage(BaseLayer):
    """S decode steps of B sequences; step j attends over prefill_tokens + j keys (j = 1 … S)."""

    batch: int
    prefill_tokens: int
    steps: int
    dec: DecoderSpec
    execution: str = "graph"
    """``graph``: replayed static step (split-KV attention, key counts on the device); ``eager``: Python-issued."""
    load_ratio: float = 1.0
    """Routing skew of the MoE layers (:class:`~llm_perf_opt.analytic.moe.MoE`); 1 = uniform."""

    formula: ClassVar[str] = (
        "Σ_{j=1..S} DecoderStack(B, q=1, L=P+j) = S · (step(P+1) + step(P+S)) / 2 (closed form, affine in L)"
    )

    syncs_between_children: ClassVar[bool] = True  # the host syncs once per decode step

    def build_children(self) -> tuple[Child, ...]:
        if self.steps < 1:
            return ()
        b, p, s = self.batch, self.prefill_tokens, self.steps
        # The graph step's split-KV attention reads exactly the filled positions (their count is on the
        # device), so kv_read = context: it only marks the graph step's kernels.
        graph = self.execution == "graph"
        common = {"batch": b, "q_len": 1, "dec": self.dec, "load_ratio": self.load_ratio}
        first = self.sub(DecoderStack, context=p + 1, kv_read=p + 1 if graph else 0, **common)
        last = self.sub(DecoderStack, context=p + s, kv_read=p + s if graph else 0, **common)
        step = Swept(first=first, last=last, steps=s, stage=self.stage, prec=self.prec)
        return (Child(name="step", layer=step, repetition="for", count=s, shared_state=True),)

    def leaf_cost(self) -> Cost:
        """No steps (max_new_tokens ≤ 1): nothing to do."""
        return self.make_cost()


@frozen(kw_only=True, cache_hash=True)
class DeepseekOCRGeneration(BaseLayer):
    """Root: the four stages of one generation call. Decode re-uses the prefill's weights and KV cache."""

    stages: tuple[BaseLayer, ...]

    formula: ClassVar[str] = "vision + projector + prefill + decode"

    syncs_between_children: ClassVar[bool] = True

    def build_children(self) -> tuple[Child, ...]:
        return tuple(Child(name=s.stage, layer=s, shared_state=s.stage == "decode") for s in self.stages)


def build_stages(
    spec: ModelSpec, workload: Workload, precision: Precision = BF16, execution: str = "graph", load_ratio: float = 1.0
) -> dict[str, BaseLayer]:
    """stage name → the stage's layer, for ``workload`` (B = batch_size pages per call), decode ``execution`` and
    the MoE routing skew ``load_ratio`` (1 = uniform; :mod:`.moe`)."""
    if execution not in EXECUTIONS:
        raise UserError(f"unknown execution {execution!r}; valid: {', '.join(EXECUTIONS)}")
    layout = workload.layout
    b = workload.batch_size
    views = [(view, n * b) for view, n in layout.views]
    vision = VisionStage(passes=tuple(views), sam=spec.sam, clip=spec.clip, stage="vision", prec=precision)
    projector = ProjectorStage(
        passes=tuple((spec.sam.out_grid(view), n) for view, n in views),
        pages=b,
        feature_tokens=layout.feature_tokens,
        total_slots=layout.total_slots,
        clip_width=spec.clip.width,
        sam_channels=spec.sam.out_channels,
        n_embed=spec.decoder.hidden_size,
        stage="projector",
        prec=precision,
    )
    p = workload.prefill_tokens
    prefill = DecoderStack(
        batch=b, q_len=p, context=p, dec=spec.decoder, image_slots=layout.total_slots, load_ratio=load_ratio,
        stage="prefill", prec=precision,
    )  # fmt: skip
    decode = DecodeStage(
        batch=b,
        prefill_tokens=p,
        steps=decode_steps(workload),
        dec=spec.decoder,
        execution=execution,
        load_ratio=load_ratio,
        stage="decode",
        prec=precision,
    )
    return {"vision": vision, "projector": projector, "prefill": prefill, "decode": decode}


def build_root(stages: dict[str, BaseLayer], precision: Precision = BF16) -> DeepseekOCRGeneration:
    return DeepseekOCRGeneration(stages=tuple(stages[s] for s in STAGES), stage="other", prec=precision)


def model_weight_params(spec: ModelSpec) -> int:
    """Parameters of the whole checkpoint as the layer tree holds them (vision + projector + decoder)."""
    from llm_perf_opt.specs.workload import WORKLOAD_PROFILES

    stages = build_stages(spec, WORKLOAD_PROFILES["base"].replace(max_new_tokens=2))
    return build_root(stages).weight_params()
