"""Greedy generation in the gpt-fast style: ``prefill`` and ``decode_step`` over our own KV cache.

Two decode modes (:data:`DECODE_MODES`): ``eager`` runs each step's kernels from Python with a
cache of exactly the needed length; ``graph`` replays a captured static-shape step
(:mod:`.static_decode`), so the GPU, not the host, sets the pace. In ``graph`` mode vision and the
prompt prefill are replayed from graphs captured per input shape as well (:mod:`.static_prefill`),
unless the MoE has no host-sync-free dispatch for the dtype (then they run eagerly).

Host syncs: none per decode step while EOS is masked (``min_new_tokens`` not reached) and
``no_repeat_ngram_size`` is 0; otherwise one per step (the EOS check, like transformers' stopping
criteria; the n-gram ban needs the ids on the host). Tokens stay on the device until the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr.common import Ranges, null_ranges, sdpa_backends
from llm_perf_opt.models.deepseek_ocr.kv_cache import KVCache
from llm_perf_opt.models.deepseek_ocr.model import DeepseekOCRForCausalLM
from llm_perf_opt.models.deepseek_ocr.preprocess import ModelInputs
from llm_perf_opt.models.deepseek_ocr.static_decode import StaticDecoder
from llm_perf_opt.models.deepseek_ocr.static_prefill import PrefillGraphs, prefill_capturable

DECODE_MODES = ("graph", "eager")
"""``graph``: captured static-shape decode step (CUDA only); ``eager``: kernels issued one by one."""

TokenCallback = Callable[[int, torch.Tensor], None]
"""``on_token(index, ids)``: called after token ``index`` (0 = the prefill's) with ids [B] on the device."""


def resolve_decode_mode(mode: str | None, device: torch.device | str) -> str:
    """``None`` → ``graph`` on CUDA, ``eager`` elsewhere; ``graph`` off CUDA is an error."""
    dev = torch.device(device)
    if mode is None:
        return "graph" if dev.type == "cuda" else "eager"
    if mode not in DECODE_MODES:
        raise UserError(f"unknown decode mode {mode!r}; valid: {', '.join(DECODE_MODES)}")
    if mode == "graph" and dev.type != "cuda":
        raise UserError(f"--decode-mode graph needs a CUDA device (got {dev}); use --decode-mode eager")
    return mode


def static_decoder(model: DeepseekOCRForCausalLM, batch: int, max_len: int) -> StaticDecoder:
    """The model's graph decoder for ``batch`` rows and ≥ ``max_len`` positions, captured on first use.

    Kept on the model (one per batch size; a longer request replaces it), so repeated generations
    replay the same graphs. Call it before timing: capture is the expensive part
    (``StaticDecoder.capture_seconds``).
    """
    decoders: dict[int, StaticDecoder] = model.__dict__.setdefault("_static_decoders", {})
    found = decoders.get(batch)
    if found is None or found.capacity < max_len:
        decoders.pop(batch, None)
        found = decoders[batch] = StaticDecoder(model, batch=batch, capacity=max_len, attention=model.step_attention)
    found.cache.length = 0
    found.capture()
    return found


ARGMAX_CHUNKS = 128
"""Vocabulary chunks of :func:`greedy_ids`' first pass (DeepSeek-OCR: 129,280 = 128 · 1010)."""


def greedy_ids(logits: torch.Tensor) -> torch.Tensor:
    """argmax over the last dim of [B, V] logits, in two passes when V splits into :data:`ARGMAX_CHUNKS`.

    Why: one argmax over 129,280 logits runs as a single-block reduction, 30 µs per decode step on an
    H200 (census, torch 2.11), ~1.5% of a graph step. Per-chunk maxima first use many blocks. Ties
    resolve as in ``argmax`` (first index): ``max`` returns the first maximum of each chunk and the
    second pass the first chunk holding the overall maximum.
    """
    b, v = logits.shape
    if v % ARGMAX_CHUNKS or v < 4 * ARGMAX_CHUNKS:
        return logits.argmax(dim=-1)
    width = v // ARGMAX_CHUNKS
    best, within = logits.view(b, ARGMAX_CHUNKS, width).max(dim=-1)
    chunk = best.argmax(dim=-1, keepdim=True)
    return torch.add(within.gather(-1, chunk), chunk, alpha=width).squeeze(-1)


OFFICIAL_NO_REPEAT_NGRAM_SIZE = 20
"""The HF ``infer()`` default (35 in its eval mode); our default is 0 (off) for timing runs."""


@dataclass(frozen=True)
class GenerationResult:
    tokens: torch.Tensor
    """[B, N] int64 on the CPU: generated ids, the first from prefill; rows that stopped early
    are padded with EOS."""
    prompt_len: int
    """Prompt length T (text + image slots) of every row."""
    cache_len: int
    """Positions held in the KV cache at the end: T + N − 1 (the last token is never fed back)."""
    kv_cache_bytes: int
    """Bytes held by used cache positions: 2·layers·kv_heads·head_dim·dtype bytes·B·cache_len."""
    decode_mode: str = "eager"
    """How the decode steps ran: ``graph`` (replayed CUDA graphs) or ``eager``."""
    prefill_mode: str = "eager"
    """How vision and the prompt prefill ran: ``graph`` (replayed per input shape) or ``eager``."""
    capture_seconds: float = 0.0
    """Graph capture time spent inside this call (0 when the graphs already existed)."""

    @property
    def num_new_tokens(self) -> int:
        return self.tokens.shape[1]


def new_cache(model: DeepseekOCRForCausalLM, batch: int, max_len: int) -> KVCache:
    return KVCache.for_decoder(model.spec.decoder, batch=batch, max_len=max_len, device=model.device, dtype=model.dtype)


@torch.inference_mode()
def prefill(
    model: DeepseekOCRForCausalLM, inputs: ModelInputs, cache: KVCache, ranges: Ranges = null_ranges
) -> torch.Tensor:
    """Encode the pages and run the prompt through the decoder, filling ``cache``.

    Returns the last position's logits [B, V]. ``ranges`` receives "vision" (with "sam", "clip",
    "projector" inside) from :meth:`DeepseekOCRForCausalLM.encode_images`.
    """
    with sdpa_backends():
        image_embeds = model.encode_images(inputs.pages, ranges)
        logits = model(
            inputs.input_ids, image_embeds=image_embeds, image_mask=inputs.image_mask, cache=cache, last_only=True
        )
    return logits[:, -1]


@torch.inference_mode()
def decode_step(model: DeepseekOCRForCausalLM, token_ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Feed one token per row (ids [B] or [B, 1]) at the cache's next position; logits [B, V]."""
    with sdpa_backends():
        return model(token_ids.reshape(cache.batch, 1), cache=cache, last_only=True)[:, -1]


class _NgramBan:
    """no_repeat_ngram_size: ban a token that would repeat an n-gram already in the sequence.

    Same rule as transformers' NoRepeatNGramLogitsProcessor over prompt + generated ids: for each
    row, the last n−1 ids are looked up among earlier (n−1)-grams and their followers are banned.
    """

    def __init__(self, n: int, prompt: torch.Tensor) -> None:
        self.n = n
        self.seqs = [row.tolist() for row in prompt]
        self.seen: list[dict[tuple[int, ...], set[int]]] = [{} for _ in self.seqs]
        for seq, seen in zip(self.seqs, self.seen, strict=True):
            for i in range(len(seq) - n + 1):
                seen.setdefault(tuple(seq[i : i + n - 1]), set()).add(seq[i + n - 1])

    def apply_(self, logits: torch.Tensor) -> None:
        for row, (seq, seen) in enumerate(zip(self.seqs, self.seen, strict=True)):
            if len(seq) >= self.n - 1:
                banned = seen.get(tuple(seq[len(seq) - self.n + 1 :]), ())
                if banned:
                    logits[row, list(banned)] = float("-inf")

    def push(self, tokens: torch.Tensor) -> None:
        for seq, seen, tok in zip(self.seqs, self.seen, tokens.tolist(), strict=True):
            seq.append(tok)
            if len(seq) >= self.n:
                seen.setdefault(tuple(seq[-self.n : -1]), set()).add(tok)


def generate(
    model: DeepseekOCRForCausalLM,
    inputs: ModelInputs,
    *,
    max_new_tokens: int,
    min_new_tokens: int | None = None,
    no_repeat_ngram_size: int = 0,
    ranges: Ranges = null_ranges,
    decode_mode: str | None = None,
    on_token: TokenCallback | None = None,
) -> GenerationResult:
    """Greedy decoding of up to ``max_new_tokens`` ids per row (the first one from prefill).

    EOS is masked until ``min_new_tokens`` ids exist, so random weights generate exactly N with
    min = max = N. ``ranges`` gets "prefill" (vision included, up to the first token) and then
    "decode" (all remaining steps). ``decode_mode`` is one of :data:`DECODE_MODES` (None: graph on
    CUDA, eager elsewhere); ``on_token`` is called after every token (e.g. to step a profiler's schedule).
    """
    decode_mode = resolve_decode_mode(decode_mode, model.device)
    if max_new_tokens < 0:
        raise UserError(f"max_new_tokens must be ≥ 0, got {max_new_tokens}")
    if min_new_tokens is not None and min_new_tokens < 0:
        raise UserError(f"min_new_tokens must be ≥ 0, got {min_new_tokens}")
    if no_repeat_ngram_size < 0:
        raise UserError(f"no_repeat_ngram_size must be ≥ 0, got {no_repeat_ngram_size}")
    min_new = min(min_new_tokens or 0, max_new_tokens)
    eos = model.spec.eos_token_id
    batch, prompt_len = inputs.batch_size, inputs.prompt_len
    max_len = prompt_len + max(max_new_tokens - 1, 0)
    graphs: StaticDecoder | None = None
    prefill_graphs: PrefillGraphs | None = None
    capture_before = 0.0
    if decode_mode == "graph":
        existing = model.__dict__.get("_static_decoders", {}).get(batch)
        reused = existing is not None and existing.capacity >= max_len
        capture_before = existing.capture_seconds if reused else 0.0
        graphs = static_decoder(model, batch, max_len)
        cache = graphs.cache
        if prefill_capturable(model, model.dtype):
            prefill_graphs = graphs.prefill_graphs(inputs)
            prefill_graphs.load(inputs)  # staged before the timed stages, like ModelInputs.to below
    else:
        cache = new_cache(model, batch, max_len)
    ban = _NgramBan(no_repeat_ngram_size, inputs.input_ids) if no_repeat_ngram_size > 0 else None

    if prefill_graphs is None:  # staged before the timed stages (see ModelInputs.to); graphs: load() did it
        inputs = inputs.to(model.device, model.dtype)
    with torch.inference_mode():
        out = torch.full((batch, max_new_tokens), eos, dtype=torch.long, device=model.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=model.device)
        produced = 0

        def pick(logits: torch.Tensor) -> torch.Tensor:
            """Greedy next ids [B]; records them and updates ``finished`` on the device."""
            nonlocal finished
            if produced < min_new:
                logits[:, eos] = float("-inf")
            if ban is not None:
                ban.apply_(logits)
            ids = greedy_ids(logits)
            if produced >= min_new:  # EOS possible: rows that already ended keep emitting EOS
                ids = torch.where(finished, eos, ids)
                finished = finished | (ids == eos)
            if ban is not None:
                ban.push(ids)
            out[:, produced] = ids
            return ids

        with ranges("prefill"):
            graphed = prefill_graphs
            logits = prefill(model, inputs, cache, ranges) if graphed is None else graphed.run(ranges)
            ids = pick(logits) if max_new_tokens > 0 else greedy_ids(logits)
            produced = min(max_new_tokens, 1)
            if on_token is not None and produced:
                on_token(0, ids)
        with ranges("decode"):
            while produced < max_new_tokens:
                if produced > min_new and bool(finished.all()):  # one sync, only once EOS is allowed
                    break
                logits = graphs.step(ids) if graphs is not None else decode_step(model, ids, cache)
                ids = pick(logits)
                if on_token is not None:
                    on_token(produced, ids)
                produced += 1
        tokens = out[:, :produced].cpu()
    return GenerationResult(
        tokens=tokens,
        prompt_len=prompt_len,
        cache_len=cache.length,
        kv_cache_bytes=cache.used_bytes,
        decode_mode=decode_mode,
        prefill_mode="graph" if prefill_graphs is not None else "eager",
        capture_seconds=(graphs.capture_seconds - capture_before) if graphs is not None else 0.0,
    )
