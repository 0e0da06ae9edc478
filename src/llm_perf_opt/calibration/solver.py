"""The MAP solver behind :mod:`.fit`: log-space residuals, a global coordinate pass, Levenberg–Marquardt.

Residuals: ``(log t_pred − log t_meas) / σ`` per observation and ``(log θ − log θ_prior) / τ`` per
parameter. The roofline is a max of terms, so a parameter whose operators are off the critical
term has zero gradient; a coordinate pass over a log grid between the bounds finds such a
parameter when moving it explains the data better, then Levenberg–Marquardt (forward-difference
Jacobian, steps projected onto the bounds) polishes. Plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import define, evolve, field

from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration.linalg import Matrix, inverse, solve, transpose_times, transpose_vec
from llm_perf_opt.calibration.predict import StagePredictor

COMPUTE = "compute_efficiency."
_H = 1e-4


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
    converged: bool
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

    def jacobian(self, x: Sequence[float], r: Sequence[float]) -> Matrix:
        cols = []
        for i in range(len(x)):
            step = _H if x[i] + _H <= self.hi[i] else -_H
            moved = list(x)
            moved[i] += step
            cols.append([(b - a) / step for a, b in zip(r, self.residuals(moved), strict=True)])
        return [list(row) for row in zip(*cols, strict=True)]


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


def levenberg_marquardt(prob: Problem, x: list[float], max_iter: int = 200) -> tuple[list[float], int, bool]:
    r = prob.residuals(x)
    cost, lam, n = _cost(r), 1e-3, len(x)
    for it in range(1, max_iter + 1):
        jac = prob.jacobian(x, r)
        a, g = transpose_times(jac, jac), transpose_vec(jac, r)
        while True:
            m = [[a[i][j] + (lam * max(a[i][i], 1e-12) if i == j else 0.0) for j in range(n)] for i in range(n)]
            try:
                delta = solve(m, [-v for v in g])
            except ValueError:
                delta = [0.0] * n
            x_new = prob.clip([v + d for v, d in zip(x, delta, strict=True)])
            r_new = prob.residuals(x_new)
            cost_new = _cost(r_new)
            if cost_new <= cost:
                break
            lam *= 4
            if lam > 1e12:
                return x, it, True  # no descent direction left: a (bounded) minimum
        step = max(abs(p - q) for p, q in zip(x, x_new, strict=True))
        gain = cost - cost_new
        x, r, cost, lam = x_new, r_new, cost_new, max(lam / 3, 1e-9)
        if step < 1e-7 or gain < 1e-12 * (1.0 + cost):
            return x, it, True
    return x, max_iter, False


def solve_block(prob: Problem, step: str = "joint") -> BlockResult:
    """Minimise, then describe every parameter: value, posterior spread, where its information comes from."""
    x0 = prob.clip([math.log(max(get_value(prob.start, p.name), 1e-9)) for p in prob.priors])
    cost0 = _cost(prob.residuals(x0))
    x, iterations, converged = levenberg_marquardt(prob, coordinate_search(prob, x0))
    again = coordinate_search(prob, x, rounds=1)
    if _cost(prob.residuals(again)) < _cost(prob.residuals(x)) * (1 - 1e-6):
        x, more, converged = levenberg_marquardt(prob, again)
        iterations += more
    r = prob.residuals(x)
    jac = prob.jacobian(x, r)
    try:
        cov: Matrix | None = inverse(transpose_times(jac, jac))
    except ValueError:
        cov = None
    fitted, n_obs = [], len(prob.obs)
    for i, p in enumerate(prob.priors):
        info: dict[str, float] = {}
        for j, o in enumerate(prob.obs):
            info[o.label] = info.get(o.label, 0.0) + jac[j][i] ** 2
        info["prior"] = jac[n_obs + i][i] ** 2
        total = sum(info.values()) or 1.0
        bound = "lower" if x[i] <= prob.lo[i] + 1e-9 else "upper" if x[i] >= prob.hi[i] - 1e-9 else None
        fitted.append(
            FittedParam(
                name=p.name,
                start=get_value(prob.start, p.name),
                prior=p.center,
                value=math.exp(x[i]),
                log_sigma=math.sqrt(max(cov[i][i], 0.0)) if cov is not None else None,
                at_bound=bound,
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
