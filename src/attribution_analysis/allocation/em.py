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

Partial pooling (the default for free rates, ``pooling="channel"``): log rates are a random
effect around their channel's (connected block's) mean; the M-step maximises the penalised
quasi-likelihood loglik / phi - sum (log rate - mu)^2 / (2 tau^2), one concave Newton solve
per rate, and (phi, mu, tau^2) are re-estimated from the data between EM runs until they
settle, the alternation accelerated by SQUAREM on the hyperparameters (``pooling.py``). It
starts each rate at its own block's level, never at one level across channels. The fit
carries the Laplace variances of the log rates and a sparse root of their precision for
intervals. ``pooling="none"`` gives the free MLE rates described above, with a warning.

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
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.special import gammaln, psi

from attribution_analysis.allocation import glm
from attribution_analysis.allocation import pooling as partial_pooling
from attribution_analysis.allocation.pooling import Pooling
from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.allocation.sparse import BlockedMatrix
from attribution_analysis.errors import ParameterError

Family = Literal["poisson", "gamma"]
MONOTONE_TOL = 1e-9  # relative decrease of the objective tolerated as rounding
STEP_GROWTH = 4.0  # SQUAREM 'mstep': factor by which the step bound grows or shrinks
EXTRAPOLATION_FLOOR = 1e-3  # an extrapolated free rate keeps at least this share of its value
MAX_HYPER_ROUNDS = 200  # pooled fits: most (EM, hyperparameter) alternations
HYPER_TOL = 1e-4  # pooled fits: change of tau, log phi and the group means counted as none
HYPER_STEP_MAX = 64.0  # pooled fits: largest SQUAREM step on the hyperparameters
HYPER_MAX_MOVE = 2.0  # pooled fits: largest extrapolated move of a log hyperparameter


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
    # Partial pooling (free rates only; see pooling.py). 'none' for free MLE rates and GLMs.
    pooling: Pooling = "none"
    pooling_sd: float | None = None  # tau: spread of log rates around their group's mean
    dispersion: float | None = None  # phi of the quasi-likelihood (design effect included)
    design_effect: float | None = None  # within-cluster correlation factor inside phi
    effective_rates: float | None = None  # trace of the hat matrix (<= number of free rates)
    # (F,) Laplace variances of the log rates of the pooled parameters, and a sparse root A
    # of their precision (A'A, (F, F)) for joint draws; ``pooled_parameters`` (P,) marks
    # which parameters they are.
    log_rate_covariance: np.ndarray | None = field(default=None, repr=False)
    log_rate_precision_root: sp.csr_matrix | None = field(default=None, repr=False)
    pooled_parameters: np.ndarray | None = field(default=None, repr=False)
    # (H,) weight of the entity's own data in its log rate, 1 - posterior var / tau^2: the
    # credibility Z of the pooled fit (NaN where not pooled).
    data_weight: np.ndarray | None = field(default=None, repr=False)
    hyper_rounds: int = 0  # (EM, hyperparameter) alternations of a pooled fit
    hyper_converged: bool = True
    warnings: tuple[str, ...] = ()  # overfit / identification sentences for the findings
    # Pooled fits with a platform signal: its estimated weight in the rates' prior mean.
    signal_weight: partial_pooling.SignalWeight | None = field(default=None, repr=False)

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
    # Pooled free rates: prior mean of each parameter's log rate, its precision 1 / tau^2,
    # and the quasi-likelihood's 1 / phi (None: free MLE rates).
    prior_mean: np.ndarray | None = None
    prior_precision: float = 0.0
    scale: float = 1.0

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
        if self.prior_mean is not None:
            active = self.param_active
            deviation = np.log(theta[active]) - self.prior_mean[active]
            return self.scale * loglik - 0.5 * self.prior_precision * float(deviation @ deviation)
        if self.penalty is None:
            return loglik
        return loglik - 0.5 * float(theta @ self.penalty @ theta)

    def _per_param(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.param, values, self.n_params) if self.tied else values

    def _pooled(
        self, family: str, first: np.ndarray, second: np.ndarray, theta: np.ndarray
    ) -> np.ndarray:
        """The pooled M-step on the active parameters (the others are kept as they are)."""
        assert self.prior_mean is not None
        new = theta.copy()
        active = self.param_active
        new[active] = partial_pooling.newton_log_rate(
            family,
            first[active],
            second[active],
            theta[active],
            self.prior_mean[active],
            self.prior_precision,
            self.scale,
        )
        return new

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
                if self.prior_mean is not None:
                    new = self._pooled(
                        "poisson", self._per_param(credit), self.param_exposure, theta
                    )
                    return np.where(self.param_active, new, theta), objective
                new = free_rate_update("poisson", self._per_param(credit), self.param_exposure)
                return np.where(self.param_active, new, theta), objective
            return glm.fit_poisson(
                self.design.matrix, credit, self.exposure, theta, self.penalty
            ), objective
        inverse = self._divide(self.weight, mean)
        a = rate**2 * self.products.rmatvec(inverse * self._divide(self.problem.totals, mean))
        b = self.products.rmatvec(inverse)
        if self.design is None:
            if self.prior_mean is not None:
                new = self._pooled("gamma", self._per_param(a), self._per_param(b), theta)
                return np.where(self.param_active, new, theta), objective
            new = free_rate_update("gamma", self._per_param(a), self._per_param(b))
            return np.where(self.param_active, new, theta), objective
        return glm.fit_gamma_surrogate(self.design.matrix, a, b, theta, self.penalty), objective


def free_rate_update(family: Family, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The free M-step per parameter from its reduced sufficient statistics.

    Poisson: ``first`` = summed E-step credit, ``second`` = exposure; rate = credit / exposure.
    Gamma: ``first`` = a, ``second`` = B of the module docstring; rate = sqrt(a / B).
    Shared by the in-memory pass and the partitioned one (``allocation/distributed.py``).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = first / second
        return ratio if family == "poisson" else np.sqrt(ratio)


class FixedPointModel(Protocol):
    """What the EM drivers (plain and SQUAREM) need from a model: one pass, the rates of a
    parameter vector, the feasibility projection and the exposure the rate change is
    weighed by. :class:`_Model` is the in-memory one; the Dask engine brings its own."""

    exposure: np.ndarray

    def step(self, theta: np.ndarray) -> tuple[np.ndarray, float]: ...

    def rate(self, theta: np.ndarray) -> np.ndarray: ...

    def project(self, theta: np.ndarray, reference: np.ndarray) -> np.ndarray: ...


def _converged(
    model: FixedPointModel, old: np.ndarray, new: np.ndarray, f_old: float, f_new: float, tol: float
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


def _plain(model: FixedPointModel, theta: np.ndarray, tol: float, max_iter: int) -> _Run:
    trace: list[float] = []
    previous: np.ndarray | None = None
    for evaluation in range(1, max_iter + 1):
        following, value = model.step(theta)
        trace.append(value)
        if previous is not None and _converged(model, previous, theta, trace[-2], value, tol):
            return _Run(theta, trace, evaluation, evaluation, 0, True)
        previous, theta = theta, following
    return _Run(theta, trace, max_iter, max_iter, 0, False)


def _squarem(model: FixedPointModel, theta: np.ndarray, tol: float, max_iter: int) -> _Run:
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


def iterate(
    model: FixedPointModel, theta: np.ndarray, tol: float, max_iter: int, accelerate: bool
) -> _Run:
    """EM passes from ``theta`` to convergence: SQUAREM with its safeguard, or plain EM."""
    return (_squarem if accelerate else _plain)(model, theta, tol, max_iter)


@dataclass
class _PooledRun:
    run: _Run
    hyper: partial_pooling.Hyper
    variance: np.ndarray  # (F,) Laplace variances of the free log rates
    root: sp.csr_matrix | None  # sparse root of their precision
    free: np.ndarray  # (P,) parameters in the covariance
    rounds: int
    converged: bool


def _pool_codes(
    problem: AllocationProblem,
    param: np.ndarray,
    n_params: int,
    pooling_groups: np.ndarray | None,
) -> np.ndarray:
    """(P,) pooling group of each parameter: the entity's connected block (its channel), or
    the user's groups, split by block (rates of different blocks are not on one scale)."""
    _, _, entity_block = problem.blocks
    if pooling_groups is None:
        codes = entity_block
    else:
        labels = np.asarray(pooling_groups)
        if labels.shape != (problem.n_entities,):
            raise ParameterError(
                f"pooling groups need one label per entity ({problem.n_entities}); got "
                f"shape {labels.shape}.",
                fix="give a label for every entity, in the problem's entity order.",
            )
        pairs = np.stack([entity_block, np.unique(labels, return_inverse=True)[1]], axis=1)
        codes = np.unique(pairs, axis=0, return_inverse=True)[1].ravel()
    out = np.zeros(n_params, dtype=np.int64)
    out[param] = codes
    return np.unique(out, return_inverse=True)[1]


def _block_levels(model: _Model) -> np.ndarray:
    """(P,) each parameter's block level: weighted outcome over weighted exposure in its
    connected block (the free MLE's level when all of the block's rates are equal)."""
    problem = model.problem
    n_blocks, group_block, entity_block = problem.blocks
    outcome = np.bincount(group_block, model.weighted_total, n_blocks)
    exposure = np.bincount(group_block, model.weight * problem.group_exposure, n_blocks)
    positive = (outcome > 0) & (exposure > 0)
    fallback = float(outcome.sum() / max(exposure.sum(), 1e-300))
    level = np.where(positive, outcome / np.where(positive, exposure, 1.0), fallback)
    out = np.full(model.n_params, fallback)
    out[model.param] = level[entity_block]
    return out


def _hyper_vector(hyper: partial_pooling.Hyper, free: np.ndarray) -> np.ndarray:
    return np.concatenate([[np.log(hyper.tau2), np.log(hyper.dispersion)], hyper.mean[free]])


def _extrapolate_hyper(
    history: list[partial_pooling.Hyper], free: np.ndarray
) -> partial_pooling.Hyper | None:
    """SQUAREM S3 step from three successive plain hyperparameter rounds (None: no step)."""
    h0, h1, h2 = (_hyper_vector(h, free) for h in history)
    r = h1 - h0
    v = h2 - 2.0 * h1 + h0
    sv2 = float(v @ v)
    if sv2 <= 0:
        return None
    alpha = float(np.clip(np.sqrt(float(r @ r) / sv2), 1.0, HYPER_STEP_MAX))
    point = h0 + 2.0 * alpha * r + alpha**2 * v
    if not np.all(np.isfinite(point)):
        return None
    # At most a factor e^2 beyond the last round on tau^2 and phi (as the M-step's Newton
    # moves): a long extrapolation of tau^2 would leave the rates unpooled for a round.
    point = np.clip(point, h2 - HYPER_MAX_MOVE, h2 + HYPER_MAX_MOVE)
    mean = history[2].mean.copy()
    mean[free] = point[2:]
    tau2 = max(float(np.exp(point[0])), partial_pooling.TAU2_FLOOR)
    return replace(history[2], mean=mean, tau2=tau2, dispersion=float(np.exp(point[1])))


def _fit_pooled(
    model: _Model,
    theta: np.ndarray,
    tol: float,
    max_iter: int,
    accelerate: bool,
    pool: np.ndarray,
    clusters: np.ndarray | None,
    start: EMFit | None,
    hold: bool = False,
    platform_signal: np.ndarray | None = None,
) -> _PooledRun:
    """Alternate the penalised EM (hyperparameters fixed) with the hyperparameter update
    (rates fixed) until neither moves; see pooling.py for both halves. With ``hold`` (and a
    pooled ``start``), the start's pooling strength and dispersion are kept: one penalised
    EM run, no hyperparameter update."""
    problem, family = model.problem, model.family
    free = model.param_active.copy()
    if start is None:
        # Start each rate at its own block's level (outcome over exposure in the block): one
        # level shared by blocks whose exposures are in different units (impressions, spend)
        # starts every rate of one channel orders of magnitude off, and the first
        # hyperparameter round then reads that gap as "no evidence" and pools to the floor.
        theta = np.where(free, _block_levels(model), theta)
    log_theta = np.log(np.maximum(theta, 1e-300))
    n_pools = int(pool.max(initial=-1)) + 1
    pool_mean = np.bincount(pool[free], log_theta[free], n_pools) / np.maximum(
        np.bincount(pool[free], minlength=n_pools), 1
    )
    mean = problem.matrix @ model.rate(theta)
    residual, use = partial_pooling.pearson(family, problem.totals, mean, model.weight)
    dispersion = max(
        float(residual @ residual) / max(float(model.weight[use].sum()) - 1, 1), 1e-300
    )
    hyper = partial_pooling.Hyper(
        mean=pool_mean[pool],
        tau2=partial_pooling.TAU2_START,
        dispersion=dispersion,
        design_effect=1.0,
        effective_rates=0.0,
    )
    if start is not None and start.pooling_sd is not None and start.dispersion is not None:
        held_mean = hyper.mean
        if start.signal_weight is not None:
            held_mean = held_mean + start.signal_weight.beta * start.signal_weight.covariate
        hyper = partial_pooling.Hyper(
            held_mean, start.pooling_sd**2, start.dispersion, 1.0, 0.0, start.signal_weight
        )

    def update(rates_theta: np.ndarray, current: partial_pooling.Hyper):
        """The hyperparameter update at these rates: (new hyper, variances, sparse root)."""
        return partial_pooling.update_hyper(
            family,
            problem,
            model.weight,
            model.rate(rates_theta),
            model.param,
            model.n_params,
            free,
            pool,
            current,
            clusters,
            platform_signal,
        )

    if hold and start is not None and start.pooling_sd is not None:
        # Resampled or redrawn totals (bootstrap replicates, MMM draws) refit the rates under
        # the main fit's pooling: re-estimating it on a replicate that holds few distinct
        # groups drives the dispersion to 0 (measured on the simulated HCP bricks: 1e-29,
        # 56-140 rounds a refit), so the refits would measure a degenerate model.
        model.prior_mean = hyper.mean
        model.prior_precision = 1.0 / hyper.tau2
        model.scale = 1.0 / hyper.dispersion
        held = (_squarem if accelerate else _plain)(model, theta, tol, max_iter)
        _, variance, root = update(held.theta, hyper)
        return _PooledRun(held, hyper, variance, root, free, 1, True)
    evaluations = 0
    variance = np.zeros(0)
    root: sp.csr_matrix | None = None
    run = _Run(theta, [], 0, 0, 0, False)
    converged = False
    rounds = 0
    # The alternation converges linearly, and slowly where phi and tau^2 trade off (167
    # rounds on the simulated HCP bricks): SQUAREM on the hyperparameters (log tau^2, log
    # phi, group means) extrapolates every two plain rounds. There is no objective to
    # safeguard with, so an extrapolated point is kept only if the round from it moves less
    # than the last plain round did; otherwise the fit goes on from that plain round's point.
    # Convergence is judged on plain rounds only, so the fixed point is the alternation's.
    history: list[partial_pooling.Hyper] = [hyper]
    fallback: tuple[partial_pooling.Hyper, float] | None = None
    while rounds < MAX_HYPER_ROUNDS:
        rounds += 1
        model.prior_mean = hyper.mean
        model.prior_precision = 1.0 / hyper.tau2
        model.scale = 1.0 / hyper.dispersion
        run = (_squarem if accelerate else _plain)(model, theta, tol, max_iter)
        evaluations += run.evaluations
        theta = run.theta
        updated, variance, root = update(theta, hyper)
        moved = max(
            abs(np.sqrt(updated.tau2) - np.sqrt(hyper.tau2)),
            abs(np.log(updated.dispersion / hyper.dispersion)),
            float(np.max(np.abs(updated.mean[free] - hyper.mean[free]), initial=0.0)),
        )
        if moved < HYPER_TOL:
            hyper = updated
            converged = True
            break
        if fallback is not None:
            plain, plain_moved = fallback
            fallback = None
            if moved > plain_moved:
                hyper, history = plain, [plain]  # the extrapolation did not help
                continue
        hyper = updated
        history.append(updated)
        if len(history) == 3:
            extrapolated = _extrapolate_hyper(history, free)
            if extrapolated is not None:
                fallback = (hyper, moved)
                hyper = extrapolated
            history = [hyper]
    run.evaluations = evaluations
    return _PooledRun(run, hyper, variance, root, free, rounds, converged)


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
    pooling: Pooling = "channel",
    pooling_groups: np.ndarray | None = None,
    group_clusters: np.ndarray | None = None,
    hold_pooling: bool = False,
    platform_signal: np.ndarray | None = None,
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
    pooling
        Free rates (no design) only. 'channel' (default): partial pooling, log rates shrink
        toward their group's mean with a strength estimated from the data (pooling.py), so
        few periods cannot overfit; the fit carries the Laplace covariance of the log rates
        for intervals (``pooling.split_with_rate_uncertainty``).
        'none': the free maximum-likelihood rates, with an overfit warning when periods per
        rate are few. Ignored with a design (the ridge already pools the coefficients).
    pooling_groups
        (H,) labels: pool toward each label's mean instead of the whole channel's (always
        within a connected block).
    group_clusters
        (G,) labels of groups whose errors may be correlated (the week of each day, say);
        the dispersion is inflated by their design effect. None: groups independent.
    platform_signal
        (H,) each entity's platform signal (clicks, conversions, reach...) summed over the
        window; pooled fits only. The rates' prior mean becomes mu_g + beta log(signal /
        exposure) (centred in the group), beta estimated with the pooling (pooling.py).

    Returns
    -------
    EMFit
        Rates, shares, credits, the objective trace and convergence facts.
    """
    n_h = problem.n_entities
    if platform_signal is not None and (design is not None or pooling == "none"):
        raise ParameterError(
            "a platform signal enters the prior of pooled free rates; this fit has "
            + ("covariates" if design is not None else "free rates (pooling='none')")
            + ".",
            fix="drop the signal, or fit pooled free rates (pooling='channel', no covariates).",
        )
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
    pooled: _PooledRun | None = None
    if design is None and pooling != "none":
        pool = _pool_codes(problem, param, n_params, pooling_groups)
        pooled = _fit_pooled(
            model,
            theta,
            tol,
            max_iter,
            accelerate,
            pool,
            group_clusters,
            start,
            hold_pooling,
            platform_signal,
        )
        run = pooled.run
    else:
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
    pooling_fields: dict[str, object] = {}
    n_free = int(model.param_active.sum()) if design is None else 0
    message = partial_pooling.overfit_warning(int(model.used.sum()), n_free)
    notes: list[str] = []
    if pooled is not None:
        hyper = pooled.hyper
        variance = pooled.variance
        weight_of_param = np.full(n_params, np.nan)
        weight_of_param[pooled.free] = 1.0 - variance / hyper.tau2
        pooling_fields = {
            "pooling": pooling,
            "pooling_sd": float(np.sqrt(hyper.tau2)),
            "dispersion": hyper.dispersion,
            "design_effect": hyper.design_effect,
            "effective_rates": hyper.effective_rates,
            "log_rate_covariance": pooled.variance,
            "log_rate_precision_root": pooled.root,
            "pooled_parameters": pooled.free,
            "data_weight": weight_of_param[param],
            "hyper_rounds": pooled.rounds,
            "hyper_converged": pooled.converged,
            "signal_weight": hyper.signal,
        }
        if message is not None:
            notes.append(
                f"{message} Rates are pooled toward their channel's mean (log-scale spread "
                f"tau = {np.sqrt(hyper.tau2):.3g}, {hyper.effective_rates:.1f} effective "
                "rates), so this is informational."
            )
        if not pooled.converged:
            notes.append(
                f"the pooling strength had not settled after {pooled.rounds} rounds; the "
                "split is usable but its intervals are approximate."
            )
    elif design is None:
        notes.append(
            "free rates requested (pooling='none'): each rate is fitted on its own data, "
            "with no shrinkage toward the channel mean."
        )
        if message is not None:
            notes.append(message)
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
        warnings=tuple(notes),
        **pooling_fields,  # type: ignore[arg-type]
    )
