"""The layer tree of the official DeepSeek-OCR code (``implementation = hf-official``).

Ours' stage layers plus, per decoder call, what the official code does beyond them (FLOPs, DRAM
traffic and kernels from :mod:`llm_perf_opt.analytic.implementations`): the lm_head over every
prompt position, RoPE's per-layer bmm, the per-expert MoE loop and eager kernels, the
DynamicCache ``torch.cat``. Decode is eager. Imports no torch.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import evolve, frozen

from llm_perf_opt.analytic.base import BF16, BaseLayer, Child, Cost, Precision, Swept
from llm_perf_opt.analytic.decoder import DecoderStack
from llm_perf_opt.analytic.deepseek_ocr import build_stages
from llm_perf_opt.analytic.implementations import (
    HF_OFFICIAL,
    decode_step_extra_bytes,
    decode_step_kernels,
    expert_loop_kernels,
    layer_kernels,
    ngram_host_us,
    prefill_extra_bytes,
    rope_bmm_flops,
)
from llm_perf_opt.analytic.vision import VisionStage
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload


@frozen(kw_only=True, cache_hash=True)
class OfficialOverhead(BaseLayer):
    """What the official code does beyond ours in one call: extra matmul FLOPs, DRAM traffic, kernels."""

    label: str
    flops_extra: float = 0.0
    bytes_extra: float = 0.0
    kernels_extra: float = 0.0
    host_us: float = 0.0
    """Host work of the call that issues no kernel (the n-gram ban's Python), µs."""
    host_kind: str = "decoder"
    """Whose Python issues these kernels: ``decoder`` (the official decoder modules and generate loop:
    ``host_overhead_us`` each) or ``expert_loop`` (moe_infer's per-expert loop: ``expert_host_overhead_us``)."""

    DEFAULT_CATEGORY: ClassVar[str] = "elementwise"
    formula: ClassVar[str] = "hf-official minus ours: FLOPs, bytes and kernels from analytic/implementations.py"

    def leaf_cost(self) -> Cost:
        """The differences as given (FLOPs count as matmul FLOPs; bytes half read, half written)."""
        half = self.bytes_extra / 2
        return self.make_cost(flops=self.flops_extra, bytes_read=half, bytes_written=half, kernels=self.kernels_extra)


@frozen(kw_only=True, cache_hash=True)
class OfficialCall(BaseLayer):
    """One decoder call as the official code runs it: ours' DecoderStack plus the official overheads."""

    base: BaseLayer
    overheads: tuple[OfficialOverhead, ...]

    formula: ClassVar[str] = "DecoderStack + hf-official overheads (lm_head positions, RoPE bmm, kernels, KV cat)"

    def build_children(self) -> tuple[Child, ...]:
        return (Child(name="decoder", layer=self.base), *(Child(name=o.label, layer=o) for o in self.overheads))


@frozen(kw_only=True, cache_hash=True)
class OfficialDecodeStage(BaseLayer):
    """S eager decode steps of the official generate; step j attends over P + j keys (closed-form sum)."""

    first: OfficialCall
    last: OfficialCall
    steps: int

    formula: ClassVar[str] = "Σ_j OfficialCall(L = P + j), affine in L: S · (first + last) / 2"
    syncs_between_children: ClassVar[bool] = True

    def build_children(self) -> tuple[Child, ...]:
        if self.steps < 1:
            return ()
        step = Swept(first=self.first, last=self.last, steps=self.steps, stage=self.stage, prec=self.prec)
        return (Child(name="step", layer=step, repetition="for", count=self.steps, shared_state=True),)

    def leaf_cost(self) -> Cost:
        """No steps: nothing to do."""
        return self.make_cost()


@frozen(kw_only=True, cache_hash=True)
class OfficialPages(BaseLayer):
    """A vision or projector stage of the official code at batch B: the page loop of
    ``DeepseekOCRModel.forward`` runs the batch-1 stage ``page`` once per page, in order.

    Each page's encoder passes are synchronised ranges of their own (the forward's
    ``torch.sum(patches).item()`` and the stage hooks): per page and pass one SAM range, one CLIP
    range (vision), or one projector range per page (projector).
    """

    page: BaseLayer
    pages: int

    formula: ClassVar[str] = "pages × the batch-1 stage (a Python loop over the pages)"

    def build_children(self) -> tuple[Child, ...]:
        return (Child(name="page", layer=self.page, repetition="for", count=self.pages, shared_state=True),)

    def sync_groups(self) -> list[list[tuple[BaseLayer, int]]]:
        """Per page: every synchronised range of the batch-1 stage (one per encoder and pass)."""
        if isinstance(self.page, VisionStage):  # each pass: SAM, then CLIP
            ranges = [[(enc.layer, 1)] for one in self.page.children() for enc in one.layer.children()]
        else:
            ranges = [[(self.page, 1)]]
        return ranges * self.pages


def official_stages(
    stages: dict[str, BaseLayer],
    spec: ModelSpec,
    workload: Workload,
    precision: Precision = BF16,
    load_ratio: float = 1.0,
) -> dict[str, BaseLayer]:
    """``stages`` of ours turned into the hf-official code's: prefill and decode get the overheads.

    Vision runs the same layers with the official code's extra kernels per SAM and CLIP call
    (``HF_OFFICIAL.sam_extra_kernels``, ``clip_extra_kernels``); the projector the same operators.
    Decoder kernel differences are the official counts (:func:`layer_kernels`) minus the layer tree's own;
    host syncs are not a layer-tree quantity (see :func:`decode_step_syncs`, :func:`decode_step_host_ms`).
    Decode is eager.
    """
    dec, b, p = spec.decoder, workload.batch_size, workload.prefill_tokens
    prefill_base = stages["prefill"]
    pre = layer_kernels(spec, "hf-official", batch=b * p, load_ratio=load_ratio)
    pre_kernels = pre["outside"] + dec.first_k_dense_replace * pre["dense_layer"]
    pre_kernels += (dec.num_layers - dec.first_k_dense_replace) * pre["moe_layer"]
    lm_rest = OfficialOverhead(
        label="lm_head_all_positions",
        flops_extra=2.0 * b * (p - 1) * dec.hidden_size * dec.vocab_size + rope_bmm_flops(spec, b * p),
        bytes_extra=prefill_extra_bytes(spec, workload, "hf-official", precision),
        op_category="lm_head",
        stage="prefill",
        prec=precision,
    )
    pre_loop = expert_loop_kernels(spec, "hf-official", tokens=b * p, load_ratio=load_ratio)
    pre_host = OfficialOverhead(
        label="eager_kernels",
        kernels_extra=max(pre_kernels - pre_loop - prefill_base.cost().kernels, 0.0),
        stage="prefill",
        prec=precision,
    )
    prefill = OfficialCall(
        base=prefill_base,
        overheads=(lm_rest, pre_host, _expert_loop(pre_loop, "prefill", precision)),
        stage="prefill",
        prec=precision,
    )

    steps = max(workload.max_new_tokens - 1, 0)

    def call(context: int) -> OfficialCall:
        base = DecoderStack(
            batch=b, q_len=1, context=context, dec=dec, load_ratio=load_ratio, stage="decode", prec=precision
        )
        loop = expert_loop_kernels(spec, "hf-official", tokens=b, load_ratio=load_ratio)
        ngram = HF_OFFICIAL.ngram_size
        step_kernels = decode_step_kernels(spec, "hf-official", batch=b, ngram=ngram > 0, load_ratio=load_ratio)
        extra_k = step_kernels - loop - base.cost().kernels
        over = OfficialOverhead(
            label="eager_kernels_and_kv_cat",
            flops_extra=rope_bmm_flops(spec, b),
            bytes_extra=decode_step_extra_bytes(spec, workload, "hf-official", context=context, precision=precision),
            kernels_extra=max(extra_k, 0.0),
            stage="decode",
            prec=precision,
        )
        ban = OfficialOverhead(
            label="ngram_ban", host_us=ngram_host_us(workload, ngram, context=context), stage="decode", prec=precision
        )
        overheads = (over, _expert_loop(loop, "decode", precision), ban)
        return OfficialCall(base=base, overheads=overheads, stage="decode", prec=precision)

    decode = OfficialDecodeStage(
        first=call(p + 1), last=call(p + max(steps, 1)), steps=steps, stage="decode", prec=precision
    )
    # DeepseekOCRModel.forward loops over the pages: each one's SAM, CLIP and projector run at batch 1.
    one = stages if b == 1 else build_stages(spec, evolve(workload, batch_size=1), precision, "eager")
    page = one["vision"]
    if isinstance(page, VisionStage):  # the same layers with the official code's extra casts
        page = evolve(page, extra_kernels=(HF_OFFICIAL.sam_extra_kernels, HF_OFFICIAL.clip_extra_kernels))
    vision = OfficialPages(page=page, pages=b, stage="vision", prec=precision)
    projector = OfficialPages(page=one["projector"], pages=b, stage="projector", prec=precision)
    return {**stages, "vision": vision, "projector": projector, "prefill": prefill, "decode": decode}


def _expert_loop(kernels: float, stage: str, precision: Precision) -> OfficialOverhead:
    """The kernels of moe_infer's per-expert Python loops in one forward (issued at expert_host_overhead_us)."""
    return OfficialOverhead(
        label="per_expert_loop", kernels_extra=kernels, host_kind="expert_loop", stage=stage, prec=precision
    )
