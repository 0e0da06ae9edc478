"""Tiny model end to end on CPU: vision + prefill + decode, KV cache, attention/MoE variants, ranges."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
from dsocr_helpers import striped_page
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from llm_perf_opt.models.deepseek_ocr import (
    DeepseekOCRForCausalLM,
    ModelInputs,
    build_inputs,
    build_model,
    decode_step,
    generate,
    new_cache,
    prefill,
    prepare_page,
)
from llm_perf_opt.models.deepseek_ocr.mlp import _GROUPED_MM, MoE
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import ModelSpec


def _inputs(spec: ModelSpec, image: Image.Image, mode: str, batch: int = 1) -> ModelInputs:
    page = prepare_page(image, resolution_mode(mode))
    return build_inputs(spec, [page] * batch)


@pytest.mark.parametrize("mode", ["tiny", "base"])
def test_page_runs_vision_prefill_and_8_decode_steps(
    tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec, page_image: Image.Image, mode: str
) -> None:
    # The speed target (well under a second on CPU) is printed by benchmarks/bench_tiny_model.py.
    inputs = _inputs(tiny_spec, page_image, mode)
    result = generate(tiny_model, inputs, max_new_tokens=9, min_new_tokens=9)
    assert result.tokens.shape == (1, 9) and result.tokens.dtype == torch.int64
    assert result.prompt_len == inputs.prompt_len == 10 + inputs.num_image_tokens
    assert result.cache_len == result.prompt_len + 8
    d = tiny_spec.decoder
    assert result.kv_cache_bytes == 2 * d.num_layers * d.num_kv_heads * d.head_dim * 4 * result.cache_len


def test_gundam_batch_of_two_matches_single_pages(tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec) -> None:
    a = striped_page(1300, 700)  # 2×1 tiles
    b = a.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    gundam = resolution_mode("gundam")
    pa, pb = prepare_page(a, gundam), prepare_page(b, gundam)
    assert pa.tiles is not None and pa.num_image_tokens == pb.num_image_tokens
    both = tiny_model.encode_images([pa, pb])
    assert both.shape == (2, pa.num_image_tokens, tiny_spec.decoder.hidden_size)
    torch.testing.assert_close(both[1], tiny_model.encode_images([pb])[0], atol=1e-5, rtol=1e-4)


def test_batched_generation_matches_single_rows(tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec) -> None:
    small = resolution_mode("small")
    pa, pb = prepare_page(striped_page(700, 500), small), prepare_page(striped_page(500, 700), small)
    batch = generate(tiny_model, build_inputs(tiny_spec, [pa, pb]), max_new_tokens=4, min_new_tokens=4)
    single = generate(tiny_model, build_inputs(tiny_spec, [pb]), max_new_tokens=4, min_new_tokens=4)
    assert torch.equal(batch.tokens[1], single.tokens[0])
    d = tiny_spec.decoder
    assert batch.kv_cache_bytes == 2 * d.num_layers * d.num_kv_heads * d.head_dim * 4 * 2 * batch.cache_len


def test_image_embedding_layout(tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec) -> None:
    page = prepare_page(striped_page(1300, 700), resolution_mode("gundam"))  # 2×1 tiles
    emb = tiny_model.encode_images([page])[0]
    layout, newline = page.layout, tiny_model.model.image_newline
    q, g = layout.tile_side, layout.global_side
    across, down = layout.tile_grid
    row = q * across + 1
    local_rows = [emb[r * row + row - 1] for r in range(q * down)]
    assert all(torch.equal(v, newline) for v in local_rows)
    glob = layout.local_slots
    assert all(torch.equal(emb[glob + r * (g + 1) + g], newline) for r in range(g))
    assert torch.equal(emb[-1], tiny_model.model.view_seperator)
    assert emb.shape[0] == layout.total_slots


def _ranges_recorder() -> tuple[list[str], object]:
    events: list[str] = []

    @contextlib.contextmanager
    def ranges(name: str) -> Iterator[None]:
        events.append(f"+{name}")
        yield
        events.append(f"-{name}")

    return events, ranges


def test_ranges_are_nested_as_documented(
    tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec, page_image: Image.Image
) -> None:
    events, ranges = _ranges_recorder()
    generate(tiny_model, _inputs(tiny_spec, page_image, "tiny"), max_new_tokens=3, ranges=ranges)  # type: ignore[arg-type]
    assert events == [
        "+prefill", "+vision", "+sam", "-sam", "+clip", "-clip", "+projector", "-projector", "-vision", "-prefill",
        "+decode", "-decode",
    ]  # fmt: skip


def test_min_new_tokens_forces_exact_count(tiny_spec: ModelSpec, page_image: Image.Image) -> None:
    model = build_model(tiny_spec, seed=1)

    def eos_wins(module: torch.nn.Module, args: object, logits: torch.Tensor) -> torch.Tensor:
        out = logits.clone()
        out[..., tiny_spec.eos_token_id] = 1e4  # EOS is the argmax at every position
        return out

    model.lm_head.register_forward_hook(eos_wins)
    inputs = _inputs(tiny_spec, page_image, "tiny")
    assert generate(model, inputs, max_new_tokens=10).tokens.tolist() == [[tiny_spec.eos_token_id]]
    stopped = generate(model, inputs, max_new_tokens=10, min_new_tokens=5).tokens[0].tolist()
    assert len(stopped) == 6 and stopped[-1] == tiny_spec.eos_token_id
    assert tiny_spec.eos_token_id not in stopped[:5]
    exact = generate(model, inputs, max_new_tokens=8, min_new_tokens=8)
    assert exact.tokens.shape == (1, 8) and tiny_spec.eos_token_id not in exact.tokens[0].tolist()
    assert generate(model, inputs, max_new_tokens=0).tokens.shape == (1, 0)


def test_prefill_then_decode_equals_full_forward(
    tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec, page_image: Image.Image
) -> None:
    inputs = _inputs(tiny_spec, page_image, "tiny", batch=2)
    cache = new_cache(tiny_model, 2, inputs.prompt_len + 5)
    step_logits = [prefill(tiny_model, inputs, cache)]
    fed = [torch.tensor([7, 9]), torch.tensor([300, 5]), torch.tensor([11, 11]), torch.tensor([42, 1])]
    for ids in fed:
        step_logits.append(decode_step(tiny_model, ids, cache))
    assert cache.length == inputs.prompt_len + len(fed)
    full_ids = torch.cat([inputs.input_ids, torch.stack(fed, dim=1)], dim=1)
    mask = torch.cat([inputs.image_mask, torch.zeros(2, len(fed), dtype=torch.bool)], dim=1)
    with torch.inference_mode():
        full = tiny_model(full_ids, image_embeds=tiny_model.encode_images(inputs.pages), image_mask=mask)
    for i, logits in enumerate(step_logits):
        torch.testing.assert_close(logits, full[:, inputs.prompt_len - 1 + i], atol=1e-4, rtol=1e-4)


def test_chunk_after_cached_prefix_equals_full_forward(tiny_model: DeepseekOCRForCausalLM) -> None:
    ids = torch.randint(3, 900, (1, 40), generator=torch.Generator().manual_seed(0))
    cache = new_cache(tiny_model, 1, 40)
    with torch.inference_mode():
        first = tiny_model(ids[:, :25], cache=cache)
        second = tiny_model(ids[:, 25:], cache=cache)  # 15 new tokens over a 25-token prefix
        full = tiny_model(ids)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full, atol=1e-4, rtol=1e-4)


def test_sdpa_and_eager_agree(tiny_spec: ModelSpec, page_image: Image.Image) -> None:
    model = build_model(tiny_spec, seed=2, attn_impl="sdpa")
    inputs = _inputs(tiny_spec, page_image, "small")
    with torch.inference_mode():
        emb_sdpa = model.encode_images(inputs.pages)
        sdpa = model(inputs.input_ids, image_embeds=emb_sdpa, image_mask=inputs.image_mask)
        model.set_attn_impl("eager")
        emb_eager = model.encode_images(inputs.pages)
        eager = model(inputs.input_ids, image_embeds=emb_eager, image_mask=inputs.image_mask)
    torch.testing.assert_close(emb_eager, emb_sdpa, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(eager, sdpa, atol=1e-4, rtol=1e-4)


def test_same_seed_same_weights_and_tokens(tiny_spec: ModelSpec, page_image: Image.Image) -> None:
    a, b, c = build_model(tiny_spec, seed=5), build_model(tiny_spec, seed=5), build_model(tiny_spec, seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
    inputs = _inputs(tiny_spec, page_image, "tiny")
    ta = generate(a, inputs, max_new_tokens=6, min_new_tokens=6).tokens
    assert torch.equal(ta, generate(b, inputs, max_new_tokens=6, min_new_tokens=6).tokens)


def test_no_repeat_ngram(tiny_spec: ModelSpec, page_image: Image.Image) -> None:
    model = build_model(tiny_spec, seed=0)

    def favour_77(module: torch.nn.Module, args: object, logits: torch.Tensor) -> torch.Tensor:
        out = logits.clone()
        out[..., 77] += 1e3  # without the ban the model repeats 77 forever
        return out

    model.lm_head.register_forward_hook(favour_77)
    inputs = _inputs(tiny_spec, page_image, "tiny")
    plain = generate(model, inputs, max_new_tokens=12, min_new_tokens=12).tokens[0].tolist()
    assert plain == [77] * 12
    banned = generate(model, inputs, max_new_tokens=12, min_new_tokens=12, no_repeat_ngram_size=2)
    seq = inputs.input_ids[0].tolist() + banned.tokens[0].tolist()
    for i in range(inputs.prompt_len, len(seq)):  # no generated token completes an earlier bigram
        earlier = {(seq[j - 1], seq[j]) for j in range(1, i)}
        assert (seq[i - 1], seq[i]) not in earlier
    toks = banned.tokens[0].tolist()  # 77, 77, x, 77, y, 77, …: (77, 77) is used once, then banned
    assert toks[1::2] == [77] * 6 and 77 not in toks[2::2]


MOE_IMPLS_HERE = ["loop", "gather"] + (["grouped"] if _GROUPED_MM is not None else [])


@pytest.mark.parametrize("impl", MOE_IMPLS_HERE)
def test_moe_dispatch_variants_agree_and_count_exact_flops(tiny_model: DeepseekOCRForCausalLM, impl: str) -> None:
    moe = tiny_model.model.layers[1].mlp
    assert isinstance(moe, MoE)
    x = torch.randn(37, moe.gate.weight.shape[1], generator=torch.Generator().manual_seed(0))
    weights, ids = moe.gate(x)
    reference = torch.zeros_like(x)  # per-token, per-expert with the module's own Linear layers
    for t in range(x.shape[0]):
        for w, e in zip(weights[t].tolist(), ids[t].tolist(), strict=True):
            reference[t] += w * moe.experts[e](x[t : t + 1])[0]
    moe.impl = impl
    try:
        with FlopCounterMode(display=False) as counter:
            out = moe.routed(x, weights, ids)
    finally:
        moe.impl = "auto"
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-4)
    hidden, inter, k = x.shape[1], moe.intermediate, ids.shape[1]
    assert counter.get_total_flops() == 2 * x.shape[0] * k * 3 * hidden * inter


def test_meta_model_forward_is_shape_only(tiny_spec: ModelSpec) -> None:
    model = build_model(tiny_spec, device="meta")
    ids = torch.zeros(1, 12, dtype=torch.long)
    with torch.inference_mode():
        logits = model(ids)
    assert logits.device.type == "meta" and logits.shape == (1, 12, tiny_spec.decoder.vocab_size)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_grouped_matches_loop(tiny_spec: ModelSpec, page_image: Image.Image) -> None:
    model = build_model(tiny_spec, device="cuda", dtype=torch.bfloat16)
    inputs = _inputs(tiny_spec, page_image, "small")
    with torch.inference_mode():
        emb = model.encode_images(inputs.pages)
        grouped = model(inputs.input_ids, image_embeds=emb, image_mask=inputs.image_mask)
        model.set_moe_impl("loop")
        loop = model(inputs.input_ids, image_embeds=emb, image_mask=inputs.image_mask)
    torch.testing.assert_close(grouped.float(), loop.float(), atol=2e-2, rtol=2e-2)


def test_two_pass_argmax_equals_argmax_including_ties() -> None:
    from llm_perf_opt.models.deepseek_ocr.generate import ARGMAX_CHUNKS, greedy_ids

    vocab = ARGMAX_CHUNKS * 10
    logits = torch.randn(4, vocab, generator=torch.Generator().manual_seed(0))
    logits[1] = 0.0  # all tied: argmax's first index is 0
    logits[2, [37, 15 * 10 + 3, vocab - 1]] = 50.0  # ties across chunks: the first one wins
    logits[3, vocab - 1] = 99.0  # the very last id
    assert greedy_ids(logits).tolist() == logits.argmax(dim=-1).tolist() == [
        int(logits[0].argmax()), 0, 37, vocab - 1
    ]
    odd = torch.randn(2, vocab + 1)  # V not a multiple of the chunks: plain argmax
    assert torch.equal(greedy_ids(odd), odd.argmax(dim=-1))
