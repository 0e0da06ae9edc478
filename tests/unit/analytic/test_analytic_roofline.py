"""Roofline time per layer: max(compute, memory) + launches, the bound, peaks and parameters."""

from __future__ import annotations

import pytest

from llm_perf_opt.analytic.base import Precision
from llm_perf_opt.analytic.primitives import Elementwise, Linear
from llm_perf_opt.analytic.roofline import DEFAULT_COMPUTE_EFFICIENCY, Roofline, RooflineParams, peak_rates
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HARDWARE_TABLE, HardwareSpec

TOY = HardwareSpec(
    id="toy",
    name="toy",
    bf16_tflops=100.0,
    fp8_tflops=200.0,
    bandwidth_tbs=1.0,
    memory_gb=8.0,
    achievable_tflops=50.0,
    achievable_bandwidth_tbs=0.5,
)


def test_compute_bound_linear() -> None:
    # Eager leaves (launch term); a graph-replayed leaf is tested in test_eager_stages.py.
    params = RooflineParams(
        compute_efficiency={"dense_mlp": 0.5}, bandwidth_efficiency=1.0, launch_overhead_us=2.0, execution="eager"
    )
    rl = Roofline(TOY, params, "bf16")
    layer = Linear(tokens=4096, in_features=4096, out_features=4096, op_category="dense_mlp")
    t = rl.time(layer)
    compute = 2 * 4096**3 / (100e12 * 0.5)
    memory = (3 * 4096 * 4096 * 2) / 1e12
    assert t.compute_s == pytest.approx(compute) and t.memory_s == pytest.approx(memory)
    assert t.total_s == pytest.approx(compute + 2e-6)
    assert t.bound == "compute"


def test_memory_and_launch_bound() -> None:
    params = RooflineParams(
        bandwidth_efficiency=0.9, elementwise_bandwidth_efficiency=0.5, launch_overhead_us=5.0, execution="eager"
    )
    rl = Roofline(TOY, params, "bf16")
    big = Elementwise(label="copy", elements=1e9)
    t = rl.time(big)
    assert t.memory_s == pytest.approx(2 * 2e9 / 0.5e12)
    assert t.bound == "memory"
    tiny = Elementwise(label="copy", elements=10)
    assert rl.time(tiny).bound == "launch"
    assert rl.time(tiny).total_s == pytest.approx(40 / 0.5e12 + 5e-6)


def test_kernels_without_matmuls_move_bytes_at_the_elementwise_share_of_the_bandwidth() -> None:
    # Same 2 MB either way: a copy (no matmul) at 40% of 1 TB/s, a GEMV's weight stream at 90%.
    params = RooflineParams(bandwidth_efficiency=0.9, elementwise_bandwidth_efficiency=0.4, launch_overhead_us=0.0)
    rl = Roofline(TOY, params, "bf16")
    copy = Elementwise(label="copy", elements=0.5e6)  # read + write 0.5 M bf16 = 2 MB
    gemv = Linear(tokens=1, in_features=1000, out_features=1000)  # 2 MB of weights + 4 kB of activations
    assert rl.time(copy).memory_s == pytest.approx(2e6 / 0.4e12)
    assert rl.time(gemv).memory_s == pytest.approx((2e6 + 4e3) / 0.9e12)
    assert RooflineParams().elementwise_bandwidth_efficiency == 0.40  # the H200 prefill measurement
    with pytest.raises(UserError, match="elementwise_bandwidth_efficiency"):
        RooflineParams(elementwise_bandwidth_efficiency=0.0)


def test_compute_dtype_picks_the_peak_and_achievable_scales_it() -> None:
    assert peak_rates(TOY, RooflineParams(), "bf16") == (100e12, 1e12)
    assert peak_rates(TOY, RooflineParams(), "fp8") == (200e12, 1e12)
    assert peak_rates(TOY, RooflineParams(use_achievable_peaks=True), "bf16") == (50e12, 0.5e12)
    assert peak_rates(TOY, RooflineParams(use_achievable_peaks=True), "fp8") == (100e12, 0.5e12)
    with pytest.raises(UserError, match="no FP8"):
        peak_rates(HARDWARE_TABLE["a100-sxm"], RooflineParams(), "fp8")


def test_fp8_weights_halve_weight_traffic() -> None:
    bf16 = Linear(tokens=1, in_features=1024, out_features=1024)
    fp8 = Linear(tokens=1, in_features=1024, out_features=1024, prec=Precision(weight_dtype="fp8"))
    assert fp8.weight_bytes() == bf16.weight_bytes() / 2


def test_params_defaults_and_validation() -> None:
    p = RooflineParams()
    assert p.bandwidth_efficiency == 0.9 and p.launch_overhead_us == 5.0 and not p.use_achievable_peaks
    assert p.compute_efficiency["vision_attention"] == 0.5 and p.compute_efficiency["moe_router"] == 0.5
    assert p.compute_efficiency["vision_conv"] == 0.7 and p.compute_efficiency["moe_experts"] == 0.6
    assert p.compute_efficiency["vision_attention"] < p.compute_efficiency["vision_mlp"]
    partial = RooflineParams(compute_efficiency={"lm_head": 0.9})  # a fitted subset keeps the other defaults
    assert partial.efficiency("lm_head") == 0.9 and partial.efficiency("norm") == DEFAULT_COMPUTE_EFFICIENCY["norm"]
    with pytest.raises(UserError, match="unknown operator category 'gemm'"):
        RooflineParams(compute_efficiency={"gemm": 0.5})
    with pytest.raises(UserError, match="bandwidth_efficiency"):
        RooflineParams(bandwidth_efficiency=0.0)
    with pytest.raises(UserError, match="launch_overhead_us"):
        RooflineParams(launch_overhead_us=-1.0)


def test_roofline_params_from_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from llm_perf_opt.analytic.api import load_roofline_params

    good = tmp_path / "fit.yaml"
    good.write_text("compute_efficiency:\n  lm_head: 0.9\nlaunch_overhead_us: 3\n")
    params = load_roofline_params(good)
    assert params.launch_overhead_us == 3.0 and params.efficiency("lm_head") == 0.9
    assert params.efficiency("norm") == DEFAULT_COMPUTE_EFFICIENCY["norm"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("compute_efficiency:\n  gemm: 0.9\n")
    with pytest.raises(UserError, match=r"bad.yaml: .*unknown operator category 'gemm'"):
        load_roofline_params(bad)
