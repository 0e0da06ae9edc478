"""Analytic FLOPs per stage agree with torch.utils.flop_counter on the runnable model.

For every resolution mode, several page sizes and decode context lengths, the analytic FLOPs of
``vision`` (SAM + CLIP), ``projector``, ``prefill`` (decoder over prompt + image slots) and one
decode step at context L are compared with ``FlopCounterMode`` counts of the runnable model:

* at full size on the ``meta`` device (shapes only, no memory; SDPA decomposes into counted
  matmuls there and the MoE uses its shape-only "gather" dispatch, which multiplies exactly the
  tokens·k routed pairs);
* at tiny size on the CPU with real tensors, eager attention and the "loop" MoE (real routing).

Where the two differ by design, nothing is compared: the flop counter counts only matmul-class
ops (mm/addmm/bmm/convolution/SDPA), and the analytic ``forward_flops`` counts the same set —
norms, softmax, GELU/SiLU, RoPE, residual adds, position interpolation and the MoE weighted sum
are the analytic model's *non-matmul* FLOPs, reported apart and not in these numbers. Causal
prefill attention is counted over the full score matrix by both (the analytic ``executed_flops``,
which halves it, is not compared). On the CPU with real tensors the counter would count 0 for
SDPA (``_scaled_dot_product_flash_attention_for_cpu`` has no formula), which is why the tiny real
run uses the eager attention path.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from llm_perf_opt.analytic.api import build_layer_tree  # noqa: E402
from llm_perf_opt.analytic.decoder import DecoderStack  # noqa: E402
from llm_perf_opt.specs.image_tokens import image_token_layout, resolution_mode  # noqa: E402
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR, TINY, ModelSpec  # noqa: E402
from llm_perf_opt.specs.workload import Workload  # noqa: E402

deepseek_ocr = pytest.importorskip("llm_perf_opt.models.deepseek_ocr")

REL = 0.01
PROMPT_TOKENS = 10

CASES = [
    ("tiny", (1654, 2339), 1),
    ("small", (800, 600), 1),
    ("base", (1654, 2339), 1),
    ("large", (2480, 3508), 1),
    ("gundam", (1654, 2339), 1),  # 2×3 tiles: the standard workload
    ("gundam", (2000, 1000), 1),  # 4×2 tiles
    ("gundam", (1024, 1024), 2),  # 2×2 tiles, two pages per call
    ("gundam", (600, 500), 1),  # no tiles: falls back to the global view only
]


class StageFlops:
    """A ``ranges`` callback that counts FLOPs inside the "sam", "clip" and "projector" ranges."""

    def __init__(self) -> None:
        self.flops: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if name not in ("sam", "clip", "projector"):
            yield
            return
        with FlopCounterMode(display=False) as counter:
            yield
        self.flops[name] += counter.get_total_flops()


def _count(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _pages(mode_name: str, page_size: tuple[int, int], batch: int, device: str) -> list[Any]:
    mode = resolution_mode(mode_name)
    layout = image_token_layout(mode, page_size, max_crops=9)
    n = layout.num_tiles
    page = deepseek_ocr.PreparedPage(
        global_view=torch.zeros(3, mode.base_size, mode.base_size, device=device),
        tiles=torch.zeros(n, 3, mode.image_size, mode.image_size, device=device) if layout.tiled else None,
        tile_grid=layout.tile_grid,
        layout=layout,
        page_size=page_size,
    )
    return [page] * batch


def _workload(mode: str, page_size: tuple[int, int], batch: int) -> Workload:
    return Workload(
        profile_id="flop-check",
        mode=mode,
        page_size=page_size,
        prompt_tokens=PROMPT_TOKENS,
        max_new_tokens=8,
        batch_size=batch,
    )


def _compare(
    spec: ModelSpec, model: Any, mode: str, page_size: tuple[int, int], batch: int, device: str, contexts: list[int]
) -> None:
    work = _workload(mode, page_size, batch)
    analytic = build_layer_tree(spec, work)
    pages = _pages(mode, page_size, batch, device)
    inputs = deepseek_ocr.build_inputs(spec, pages, prompt_tokens=PROMPT_TOKENS)
    assert inputs.prompt_len == work.prefill_tokens

    ranges = StageFlops()
    with torch.inference_mode():
        embeds = model.encode_images(pages, ranges)
    assert embeds.shape[1] == work.image_tokens
    assert ranges.flops["sam"] + ranges.flops["clip"] == pytest.approx(analytic["vision"].forward_flops(), rel=REL)
    assert ranges.flops["projector"] == pytest.approx(analytic["projector"].forward_flops(), rel=REL)

    cache = deepseek_ocr.KVCache.for_decoder(
        spec.decoder, batch=batch, max_len=max(contexts) + 1, device=device, dtype=model.dtype
    )
    with torch.inference_mode():
        prefill = _count(
            lambda: model(
                inputs.input_ids.to(device),
                image_embeds=embeds,
                image_mask=inputs.image_mask,
                cache=cache,
                last_only=True,
            )
        )
    assert prefill == pytest.approx(analytic["prefill"].forward_flops(), rel=REL)
    assert cache.length == work.prefill_tokens

    ids = torch.full((batch, 1), 5, dtype=torch.long, device=device)
    for ctx in contexts:
        cache.length = ctx - 1  # the step's token becomes key number ctx
        with torch.inference_mode():
            step = _count(lambda: model(ids, cache=cache, last_only=True))
        expected = DecoderStack(batch=batch, q_len=1, context=ctx, dec=spec.decoder, stage="decode").forward_flops()
        assert step == pytest.approx(expected, rel=REL), f"decode step at context {ctx}"


@pytest.fixture(scope="module")
def full_meta() -> Any:
    return deepseek_ocr.build_model(DEEPSEEK_OCR, device="meta", dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def tiny_meta() -> Any:
    return deepseek_ocr.build_model(TINY, device="meta", dtype=torch.float32)


@pytest.mark.parametrize(("mode", "page_size", "batch"), CASES)
def test_full_size_on_meta(full_meta: Any, mode: str, page_size: tuple[int, int], batch: int) -> None:
    p = _workload(mode, page_size, batch).prefill_tokens
    _compare(DEEPSEEK_OCR, full_meta, mode, page_size, batch, "meta", [p + 1, p + 100, 4096])


@pytest.mark.parametrize(("mode", "page_size", "batch"), [CASES[0], CASES[4], CASES[6]])
def test_tiny_on_meta(tiny_meta: Any, mode: str, page_size: tuple[int, int], batch: int) -> None:
    p = _workload(mode, page_size, batch).prefill_tokens
    _compare(TINY, tiny_meta, mode, page_size, batch, "meta", [p + 1, p + 37, 2048])


@pytest.mark.parametrize(("mode", "page_size"), [("tiny", (800, 1000)), ("small", (1654, 2339))])
def test_tiny_real_cpu_eager(mode: str, page_size: tuple[int, int]) -> None:
    model = deepseek_ocr.build_model(TINY, device="cpu", dtype=torch.float32, attn_impl="eager")
    p = _workload(mode, page_size, 1).prefill_tokens
    _compare(TINY, model, mode, page_size, 1, "cpu", [p + 1, p + 5])


def test_decode_stage_equals_sum_of_counted_steps(tiny_meta: Any) -> None:
    """The closed-form decode stage equals the counter summed over every step of a short generation."""
    work = _workload("base", (1654, 2339), 1).replace(max_new_tokens=6)
    analytic = build_layer_tree(TINY, work)["decode"].forward_flops()
    p = work.prefill_tokens
    cache = deepseek_ocr.KVCache.for_decoder(
        TINY.decoder, batch=1, max_len=work.final_context, device="meta", dtype=torch.float32
    )
    ids = torch.full((1, 1), 5, dtype=torch.long, device="meta")
    counted = 0
    for j in range(1, work.max_new_tokens):  # max_new_tokens − 1 steps after the prefill token
        cache.length = p + j - 1
        with torch.inference_mode():
            counted += _count(lambda: tiny_meta(ids, cache=cache, last_only=True))
    assert counted == pytest.approx(analytic, rel=1e-9)
