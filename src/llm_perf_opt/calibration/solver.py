"""The MAP solver behind :mod:`.fit`: log-space residuals, a global coordinate pass, then
``scipy.optimize.least_squares``.

Residuals: ``(log t_pred − log t_meas) / σ`` per observation and ``(log θ − log θ_prior) / τ`` per
parameter. The roofline is a max of terms, so a parameter whose operators are off the critical
term has zero gradient; a coordinate pass over a log grid between the bounds finds such a
parameter when moving it explains the data better, then scipy's bounded least squares polishes
(``dogbox``, a forward-difference Jacobian, variables scaled by it: on this max-of-terms cost it
converges in about ten Jacobians where the default ``trf`` needs hundreds). scipy (the ``[calibrate]`` extra) is
imported only when a fit runs, so the analytic path and ``what-if`` stay light.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import define, evolve, field

from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration.predict import StagePredictor

COMPUTE = "compute_efficiency."
_H = 1e-4
"""Forward-difference step in log θ: large against the float noise of a sum of many kernel times."""


def get_value(params: RooflineParams, name: str) -> float:
    """A fittable parameter by name: ``compute_efficiency.<category>`` or a float field."""
    if name.startswith(COMPUTE):
        return params.efficiency(name[len(COMPUTE) :])
    return float(getattr(params, name))


def with_values(params: RooflineParams, values: Mapping[str, float]) -> RooflineParams:
    """``params`` with the named parameters replaced."""
    effs = dict(params.compute_efficiency)
    plain: dict[str, float] = {}
    for name, value in values.items():
        if name.startswith(COMPUTE):
            effs[name[len(COMPUTE) :]] = value
        else:
            plain[name] = value
    changes: dict[str, Any] = {"compute_efficiency": effs, **plain}
    return evolve(params, **changes)


@define(frozen=True, kw_only=True)
class Prior:
    name: str
    center: float
    log_sigma: float
    lower: float
    upper: float


@define(kw_only=True)
class Observation:
    key: str
    stage: str
    measured_ms: float
    sigma: float
    """Standard deviation of log(measured)."""

    @property
    def label(self) -> str:
        return f"{self.stage} @ {self.key}"


@define(kw_only=True)
class FittedParam:
    name: str
    start: float
    prior: float
    value: float
    log_sigma: float | None
    """Posterior 1σ of log(value) (linearised); None when the information matrix is singular."""
    at_bound: str | None = None
    sources: dict[str, float] = field(factory=dict)
    """``prior`` or an observation label → share of this parameter's information (sums to 1)."""
    step: str = ""
    """The fit step (stages it saw) that set this parameter."""

    def main_sources(self, limit: int = 3, min_share: float = 0.02) -> str:
        items = sorted(self.sources.items(), key=lambda kv: -kv[1])
        shown = [f"{k} {v:.0%}" for k, v in items[:limit] if v >= min_share]
        return ", ".join(shown) or "prior 100%"

    @property
    def data_share(self) -> float:
        return 1.0 - self.sources.get("prior", 1.0)


@define(kw_only=True)
class BlockResult:
    params: RooflineParams
    fitted: list[FittedParam]
    iterations: int
    """Jacobian evaluations of scipy's least_squares (summed over the fit's steps)."""
    converged: bool
    """Every least_squares run stopped on a tolerance, not on its evaluation budget."""
    cost_before: float
    cost_after: float


def _cost(r: Sequence[float]) -> float:
    return 0.5 * sum(v * v for v in r)


class Problem:
    """Observations and priors of one fit (or one step of a staged fit) around ``start``."""

    def __init__(
        self,
        predictors: Mapping[str, StagePredictor],
        obs: Sequence[Observation],
        priors: Sequence[Prior],
        start: RooflineParams,
        prior_scale: float = 1.0,
    ) -> None:
        self.predictors, self.obs, self.priors, self.start = predictors, list(obs), list(priors), start
        self.tau = [p.log_sigma * prior_scale for p in priors]
        self.lo = [math.log(p.lower) for p in priors]
        self.hi = [math.log(p.upper) for p in priors]
        self.keys = sorted({o.key for o in obs})

    def params(self, x: Sequence[float]) -> RooflineParams:
        return with_values(self.start, {p.name: math.exp(v) for p, v in zip(self.priors, x, strict=True)})

    def predict(self, x: Sequence[float]) -> dict[str, dict[str, float]]:
        params = self.params(x)
        return {key: self.predictors[key].times_ms(params) for key in self.keys}

    def residuals(self, x: Sequence[float]) -> list[float]:
        preds = self.predict(x)
        data = [(math.log(max(preds[o.key][o.stage], 1e-12)) - math.log(o.measured_ms)) / o.sigma for o in self.obs]
        prior = [(v - math.log(p.center)) / t for v, p, t in zip(x, self.priors, self.tau, strict=True)]
        return data + prior

    def clip(self, x: Sequence[float]) -> list[float]:
        return [min(max(v, lo), hi) for v, lo, hi in zip(x, self.lo, self.hi, strict=True)]


def coordinate_search(prob: Problem, x: list[float], *, rounds: int = 2, points: int = 17) -> list[float]:
    """Per parameter, the best point of a log grid between its bounds (the others fixed)."""
    best = _cost(prob.residuals(x))
    for _ in range(rounds):
        improved = False
        for i in range(len(x)):
            for k in range(points):
                trial = list(x)
                trial[i] = prob.lo[i] + (prob.hi[i] - prob.lo[i]) * k / (points - 1)
                cost = _cost(prob.residuals(trial))
                if cost < best * (1 - 1e-9):
                    best, x, improved = cost, trial, True
        if not improved:
            break
    return x


def _least_squares(prob: Problem, x: list[float]) -> Any:
    """scipy's bounded least squares from ``x``; the OptimizeResult (``x``, ``jac``, ``active_mask``, ``njev``)."""
    from scipy.optimize import least_squares  # the [calibrate] extra: only a fit needs it

    return least_squares(
        prob.residuals,
        prob.clip(x),  # a grid point at a bound can overshoot it by a rounding error
        bounds=(prob.lo, prob.hi),
        method="dogbox",
        x_scale="jac",
        diff_step=_H,
        xtol=1e-10,
        ftol=1e-12,
        gtol=1e-10,
        max_nfev=200 * (len(x) + 1),
    )


def solve_block(prob: Problem, step: str = "joint") -> BlockResult:
    """Minimise, then describe every parameter: value, posterior spread, where its information comes from."""
    import numpy as np  # comes with scipy (the [calibrate] extra)

    x0 = prob.clip([math.log(max(get_value(prob.start, p.name), 1e-9)) for p in prob.priors])
    cost0 = _cost(prob.residuals(x0))
    # Two starts: the eager queue's max() kinks make the cost non-convex, and a coordinate search can lead
    # the trust region into a worse basin than the plain start (or the other way round); keep the better.
    runs = [_least_squares(prob, coordinate_search(prob, x0)), _least_squares(prob, x0)]
    res = min(runs, key=lambda r: _cost(prob.residuals(prob.clip(r.x.tolist()))))
    iterations, converged = sum(int(r.njev) for r in runs), bool(res.status > 0)
    x = prob.clip(res.x.tolist())
    again = coordinate_search(prob, x, rounds=1)
    if _cost(prob.residuals(again)) < _cost(prob.residuals(x)) * (1 - 1e-6):
        res = _least_squares(prob, again)
        iterations, converged = iterations + int(res.njev), bool(res.status > 0)
        x = prob.clip(res.x.tolist())
    r = prob.residuals(x)
    jac = np.asarray(res.jac, dtype=float)
    try:
        cov: Any = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        cov = None
    fitted, n_obs = [], len(prob.obs)
    for i, p in enumerate(prob.priors):
        info: dict[str, float] = {}
        for j, o in enumerate(prob.obs):
            info[o.label] = info.get(o.label, 0.0) + float(jac[j, i]) ** 2
        info["prior"] = float(jac[n_obs + i, i]) ** 2
        total = sum(info.values()) or 1.0
        lower = res.active_mask[i] < 0 or x[i] <= prob.lo[i] + 1e-9
        upper = res.active_mask[i] > 0 or x[i] >= prob.hi[i] - 1e-9
        fitted.append(
            FittedParam(
                name=p.name,
                start=get_value(prob.start, p.name),
                prior=p.center,
                value=math.exp(x[i]),
                log_sigma=math.sqrt(max(float(cov[i, i]), 0.0)) if cov is not None else None,
                at_bound="lower" if lower else "upper" if upper else None,
                sources={k: v / total for k, v in info.items()},
                step=step,
            )
        )
    return BlockResult(
        params=prob.params(x),
        fitted=fitted,
        iterations=iterations,
        converged=converged,
        cost_before=cost0,
        cost_after=_cost(r),
    )
