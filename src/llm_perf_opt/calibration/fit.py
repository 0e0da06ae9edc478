"""Fit the roofline's efficiency factors and per-kernel overhead to measured stage times.

Model: the analytic roofline itself (:class:`~llm_perf_opt.analytic.roofline.Roofline`), evaluated
for each measured workload exactly as ``analyze`` does. Parameters θ (positive, fitted as log θ):
the compute efficiency of every operator category with matmul FLOPs in the measured stages,
``bandwidth_efficiency``, ``launch_overhead_us`` (and any other float field RooflineParams grows).
No per-stage fudge factor exists: a stage the physics cannot explain stays visibly wrong.

Each step minimises (maximum a posteriori, log-normal errors and priors)::

    Σ_obs ((log t_pred − log t_meas) / σ_obs)²  +  Σ_θ ((log θ − log θ_prior) / τ_θ)²

* σ_obs: run-to-run spread (floor 2 %) and ~50 µs of clock/synchronisation slack per stage;
* θ_prior = the starting parameters (package defaults, or a previous calibration); τ: compute
  efficiencies 0.7 (a factor of 2), bandwidth efficiency 0.15 (the measured copy ceiling is well
  known), launch overhead 1.0 (eager PyTorch: a few to tens of µs), other fields 1.0;
* bounds: a compute efficiency never exceeds 1.05 × the measured achievable GEMM ceiling
  (``achievable_tflops``: 798 of 989 TFLOP/s on H100), bandwidth never 1.1 × the measured copy
  ceiling; launch overhead 0.1 … 1000 µs.

Schemes. ``staged`` (default) fits each parameter only from the stage it governs, in this order,
each step keeping what earlier steps fitted (see :data:`STAGED_STEPS`):

1. decode (at small batch: hundreds of small, launch/memory-bound kernels per step) →
   ``bandwidth_efficiency``, ``launch_overhead_us``;
2. SAM and CLIP → ``vision_conv``, ``vision_attention``, ``vision_mlp``;
3. projector → ``projector``;
4. decoder part of prefill → ``decoder_attention``, ``dense_mlp``, ``moe_router``, ``moe_experts``,
   ``lm_head``, and ``expert_host_overhead_us`` (hf-official: the prefill is host-bound, ~80 % of its
   kernels in the per-expert MoE loop; ours has no such kernels, so it keeps its prior there).

So a vision stage the model misses cannot drag the bandwidth or overhead that decode determines.
``joint`` fits every parameter to every stage at once. With one workload either is under-determined;
the priors resolve the rest, and :attr:`FittedParam.sources` tells, from the Jacobian of its step,
which measurement each value comes from (share of its Fisher information, prior included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import attrs
from attrs import define

from llm_perf_opt.analytic.roofline import CATEGORY_IDS, RooflineParams, peak_rates
from llm_perf_opt.calibration.measured import FIT_STAGES, MeasuredWorkload, relative_sigma
from llm_perf_opt.calibration.predict import StagePredictor
from llm_perf_opt.calibration.solver import (
    COMPUTE,
    FittedParam,
    Observation,
    Prior,
    Problem,
    get_value,
    solve_block,
)
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec

TAU = {
    "compute": 0.7,
    "bandwidth_efficiency": 0.15,
    "launch_overhead_us": 1.0,
    # Measured per kernel family on the H200 (RooflineParams docs): a calibration run should only nudge them.
    "biased_attention_efficiency": 0.3,
    "biased_attention_cta_us": 0.3,
    "biased_attention_block_us": 0.3,
    "broadcast_bandwidth_efficiency": 0.3,
    # Measured from a GPU-bound prefill; trades off against the MoE GEMMs' efficiency in prefill stage
    # times, so a wide prior would let a fit move one for the other.
    "elementwise_bandwidth_efficiency": 0.05,
    # Measured from the projector's concat alone at two large shapes; a batch-1 projector should only nudge it.
    "transpose_bandwidth_efficiency": 0.3,
    # Measured per kernel family on the H200 like the two above; the causal attention scales with tokens²
    # next to the experts' tokens, so a wide prior would let one prefill time move it for moe_experts.
    "prefill_attention_efficiency": 0.3,
    "attention_floor_us": 0.3,
    # Measured from CLIP's flash kernel at two key counts; a batch-1 CLIP time should only nudge them.
    "vision_attention_floor_us": 0.3,
    "attention_floor_per_key_ns": 0.3,
    # Solved from CLIP's flash kernel at batch 8 (base, Gundam): a calibration run should only nudge them.
    "vision_attention_cta_us": 0.3,
    "vision_attention_cta_per_key_ns": 0.3,
}
"""Prior widths (standard deviation of log θ); other float fields get 1.0."""
MEASURED_NOT_FITTED = ("expert_load_ratio", "graph_span_overhead_us")
"""Float fields kept as started: what a run measures about itself (its routing census) and what the timing
method itself adds (an in-graph span's cost beyond its kernels, measured against operator tables; one run's
projector cannot tell it from the projector's kernels)."""
VISION_CATEGORIES = ("vision_conv", "vision_attention", "vision_mlp")
DECODER_CATEGORIES = ("decoder_attention", "dense_mlp", "moe_router", "moe_experts", "lm_head")
SAM_KERNELS = (
    "biased_attention_efficiency", "biased_attention_cta_us", "biased_attention_block_us",
    "broadcast_bandwidth_efficiency",
)  # fmt: skip
VISION_KERNELS = (
    "vision_attention_floor_us", "attention_floor_per_key_ns",
    "vision_attention_cta_us", "vision_attention_cta_per_key_ns",
)  # fmt: skip
"""CLIP's flash attention floor (one CTA's latency and its CTAs' SM time, fixed and per key): fitted with the
vision stages."""
STAGE_HOST = ("stage_host_overhead_us", "stage_overhead_us")
"""Host costs of the eager stages: CLIP is host-bound at batch 1 (per-kernel issue), the projector range
is mostly its fixed cost."""
RANGE_COSTS = ("stage_overhead_us", "graph_stage_overhead_us")
"""Fixed costs of a synchronised stage range, eager and replayed: the projector range is mostly that."""
PREFILL_KERNELS = ("expert_host_overhead_us", "attention_floor_us", "prefill_attention_efficiency")
"""Prefill-only kernel costs: the official MoE loop's host issue, the causal attention's floor and rate."""
VISION_GAPS = ("range_gap_us",)
"""Host time between the ranges nested in vision: only the vision stage shows it."""
STAGED_STEPS: tuple[tuple[str, tuple[str, ...], Callable[[str], bool]], ...] = (
    (
        "decode",
        ("decode",),
        lambda n: not n.startswith(COMPUTE)
        and n not in SAM_KERNELS + VISION_KERNELS + STAGE_HOST + RANGE_COSTS + PREFILL_KERNELS + VISION_GAPS,
    ),
    (
        "SAM + CLIP",
        ("sam", "clip"),
        lambda n: n[len(COMPUTE) :] in VISION_CATEGORIES
        or n in SAM_KERNELS + VISION_KERNELS
        or n == "stage_host_overhead_us",
    ),
    (
        "projector",
        ("projector",),
        lambda n: n in (COMPUTE + "projector", "transpose_bandwidth_efficiency", *RANGE_COSTS),
    ),
    ("vision ranges", ("vision",), lambda n: n in VISION_GAPS),
    (
        "prefill (decoder)",
        ("prefill_decoder",),
        lambda n: n[len(COMPUTE) :] in DECODER_CATEGORIES or n in PREFILL_KERNELS,
    ),
)
"""(step name, stages it sees, parameters it fits); parameters no step claims are fitted last to all stages."""
SCHEMES = ("staged", "joint")
STEP_ONLY_STAGES = ("vision",)
"""Measured stages only a staged step reads: vision overlaps SAM and CLIP, so the all-stage fit leaves it out."""


def default_priors(
    hardware: HardwareSpec, start: RooflineParams, compute_dtype: str, categories: Sequence[str]
) -> list[Prior]:
    """Priors centred on ``start``, bounded by the measured ceilings of ``hardware`` (see module doc)."""
    flops_used, bw_used = peak_rates(hardware, start, compute_dtype)
    ceiling = hardware.peak_tflops(compute_dtype) * 1e12
    if hardware.achievable_tflops:
        ceiling *= hardware.achievable_tflops / hardware.bf16_tflops
    bw_ceiling = (hardware.achievable_bandwidth_tbs or hardware.bandwidth_tbs) * 1e12
    c_up = min(2.0, 1.05 * ceiling / flops_used)
    b_up = min(2.0, 1.1 * bw_ceiling / bw_used)
    out = [
        Prior(
            name=COMPUTE + cat,
            center=min(start.efficiency(cat), c_up),
            log_sigma=TAU["compute"],
            lower=0.005,
            upper=c_up,
        )
        for cat in CATEGORY_IDS
        if cat in categories
    ]
    out.append(
        Prior(
            name="bandwidth_efficiency",
            center=min(start.bandwidth_efficiency, b_up),
            log_sigma=TAU["bandwidth_efficiency"],
            lower=0.05,
            upper=b_up,
        )
    )
    out.append(
        Prior(
            name="launch_overhead_us",
            center=min(max(start.launch_overhead_us, 0.1), 1000.0),
            log_sigma=TAU["launch_overhead_us"],
            lower=0.1,
            upper=1000.0,
        )
    )
    for f in attrs.fields(RooflineParams):  # float fields added later are fitted too, with a wide prior
        value = getattr(start, f.name)
        if f.name in ("bandwidth_efficiency", "launch_overhead_us", *MEASURED_NOT_FITTED) or isinstance(value, bool):
            continue
        if not isinstance(value, float) or value <= 0:
            continue
        upper = min(value * 1000, 1.0) if f.name.endswith("_efficiency") else value * 1000  # a fraction of a peak
        out.append(Prior(name=f.name, center=value, log_sigma=TAU.get(f.name, 1.0), lower=value / 1000, upper=upper))
    return out


@define(kw_only=True)
class FitRow:
    key: str
    stage: str
    measured_ms: float
    sigma: float
    before_ms: float
    after_ms: float

    @property
    def error_before(self) -> float:
        return self.before_ms / self.measured_ms - 1.0

    @property
    def error_after(self) -> float:
        return self.after_ms / self.measured_ms - 1.0


@define(kw_only=True)
class FitResult:
    params: RooflineParams
    start: RooflineParams
    fitted: list[FittedParam]
    rows: list[FitRow]
    iterations: int
    """Jacobian evaluations of scipy's least_squares (summed over the fit's steps)."""
    converged: bool
    """Every least_squares run stopped on a tolerance, not on its evaluation budget."""
    cost_before: float
    cost_after: float
    hardware_id: str
    precision: str
    workloads: dict[str, str]
    """Workload key → one-line description of the exact input."""
    scheme: str = "staged"


def observations(measured: Sequence[MeasuredWorkload], stages: Sequence[str] = FIT_STAGES) -> list[Observation]:
    """One observation per measured stage time of every workload (positive times only)."""
    out = []
    for mw in measured:
        for stage in stages:
            sample = mw.stages.get(stage)
            if sample is not None and sample.mean_ms > 0:
                out.append(
                    Observation(key=mw.key, stage=stage, measured_ms=sample.mean_ms, sigma=relative_sigma(sample))
                )
    return out


def fit_params(
    measured: Sequence[MeasuredWorkload],
    *,
    spec: ModelSpec,
    hardware: HardwareSpec,
    precision: str = "bf16",
    start: RooflineParams | None = None,
    stages: Sequence[str] = FIT_STAGES,
    scheme: str = "staged",
    prior_scale: float = 1.0,
    priors: list[Prior] | None = None,
) -> FitResult:
    """Fit RooflineParams to ``measured`` (see module doc); ``prior_scale`` widens (> 1) or tightens the priors."""
    if scheme not in SCHEMES:
        raise UserError(f"unknown fit scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    start = start or RooflineParams()
    if len({m.key for m in measured}) != len(measured):
        raise UserError("measured workloads must have distinct keys")
    predictors = {m.key: StagePredictor(spec, m.workload, hardware, precision) for m in measured}
    obs = observations(measured, stages)
    # Stages a staged step reads beyond the disjoint ones (vision: SAM + CLIP + the nested ranges' host gaps).
    extra = [o for o in observations(measured, STEP_ONLY_STAGES) if o.stage not in stages]
    if not obs:
        raise UserError(f"nothing to calibrate against: no positive time for any of {', '.join(stages)}")
    cats = set().union(*(p.matmul_categories() for p in predictors.values()))
    compute_dtype = next(iter(predictors.values())).precision.compute_dtype
    priors = priors or default_priors(hardware, start, compute_dtype, sorted(cats))
    if start.implementation == "hf-official":
        # Its decode syncs the host with the GPU 12 times a step and issues ~1300 kernels from Python:
        # the host sets the pace, and a decode time could as well be "explained" by a GPU-side launch
        # gap 4× too long (which would then make vision and prefill GPU-bound). Keep that gap at its prior.
        priors = [p for p in priors if p.name != "launch_overhead_us"]
    steps: list[tuple[str, list[Observation], list[Prior]]] = []
    if scheme == "joint":
        steps.append(("joint", obs + extra, priors))
    else:
        claimed: set[str] = set()
        for name, step_stages, wants in STAGED_STEPS:
            mine = [p for p in priors if wants(p.name) and p.name not in claimed]
            claimed.update(p.name for p in mine)
            steps.append((name, [o for o in obs + extra if o.stage in step_stages], mine))
        rest = [p for p in priors if p.name not in claimed]
        steps.append(("all stages", obs, rest))
    params, fitted, iterations, converged = start, [], 0, True
    for name, step_obs, step_priors in steps:
        if not step_priors:
            continue
        if not step_obs:  # nothing measured for this step: keep the starting values, say so
            fitted += [
                FittedParam(
                    name=p.name,
                    start=get_value(start, p.name),
                    prior=p.center,
                    value=get_value(params, p.name),
                    log_sigma=None,
                    sources={"prior": 1.0},
                    step=f"{name} (not measured)",
                )
                for p in step_priors
            ]
            continue
        block = solve_block(Problem(predictors, step_obs, step_priors, params, prior_scale), step=name)
        params, iterations, converged = block.params, iterations + block.iterations, converged and block.converged
        fitted += block.fitted
    order = {p.name: i for i, p in enumerate(priors)}
    fitted.sort(key=lambda f: order[f.name])
    whole = Problem(predictors, obs, [], start)
    before, after = whole.predict([]), Problem(predictors, obs, [], params).predict([])
    rows = [
        FitRow(
            key=o.key,
            stage=o.stage,
            measured_ms=o.measured_ms,
            sigma=o.sigma,
            before_ms=before[o.key][o.stage],
            after_ms=after[o.key][o.stage],
        )
        for o in obs
    ]
    return FitResult(
        params=params,
        start=start,
        fitted=fitted,
        rows=rows,
        iterations=iterations,
        converged=converged,
        cost_before=_data_cost(rows, before=True),
        cost_after=_data_cost(rows, before=False),
        hardware_id=hardware.id,
        precision=precision,
        workloads={m.key: m.describe() for m in measured},
        scheme=scheme,
    )


def _data_cost(rows: Sequence[FitRow], *, before: bool) -> float:
    """½ Σ ((log pred − log meas) / σ)² over the observations (priors excluded)."""
    return 0.5 * sum(
        ((math.log(r.before_ms if before else r.after_ms) - math.log(r.measured_ms)) / r.sigma) ** 2 for r in rows
    )
