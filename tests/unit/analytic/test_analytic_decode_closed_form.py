"""The decode stage is summed in closed form; here (and only here) it is checked against a loop over steps."""

from __future__ import annotations

import random

import pytest

from llm_perf_opt.analytic.base import ADDITIVE, Swept
from llm_perf_opt.analytic.decoder import DecoderStack
from llm_perf_opt.analytic.deepseek_ocr import DecodeStage, build_stages, decode_steps
from llm_perf_opt.analytic.roofline import Roofline, RooflineParams
from llm_perf_opt.analytic.series import sum_max_affine
from llm_perf_opt.hardware.table import HARDWARE_TABLE
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR, TINY
from llm_perf_opt.specs.workload import WORKLOAD_PROFILES


def _loop_costs(dec, batch: int, prefill: int, steps: int) -> dict[str, float]:
    totals = dict.fromkeys(ADDITIVE, 0.0)
    for j in range(1, steps + 1):
        c = DecoderStack(batch=batch, q_len=1, context=prefill + j, dec=dec, stage="decode").cost()
        for name in ADDITIVE:
            totals[name] += getattr(c, name)
    return totals


@pytest.mark.parametrize(
    ("spec", "batch", "prefill", "steps"),
    [(DEEPSEEK_OCR, 1, 913, 37), (DEEPSEEK_OCR, 4, 111, 2), (TINY, 3, 50, 1), (TINY, 1, 7, 64)],
)
def test_closed_form_equals_loop(spec, batch: int, prefill: int, steps: int) -> None:
    stage = DecodeStage(
        batch=batch, prefill_tokens=prefill, steps=steps, dec=spec.decoder, execution="eager", stage="decode"
    )
    closed = stage.cost()
    loop = _loop_costs(spec.decoder, batch, prefill, steps)
    for name in ADDITIVE:
        assert getattr(closed, name) == pytest.approx(loop[name], rel=1e-12), name
    last = DecoderStack(batch=batch, q_len=1, context=prefill + steps, dec=spec.decoder).cost()
    assert closed.kv_cache_bytes == last.kv_cache_bytes
    assert closed.weight_bytes == last.weight_bytes  # steps re-use the same weights


@pytest.mark.parametrize("hw", ["rtx5090", "h100-sxm"])
@pytest.mark.parametrize(("batch", "steps", "launch"), [(1, 40, 5.0), (64, 25, 0.0), (256, 9, 0.0)])
def test_closed_form_roofline_time_equals_loop(hw: str, batch: int, steps: int, launch: float) -> None:
    """Large batches make attention cross from memory- to compute-bound within the range."""
    dec = DEEPSEEK_OCR.decoder
    params = RooflineParams(launch_overhead_us=launch, host_overhead_us=0.0, execution="eager")  # GPU side only
    rl = Roofline(HARDWARE_TABLE[hw], params, "bf16")
    stage = DecodeStage(batch=batch, prefill_tokens=300, steps=steps, dec=dec, execution="eager", stage="decode")
    closed = rl.time(stage)
    loop = [
        rl.time(DecoderStack(batch=batch, q_len=1, context=300 + j, dec=dec, stage="decode"))
        for j in range(1, steps + 1)
    ]
    assert closed.total_s == pytest.approx(sum(t.total_s for t in loop), rel=1e-9)
    assert closed.compute_s == pytest.approx(sum(t.compute_s for t in loop), rel=1e-9)
    assert closed.memory_s == pytest.approx(sum(t.memory_s for t in loop), rel=1e-9)
    for bound in ("compute", "memory", "launch"):
        assert closed.by_bound[bound] == pytest.approx(sum(t.by_bound[bound] for t in loop), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(("batch", "host_us"), [(1, 20.0), (1, 2.0), (64, 3.0), (256, 1.0)])
def test_host_overlap_closed_form_equals_loop(batch: int, host_us: float) -> None:
    """Each decode step takes max(GPU time, kernels · host overhead); the closed form sums that.

    The cases are either host-bound or GPU-bound at every step, where the closed form is exact."""
    dec = DEEPSEEK_OCR.decoder
    rl = Roofline(HARDWARE_TABLE["h100-sxm"], RooflineParams(host_overhead_us=host_us, execution="eager"), "bf16")
    steps = 30
    closed = rl.time(
        DecodeStage(batch=batch, prefill_tokens=300, steps=steps, dec=dec, execution="eager", stage="decode")
    )
    loop = [
        rl.stage_time(DecoderStack(batch=batch, q_len=1, context=300 + j, dec=dec, stage="decode"))
        for j in range(1, steps + 1)
    ]
    assert closed.total_s == pytest.approx(sum(t.total_s for t in loop), rel=1e-9)
    gpu_only = Roofline(HARDWARE_TABLE["h100-sxm"], RooflineParams(host_overhead_us=0.0, execution="eager"), "bf16")
    gpu = gpu_only.time(
        DecodeStage(batch=batch, prefill_tokens=300, steps=steps, dec=dec, execution="eager", stage="decode")
    )
    assert closed.total_s >= gpu.total_s
    host_total = closed.host_s  # already summed over the steps
    assert closed.total_s >= host_total - 1e-12
    if host_total > 1.5 * gpu.total_s:  # clearly host-bound: every step is limited by kernel issue
        assert closed.total_s == pytest.approx(host_total, rel=1e-9)
        assert closed.bound == "launch"


def test_sum_max_affine_matches_brute_force() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        n = rng.randint(1, 60)
        c0, c1, m0, m1 = (rng.uniform(0, 10) for _ in range(4))
        brute_c = brute_m = 0.0
        for j in range(n):
            f = j / (n - 1) if n > 1 else 0.0
            c, m = c0 + (c1 - c0) * f, m0 + (m1 - m0) * f
            if c >= m:
                brute_c += c
            else:
                brute_m += m
        got_c, got_m = sum_max_affine(c0, c1, m0, m1, n)
        assert got_c + got_m == pytest.approx(brute_c + brute_m, rel=1e-9)


def test_decode_stage_in_the_workload() -> None:
    w = WORKLOAD_PROFILES["dsocr-standard-v1"]
    decode = build_stages(DEEPSEEK_OCR, w, execution="eager")["decode"]
    (step,) = decode.children()
    assert decode_steps(w) == 511 and (step.repetition, step.count, step.shared_state) == ("for", 511, True)
    assert isinstance(step.layer, Swept)
    assert decode.kv_cache_bytes() == 61_440 * w.final_context
    s = decode_steps(w)
    # Σ_j (matmul + 12·4·1280·(P + j)) over j = 1..S
    expected = s * 1_148_190_720 + 12 * 4 * 1280 * (s * w.prefill_tokens + s * (s + 1) // 2)
    assert decode.forward_flops() == expected


def test_no_decode_steps() -> None:
    w = WORKLOAD_PROFILES["tiny"].replace(max_new_tokens=1)
    decode = build_stages(TINY, w, execution="eager")["decode"]
    assert decode.children() == () and decode.forward_flops() == 0


def test_closed_form_time_when_attention_crosses_the_ridge() -> None:
    """A toy GPU whose ridge makes decode attention memory-bound at short and compute-bound at long context."""
    from llm_perf_opt.hardware.table import HardwareSpec

    # Decode attention: compute 4·h·d·L / (peak·0.7), memory ≈ 2·h·d·2·(L + 1) / (bw·0.9).
    toy = HardwareSpec(id="toy", name="toy", bf16_tflops=0.9 / 0.7 / 1.3, bandwidth_tbs=1.0, memory_gb=1.0)
    rl = Roofline(
        toy, RooflineParams(launch_overhead_us=0.0, host_overhead_us=0.0, execution="eager"), "bf16"
    )  # GPU side only
    dec = TINY.decoder
    # Decode-stage stacks: outside decode, one-token matmuls would fill few SMs (analytic/occupancy.py).
    first = DecoderStack(batch=1, q_len=1, context=2, dec=dec, stage="decode")
    last = DecoderStack(batch=1, q_len=1, context=40, dec=dec, stage="decode")

    def core_bound(stack: DecoderStack) -> str:
        layer = next(c.layer for c in stack.children() if c.name == "layers.moe")
        attn = next(c.layer for c in layer.children() if c.name == "self_attn")
        core = next(c.layer for c in attn.children() if c.name == "sdpa")
        return rl.time(core).bound

    assert (core_bound(first), core_bound(last)) == ("memory", "compute")
    stage = DecodeStage(batch=1, prefill_tokens=1, steps=39, dec=dec, execution="eager", stage="decode")
    loop = [rl.time(DecoderStack(batch=1, q_len=1, context=1 + j, dec=dec, stage="decode")) for j in range(1, 40)]
    closed = rl.time(stage)
    assert closed.total_s == pytest.approx(sum(t.total_s for t in loop), rel=1e-9)
    for bound in ("compute", "memory"):
        assert closed.by_bound[bound] == pytest.approx(sum(t.by_bound[bound] for t in loop), rel=1e-9)
