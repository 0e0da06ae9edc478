"""hf-official stage times: the page loop of the vision encoders and the decoder's own host costs.

Expectations are derived by hand from the official code (``modeling_deepseekocr.py``: one SAM, CLIP
and projector call per page; ``modeling_deepseekv2.py`` ``moe_infer``: one 5-kernel SwiGLU per expert
that got tokens, 11 MoE layers, 64 routed experts, 6 per token) and from the kernel-queue algebra: in
a host-bound queue every extra µs of issue time per kernel adds exactly one µs per kernel to the wall.
"""

from __future__ import annotations

import pytest
from attrs import evolve

from llm_perf_opt.analytic import implementations as impl
from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration import MeasuredWorkload, StagePredictor, StageSample, fit_params
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY
from llm_perf_opt.specs.workload import load_workload

SPEC = MODEL_REGISTRY["deepseek-ocr"]
H200 = load_hardware("h200")
OFFICIAL = RooflineParams(implementation="hf-official")
# Host costs far above any small kernel's GPU time: every queue below is host-bound.
SLOW_HOST = evolve(OFFICIAL, host_overhead_us=40.0, expert_host_overhead_us=30.0, stage_host_overhead_us=40.0)


def _base(batch: int = 1, tokens: int = 64):  # type: ignore[no-untyped-def]
    return load_workload("base").replace(max_new_tokens=tokens, batch_size=batch)


def test_the_expert_loop_launches_five_kernels_per_expert_that_got_tokens_in_each_moe_layer() -> None:
    assert impl.expert_loop_kernels(SPEC, "hf-official", tokens=1) == 11 * 5 * 6  # one token: 6 experts
    assert impl.expert_loop_kernels(SPEC, "hf-official", tokens=2) == 11 * 5 * 12  # 12 in the spread case
    assert impl.expert_loop_kernels(SPEC, "hf-official", tokens=283) == 11 * 5 * 64  # every expert
    assert impl.expert_loop_kernels(SPEC, "ours", tokens=283) == 0  # grouped GEMM


def test_official_vision_runs_once_per_page_in_its_own_ranges() -> None:
    one = StagePredictor(SPEC, _base(1), H200).times_ms(OFFICIAL)
    two = StagePredictor(SPEC, _base(2), H200).times_ms(OFFICIAL)
    for stage in ("sam", "clip", "projector"):  # the page loop: twice the batch-1 ranges, nothing batched
        assert two[stage] == pytest.approx(2 * one[stage], rel=1e-9), stage
    ours = RooflineParams(execution="eager")
    ours_one = StagePredictor(SPEC, _base(1), H200).times_ms(ours)
    ours_two = StagePredictor(SPEC, _base(2), H200).times_ms(ours)
    assert ours_two["clip"] < 1.5 * ours_one["clip"]  # ours batches the pages: host-bound CLIP barely grows


def test_the_official_prefill_does_not_pay_the_vision_encoders_host_cost() -> None:
    predictor = StagePredictor(SPEC, _base(), H200)
    cheap = predictor.times_ms(evolve(SLOW_HOST, stage_host_overhead_us=5.0))["prefill_decoder"]
    dear = predictor.times_ms(evolve(SLOW_HOST, stage_host_overhead_us=80.0))["prefill_decoder"]
    assert cheap == dear
    ours = RooflineParams(execution="eager")
    assert predictor.times_ms(evolve(ours, stage_host_overhead_us=80.0))["prefill_decoder"] > predictor.times_ms(
        evolve(ours, stage_host_overhead_us=5.0)
    )["prefill_decoder"]


def test_each_expert_loop_kernel_of_the_prefill_costs_the_expert_host_time() -> None:
    predictor = StagePredictor(SPEC, _base(), H200)
    lo = predictor.times_ms(SLOW_HOST)["prefill_decoder"]
    hi = predictor.times_ms(evolve(SLOW_HOST, expert_host_overhead_us=40.0))["prefill_decoder"]
    # 283 prompt tokens reach all 64 experts in all 11 MoE layers: 3520 kernels, +10 µs each.
    assert hi - lo == pytest.approx(3520 * 10e-3, rel=1e-6)


def test_decode_steps_pay_the_expert_host_time_per_expert_that_got_tokens() -> None:
    for batch, experts in ((1, 6), (2, 12)):
        predictor = StagePredictor(SPEC, _base(batch), H200)
        lo = predictor.times_ms(SLOW_HOST)["decode"]
        hi = predictor.times_ms(evolve(SLOW_HOST, expert_host_overhead_us=40.0))["decode"]
        # 63 decode forwards, each with 11 MoE layers × experts × 5 loop kernels, +10 µs each.
        assert hi - lo == pytest.approx(63 * 11 * experts * 5 * 10e-3, rel=1e-6), batch


def test_the_expert_host_time_is_fitted_from_the_official_prefill() -> None:
    truth = evolve(OFFICIAL, host_overhead_us=30.0, expert_host_overhead_us=14.0)
    w = _base()
    times = StagePredictor(SPEC, w, H200).times_ms(truth)
    samples = {k: StageSample(mean_ms=v, std_ms=0.01 * v, n=2) for k, v in times.items()}
    fit = fit_params([MeasuredWorkload(key="base-b1-n64", workload=w, stages=samples)], spec=SPEC, hardware=H200,
                     start=OFFICIAL)
    steps = {p.name: p for p in fit.fitted}
    assert steps["expert_host_overhead_us"].step == "prefill (decoder)"
    assert steps["host_overhead_us"].step == "decode"
    assert steps["expert_host_overhead_us"].value == pytest.approx(14.0, rel=0.1)
    assert steps["host_overhead_us"].value == pytest.approx(30.0, rel=0.1)


def test_the_ngram_ban_of_each_step_is_host_time_affine_in_the_context_plus_the_image_run() -> None:
    # transformers 4.46.3 _get_ngrams, n = 20: one key per position (context − 19) and, for the page's run
    # of 273 identical image ids, lists of 1 … 254 copied: 254·255/2 elements; 1.27 µs and 4 ns each.
    assert impl.ngram_host_us(_base(), 20, context=300) == pytest.approx(281 * 1.27 + 32385 * 0.004, rel=1e-12)
    for mode, image_run_copies, tuples in (("base", 254 * 255 // 2, 296), ("gundam", 884 * 885 // 2, 926)):
        w = load_workload(mode).replace(max_new_tokens=64, batch_size=1)
        step_ms = StagePredictor(SPEC, w, H200).times_ms(SLOW_HOST)["decode"] / 63
        # Host-bound steps: 958 decoder kernels at 40 µs (the ban's scores clone and index_put included),
        # 330 loop kernels at 30 µs, and the ban at the mean context P + 32 (it is affine in the context).
        expected_us = 958 * 40 + 330 * 30 + tuples * 1.27 + image_run_copies * 0.004
        assert step_ms == pytest.approx(expected_us / 1e3, rel=1e-9), mode
