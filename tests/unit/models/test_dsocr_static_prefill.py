"""Vision + prefill from static buffers (the body of the prefill graphs) against the eager prefill.

Without CUDA the four stage functions run eagerly from the static buffers: that checks what the
graphs freeze (image slots filled by index, the assembly of tiles and newlines, the cache written in
place). Capture and replay need CUDA (the tests at the end, skipped here).
"""

from __future__ import annotations

import pytest
import torch
from dsocr_helpers import striped_page
from PIL import Image

from llm_perf_opt.models.deepseek_ocr import (
    DeepseekOCRForCausalLM,
    build_inputs,
    build_model,
    generate,
    new_cache,
    prefill,
    prepare_page,
)
from llm_perf_opt.models.deepseek_ocr.static_decode import StaticDecoder
from llm_perf_opt.models.deepseek_ocr.static_prefill import PrefillGraphs, prefill_capturable, signature
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import ModelSpec


class _Recorder:
    """A ``ranges`` stand-in that records the order in which ranges open."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def __call__(self, name: str) -> _Recorder:
        self.opened.append(name)
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize(("mode", "size", "batch"), [("tiny", (900, 1200), 1), ("gundam", (1300, 700), 2)])
def test_static_prefill_equals_eager_prefill(
    tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec, mode: str, size: tuple[int, int], batch: int
) -> None:
    # Two different pages of one shape: the slots and pixels loaded must be the second call's.
    image = striped_page(*size)
    first = build_inputs(tiny_spec, [prepare_page(image, resolution_mode(mode))] * batch)
    flipped = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    second = build_inputs(tiny_spec, [prepare_page(flipped, resolution_mode(mode))] * batch)
    assert signature(first) == signature(second)
    static = StaticDecoder(tiny_model, batch=batch, capacity=second.prompt_len + 4, use_graphs=False)
    graphs = PrefillGraphs(static, first)
    graphs.load(first)
    graphs.run()
    graphs.load(second)
    ranges = _Recorder()
    got = graphs.run(ranges).clone()
    assert ranges.opened == ["vision", "sam", "clip", "projector"]
    dynamic = new_cache(tiny_model, batch, second.prompt_len + 4)
    want = prefill(tiny_model, second, dynamic)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert static.cache.length == dynamic.length == second.prompt_len
    n = second.prompt_len
    torch.testing.assert_close(static.cache.buffer[:, :, :, :n], dynamic.buffer[:, :, :, :n], rtol=1e-5, atol=1e-5)


def test_load_refuses_inputs_of_another_shape(tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec) -> None:
    small = build_inputs(tiny_spec, [prepare_page(striped_page(900, 1200), resolution_mode("tiny"))])
    wide = build_inputs(tiny_spec, [prepare_page(striped_page(1300, 700), resolution_mode("gundam"))])
    static = StaticDecoder(tiny_model, batch=1, capacity=wide.prompt_len, use_graphs=False)
    graphs = PrefillGraphs(static, small)
    with pytest.raises(ValueError, match="another shape"):
        graphs.load(wide)


def test_prefill_is_not_captured_where_moe_needs_a_host_sync(tiny_model: DeepseekOCRForCausalLM) -> None:
    # CPU fp32: the MoE's auto dispatch is the per-expert loop, which reads group sizes on the host.
    assert not prefill_capturable(tiny_model, torch.float32)
    tiny_model.set_moe_impl("grouped")
    try:
        assert prefill_capturable(tiny_model, torch.float32)
    finally:
        tiny_model.set_moe_impl("auto")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_prefill_graphs_equal_eager(tiny_spec: ModelSpec, page_image: Image.Image) -> None:
    """bf16 (the grouped GEMM's dtype, so prefill is captured): same first logits, cache and tokens."""
    model = build_model(tiny_spec, device="cuda", dtype=torch.bfloat16, seed=0)
    inputs = build_inputs(tiny_spec, [prepare_page(page_image, resolution_mode("gundam"))] * 2)
    assert prefill_capturable(model, torch.bfloat16)
    eager = generate(model, inputs, max_new_tokens=24, min_new_tokens=24, decode_mode="eager")
    graph = generate(model, inputs, max_new_tokens=24, min_new_tokens=24, decode_mode="graph")
    decoder = model.__dict__["_static_decoders"][2]
    assert signature(inputs) in decoder.prefills and decoder.prefills[signature(inputs)].graphs
    assert graph.capture_seconds > 0
    # The first token comes from prefill; later ones may part on bf16 near-ties of the decode step.
    assert torch.equal(eager.tokens[:, 0], graph.tokens[:, 0])
    again = generate(model, inputs, max_new_tokens=24, min_new_tokens=24, decode_mode="graph")
    assert again.capture_seconds == 0 and torch.equal(again.tokens, graph.tokens)
    cache = new_cache(model, 2, inputs.prompt_len)
    want = prefill(model, inputs, cache)
    static = model.__dict__["_static_decoders"][2]
    graphs = static.prefill_graphs(inputs)
    static.cache.length = 0
    graphs.load(inputs)
    got = graphs.run()
    torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graphed_stages_are_timed_inside_their_graphs(tiny_spec: ModelSpec, page_image: Image.Image) -> None:
    """Under the profiler's clock SAM, CLIP and the projector report their graphs' own events: a GPU span
    inside the range's bracket (which also holds the host's launch of the graph)."""
    from llm_perf_opt.profiling.timers import measure_call

    model = build_model(tiny_spec, device="cuda", dtype=torch.bfloat16, seed=0)
    page = prepare_page(page_image, resolution_mode("base"))
    inputs = build_inputs(tiny_spec, [page]).to(model.device, torch.bfloat16)
    generate(model, inputs, max_new_tokens=4, min_new_tokens=4, decode_mode="graph")  # capture
    _, clock, _ = measure_call(
        lambda ranges: generate(model, inputs, max_new_tokens=4, min_new_tokens=4, decode_mode="graph", ranges=ranges),
        model.device,
    )
    timings = clock.timings()
    for name in ("sam", "clip", "projector"):
        t = timings[name]
        assert t.all_spans, name
        assert 0 < t.sum_ms < t.bracket_ms, name
        assert timings["vision"].contains(t)
    assert not timings["vision"].all_spans and not timings["decode"].all_spans
