"""Markdown and YAML for ``analyze --calibrate-from`` / ``--compare-with``: report.md sections, calibration.yaml.

Pure string building (no torch, numpy or matplotlib).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llm_perf_opt.data.stages import MEASURED_STAGE_LABELS
from llm_perf_opt.reporting.text import MISSING, ms, pct, table

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.calibration.compare import WorkloadComparison
    from llm_perf_opt.calibration.fit import FitResult
    from llm_perf_opt.calibration.run_dir import ProfileRun

MAPPING_NOTE = (
    "Stage mapping: the profiler's `prefill` range is the whole first forward, with vision (SAM, CLIP) and the "
    "projector running inside it, while the analytic `prefill` stage is the decoder only. So the analytic prefill "
    'is compared with *measured prefill − vision range* (row "prefill, decoder only"), and the measured first '
    'forward with analytic vision + projector + prefill (row "prefill incl. vision"). Measured vision is the '
    "vision range without the projector range: SAM + CLIP plus view stacking, which the analytic model does not "
    "cost; the projector's newline/separator assembly is costed in analytic projector but runs just outside the "
    "measured projector range. Decode is everything after the first forward (max_new_tokens − 1 steps)."
)


GPU_NOTE = (
    "GPU busy rows: Σ self CUDA time of the stage's operators in the run's torch.profiler pass (top-k operators per "
    "stage, so a lower bound), per call, against the roofline's GPU body Σ max(compute, memory) without the per-kernel "
    "launch term. Busy ≈ wall means the stage is GPU-bound; busy ≪ wall means the GPU waits for the CPU to issue "
    "kernels. They are not fitted: they show whether the calibrated wall times are right for the right reason."
)
FIT_METHOD = {
    "staged": (
        "Maximum-a-posteriori fit in log space (no per-stage factors), staged so that each parameter is fitted only "
        "from the stage it governs, in order: decode → bandwidth efficiency and per-kernel launch overhead; SAM + "
        "CLIP → vision compute efficiencies; projector → projector efficiency; decoder part of prefill → decoder "
        "compute efficiencies. Each step minimises the squared log error of its stages plus a log-normal prior "
        "centred on the starting parameters; compute efficiencies are capped at 1.05 × the measured GEMM ceiling. "
        "'Constrained by' is the parameter's share of Fisher information in its step: 'prior' means this run did "
        "not determine it and it stays near its starting value."
    ),
    "joint": (
        "Maximum-a-posteriori fit in log space (no per-stage factors) of every parameter to every measured stage "
        "at once (SAM, CLIP, projector, decoder part of prefill, decode), with a log-normal prior centred on the "
        "starting parameters; compute efficiencies are capped at 1.05 × the measured GEMM ceiling. 'Constrained by' "
        "is the parameter's share of Fisher information: 'prior' means this run did not determine it."
    ),
}


def render_comparison_md(comparison: WorkloadComparison, run: ProfileRun) -> str:
    """``## Measured vs predicted`` for the run's exact input."""
    rows = [
        [
            r.label,
            f"≥ {ms(r.measured_ms)} (profiler pass)"
            if r.stage.endswith("_gpu")
            else f"{ms(r.measured_ms)} ± {ms(r.measured_std_ms)} (n={r.n})",
            ms(r.predicted_ms),
            f"{r.ratio:.3f}",
            pct(r.error, signed=True),
            r.bound,
        ]
        for r in comparison.rows
    ]
    lines = [
        f"## Measured vs predicted (profile run `{run.run_id}`)",
        "",
        f"Run `{run.path}` on {run.gpu_name or '?'} (hardware `{run.hardware.id}`: {run.hardware_source}), "
        f"{run.precision}, {run.n_runs} timed call(s). Analytic input = the run's exact input ({comparison.key}): "
        f"{comparison.description}; resolution mode from {run.mode_source}. Roofline parameters: those of this "
        "report (`inputs.roofline`).",
        "",
        table(
            ["stage", "measured ms (mean ± std)", "predicted ms", "predicted / measured", "error", "analytic bound"],
            rows,
        ),
        "",
        MAPPING_NOTE,
    ]
    if any(r.stage.endswith("_gpu") for r in comparison.rows):
        lines += ["", GPU_NOTE]
    if len(run.workloads) > 1:
        lines += [
            "",
            f"The run measured {len(run.workloads)} distinct inputs; the table uses the one with the most "
            f"timed calls ({comparison.key}).",
        ]
    if run.warnings:
        lines += ["", *[f"- warning: {w}" for w in run.warnings]]
    return "\n".join(lines)


def _param_rows(fit: FitResult) -> list[list[str]]:
    out = []
    for p in fit.fitted:
        spread = f"×{math.exp(p.log_sigma):.2f}" if p.log_sigma is not None else MISSING
        bound = f" (at {p.at_bound} bound)" if p.at_bound else ""
        out.append([f"`{p.name}`", f"{p.start:.4g}", f"{p.value:.4g}{bound}", spread, p.step, p.main_sources()])
    return out


def render_calibration_md(fit: FitResult, run: ProfileRun) -> str:
    """``## Calibration``: fitted parameters with what constrains each, and the fit per stage."""
    rows = [
        [
            r.key,
            MEASURED_STAGE_LABELS.get(r.stage, r.stage),
            ms(r.measured_ms),
            ms(r.before_ms),
            pct(r.error_before, signed=True),
            ms(r.after_ms),
            pct(r.error_after, signed=True),
        ]
        for r in fit.rows
    ]
    lines = [
        f"## Calibration (fitted to profile run `{run.run_id}`)",
        "",
        f"Run `{run.path}` on {run.gpu_name or '?'} (`{run.hardware.id}`: {run.hardware_source}), {run.precision}. "
        f"Fitted with {len(fit.rows)} stage times of {len(fit.workloads)} workload(s): "
        + "; ".join(f"{k}: {v}" for k, v in fit.workloads.items())
        + ".",
        "",
        FIT_METHOD[fit.scheme],
        "",
        table(["parameter", "start", "fitted", "±1σ", "fitted in step", "constrained by"], _param_rows(fit)),
        "",
        table(["workload", "stage", "measured ms", "before ms", "before error", "fitted ms", "fitted error"], rows),
        "",
        f"scipy least_squares (dogbox): {fit.iterations} Jacobian evaluation(s), "
        f"{'converged' if fit.converged else 'NOT converged'}; "
        f"cost {fit.cost_before:.3g} → {fit.cost_after:.3g}. The fitted parameters are this report's "
        "`inputs.roofline`, written also to `calibration.yaml` (reuse with `--calibration calibration.yaml`); "
        "`what-if` recomputes from `inputs`, so it uses them too.",
    ]
    if run.warnings:
        lines += ["", *[f"- warning: {w}" for w in run.warnings]]
    return "\n".join(lines)


def render_calibration_yaml(fit: FitResult, run: ProfileRun) -> str:
    """RooflineParams YAML (loadable by ``--calibration``) under a comment header with the provenance."""
    from llm_perf_opt.io.convert import to_yaml

    head = [
        "# Roofline parameters fitted by `llm-perf-opt analyze --calibrate-from`.",
        f"# run: {run.run_id} ({run.path})",
        f"# GPU: {run.gpu_name or '?'} -> hardware {run.hardware.id} ({run.hardware_source}); dtype {run.precision}",
        *[f"# workload {k}: {v}" for k, v in fit.workloads.items()],
        f"# fit scheme: {fit.scheme} (see llm_perf_opt.calibration.fit)",
        "# parameter: start -> fitted (1 sigma factor) | fitted in step | constrained by",
        *[
            f"#   {p.name}: {p.start:.4g} -> {p.value:.4g}"
            + (f" (x{math.exp(p.log_sigma):.2f})" if p.log_sigma is not None else "")
            + f" | {p.step} | {p.main_sources()}"
            for p in fit.fitted
        ],
        "# stage: measured ms -> fitted ms (error)",
        *[
            f"#   {r.stage} @ {r.key}: {r.measured_ms:.4g} -> {r.after_ms:.4g} ({pct(r.error_after, signed=True)})"
            for r in fit.rows
        ],
    ]
    return "\n".join(head) + "\n" + to_yaml(fit.params)
