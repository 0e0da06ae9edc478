"""Fitting recovers known roofline parameters from measurements the analytic model generated (round trip)."""

from __future__ import annotations

import pytest

from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration import MeasuredWorkload, StagePredictor, StageSample, fit_params, get_value, with_values
from llm_perf_opt.calibration.fit import default_priors
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.workload import load_workload

SPEC = load_model_spec("deepseek-ocr")
H100 = load_hardware("h100-sxm")
EAGER = RooflineParams(execution="eager")
"""These round trips model eager decode, where host issue is visible in decode (graph: see the last test)."""
TRUTH = with_values(
    EAGER,
    {
        "compute_efficiency.vision_attention": 0.3,
        "compute_efficiency.vision_mlp": 0.6,
        "compute_efficiency.moe_experts": 0.4,
        "bandwidth_efficiency": 0.8,
        "launch_overhead_us": 14.0,
        "host_overhead_us": 2.0,  # GPU-bound truth: the 20 µs default is far off
    },
)


def synthetic(mode: str, batch: int, tokens: int, params: RooflineParams = TRUTH) -> MeasuredWorkload:
    """'Measurements' that are the analytic model's own times under ``params`` (1 % spread)."""
    w = load_workload(mode).replace(max_new_tokens=tokens, batch_size=batch)
    times = StagePredictor(SPEC, w, H100).times_ms(params)
    return MeasuredWorkload(
        key=f"{mode}-b{batch}-n{tokens}",
        workload=w,
        stages={k: StageSample(mean_ms=v, std_ms=0.01 * v, n=2) for k, v in times.items()},
    )


MATRIX = [synthetic("base", 1, 256), synthetic("gundam", 4, 64), synthetic("large", 4, 256), synthetic("tiny", 1, 64)]


def value(fit: object, name: str) -> float:
    return next(p.value for p in fit.fitted if p.name == name)  # type: ignore[attr-defined]


def test_joint_fit_recovers_the_parameters_the_data_determine() -> None:
    # Host issue shorter than every kernel's GPU time (2 µs < the 14 µs launch gap) is invisible to the
    # eager kernel queue (analytic/eager.py): any host time up to ~15 µs fits these stages, and the MAP
    # sits near the 20 µs prior, shifting CLIP's GEMM efficiency with it. Start from the true host time
    # so the test checks what the stage times do determine.
    start = with_values(EAGER, {"host_overhead_us": 2.0})
    fit = fit_params(MATRIX, spec=SPEC, hardware=H100, scheme="joint", start=start)
    assert fit.converged
    # Not listed: the vision attention and MLP GEMMs both scale with tokens in SAM and CLIP alike, and
    # SAM's biased attention and the broadcast add writing its bias both scale with tokens², so stage
    # times fix only each pair's combination (the rows below still match within 2 %).
    for name in ("compute_efficiency.moe_experts", "launch_overhead_us"):
        assert value(fit, name) == pytest.approx(get_value(TRUTH, name), rel=0.05), name
    # Bandwidth only shows in decode's memory-bound kernels, which share each step with launch gaps: the
    # MAP settles between the 0.8 of the data and the 0.9 prior (0.84 before SM fill, 0.85 with it).
    assert get_value(TRUTH, "bandwidth_efficiency") <= value(fit, "bandwidth_efficiency") < 0.8 * 1.08
    # 2%: the host-issue term adds a max() kink that the smallest stage (projector) sits on.
    assert all(abs(r.error_after) < 0.02 for r in fit.rows), [(r.stage, r.error_after) for r in fit.rows]
    assert fit.cost_after < 1e-3 * fit.cost_before


def test_staged_fit_reproduces_the_calibration_workload_from_one_measurement() -> None:
    fit = fit_params([MATRIX[0]], spec=SPEC, hardware=H100, start=EAGER)
    assert fit.scheme == "staged"
    # 5%: one workload cannot separate host issue (fitted from decode) from GPU time in the
    # partly host-bound CLIP and projector spans.
    assert all(abs(r.error_after) < 0.05 for r in fit.rows), [(r.stage, r.error_after) for r in fit.rows]
    worst_before = max(abs(r.error_before) for r in fit.rows)
    assert worst_before > 0.2, "the defaults were far off: the fit did the work"
    # One decode time cannot separate launch gaps, bandwidth and host issue (the joint fit over
    # several workloads recovers them); the staged fit only guarantees they come from decode.
    for name in ("launch_overhead_us", "bandwidth_efficiency", "host_overhead_us"):
        assert next(p for p in fit.fitted if p.name == name).step == "decode", name
    # parameters no stage of this workload depends on keep their prior and say so
    router = next(p for p in fit.fitted if p.name == "compute_efficiency.moe_router")
    assert router.value == pytest.approx(0.5) and router.sources["prior"] > 0.99


def test_fit_from_the_true_parameters_stays_there() -> None:
    fit = fit_params(MATRIX[:2], spec=SPEC, hardware=H100, start=TRUTH, scheme="joint")
    for p in fit.fitted:
        assert p.value == pytest.approx(p.start, rel=0.02), p.name


def test_fitted_values_respect_the_measured_ceilings() -> None:
    fast = synthetic("gundam", 4, 64)
    for s in ("sam", "clip"):  # ten times faster than any physical efficiency allows
        fast.stages[s] = StageSample(mean_ms=fast.stages[s].mean_ms / 10, std_ms=0.0, n=2)
    fit = fit_params([fast], spec=SPEC, hardware=H100, start=EAGER)
    ceiling = 1.05 * H100.achievable_tflops / H100.bf16_tflops  # type: ignore[operator]
    for p in fit.fitted:
        if p.name.startswith("compute_efficiency."):
            assert p.value <= ceiling + 1e-9
    assert any(p.at_bound == "upper" for p in fit.fitted)
    assert any(r.error_after > 0.15 for r in fit.rows if r.stage == "sam"), "an unphysical stage stays visibly wrong"


def test_priors_cover_matmul_categories_and_global_terms() -> None:
    cats = sorted(StagePredictor(SPEC, load_workload("base"), H100).matmul_categories())
    names = [p.name for p in default_priors(H100, RooflineParams(), "bf16", cats)]
    assert "compute_efficiency.norm" not in names and "compute_efficiency.elementwise" not in names
    assert {"bandwidth_efficiency", "launch_overhead_us", "compute_efficiency.vision_attention"} <= set(names)
    # The routing skew is what the run measured (its census), never a free parameter of the fit.
    skewed = default_priors(H100, RooflineParams(expert_load_ratio=0.85), "bf16", cats)
    assert "expert_load_ratio" not in [p.name for p in skewed]
    # Nor is the cost an in-graph span adds to what it times: a property of the timing method.
    assert "graph_span_overhead_us" not in [p.name for p in skewed] and "range_gap_us" in names


def test_bad_fit_inputs() -> None:
    with pytest.raises(UserError, match="unknown fit scheme"):
        fit_params(MATRIX[:1], spec=SPEC, hardware=H100, scheme="magic")
    with pytest.raises(UserError, match="distinct keys"):
        fit_params([MATRIX[0], MATRIX[0]], spec=SPEC, hardware=H100)
    empty = MeasuredWorkload(key="x", workload=MATRIX[0].workload, stages={})
    with pytest.raises(UserError, match="nothing to calibrate"):
        fit_params([empty], spec=SPEC, hardware=H100)


def test_graph_decode_fit_recovers_the_kernel_floor_from_one_run() -> None:
    """Graph decode: per step Σ max(work, floor) + launch, no host term; one decode time fixes the floor."""
    truth = with_values(RooflineParams(), {"kernel_floor_us": 1.5})
    w = load_workload("base").replace(max_new_tokens=256, batch_size=1)
    times = StagePredictor(SPEC, w, H100).times_ms(truth)
    measured = MeasuredWorkload(
        key="base-b1-n256",
        workload=w,
        stages={k: StageSample(mean_ms=v, std_ms=0.01 * v, n=2) for k, v in times.items()},
    )
    fit = fit_params([measured], spec=SPEC, hardware=H100)
    decode = next(r for r in fit.rows if r.stage == "decode")
    assert abs(decode.error_before) > 0.3 and abs(decode.error_after) < 0.01
    floor = next(p for p in fit.fitted if p.name == "kernel_floor_us")
    # One decode time, two free parameters (floor, bandwidth): with the bandwidth at its prior's centre
    # (0.9) the MAP puts the whole error on the floor and recovers it.
    assert floor.step == "decode" and floor.value == pytest.approx(1.5, rel=0.05)


def test_eager_stage_host_costs_come_from_clip_and_the_projector() -> None:
    """Host-bound CLIP fixes the host time per kernel, the projector range its fixed cost (graph mode:
    decode has no host term); decode's own host time is left to decode."""
    start = RooflineParams(prefill_execution="eager")
    truth = with_values(start, {"stage_host_overhead_us": 30.0, "stage_overhead_us": 300.0})
    w = load_workload("base").replace(max_new_tokens=64, batch_size=1)
    times = StagePredictor(SPEC, w, H100).times_ms(truth)
    samples = {k: StageSample(mean_ms=v, std_ms=0.01 * v, n=2) for k, v in times.items()}
    measured = MeasuredWorkload(key="base-b1-n64", workload=w, stages=samples)
    fit = fit_params([measured], spec=SPEC, hardware=H100, start=start)
    steps = {p.name: p for p in fit.fitted}
    assert steps["stage_host_overhead_us"].step == "SAM + CLIP"
    assert steps["stage_overhead_us"].step == "projector"
    assert steps["host_overhead_us"].step == "decode"
    assert steps["stage_host_overhead_us"].value == pytest.approx(30.0, rel=0.1)
    assert steps["stage_overhead_us"].value == pytest.approx(300.0, rel=0.1)
    assert all(abs(r.error_after) < 0.03 for r in fit.rows), [(r.stage, r.error_after) for r in fit.rows]
