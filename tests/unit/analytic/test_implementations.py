"""The ``implementation`` facts: hf-official vs ours, checked against hand arithmetic from the official code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llm_perf_opt.analytic import implementations as impl
from llm_perf_opt.errors import UserError
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY
from llm_perf_opt.specs.workload import Workload

SPEC = MODEL_REGISTRY["deepseek-ocr"]
A4 = Workload(profile_id="a4", mode="gundam", page_size=(1654, 2339), max_new_tokens=64)


def test_prefill_of_the_official_code_projects_every_prompt_position() -> None:
    ours = impl.stage_flops(SPEC, A4, "ours")
    official = impl.stage_flops(SPEC, A4, "hf-official")
    p = A4.prefill_tokens
    # DeepseekOCRForCausalLM.forward: lm_head(hidden_states) over all P positions (D = 1280, V = 129 280),
    # plus LlamaRotaryEmbedding's [1, 64, 1] @ [1, 1, P] fp32 bmm in each of the 12 layers (2·64·P each).
    lm_head_rest = 2 * (p - 1) * 1280 * 129_280
    rope = 12 * 2 * 64 * p
    assert official["prefill"] - ours["prefill"] == pytest.approx(lm_head_rest + rope, rel=1e-12)
    assert official["vision"] == ours["vision"]
    assert official["projector"] == ours["projector"]
    # 63 decode steps: one rotary bmm per layer per step (2·64·1 each), nothing else differs.
    assert official["decode"] - ours["decode"] == pytest.approx(63 * 12 * 2 * 64, rel=1e-12)


def test_decode_step_flops_differ_only_by_the_rotary_bmm() -> None:
    ours = impl.decode_step_flops(SPEC, A4, "ours", context=1200)
    official = impl.decode_step_flops(SPEC, A4, "hf-official", context=1200)
    assert official - ours == 12 * 128


def test_host_syncs_per_decode_step() -> None:
    # moe_infer: tokens_per_expert.cpu() in each of the 11 MoE layers; the stopping criteria: one more.
    assert impl.decode_step_syncs(SPEC, "hf-official") == 11 + 1
    assert impl.decode_step_syncs(SPEC, "hf-official", ngram=True) == 13
    assert impl.decode_step_syncs(SPEC, "ours", eos_check=False) == 0


def test_per_expert_kernels_grow_with_the_experts_that_get_tokens() -> None:
    one = impl.layer_kernels(SPEC, "hf-official", batch=1)["moe_layer"]
    four = impl.layer_kernels(SPEC, "hf-official", batch=4)["moe_layer"]
    many = impl.layer_kernels(SPEC, "hf-official", batch=64)["moe_layer"]
    per_expert = impl.HF_OFFICIAL.moe_per_expert_kernels
    assert four - one == per_expert * (4 * 6 - 6)  # 6 experts per token, distinct in the worst case
    assert many - one == per_expert * (64 - 6)  # capped at the 64 experts
    ours = [impl.layer_kernels(SPEC, "ours", batch=b)["moe_layer"] for b in (1, 64)]
    assert ours[0] == ours[1]  # grouped GEMM: no per-expert launches


def test_official_decode_step_launches_more_kernels_than_ours() -> None:
    official = impl.decode_step_kernels(SPEC, "hf-official")
    ours = impl.decode_step_kernels(SPEC, "ours")
    h = impl.HF_OFFICIAL
    shared = h.attention_kernels + h.layer_kernels
    moe_layer = shared + h.moe_base_kernels + 6 * h.moe_per_expert_kernels
    assert official == h.forward_kernels + (shared + h.dense_mlp_kernels) + 11 * moe_layer + h.loop_kernels
    assert official > 2 * ours


def test_dynamic_cache_copies_the_whole_cache_every_step() -> None:
    # torch.cat of K and V: read L·h_kv·d·2 bytes and write as much, per tensor, per layer.
    expected = 12 * 2 * (1000 * 10 * 128 * 2) * 2
    assert impl.decode_step_extra_bytes(SPEC, A4, "hf-official", context=1000) == expected
    assert impl.decode_step_extra_bytes(SPEC, A4, "ours", context=1000) == 0


def test_host_time_counts_kernels_syncs_and_the_ngram_table() -> None:
    ms = impl.decode_step_host_ms(SPEC, A4, "hf-official", context=1000, host_overhead_us=10.0, sync_us=50.0)
    assert ms == pytest.approx((impl.decode_step_kernels(SPEC, "hf-official") * 10.0 + 12 * 50.0) / 1000.0)
    with_ngram = impl.decode_step_host_ms(
        SPEC, A4, "hf-official", context=1000, host_overhead_us=10.0, sync_us=50.0, ngram=20,
        ngram_us_per_tuple=1.0, ngram_ns_per_copy=2.0,
    )  # fmt: skip
    tuples, copies = impl.ngram_host_work(A4, 20, context=1000)
    kernels = impl.decode_step_kernels(SPEC, "hf-official", ngram=True)
    assert with_ngram == pytest.approx((kernels * 10.0 + 13 * 50.0 + tuples * 1.0 + copies * 2.0 / 1e3) / 1000.0)


def test_unknown_implementation_is_a_user_error() -> None:
    with pytest.raises(UserError, match="hf-official"):
        impl.implementation("vllm-but-misspelt")


def test_the_module_imports_no_torch() -> None:
    code = "import sys, llm_perf_opt.analytic.implementations; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_ngram_table_work_is_quadratic_in_the_image_slots() -> None:
    base = Workload(profile_id="b", mode="base", page_size=(1654, 2339), max_new_tokens=64)
    i = base.image_tokens  # 273 slots of one id: the (n−1)-gram of image ids repeats 273 − 20 + 1 times
    tuples, copies = impl.ngram_host_work(base, 20, context=300)
    assert tuples == 300 - 20 + 1
    assert copies == (i - 19) * (i - 18) // 2
    assert impl.ngram_host_work(base, 0, context=300) == (0, 0)


def test_the_report_of_the_official_code_carries_its_flops_and_kernels() -> None:
    from llm_perf_opt.analytic import api
    from llm_perf_opt.data.analytic_inputs import RooflineParams
    from llm_perf_opt.hardware.table import load_hardware

    hw = load_hardware("h200")
    graph = api.build_report(SPEC, A4, hw, params=RooflineParams(implementation="hf-official", execution="graph"))
    eager = api.build_report(SPEC, A4, hw, params=RooflineParams(implementation="hf-official", execution="eager"))
    stages = {s.stage: s for s in eager.stages}
    flops = impl.stage_flops(SPEC, A4, "hf-official")  # the closed forms, checked against FlopCounterMode
    for name in ("vision", "projector", "prefill", "decode"):
        assert stages[name].flops_tflops * 1e12 == pytest.approx(flops[name], rel=1e-9)
    # infer() bans repeated 20-grams: the ban's scores clone and index_put are 2 kernels of every step.
    assert stages["decode"].kernels == 63 * impl.decode_step_kernels(SPEC, "hf-official", ngram=True)
    # The official generate has no graph path: asking for graph changes nothing.
    assert graph.predicted_total_time_ms == eager.predicted_total_time_ms
    ours = api.build_report(SPEC, A4, hw, params=RooflineParams(execution="eager"))
    assert eager.predicted_total_time_ms > ours.predicted_total_time_ms


def test_unknown_implementation_in_the_roofline_inputs_is_a_user_error() -> None:
    from llm_perf_opt.data.analytic_inputs import RooflineParams

    with pytest.raises(UserError, match="implementation must be one of ours, hf-official"):
        RooflineParams(implementation="vllm")


def test_the_calibration_predictor_follows_the_implementation() -> None:
    from llm_perf_opt.analytic import api
    from llm_perf_opt.calibration.predict import StagePredictor
    from llm_perf_opt.data.analytic_inputs import RooflineParams
    from llm_perf_opt.hardware.table import load_hardware

    hw = load_hardware("h200")
    predictor = StagePredictor(SPEC, A4, hw)
    for params in (RooflineParams(implementation="hf-official"), RooflineParams(execution="eager")):
        report = api.build_report(SPEC, A4, hw, params=params)
        assert predictor.times_ms(params)["total"] == pytest.approx(report.predicted_total_time_ms, rel=1e-9)


def test_mfu_of_an_official_run_uses_the_official_flops() -> None:
    pytest.importorskip("torch")
    from llm_perf_opt.profiling.mfu import analytic_costs

    ours = analytic_costs(SPEC, A4, precision="bf16")
    official = analytic_costs(SPEC, A4, precision="bf16", implementation="hf-official")
    p = A4.prefill_tokens
    assert official["prefill"].flops - ours["prefill"].flops == pytest.approx(
        2 * (p - 1) * 1280 * 129_280 + 12 * 2 * 64 * p, rel=1e-12
    )
    assert official["vision"].flops == ours["vision"].flops


def test_official_vision_runs_our_layers_with_its_extra_casts_per_encoder_call() -> None:
    from llm_perf_opt.analytic.base import BF16
    from llm_perf_opt.analytic.implementations import build_implementation_stages

    # Operator census of one tiny page on the H200 (docs/official/h200/operators/tiny-b1-n64 against
    # docs/validation/h200/prefill-ops/ops-tiny-b1): SAM 684 against 446 calls, CLIP 420 against 297.
    assert (impl.HF_OFFICIAL.sam_extra_kernels, impl.HF_OFFICIAL.clip_extra_kernels) == (238, 123)
    assert (impl.OURS.sam_extra_kernels, impl.OURS.clip_extra_kernels) == (0, 0)
    for w, passes in [(Workload(profile_id="b", mode="base", batch_size=2), 1), (A4, 2)]:
        ours = build_implementation_stages(SPEC, w, BF16, "eager", "ours", 1.0)["vision"]
        official = build_implementation_stages(SPEC, w, BF16, "eager", "hf-official", 1.0)["vision"]
        # The official page loop runs every page's passes at batch 1: B pages × passes × (238 + 123) more.
        b = w.batch_size
        page = Workload(profile_id="1", mode=w.mode, page_size=w.page_size, batch_size=1)
        one = build_implementation_stages(SPEC, page, BF16, "eager", "ours", 1.0)["vision"]
        assert official.kernel_launches() == b * (one.kernel_launches() + passes * (238 + 123))
        assert official.forward_flops() == pytest.approx(b * one.forward_flops())
        assert ours.forward_flops() == pytest.approx(official.forward_flops())
