"""Vision and prompt prefill of one input shape, replayed from CUDA graphs (graph execution).

Why: at batch 1 SAM, CLIP, the projector and the decoder's prefill are a few thousand small kernels
issued from Python; the host needs 6–17 ms per stage on an H200 host for 1–3 ms of GPU work, and
the time moves ±15–30% from one call of the same input to the next (``docs/validation/h200``). As
for the decode step (:mod:`.static_decode`), replaying captured graphs makes the GPU, not the CPU,
set the pace, so the measurement is reproducible and the analytic model can predict it.

One :class:`PrefillGraphs` per input *signature* (batch, prompt length, view sides and counts, tile
grids): four graphs, one per timed stage, so the stage ranges stay where they are in eager mode —
``sam``, ``clip``, ``projector`` (inside ``vision``), then the decoder (the image embeddings
assembled with their newline / separator rows, the prompt through every layer into the decode
graphs' KV cache, the last position's logits). Inputs are copied into static buffers before the
timed stages, as the eager path stages its inputs (:meth:`ModelInputs.to`).

Capturable because nothing in it asks the host: the image slots are filled with ``index_copy_`` at
positions computed on the host from the CPU mask (the eager path's ``masked_scatter`` is the same
operation), and the MoE runs its device-offset ``grouped_mm`` dispatch (:meth:`MoE.resolve_impl`);
where it would pick the host-synchronising ``loop`` dispatch (no grouped GEMM for the dtype),
:func:`prefill_capturable` says no and generation stays eager for prefill.

The graphs share the decode graphs' memory pool: every graph is replayed in one order per call
(sam, clip, projector, decoder, then decode steps) and each one's outputs are consumed by the next
before any other graph runs, which is the condition for sharing a pool safely.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from llm_perf_opt.models.deepseek_ocr.common import Ranges, null_ranges, report_device_span, sdpa_backends
from llm_perf_opt.models.deepseek_ocr.mlp import MoE
from llm_perf_opt.models.deepseek_ocr.preprocess import ModelInputs, PreparedPage

if TYPE_CHECKING:
    from llm_perf_opt.models.deepseek_ocr.static_decode import StaticDecoder

Signature = tuple[object, ...]

STAGES = ("sam", "clip", "projector", "decoder")
"""The graphs of one signature, in replay order; the first three are timed under their own ranges."""

SPAN_EVENTS = True
"""Capture timing events as each timed stage graph's first and last nodes (see :mod:`llm_perf_opt.profiling.timers`);
read at capture. ``benchmarks/bench_stage_spans.py`` turns it off to measure what the events cost."""


def signature(inputs: ModelInputs) -> Signature:
    """What fixes every shape of vision and prefill: batch, prompt length, each page's views and grid."""
    pages = tuple(
        (
            tuple(page.tiles.shape) if page.tiles is not None else None,
            tuple(page.global_view.shape),
            tuple(page.tile_grid),
        )
        for page in inputs.pages
    )
    return (inputs.batch_size, inputs.prompt_len, pages)


def prefill_capturable(model: torch.nn.Module, dtype: torch.dtype) -> bool:
    """Whether the prefill's MoE dispatch runs without a host sync for this dtype (see module docstring)."""
    probe = torch.empty(2, 1, device=next(model.parameters()).device, dtype=dtype)
    for module in model.modules():
        if isinstance(module, MoE):
            return module.resolve_impl(probe) != "loop"
    return True


class PrefillGraphs:
    """The four stage graphs of one input signature, writing into ``decoder``'s KV cache.

    ``use_graphs=False`` runs the same computation eagerly from the static buffers (the CPU path of
    the tests, and the reference the graphs are checked against).
    """

    def __init__(self, decoder: StaticDecoder, inputs: ModelInputs, *, use_graphs: bool | None = None) -> None:
        self.decoder = decoder
        self.model = decoder.model
        self.key = signature(inputs)
        self.pages: list[PreparedPage] = list(inputs.pages)  # shapes only: assemble() reads grids and sides
        device = self.model.device
        self.use_graphs = decoder.use_graphs if use_graphs is None else use_graphs
        self.prompt_len = inputs.prompt_len
        with torch.inference_mode():
            self.ids = torch.zeros_like(inputs.input_ids, device=device)
            self.slots = torch.zeros(int(inputs.image_mask.sum()), dtype=torch.long, device=device)
            self.pixels = {side: torch.zeros_like(x) for side, x in self.model.stage_views(inputs.pages).items()}
        self.graphs: dict[str, torch.cuda.CUDAGraph] = {}
        self.spans: dict[str, tuple[torch.cuda.Event, torch.cuda.Event]] = {}
        """Per timed stage graph: its first and last nodes' timing events (the GPU span of its kernels)."""
        self.capture_seconds = 0.0
        self.sam_out: dict[int, torch.Tensor] = {}
        self.clip_out: dict[int, torch.Tensor] = {}
        self.feats: dict[int, torch.Tensor] = {}
        self.logits = torch.empty(0)

    # ------------------------------------------------------------------ inputs and stages

    @torch.inference_mode()
    def load(self, inputs: ModelInputs) -> None:
        """Copy ``inputs`` (same signature) into the static buffers; call before the timed stages."""
        if signature(inputs) != self.key:
            raise ValueError("inputs of another shape than the captured graphs")
        mask = inputs.image_mask.reshape(-1)
        slots = torch.nonzero(mask.cpu()).squeeze(1) if mask.device.type != "cpu" else torch.nonzero(mask).squeeze(1)
        self.slots.copy_(slots, non_blocking=True)
        self.ids.copy_(inputs.input_ids, non_blocking=True)
        for side, x in self.model.stage_views(inputs.pages).items():
            self.pixels[side].copy_(x, non_blocking=True)

    def _sam(self) -> None:
        self.sam_out = self.model.sam_features(self.pixels)

    def _clip(self) -> None:
        self.clip_out = self.model.clip_features(self.sam_out)

    def _projector(self) -> None:
        self.feats = self.model.project(self.sam_out, self.clip_out)

    def _decoder(self) -> None:
        """Image embeddings into their slots, the prompt through the decoder into the cache, last logits."""
        inner, cache = self.model.model, self.decoder.cache
        cache.length = 0
        image = self.model.assemble(self.pages, self.feats)
        embeds = inner.embed_tokens(self.ids)
        flat = embeds.view(-1, embeds.shape[-1])
        flat.index_copy_(0, self.slots, image.reshape(-1, image.shape[-1]).to(flat.dtype))
        hidden = inner.decode(embeds, cache)
        self.logits = self.model.lm_head(hidden[:, -1])  # rows, not a [B, 1, H] slice (see model.forward)

    def _stage(self, name: str) -> Callable[[], None]:
        return {"sam": self._sam, "clip": self._clip, "projector": self._projector, "decoder": self._decoder}[name]

    # ------------------------------------------------------------------ capture and replay

    @torch.inference_mode()
    def capture(self, warmup_runs: int = 2) -> None:
        """Capture the four graphs (after eager warm-up runs on a side stream). No-op without graphs.

        Writes the decode graphs' cache, so only while it holds no sequence (as their own capture).
        """
        if not self.use_graphs or self.graphs:
            return
        start = time.perf_counter()
        device = self.model.device
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with sdpa_backends():
            with torch.cuda.stream(stream):
                for _ in range(warmup_runs):
                    for name in STAGES:
                        self._stage(name)()
            torch.cuda.current_stream(device).wait_stream(stream)
            for name in STAGES:
                graph = torch.cuda.CUDAGraph()
                timed = SPAN_EVENTS and name in STAGES[:3]
                if timed:  # the stage's own GPU span: timing events as the graph's first and last nodes
                    self.spans[name] = (
                        torch.cuda.Event(enable_timing=True, external=True),
                        torch.cuda.Event(enable_timing=True, external=True),
                    )
                with torch.cuda.graph(graph, pool=self.decoder.pool):
                    if timed:
                        self.spans[name][0].record()
                    self._stage(name)()
                    if timed:
                        self.spans[name][1].record()
                self.decoder.pool = graph.pool()
                self.graphs[name] = graph
        torch.cuda.synchronize(device)
        self.decoder.cache.length = 0
        self.capture_seconds += time.perf_counter() - start

    def _run(self, name: str) -> None:
        graph = self.graphs.get(name)
        if graph is not None:
            graph.replay()
        elif self.use_graphs:
            raise RuntimeError(f"no CUDA graph captured for the {name} stage; call capture() first")
        else:
            self._stage(name)()

    @torch.inference_mode()
    def run(self, ranges: Ranges = null_ranges) -> torch.Tensor:
        """Vision (``sam``, ``clip``, ``projector`` ranges inside ``vision``) and the decoder prefill;
        returns the last position's logits [B, V] and leaves the cache holding the prompt."""
        with sdpa_backends():
            with ranges("vision"):
                for name in STAGES[:3]:
                    with ranges(name) as handle:
                        self._run(name)
                        report_device_span(handle, self.spans.get(name))
            self._run("decoder")
        self.decoder.cache.length = self.prompt_len
        return self.logits
