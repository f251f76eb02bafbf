"""EM allocation: split each group's total across its entities, learning entity rates.

Model. Entity h in group b contributes z_bh with mean rate_h * w_bh; the group observes only
y_b = sum_h z_bh, with mean mu_b = sum_h rate_h w_bh.

* Poisson (units; also a quasi-likelihood for continuous contributions): z_bh ~ Poisson, so
  y_b ~ Poisson(mu_b) and z_b | y_b is multinomial with shares rate_h w_bh / mu_b.
* Gamma (currency, common shape k): y_b ~ Gamma(shape k, mean mu_b), the parts of a group
  sharing its scale, so z_b | y_b = y_b * Dirichlet(k * shares) with the same shares.

E-step (both families): z_bh = y_b rate_h w_bh / mu_b, so sum_h z_bh = y_b exactly.

M-step. Poisson: rate_h = sum_b z_bh / sum_b w_bh (free), or a log-link Poisson GLM of the
credits with offset log sum_b w_bh (covariates). Gamma: the E-step weights also define a
minorising surrogate of the Gamma log-likelihood -y/mu - log mu (Jensen on 1/mu, tangent on
log mu), maximised by rate_h = sqrt(a_h / B_h) with a_h = sum_b y_b rate_h^2 w_bh / mu_b^2 and
B_h = sum_b w_bh / mu_b (free), or by a Newton fit of log rate = X beta (covariates). Either
way every pass increases the observed objective (log-likelihood minus the ridge penalty);
the trace records it and any decrease beyond 1e-9 relative is flagged.

Precision of the coefficients (covariates): a sandwich on the observed-data likelihood of
the totals, clustered by group and by entity (``glm.coefficient_covariance``); the M-step's
complete-data curvature would overstate it by the information lost to aggregation.

Scale. The likelihood fixes the level of the rates (outcome per unit of exposure) in each
connected block; reported productivities divide by the block's arithmetic mean rate.

Acceleration: SQUAREM (Varadhan & Roland 2008, scheme S3) on the rates themselves (free;
extrapolations kept positive) or on the standardised coefficients (GLM), with the usual
adaptive step bound, and a safeguard: an extrapolated point is kept only if its objective,
after the stabilising EM pass, is at least that of the cycle's start. (Extrapolating log
rates instead fails here: rates heading to a zero maximum dominate the step length.)

Each pass is two sparse matrix-vector products over the long table (``W @ rate`` and
``W.T @ ratio``, split over threads for large tables, see ``sparse.py``); nothing loops over
groups or entities in Python.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln, psi

from attribution_analysis.allocation import glm
from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.allocation.sparse import BlockedMatrix
from attribution_analysis.errors import ParameterError

Family = Literal["poisson", "gamma"]
MONOTONE_TOL = 1e-9  # relative decrease of the objective tolerated as rounding
STEP_GROWTH = 4.0  # SQUAREM 'mstep': factor by which the step bound grows or shrinks
EXTRAPOLATION_FLOOR = 1e-3  # an extrapolated free rate keeps at least this share of its value


@dataclass(frozen=True, eq=False)
class EMFit:
    """The result of :func:`fit_em`; arrays are aligned with the problem's codes."""

    family: Family
    m_step: Literal["free", "glm"]
    rate: np.ndarray  # (H,) outcome per unit exposure; NaN where not estimable (free)
    estimable: np.ndarray  # (H,) bool: positive (weighted) exposure somewhere
    share: np.ndarray  # (N,) share of the group total, row order of the problem
    allocated: np.ndarray  # (N,) credit = total x share
    group_mean: np.ndarray  # (G,) mu_b at the estimate
    coefficients: np.ndarray | None  # original-unit beta (glm)
    coefficient_names: list[str]
    loglik: float
    objective: float
    trace: np.ndarray
    iterations: int  # EM passes (fixed-point evaluations)
    cycles: int  # accepted iterates
    rejected: int  # SQUAREM extrapolations refused by the safeguard
    accelerated: bool
    converged: bool
    tol: float
    unallocatable: np.ndarray  # group codes whose total cannot be split
    mass_error: float  # max relative |sum_h z_bh - y_b| over allocatable groups
    gamma_shape: float | None
    parameter_of_entity: np.ndarray  # (H,) index of the rate each entity uses (ties)
    seconds: float  # wall time of the EM passes (set-up and final split excluded)
    beta_standardized: np.ndarray | None = field(default=None, repr=False)
    # (p, p) robust covariance of ``coefficients`` (sandwich on the penalised observed-data
    # likelihood); None for free rates or when the curvature cannot be inverted.
    coefficient_covariance: np.ndarray | None = field(default=None, repr=False)

    @property
    def coefficient_std_error(self) -> np.ndarray | None:
        if self.coefficient_covariance is None:
            return None
        return np.sqrt(np.clip(np.diag(self.coefficient_covariance), 0.0, None))

    @property
    def max_relative_decrease(self) -> float:
        if len(self.trace) < 2:
            return 0.0
        drops = -np.diff(self.trace) / np.maximum(np.abs(self.trace[:-1]), 1e-300)
        return max(float(drops.max()), 0.0) + 0.0  # + 0.0 turns -0.0 into 0.0

    @property
    def monotone(self) -> bool:
        return self.max_relative_decrease <= MONOTONE_TOL


def _tie_index(n_entities: int, tied: Sequence[np.ndarray]) -> np.ndarray:
    """Entity -> parameter index, entities of one tied set sharing one parameter."""
    index = np.arange(n_entities)
    for members in tied:
        members = np.asarray(members, dtype=np.int64)
        if len(members) > 1:
            index[members] = members.min()
    return np.unique(index, return_inverse=True)[1]


@dataclass
class _Model:
    """Everything one EM pass needs, precomputed once per fit."""

    problem: AllocationProblem
    family: Family
    weight: np.ndarray  # (G,) group weights, 0 outside the likelihood
    exposure: np.ndarray  # (H,) weighted total exposure
    param: np.ndarray  # (H,) parameter index (free)
    active: np.ndarray  # (H,) bool: rate is a free parameter (free)
    n_params: int
    design: glm.Standardized | None
    penalty: np.ndarray | None
    const: float  # log-likelihood constant (Poisson: -sum lgamma(y + 1))

    def __post_init__(self) -> None:
        self.used = self.weight > 0
        self.weighted_total = self.weight * self.problem.totals
        self.positive = self.weighted_total > 0
        # Fast paths: with every group used (and, for the log term, every total positive)
        # the per-pass group-level work is a few whole-array operations, no masking.
        self.all_used = bool(self.used.all())
        self.all_positive = bool(self.positive.all())
        self.tied = self.n_params != self.problem.n_entities
        self.param_exposure = np.bincount(self.param, self.exposure, self.n_params)
        self.param_active = np.bincount(self.param, self.active, self.n_params) > 0
        self.products = BlockedMatrix(self.problem.matrix)

    def rate(self, theta: np.ndarray) -> np.ndarray:
        if self.design is not None:
            return np.exp(self.design.matrix @ theta)
        if not self.tied and self.active.all():
            return theta
        return np.where(self.active, theta[self.param], 0.0)

    def project(self, theta: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Keep an extrapolated point feasible: free rates stay positive.

        A rate pushed to zero would stay there (the EM update is multiplicative), so a
        negative extrapolation is floored at a fraction of the current rate instead.
        """
        if self.design is not None:
            return theta
        return np.maximum(theta, EXTRAPOLATION_FLOOR * reference)

    def _divide(self, numerator: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """numerator / mean on the groups in the likelihood, 0 elsewhere."""
        if self.all_used:
            return numerator / mean
        return np.divide(numerator, mean, out=np.zeros_like(mean), where=self.used)

    def _log_term(self, mean: np.ndarray) -> float:
        """sum over groups of weight * y * log(mean) (0 where the total is 0)."""
        if self.all_positive:
            return float(self.weighted_total @ np.log(mean))
        logs = np.log(mean, out=np.zeros_like(mean), where=self.positive)
        return float(self.weighted_total @ logs)

    def loglik(self, mean: np.ndarray) -> float:
        """Observed log-likelihood (Gamma: shape 1) at the group means ``mean``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.family == "poisson":
                value = self._log_term(mean) - self.weight @ mean + self.const
            else:
                logs = np.log(mean, out=np.zeros_like(mean), where=self.used)
                value = -(self.weighted_total @ self._divide(1.0, mean)) - self.weight @ logs
        return float(value) if np.isfinite(value) else -np.inf

    def penalized(self, theta: np.ndarray, loglik: float) -> float:
        if self.penalty is None:
            return loglik
        return loglik - 0.5 * float(theta @ self.penalty @ theta)

    def _per_param(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.param, values, self.n_params) if self.tied else values

    def step(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """One EM pass: (next parameters, objective at ``theta``).

        Two sparse products over the long table (``W @ rate`` for the group means, then
        ``W.T @`` a group-level ratio for the E-step sums per entity) and a few whole-array
        operations on groups and entities.
        """
        rate = self.rate(theta)
        mean = self.products.matvec(rate)
        loglik = self.loglik(mean)
        objective = self.penalized(theta, loglik) if np.isfinite(loglik) else -np.inf
        if not np.isfinite(objective):
            return theta, -np.inf
        if self.family == "poisson":
            credit = rate * self.products.rmatvec(self._divide(self.weighted_total, mean))
            if self.design is None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    new = self._per_param(credit) / self.param_exposure
                return np.where(self.param_active, new, theta), objective
            return glm.fit_poisson(
                self.design.matrix, credit, self.exposure, theta, self.penalty
            ), objective
        inverse = self._divide(self.weight, mean)
        a = rate**2 * self.products.rmatvec(inverse * self._divide(self.problem.totals, mean))
        b = self.products.rmatvec(inverse)
        if self.design is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                new = np.sqrt(self._per_param(a) / self._per_param(b))
            return np.where(self.param_active, new, theta), objective
        return glm.fit_gamma_surrogate(self.design.matrix, a, b, theta, self.penalty), objective


def _converged(
    model: _Model, old: np.ndarray, new: np.ndarray, f_old: float, f_new: float, tol: float
) -> bool:
    """Relative change of the objective, and of the rates weighted by exposure, below tol.

    The rate change is measured on the expected credit rate_h x exposure_h (L1, relative to
    the total): scale-free, comparable across blocks, and not held hostage by entities whose
    rate creeps towards 0 at the boundary (EM approaches such a maximum sublinearly, while
    their credit is already negligible).
    """
    if not (np.isfinite(f_old) and np.isfinite(f_new)):
        return False
    if abs(f_new - f_old) > tol * max(abs(f_old), 1e-300):
        return False
    r_old, r_new = model.rate(old), model.rate(new)
    scale = float(r_old @ model.exposure)
    return bool(np.abs(r_new - r_old) @ model.exposure <= tol * max(scale, 1e-300))


@dataclass
class _Run:
    theta: np.ndarray
    trace: list[float]
    evaluations: int
    cycles: int
    rejected: int
    converged: bool


def _plain(model: _Model, theta: np.ndarray, tol: float, max_iter: int) -> _Run:
    trace: list[float] = []
    previous: np.ndarray | None = None
    for evaluation in range(1, max_iter + 1):
        following, value = model.step(theta)
        trace.append(value)
        if previous is not None and _converged(model, previous, theta, trace[-2], value, tol):
            return _Run(theta, trace, evaluation, evaluation, 0, True)
        previous, theta = theta, following
    return _Run(theta, trace, max_iter, max_iter, 0, False)


def _squarem(model: _Model, theta: np.ndarray, tol: float, max_iter: int) -> _Run:
    """SQUAREM S3 with the monotonicity safeguard (see module docstring).

    The extrapolated point is stabilised by one EM pass, as in Varadhan & Roland; its
    objective is known only at the next cycle's first pass, so acceptance is checked there:
    if it fell below the previous cycle's start, the cycle restarts from that cycle's plain
    two-step EM point (whose objective cannot be lower), costing one extra pass.
    """
    trace: list[float] = []
    evaluations = cycles = rejected = 0
    step_max = 1.0
    pending: tuple[np.ndarray, float, float] | None = None  # (fallback, start value, alpha)
    while evaluations + 2 <= max_iter:
        first, f0 = model.step(theta)
        evaluations += 1
        if pending is not None:
            fallback, start_value, alpha = pending
            pending = None
            if not (np.isfinite(f0) and f0 >= start_value):
                rejected += 1
                if alpha == step_max:
                    step_max = max(1.0, step_max / STEP_GROWTH)
                theta = fallback
                first, f0 = model.step(theta)
                evaluations += 1
            elif alpha == step_max:
                step_max *= STEP_GROWTH
        second, f1 = model.step(first)
        evaluations += 1
        trace.append(f0)
        cycles += 1
        if _converged(model, theta, first, f0, f1, tol):
            trace.append(f1)
            return _Run(first, trace, evaluations, cycles, rejected, True)
        r = first - theta
        v = second - first - r
        sv2 = float(v @ v)
        alpha = np.sqrt(float(r @ r) / sv2) if sv2 > 0 else 1.0
        alpha = float(np.clip(alpha, 1.0, step_max))
        if alpha > 1.0 and evaluations < max_iter:
            extrapolated = model.project(theta + 2.0 * alpha * r + alpha**2 * v, theta)
            stabilized, f_ext = model.step(extrapolated)
            evaluations += 1
            if np.isfinite(f_ext):
                pending = (second, f0, alpha)
                theta = stabilized
                continue
            rejected += 1
            if alpha == step_max:
                step_max = max(1.0, step_max / STEP_GROWTH)
        elif alpha == step_max:
            step_max *= STEP_GROWTH
        theta = second
    _, value = model.step(theta)
    evaluations += 1
    if pending is not None and not (np.isfinite(value) and value >= pending[1]):
        theta = pending[0]  # the last extrapolation was never checked: fall back
        _, value = model.step(theta)
        evaluations += 1
        rejected += 1
    trace.append(value)
    return _Run(theta, trace, evaluations, cycles, rejected, False)


def gamma_shape(totals: np.ndarray, mean: np.ndarray, weight: np.ndarray) -> float | None:
    """ML common Gamma shape k given the fitted means (groups with a positive total)."""
    use = (weight > 0) & (totals > 0) & (mean > 0)
    if use.sum() < 2:
        return None
    ratio = totals[use] / mean[use]
    s = float(np.average(ratio - np.log(ratio) - 1.0, weights=weight[use]))
    if s <= 1e-12:
        return None  # a perfect fit: the shape is unbounded
    if s < 1e-6:
        return 1.0 / (2.0 * s)  # log k - psi(k) ~ 1/(2k) for large k; brentq stalls there
    # Solve on log k: the root spans many orders of magnitude.
    return float(
        np.exp(brentq(lambda u: u - psi(np.exp(u)) - s, np.log(1e-8), np.log(1e12), maxiter=500))
    )


def fit_em(
    problem: AllocationProblem,
    *,
    family: Family = "poisson",
    design: np.ndarray | None = None,
    design_names: Sequence[str] | None = None,
    ridge: float = 0.1,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    accelerate: bool = True,
    group_weights: np.ndarray | None = None,
    tied: Sequence[np.ndarray] = (),
    start: EMFit | None = None,
    standard_errors: bool = True,
) -> EMFit:
    """Fit entity rates by EM and split every group's total across its entities.

    Parameters
    ----------
    problem
        Totals and the long exposure table.
    family
        'poisson' (units, or contributions as a quasi-likelihood) or 'gamma' (currency).
    design
        (entities x covariates) design whose first column is the intercept; None fits one
        free rate per entity.
    design_names
        Names of the design columns, reported with the coefficients.
    ridge
        Penalty on standardised coefficients, in units of one average group's information
        (Poisson: the mean group total; Gamma: 1).
    tol
        Relative tolerance on the objective and on the rates between EM passes.
    max_iter
        Most EM passes before giving up (one more evaluates the point returned).
    accelerate
        Use SQUAREM.
    group_weights
        Non-negative weights of the groups' log-likelihood terms (bootstrap counts).
    tied
        Sets of entity codes that share one free rate (non-separable entities).
    start
        A previous fit on the same problem and design to start from.
    standard_errors
        Compute the robust covariance of the coefficients (covariate model only); bootstrap
        refits skip it.

    Returns
    -------
    EMFit
        Rates, shares, credits, the objective trace and convergence facts.
    """
    n_h = problem.n_entities
    weight = np.ones(problem.n_groups) if group_weights is None else np.asarray(group_weights)
    allocatable = problem.group_exposure > 0
    weight = np.where(allocatable, weight, 0.0).astype(float)
    if family == "gamma":
        # A Gamma has no mass at 0 (its log-likelihood rewards mu -> 0 there without
        # bound): groups with total 0 stay out of the fit; they have nothing to split anyway.
        weight[problem.totals <= 0] = 0.0
    mass = float(weight @ problem.totals)
    if mass <= 0:
        raise ParameterError(
            "every allocatable group total is zero: there is nothing to allocate and no rate "
            "can be estimated.",
            fix="check the totals (sales or contributions) and the window.",
        )
    exposure = problem.matrix.T @ weight
    estimable = exposure > 0
    signal = problem.matrix.T @ (weight * (problem.totals > 0))
    param = _tie_index(n_h, tied)
    n_params = int(param.max()) + 1 if n_h else 0
    # Entities whose groups all have total 0 have rate 0 exactly (the MLE): fixed, not fitted.
    active = estimable & (np.bincount(param, signal, n_params) > 0)[param]
    if design is None:
        # Groups where every entity has rate 0 have total 0: a constant term, left out.
        weight[(problem.matrix @ active.astype(float)) <= 0] = 0.0
    level = mass / float(weight @ problem.group_exposure)

    standardized = penalty = None
    const = 0.0
    if family == "poisson":
        const = -float(np.sum(weight * gammaln(problem.totals + 1.0)))
    if design is not None:
        design = np.asarray(design, dtype=float)
        if design.shape[0] != n_h or not np.allclose(design[:, 0], 1.0):
            raise ParameterError(
                "the design needs one row per entity and an intercept as its first column.",
                fix="build it with attribution_analysis.allocation.covariates.build_design.",
            )
        standardized = glm.standardize(design)
        info = mass / max(float(weight[allocatable].sum()), 1.0) if family == "poisson" else 1.0
        penalty = glm.penalty_matrix(design.shape[1], ridge * info)
        if start is not None and start.beta_standardized is not None:
            theta = start.beta_standardized.copy()
        else:
            theta = np.zeros(design.shape[1])
            theta[0] = np.log(level)
    elif start is not None and start.m_step == "free":
        theta = np.full(n_params, level)
        known = (start.rate > 0) & np.isfinite(start.rate)
        theta[param[known]] = start.rate[known]
    else:
        theta = np.full(n_params, level)

    model = _Model(
        problem=problem,
        family=family,
        weight=weight,
        exposure=exposure,
        param=param,
        active=active,
        n_params=n_params,
        design=standardized,
        penalty=penalty,
        const=const,
    )
    started = time.perf_counter()
    run = (_squarem if accelerate else _plain)(model, theta, tol, max_iter)
    seconds = time.perf_counter() - started
    rate = model.rate(run.theta)
    mean = problem.matrix @ rate
    loglik = model.loglik(mean)
    objective = model.penalized(run.theta, loglik)

    with np.errstate(divide="ignore", invalid="ignore"):
        row_mean = mean[problem.group]
        share = np.where(row_mean > 0, rate[problem.entity] * problem.exposure / row_mean, 0.0)
    allocated = problem.totals[problem.group] * share
    summed = np.bincount(problem.group, allocated, problem.n_groups)
    check = allocatable & (problem.totals > 0)
    mass_error = float(
        np.max(np.abs(summed[check] - problem.totals[check]) / problem.totals[check], initial=0.0)
    )
    shape = gamma_shape(problem.totals, mean, weight) if family == "gamma" else None
    covariance = None
    if design is None:
        reported = np.where(estimable, rate, np.nan)
        coefficients = None
        names: list[str] = []
    else:
        reported = rate
        coefficients = standardized.to_original(run.theta)
        names = list(design_names) if design_names is not None else []
    if standardized is not None and penalty is not None and standard_errors:
        robust = glm.coefficient_covariance(
            family,
            problem.matrix,
            rate,
            standardized.matrix,
            mean,
            problem.totals,
            weight,
            penalty,
        )
        if robust is not None:
            jac = standardized.jacobian()
            covariance = jac @ robust @ jac.T
    return EMFit(
        family=family,
        m_step="free" if design is None else "glm",
        rate=reported,
        estimable=estimable,
        share=share,
        allocated=allocated,
        group_mean=mean,
        coefficients=coefficients,
        coefficient_names=names,
        loglik=loglik,
        objective=objective,
        trace=np.asarray(run.trace),
        iterations=run.evaluations,
        cycles=run.cycles,
        rejected=run.rejected,
        accelerated=accelerate,
        converged=run.converged,
        tol=tol,
        unallocatable=np.flatnonzero(~allocatable),
        mass_error=mass_error,
        gamma_shape=shape,
        parameter_of_entity=param,
        seconds=seconds,
        beta_standardized=None if design is None else run.theta.copy(),
        coefficient_covariance=covariance,
    )
