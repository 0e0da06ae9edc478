"""A static-shape decode step, replayed from CUDA graphs (gpt-fast style).

Why: at batch 1 a decode step is ~1 GFLOP and ~1.2 GB of weight reads spread over a few hundred
small kernels. Issued one by one from Python, the host needs ~7–14 ms per step (H200 host) while the
replayed graph takes ~1.0 ms (~0.25 ms of it HBM traffic), so eager timings measure the CPU. A
captured graph issues the whole step with one launch.

What makes the step capturable:

- The position is a device tensor ``pos`` [1]; keys/values are written with ``index_copy_`` and
  RoPE angles taken with ``index_select``, so nothing asks the host where the sequence is.
- Attention (:mod:`.step_attention`) reads the length from the device: split-KV Triton kernels (or
  the varlen flash kernel) with per-row key counts on CUDA, else a fixed *bucket* of the cache with an additive mask
  (0 / −inf after ``pos``, built once per step in the model dtype: a boolean mask would be turned
  into a float one inside every layer's attention call, three extra kernels per layer, measured).
  Graphs are per (batch, bucket) either way, ``L = ceil((pos + 1) / bucket) · bucket`` (the kernels'
  static bound on the keys); the host picks the bucket from the length it already knows.
- MoE uses a dispatch whose shapes do not depend on the routing (the fused Triton MoE up to 96
  token-expert pairs, ``grouped_mm`` with device-side offsets above; gathered expert weights where
  neither runs): :meth:`MoE.static_impl`.

The cache is zero-initialised: in the masked forms, masked slots still enter ``P·V`` with P = 0,
and 0 · NaN from an uninitialised slot would poison the output.

Not done, measured: ``torch.compile`` of an earlier form of the step before capture (H200, torch
2.11) cut batch-1 kernels from 573 to 380 per step and decode from 2.15 to 1.94 ms/token, but took
88 s to compile and made batch 8 and 32 slower (5.7 and 18.2 ms vs 2.3 and 2.9 ms), so the step
stays uncompiled. A first, untuned two-kernel Triton MoE (down and the combine in one kernel, 80
CTAs) ran 26 + 43 µs per layer and lost to gathered weights; the kept one splits the down
projection per pair, runs the shared experts as more pairs and autotunes its tiles (38 µs per MoE
layer with the router, vs 86 gathered).

Capture (and its warm-up runs) happens in :meth:`StaticDecoder.capture`, outside any timed region;
its cost is kept in ``capture_seconds``.
"""

from __future__ import annotations

import time
from typing import Any, cast

import torch

from llm_perf_opt.models.deepseek_ocr.common import sdpa_backends
from llm_perf_opt.models.deepseek_ocr.decoder import DecoderLayer, MoE
from llm_perf_opt.models.deepseek_ocr.kv_cache import KVCache
from llm_perf_opt.models.deepseek_ocr.model import DeepseekOCRForCausalLM
from llm_perf_opt.models.deepseek_ocr.preprocess import ModelInputs
from llm_perf_opt.models.deepseek_ocr.static_prefill import PrefillGraphs, Signature, signature
from llm_perf_opt.models.deepseek_ocr.step_attention import StepAttention, resolve_step_attention
from llm_perf_opt.specs.execution import KV_BUCKET, bucket_capacity

DEFAULT_BUCKET = KV_BUCKET
"""KV positions per attention bucket (see :data:`llm_perf_opt.specs.execution.KV_BUCKET`)."""

WARMUP_RUNS = 2
"""Eager runs on a side stream before each capture, so cuBLAS/SDPA workspaces exist before capture."""


def bucket_lengths(first: int, last: int, bucket: int = DEFAULT_BUCKET) -> list[int]:
    """Attention lengths (graphs) that decoding positions ``first``..``last`` (inclusive) goes through."""
    return list(range(bucket_capacity(first + 1, bucket), bucket_capacity(last + 1, bucket) + 1, bucket))


class StaticDecoder:
    """Decode steps for ``batch`` rows over a cache of ``capacity`` positions, graph-replayed on CUDA.

    ``use_graphs=False`` runs the same static computation eagerly (the CPU path, and the reference
    the graphs are checked against). The cache it owns is the one :func:`generate` prefills into.
    ``attention`` is one of :data:`.step_attention.STEP_ATTENTIONS`.
    """

    def __init__(
        self,
        model: DeepseekOCRForCausalLM,
        *,
        batch: int,
        capacity: int,
        bucket: int = DEFAULT_BUCKET,
        use_graphs: bool | None = None,
        attention: str = "auto",
    ) -> None:
        if batch < 1 or capacity < 1 or bucket < 1:
            raise ValueError(f"batch, capacity and bucket must be ≥ 1, got {batch}, {capacity}, {bucket}")
        self.model = model
        self.batch = batch
        self.bucket = bucket
        self.capacity = bucket_capacity(capacity, bucket)
        device = model.device
        self.use_graphs = device.type == "cuda" if use_graphs is None else use_graphs
        if self.use_graphs and device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        dec = model.spec.decoder
        self.cache = KVCache.for_decoder(dec, batch=batch, max_len=self.capacity, device=device, dtype=model.dtype)
        with torch.inference_mode():
            self.cache.buffer.zero_()
            self.ids = torch.zeros(batch, dtype=torch.long, device=device)
            self.pos = torch.zeros(1, dtype=torch.long, device=device)
            self.positions = torch.arange(self.capacity, device=device)
            self.logits = torch.zeros(batch, dec.vocab_size, dtype=model.dtype, device=device)
            self.used_k = torch.zeros(batch, dtype=torch.int32, device=device)  # pos + 1, for split / flash
            self.offsets = StepAttention.offsets(batch, self.capacity, device)
        self.attention = resolve_step_attention(attention, device, model.dtype)
        # Own references: the rotary cache may be replaced later, a captured graph must keep its inputs.
        self.cos, self.sin = model.model.rotary.tables(self.capacity, device, model.dtype)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.pool: Any = None
        self.capture_seconds = 0.0
        self.prefills: dict[Signature, PrefillGraphs] = {}
        """Vision + prefill graphs per input signature (:mod:`.static_prefill`), sharing this cache and pool."""

    # ------------------------------------------------------------------ the step

    def _compute(self, length: int) -> None:
        """One step over the first ``length`` cache slots; reads ids/pos, writes ``self.logits``."""
        inner = self.model.model
        x = inner.embed_tokens(self.ids).unsqueeze(1)  # [B, 1, H]
        cos = self.cos.index_select(0, self.pos).unsqueeze(1)  # [1, 1, d]
        sin = self.sin.index_select(0, self.pos).unsqueeze(1)
        attention = StepAttention.build(
            self.attention, length=length, pos=self.pos, positions=self.positions, dtype=self.cos.dtype,
            offsets=self.offsets, used_k=self.used_k,
        )  # fmt: skip
        for i, layer in enumerate(inner.layers):
            x = cast(DecoderLayer, layer).forward_static(x, cos, sin, self.cache.layer(i), self.pos, attention)
        self.logits.copy_(self.model.lm_head(inner.norm(x))[:, 0])

    def buckets_for(self, first: int, last: int) -> list[int]:
        """Bucket lengths needed to decode positions ``first``..``last`` (inclusive)."""
        return bucket_lengths(first, last, self.bucket)

    @torch.inference_mode()
    def capture(self, lengths: list[int] | None = None) -> None:
        """Capture one graph per bucket length (default: every bucket of the cache). No-op without graphs."""
        if not self.use_graphs:
            return
        todo = [n for n in (lengths or self.buckets_for(0, self.capacity - 1)) if n not in self.graphs]
        if not todo:
            return
        if self.cache.length:
            # Warm-up runs write a cache slot: only capture while the cache holds no sequence.
            raise RuntimeError("capture the decode graphs before prefilling the cache")
        start = time.perf_counter()
        stream = torch.cuda.Stream(self.model.device)
        stream.wait_stream(torch.cuda.current_stream(self.model.device))
        with sdpa_backends():
            for length in todo:
                self.pos.fill_(length - 1)
                self.used_k.fill_(length)
                with torch.cuda.stream(stream):
                    for _ in range(WARMUP_RUNS):
                        self._compute(length)
                torch.cuda.current_stream(self.model.device).wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=self.pool):
                    self._compute(length)
                self.pool = graph.pool()
                self.graphs[length] = graph
        torch.cuda.synchronize(self.model.device)
        self.capture_seconds += time.perf_counter() - start

    def prefill_graphs(self, inputs: ModelInputs) -> PrefillGraphs:
        """The vision + prefill graphs for ``inputs``' shapes, captured on first use (cost in ``capture_seconds``)."""
        key = signature(inputs)
        found = self.prefills.get(key)
        if found is None:
            if self.cache.length:
                raise RuntimeError("capture the prefill graphs before prefilling the cache")
            found = self.prefills[key] = PrefillGraphs(self, inputs)
            found.load(inputs)  # real inputs for the warm-up runs: routing like the timed calls
            found.capture()
            self.capture_seconds += found.capture_seconds
        return found

    @torch.inference_mode()
    def step(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Feed ids [B] at the cache's next position; returns logits [B, V] (a buffer the next step reuses)."""
        position = self.cache.reserve(1)
        length = bucket_capacity(position + 1, self.bucket)
        self.ids.copy_(token_ids.reshape(self.batch))
        self.pos.fill_(position)
        self.used_k.fill_(position + 1)
        graph = self.graphs.get(length)
        if graph is not None:
            graph.replay()
        else:
            if self.use_graphs:
                raise RuntimeError(f"no CUDA graph captured for KV length {length}; call capture() first")
            with sdpa_backends():
                self._compute(length)
        self.cache.length = position + 1
        return self.logits

    @property
    def num_graphs(self) -> int:
        return len(self.graphs)

    def kernel_forms(self) -> dict[str, str]:
        """The step's attention form and MoE dispatch at this batch size, fallbacks included (for reports:
        a GPU where the Triton kernels fail runs slower forms, and the report must say which ran)."""
        moe = next((m for m in self.model.modules() if isinstance(m, MoE)), None)
        dec = self.model.spec.decoder
        x = torch.empty(self.batch, dec.hidden_size, device=self.model.device, dtype=self.model.dtype)
        return {"attention": self.attention, "moe": moe.static_impl(x) if moe is not None else "none"}
