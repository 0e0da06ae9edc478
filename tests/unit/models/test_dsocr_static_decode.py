"""The static-shape decode step (the body of the CUDA graph) against the dynamic one, on CPU.

The graph replays exactly :meth:`StaticDecoder._compute`; running it without capture checks the
math that the graph freezes: device-side position, bucketed attention with a mask, routing-independent
MoE dispatch. Capture and replay themselves need CUDA (test at the end, skipped here).
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr import (
    DeepseekOCRForCausalLM,
    build_inputs,
    build_model,
    decode_step,
    generate,
    new_cache,
    prefill,
    prepare_page,
)
from llm_perf_opt.models.deepseek_ocr.generate import resolve_decode_mode
from llm_perf_opt.models.deepseek_ocr.static_decode import StaticDecoder, bucket_capacity, bucket_lengths
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import ModelSpec


def test_bucket_arithmetic_by_hand() -> None:
    assert [bucket_capacity(n, 256) for n in (0, 1, 256, 257, 1000)] == [256, 256, 256, 512, 1024]
    # positions 250..600 with buckets of 256 need lengths 256 (pos ≤ 255), 512, 768 (pos 600 → 601 slots)
    assert bucket_lengths(250, 600, 256) == [256, 512, 768]
    assert bucket_lengths(0, 0, 256) == [256]


@pytest.mark.parametrize(("batch", "attention"), [(1, "sdpa"), (2, "sdpa"), (2, "matmul")])
def test_static_step_equals_dynamic_step_across_buckets(
    tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec, page_image: Image.Image, batch: int, attention: str
) -> None:
    page = prepare_page(page_image, resolution_mode("tiny"))
    inputs = build_inputs(tiny_spec, [page] * batch)
    steps = 20
    max_len = inputs.prompt_len + steps
    # A bucket of 8 positions makes the 20 steps cross two or three bucket boundaries.
    static = StaticDecoder(tiny_model, batch=batch, capacity=max_len, bucket=8, use_graphs=False, attention=attention)
    dynamic = new_cache(tiny_model, batch, max_len)
    first_static = prefill(tiny_model, inputs, static.cache)
    first_dynamic = prefill(tiny_model, inputs, dynamic)
    torch.testing.assert_close(first_static, first_dynamic, rtol=0, atol=0)
    ids = first_dynamic.argmax(-1)
    for _ in range(steps):
        want = decode_step(tiny_model, ids, dynamic)
        got = static.step(ids).clone()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        ids = want.argmax(-1)
    assert static.cache.length == dynamic.length == max_len
    torch.testing.assert_close(static.cache.buffer[:, :, :, :max_len], dynamic.buffer, rtol=1e-5, atol=1e-5)


def test_step_attention_choice_is_checked(tiny_model: DeepseekOCRForCausalLM) -> None:
    """On CPU ``auto`` is the masked SDPA; split and flash need a GPU and an unknown form is a user error."""
    assert StaticDecoder(tiny_model, batch=1, capacity=8, use_graphs=False).attention == "sdpa"
    for gpu_only in ("split", "flash"):
        with pytest.raises(UserError, match=f"'{gpu_only}' needs"):
            StaticDecoder(tiny_model, batch=1, capacity=8, use_graphs=False, attention=gpu_only)
    with pytest.raises(UserError, match="valid: auto, split, flash, sdpa, matmul"):
        StaticDecoder(tiny_model, batch=1, capacity=8, use_graphs=False, attention="paged")


def test_static_step_uses_routing_independent_moe(tiny_model: DeepseekOCRForCausalLM) -> None:
    from llm_perf_opt.models.deepseek_ocr.decoder import MoE

    moe = next(m for m in tiny_model.modules() if isinstance(m, MoE))
    x = torch.zeros(1, tiny_model.spec.decoder.hidden_size)
    assert moe.static_impl(x) == "gather"
    moe.impl = "loop"  # needs group sizes on the host: never used inside the static step
    assert moe.static_impl(x) == "gather"
    moe.impl = "grouped"  # an explicit routing-independent choice is honoured
    try:
        assert moe.static_impl(x) == "grouped"
        moe.impl = "fused"  # the Triton kernels need a GPU: one clear error, not a Triton traceback
        with pytest.raises(UserError, match="fused MoE needs Triton and a CUDA GPU"):
            moe(x.unsqueeze(0))
    finally:
        moe.impl = "auto"


def test_router_fp32_weight_follows_in_place_and_loaded_updates() -> None:
    """The cached fp32 router weight must never go stale: in-place copy_ and load_state_dict both seen."""
    from llm_perf_opt.models.deepseek_ocr.mlp import MoEGate
    from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

    gate = MoEGate(MODEL_REGISTRY["tiny"].decoder).to(torch.bfloat16)
    x = torch.randn(3, gate.weight.shape[1], dtype=torch.bfloat16)
    with torch.no_grad():
        gate.weight.copy_(torch.randn_like(gate.weight))
    first = gate.weight_fp32()
    assert first.dtype == torch.float32 and torch.equal(first, gate.weight.float())
    assert gate.weight_fp32() is first  # converted once while the weight is unchanged
    with torch.no_grad():
        gate.weight.mul_(-1)
    assert torch.equal(gate.weight_fp32(), gate.weight.float())
    gate.load_state_dict({"weight": torch.randn_like(gate.weight)})
    assert torch.equal(gate.weight_fp32(), gate.weight.float())
    with torch.inference_mode():  # weights that are inference tensors have no version: converted each call
        frozen = MoEGate(MODEL_REGISTRY["tiny"].decoder).to(torch.bfloat16)
        frozen.weight = torch.nn.Parameter(torch.randn_like(gate.weight))
        assert torch.equal(frozen.weight_fp32(), frozen.weight.float())
    want = torch.topk(torch.softmax(x.float() @ gate.weight.float().T, -1), gate.top_k, dim=-1)
    weights, ids = gate(x)
    assert torch.equal(ids, want.indices)
    torch.testing.assert_close(weights, want.values * gate.scaling, rtol=0, atol=0)


def test_generate_calls_on_token_for_every_token(
    tiny_model: DeepseekOCRForCausalLM, tiny_spec: ModelSpec, page_image: Image.Image
) -> None:
    inputs = build_inputs(tiny_spec, [prepare_page(page_image, resolution_mode("tiny"))])
    seen: list[tuple[int, list[int]]] = []
    result = generate(
        tiny_model, inputs, max_new_tokens=5, min_new_tokens=5, on_token=lambda i, ids: seen.append((i, ids.tolist()))
    )
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert [ids[0] for _, ids in seen] == result.tokens[0].tolist()
    assert result.decode_mode == "eager" and result.capture_seconds == 0.0


def test_decode_mode_resolution() -> None:
    assert resolve_decode_mode(None, "cpu") == "eager"
    assert resolve_decode_mode(None, "cuda:0") == "graph"
    assert resolve_decode_mode("eager", "cuda") == "eager"
    with pytest.raises(UserError, match="needs a CUDA device"):
        resolve_decode_mode("graph", "cpu")
    with pytest.raises(UserError, match="unknown decode mode 'fast'"):
        resolve_decode_mode("fast", "cpu")


def test_capture_is_a_no_op_without_graphs_and_graphs_need_cuda(tiny_model: DeepseekOCRForCausalLM) -> None:
    static = StaticDecoder(tiny_model, batch=1, capacity=16, bucket=8, use_graphs=False)
    assert static.capacity == 16 and static.num_graphs == 0
    static.capture()  # no graphs on CPU: nothing to do
    assert static.num_graphs == 0
    with pytest.raises(ValueError, match="CUDA"):
        StaticDecoder(tiny_model, batch=1, capacity=16, use_graphs=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_tokens_equal_eager(tiny_spec: ModelSpec, page_image: Image.Image) -> None:
    model = build_model(tiny_spec, device="cuda", dtype=torch.float32, seed=0)
    inputs = build_inputs(tiny_spec, [prepare_page(page_image, resolution_mode("tiny"))])
    eager = generate(model, inputs, max_new_tokens=40, min_new_tokens=40, decode_mode="eager")
    graph = generate(model, inputs, max_new_tokens=40, min_new_tokens=40, decode_mode="graph")
    assert graph.decode_mode == "graph" and graph.capture_seconds > 0
    assert torch.equal(eager.tokens, graph.tokens)


def test_kernel_forms_name_the_forms_that_run(tiny_model: DeepseekOCRForCausalLM) -> None:
    """Reports name the step's attention form and MoE dispatch; on CPU both are the torch fallbacks."""
    static = StaticDecoder(tiny_model, batch=1, capacity=8, use_graphs=False)
    assert static.kernel_forms() == {"attention": "sdpa", "moe": "gather"}
    tiny_model.set_moe_impl("grouped")  # an explicit dispatch is what runs, and what is named
    try:
        assert static.kernel_forms()["moe"] == "grouped"
    finally:
        tiny_model.set_moe_impl("auto")
