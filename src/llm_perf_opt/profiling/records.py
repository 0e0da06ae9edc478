"""Raw per-run records (one timed generation call) and the derived per-run metrics.

A *run* is one ``generate`` call over one batch of pages in one repeat. ``runs.jsonl`` holds one
:class:`RunRecord` per line, exactly as measured; every table and statistic is derived from them.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import define, field

from llm_perf_opt.profiling.timers import RangeTiming

STAGE_MS_KEYS: tuple[str, ...] = (
    "total_ms",
    "ttft_ms",
    "prefill_ms",
    "vision_ms",
    "vision_range_ms",
    "sam_ms",
    "clip_ms",
    "projector_ms",
    "prefill_decoder_ms",
    "decode_ms",
    "other_ms",
)
METRIC_KEYS: tuple[str, ...] = (
    *STAGE_MS_KEYS,
    "tpot_ms",
    "decode_tokens_per_s",
    "e2e_tokens_per_s",
    "peak_memory_gb",
)


@define(kw_only=True)
class RunRecord:
    """One timed generation call; times in ms, relative stage bounds from the clock."""

    index: int
    """Position of this call among the run's timed calls (0, 1, …; warm-up calls are not recorded)."""
    repeat: int
    """Which pass over the page batches this call belongs to (0 … repeats − 1)."""
    batch_index: int
    """Which batch of pages (0-based, in input order) this call ran."""
    pages: list[str]
    """File names of the pages in this batch."""
    categories: list[str]
    """Content category of each page (``text_heavy``, ``image_rich``, … for the synthetic pages)."""
    batch_size: int
    """Pages (sequences) generated together in this call."""
    image_tokens: int
    """Image-token slots per page."""
    tile_grid: list[int]
    """Local tiles of the first page, ``[across, down]`` (``[1, 1]``: no local tiles)."""
    prompt_len: int
    """Prompt length per sequence (text + image slots)."""
    new_tokens: int
    """Generated tokens per sequence (first from prefill, the rest from decode)."""
    total_ms: float
    """Wall time of the whole ``generate`` call, CUDA-synchronised at both ends."""
    prefill_ms: float
    """The ``prefill`` range: the first forward over prompt + image tokens, vision and projector included."""
    prefill_end_ms: float
    """Time from the call's start to the end of the first forward (= TTFT)."""
    vision_range_ms: float
    """The whole ``vision`` range (encoders, glue and, when nested, the projector)."""
    vision_ms: float
    """Vision without the projector: SAM + CLIP + glue."""
    sam_ms: float
    """The ``sam`` range: the SAM ViT-B encoder over every view (the in-graph GPU span when replayed)."""
    clip_ms: float
    """The ``clip`` range: the CLIP-L encoder over every view (the in-graph GPU span when replayed)."""
    projector_ms: float
    """The ``projector`` range: the MLP that maps vision features to decoder embeddings (the in-graph GPU
    span when replayed)."""
    prefill_decoder_ms: float
    """Prefill without the vision and projector ranges: the decoder over prompt + image tokens."""
    decode_ms: float
    """Everything after the first forward until the call returns (``decode`` = the rest)."""
    decode_range_ms: float
    """Span of the ``decode`` range (first opening to last closing); ``decode_ms`` minus loop overhead outside it."""
    decode_range_openings: int
    """How often the ``decode`` range opened in this call (1 when the loop is one range). Not the number of
    decode steps: those are ``new_tokens − 1``."""
    decode_mode: str = "eager"
    """How the decode steps ran: ``graph`` (replayed CUDA graphs) or ``eager`` (kernels issued from Python)."""
    prefill_mode: str = "eager"
    """How vision, projector and the decoder prefill ran: ``graph`` (replayed per input shape) or ``eager``.
    Runs written before prefill graphs existed lack the field: eager, as they ran."""
    capture_ms: float = 0.0
    """Graph capture time that fell inside this run (0 when captured before timing, as it should be)."""
    peak_memory_bytes: int | None = None
    """Peak memory allocated by torch on the device during the call (bytes; None on CPU)."""
    kv_cache_bytes: int | None = None
    """Bytes of the KV cache at the end of the call (None when the model does not report it)."""
    gpu_span_stages: list[str] = field(factory=list)
    """Stages timed by timing events inside their replayed graph (the GPU span of their kernels; the
    host's launch of the graph is outside it, in the enclosing range). Other stages: their range's own
    synchronised events. Runs written before in-graph spans existed lack the field: all ranges."""
    ranges: dict[str, dict[str, float]] = field(factory=dict)
    """Raw clock output per range name: count, sum_ms, start_ms, end_ms, range_ms (the brackets, launch
    included) and gpu_spans (openings timed in-graph)."""
    analytic_tflop: dict[str, float] = field(factory=dict)
    """Analytic TFLOP (10^12 FLOPs) per measured stage for this call."""
    analytic_gb: dict[str, float] = field(factory=dict)
    """Analytic DRAM GB (10^9 bytes) per measured stage for this call."""
    mfu: dict[str, float] = field(factory=dict)
    """Model FLOPs utilisation per measured stage: analytic FLOPs / (stage time × dense peak of the precision)."""
    bandwidth_utilization: dict[str, float] = field(factory=dict)
    """Analytic bytes / (stage time × peak DRAM bandwidth) per measured stage."""

    @property
    def generated_tokens(self) -> int:
        return self.batch_size * self.new_tokens

    @property
    def decode_tokens(self) -> int:
        return self.batch_size * max(self.new_tokens - 1, 0)

    @property
    def other_ms(self) -> float:
        """Call time outside the first forward and decode (setup before prefill)."""
        return max(self.total_ms - self.prefill_ms - self.decode_ms, 0.0)

    def stage_times(self) -> dict[str, float]:
        """Measured stage → ms, the keys of :data:`llm_perf_opt.data.stages.MEASURED_TO_ANALYTIC`."""
        return {
            "vision": self.vision_ms,
            "projector": self.projector_ms,
            "prefill_decoder": self.prefill_decoder_ms,
            "prefill": self.prefill_ms,
            "decode": self.decode_ms,
            "total": self.total_ms,
        }

    def metrics(self) -> dict[str, float | None]:
        """Flat metrics of this run, the inputs of the statistics."""
        decode_s = self.decode_ms / 1000.0
        out: dict[str, float | None] = {
            "total_ms": self.total_ms,
            "ttft_ms": self.prefill_end_ms,
            "prefill_ms": self.prefill_ms,
            "vision_ms": self.vision_ms,
            "vision_range_ms": self.vision_range_ms,
            "sam_ms": self.sam_ms,
            "clip_ms": self.clip_ms,
            "projector_ms": self.projector_ms,
            "prefill_decoder_ms": self.prefill_decoder_ms,
            "decode_ms": self.decode_ms if self.new_tokens > 1 else None,
            "other_ms": self.other_ms,
            "tpot_ms": self.decode_ms / (self.new_tokens - 1) if self.new_tokens > 1 else None,
            "decode_tokens_per_s": self.decode_tokens / decode_s if self.new_tokens > 1 and decode_s > 0 else None,
            "e2e_tokens_per_s": self.generated_tokens / (self.total_ms / 1000.0) if self.total_ms > 0 else None,
            "peak_memory_gb": None if self.peak_memory_bytes is None else self.peak_memory_bytes / 1e9,
        }
        for stage, value in self.mfu.items():
            out[f"mfu_{stage}"] = value
        for stage, value in self.bandwidth_utilization.items():
            out[f"bw_util_{stage}"] = value
        return out

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["other_ms"] = self.other_ms
        data["generated_tokens"] = self.generated_tokens
        return data


def stage_bounds(ranges: dict[str, RangeTiming], total_ms: float) -> dict[str, float]:
    """Stage times of one call from the clock's ranges (see :class:`RunRecord`)."""

    def sum_of(name: str) -> float:
        r = ranges.get(name)
        return r.sum_ms if r else 0.0

    prefill = ranges.get("prefill")
    vision = ranges.get("vision")
    projector = ranges.get("projector")
    decode = ranges.get("decode")
    prefill_end = prefill.end_ms if prefill else 0.0
    vision_range = sum_of("vision")
    projector_ms = sum_of("projector")
    # The projector's bracket (its launch included) is what it takes out of the enclosing ranges.
    projector_bracket = projector.bracket_ms if projector else 0.0
    nested = vision is not None and projector is not None and vision.contains(projector)
    prefill_ms = prefill.sum_ms if prefill else 0.0
    inside_prefill = vision_range + (0.0 if nested else projector_bracket)
    return {
        "prefill_ms": prefill_ms,
        "prefill_end_ms": prefill_end,
        "vision_range_ms": vision_range,
        "vision_ms": max(vision_range - projector_bracket, 0.0) if nested else vision_range,
        "sam_ms": sum_of("sam"),
        "clip_ms": sum_of("clip"),
        "projector_ms": projector_ms,
        "prefill_decoder_ms": max(prefill_ms - inside_prefill, 0.0),
        "decode_ms": max(total_ms - prefill_end, 0.0),
        "decode_range_ms": decode.span_ms if decode else 0.0,
        "decode_range_openings": decode.count if decode else 0,
    }
