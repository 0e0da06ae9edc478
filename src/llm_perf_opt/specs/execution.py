"""How the work reaches the GPU: the one definition shared by the runnable and the analytic model.

``graph``: the runnable model captures a static-shape decode step as CUDA graphs and replays them
(one graph per bucket of :data:`KV_BUCKET` cache positions; attention reads the filled positions,
their count written on the device), and SAM, CLIP, the projector and the prompt prefill as one graph
each per input shape; ``eager``: every kernel is issued from Python.
"""

from __future__ import annotations

EXECUTIONS = ("graph", "eager")
"""Valid execution modes (``graph`` covers every stage); ``graph`` is the default of analytic reports."""

GRAPH_STAGE_TIMINGS = ("span", "range")
"""How a profile run timed its graph-replayed vision stages (SAM, CLIP, projector): ``span``, by timing
events captured inside each stage's graph (the GPU's span of its kernels; the host's launch of the graph
falls in the enclosing vision range), or ``range``, by the synchronised range's own events around the
replay (launch included; runs made before in-graph spans existed)."""

IMPLEMENTATIONS = ("ours", "hf-official")
"""Which code runs the model (analytic ``implementation`` input): llm_perf_opt's model or the official
checkpoint code (transformers 4.46.3 remote code, always eager); see analytic/implementations.py."""

KV_BUCKET = 256
"""KV positions per attention bucket of a graph decode step. Reading up to 255 unused slots costs
≤ 15.7 MB per step for DeepSeek-OCR (61,440 B per position) against ~1.2 GB of weights (≤ 1.3%
more traffic), while a 2048-position context needs only 8 graphs."""


FUSED_MAX_PAIRS = 96
"""Token-expert pairs (tokens · k) up to which the graph decode step runs the whole MoE in the fused
Triton kernels (each pair's expert weights read in place) instead of grouped GEMMs over all
experts: batch ≤ 16 for DeepSeek-OCR (k = 6). H200, torch 2.11, one MoE layer with its shared
experts, random routing (``benchmarks/bench_moe_kernels.py``): fused 39 / 53 / 71 / 102 / 153 /
250 µs vs grouped 109 / 131 / 157 / 195 / 233 / 271 µs at 1 / 2 / 4 / 8 / 16 / 32 tokens. Fused
reads one copy of an expert per pair (grouped: one per distinct expert), so the more tokens share
experts (real routing is skewed), the sooner grouped wins: batch 32 stays grouped."""

GATHER_MAX_PAIRS = 8
"""Where the fused kernels cannot run (no Triton, not CUDA): token-expert pairs up to which the graph
step gathers the pairs' expert weights instead of running grouped GEMMs (batch 1 for DeepSeek-OCR).
H200, torch 2.11, one MoE layer: 85 µs gathered vs 108 grouped at 1 token, 309 vs 194 at 8
(``benchmarks/bench_moe_kernels.py``). Not in the analytic model, which assumes fused."""


SPLIT_KV_BLOCK = 64
"""Keys per CTA of the graph step's split-KV attention (``split`` form): B·h·⌈L/64⌉ CTAs for L filled
positions, e.g. 50 at batch 1 and ~300 keys."""


def bucket_capacity(length: int, bucket: int = KV_BUCKET) -> int:
    """``length`` rounded up to a whole number of buckets (at least one bucket)."""
    return max(1, -(-length // bucket)) * bucket
