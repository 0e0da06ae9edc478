"""How decode steps reach the GPU: the one definition shared by the runnable and the analytic model.

``graph``: the runnable model captures a static-shape decode step as CUDA graphs and replays them
(one graph per bucket of :data:`KV_BUCKET` cache positions; attention reads the filled positions,
their count written on the device); ``eager``: every kernel is issued from Python.
"""

from __future__ import annotations

EXECUTIONS = ("graph", "eager")
"""Valid execution modes of the decode step; ``graph`` is the default of analytic reports."""

IMPLEMENTATIONS = ("ours", "hf-official")
"""Which code runs the model (analytic ``implementation`` input): llm_perf_opt's model or the official
checkpoint code (transformers 4.46.3 remote code, always eager); see analytic/implementations.py."""

KV_BUCKET = 256
"""KV positions per attention bucket of a graph decode step. Reading up to 255 unused slots costs
≤ 15.7 MB per step for DeepSeek-OCR (61,440 B per position) against ~1.2 GB of weights (≤ 1.3%
more traffic), while a 2048-position context needs only 8 graphs."""


GATHER_MAX_PAIRS = 8
"""Token-expert pairs (tokens · k) up to which the graph decode step's MoE gathers the pairs' expert
weights instead of running grouped GEMMs over all experts: batch 1 only for DeepSeek-OCR (k = 6).
H200, torch 2.11, batch-1 graph decode: 1.666 ms/token gathered vs 1.881 grouped
(``benchmarks/bench_decode_modes.py --moe-impl``); gathering copies every pair's weights, so it
pays only while the pairs are few."""


def bucket_capacity(length: int, bucket: int = KV_BUCKET) -> int:
    """``length`` rounded up to a whole number of buckets (at least one bucket)."""
    return max(1, -(-length // bucket)) * bucket
