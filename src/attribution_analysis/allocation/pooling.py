"""Partial pooling of EM rates: a random effect on log rates, its strength from the data.

Model (the EM default, ``pooling="channel"``)::

    log rate_h ~ Normal(mu_g(h), tau^2)        g: the entity's pooling group (its channel,
                                               i.e. connected block, or a covariate group)
    y_b | rates: quasi-likelihood, Var(y_b) = phi mu_b (Poisson) or phi mu_b^2 (Gamma)

The EM maximises the penalised quasi-log-likelihood loglik / phi - sum_h (log r_h - mu_g)^2
/ (2 tau^2): the E-step is unchanged, the M-step solves one concave equation per rate (here,
vectorised Newton). The hyperparameters are set by the data, so the default cannot overfit a
few periods:

* phi: Pearson's dispersion at the fit, sum (y - mu)^2 / V(mu) over the groups' degrees of
  freedom left after the *effective* number of rates (trace of the hat matrix); with
  ``group_clusters`` (weeks of daily data, say) it is multiplied by the design effect of
  correlated residuals within clusters, so a smooth error that spans days is not counted as
  independent evidence.
* mu_g, tau^2: the evidence (type-II maximum likelihood) update of the random effect under
  the Laplace approximation (the posterior mean and covariance of the log rates under the
  observed-data information), MacKay's fixed point, with the REML-like correction (one
  degree of freedom per group mean) so that a handful of campaigns does not understate
  tau^2 by the cost of estimating mu.

Platform signal (``signal``: clicks, platform-reported conversions, reach, any column). The
prior mean becomes mu_g + beta s_h, with s_h = log(signal_h / exposure_h) over the window
(the entity's own signal per unit of exposure), centred within its pooling group. beta is
estimated with mu and tau^2 by the same evidence update: the generalised least squares of the
log rates' working values on (group indicators, s) under the Laplace marginal, tau^2 I +
(observed-data information)^-1; beta = 0 is the model without the signal, so the data decide
how much the signal counts. Its standard error is the inverse marginal information (tau^2
held), and ``explained`` = beta^2 var(s) / (beta^2 var(s) + tau^2) is the share of the
rates' between-entity spread the signal accounts for; the co-movement of the totals decides
the rest (tau^2 is what is left). See :class:`SignalWeight`.

When the data cannot tell campaigns apart, tau^2 goes to 0 and the split falls back on
exposure alone (full pooling); with rich data tau^2 is large against the rates' sampling
variance and the free MLE is recovered. This is the empirical-Bayes (Fay–Herriot) recipe
applied inside the EM instead of to a naive per-campaign estimate: the evidence for a rate
is the co-movement of the group totals with the entity's exposure, weighted by its Fisher
information, not a click count.

Each rate shrinks toward its own group's mean, never a level shared across channels: rates
per impression and per unit of spend are on scales orders of magnitude apart. The fit starts
every rate at its block's level (outcome over exposure in the block).

Sparse algebra. The prior is diagonal and a group couples only the rates of its own
entities, so the Laplace precision scale G' diag(w / V) G + I / tau^2 has a sparse root A
(one row per group and one per rate, as many non-zeros as the exposure table): the M-step
is a Newton solve per rate, the variances come from a sparse LU of A'A against unit
vectors, and joint draws are (A'A)^-1 A' z. Nothing forms or factorises a dense (rates x
rates) matrix (the earlier dense version took minutes on a few hundred HCPs).

Intervals. The Laplace covariance of the log rates (observed-data information / phi plus
the prior precision) gives rate draws; :func:`split_with_rate_uncertainty` refits the rates
on a subset of the group-total draws (the MMM's posterior draws move the rates too) and
splits each of those draws with the shares of rate draws from its refit, so the intervals
carry both uncertainties and every draw still adds up to its group total. With a signal, each
rate draw also draws the signal's weight beta from its standard error (the refits hold beta).
Measured 90% coverage of true campaign shares 0.89-0.94 on the in-family hard cases; a
within-campaign concave response (a model bias, not a variance) brings it to 0.57-0.83
(``benchmarks/allocation_pooling.py``).

Written by hand: no library fits a random effect on the rates of an aggregated
(latent-part) likelihood; statsmodels' mixed GLMs need the parts observed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.errors import ParameterError

if TYPE_CHECKING:
    from attribution_analysis.allocation.em import EMFit
    from attribution_analysis.allocation.topdown import DrawSplit

Pooling = Literal["channel", "none"]
NEWTON_STEPS = 50
NEWTON_TOL = 1e-12
MAX_STEP = 2.0  # largest Newton move on a log rate (a factor e^2), for safety far from it
SINGULAR_RIDGE = 1e-12  # relative ridge for a precision singular in floating point
VARIANCE_CHUNK = 256  # unit vectors solved at once for the diagonal of the inverse precision
TAU2_FLOOR = 1e-8  # tau^2 below this is full pooling (kept positive for the precision)
TAU2_START = 0.25  # log-scale sd 0.5 before the data speak (a factor ~1.6 between campaigns)
# Fewer groups in the likelihood per free rate than this: free rates overfit (warning).
PERIODS_PER_RATE_WARNING = 10.0


@dataclass(frozen=True, eq=False)
class SignalWeight:
    """How much a platform signal moves the rates' prior mean: log rate_h ~ Normal(mu_g +
    beta s_h, tau^2), s_h the entity's log signal per unit of exposure centred in its group."""

    beta: float  # elasticity of the rate to the signal per unit exposure (0: no weight)
    std_error: float  # inverse marginal information of beta at the fitted tau^2 (NaN: none)
    explained: float  # beta^2 var(s) / (beta^2 var(s) + tau^2): share of the rates' spread
    covariate: np.ndarray  # (P,) s per parameter (0 for parameters not pooled)


@dataclass(frozen=True)
class Hyper:
    """Hyperparameters of the pooled fit."""

    mean: np.ndarray  # (P,) prior mean of each rate's log (mu_g, plus beta s_h with a signal)
    tau2: float
    dispersion: float  # phi
    design_effect: float  # factor already inside phi (1 without clusters)
    effective_rates: float  # trace of the hat matrix
    signal: SignalWeight | None = None  # the signal's weight, when one is given


def newton_log_rate(
    family: str,
    first: np.ndarray,
    second: np.ndarray,
    start: np.ndarray,
    mean: np.ndarray,
    precision: float,
    scale: float,
) -> np.ndarray:
    """Maximise, per rate, the penalised complete-data objective in u = log rate.

    Poisson: scale (first u - second e^u) - precision (u - mean)^2 / 2, with ``first`` the
    E-step credit and ``second`` the exposure. Gamma (the EM's minorising surrogate):
    scale (-first e^-u - second e^u) - precision (u - mean)^2 / 2. Both are strictly concave,
    so damped Newton converges from any start.
    """
    u = np.log(np.maximum(start, 1e-300))
    u = np.where(np.isfinite(u), u, mean)
    for _ in range(NEWTON_STEPS):
        e = np.exp(u)
        if family == "poisson":
            grad = scale * (first - second * e) - precision * (u - mean)
            curv = scale * second * e + precision
        else:
            inv = 1.0 / e
            grad = scale * (first * inv - second * e) - precision * (u - mean)
            curv = scale * (first * inv + second * e) + precision
        move = np.clip(grad / curv, -MAX_STEP, MAX_STEP)
        u = u + move
        if np.max(np.abs(move), initial=0.0) < NEWTON_TOL:
            break
    return np.exp(u)


def score_matrix(
    matrix: sp.csr_matrix, rate: np.ndarray, param: np.ndarray, n_params: int
) -> sp.csc_matrix:
    """(G, P) derivative of the group means in the log rates: G_bp = sum_{h in p} rate_h w_bh
    (sparse: a group touches only its own entities)."""
    onehot = sp.csr_matrix(
        (np.ones(len(param)), (np.arange(len(param)), param)), shape=(len(param), n_params)
    )
    return (matrix @ sp.diags(rate) @ onehot).tocsc()


def inverse_variance(family: str, mean: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """weight / V(mu) per group (0 where V is 0): the quasi-likelihood's weights at phi 1."""
    variance = mean if family == "poisson" else mean**2
    return np.divide(weight, variance, out=np.zeros_like(mean), where=(variance > 0))


def precision_root(
    score: sp.csc_matrix, inverse: np.ndarray, scale: float, tau2: float
) -> sp.csr_matrix:
    """A sparse A with A'A the Laplace precision of the free log rates, scale G' diag(inverse)
    G + I / tau2: the rows sqrt(scale inverse_b) G_b, then I / sqrt(tau2). The prior is
    diagonal and each group couples only its own rates, so A has one row per group plus one
    per rate and no more non-zeros than the exposure table."""
    data_rows = sp.diags(np.sqrt(scale * inverse)) @ score
    prior_rows = sp.identity(score.shape[1], format="csr") / np.sqrt(tau2)
    return sp.vstack([data_rows, prior_rows], format="csr")


def factorize_precision(root: sp.csr_matrix) -> Callable[[np.ndarray], np.ndarray]:
    """Solver of (A'A) x = b by sparse LU (SuperLU with a fill-reducing order for symmetric
    matrices); scipy has no sparse Cholesky, and LU on this positive-definite matrix needs
    no pivoting beyond the ordering."""
    precision = (root.T @ root).tocsc()
    try:
        return splu(precision, permc_spec="MMD_AT_PLUS_A").solve
    except RuntimeError:
        # Singular in floating point only (a prior precision lost against the data's):
        # the smallest ridge that makes it invertible, as a pseudo-inverse would.
        ridge = SINGULAR_RIDGE * float(precision.diagonal().max(initial=1.0))
        regular = (precision + ridge * sp.identity(precision.shape[0])).tocsc()
        return splu(regular, permc_spec="MMD_AT_PLUS_A").solve


def posterior_variance(
    root: sp.csr_matrix, solve: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """Diagonal of (A'A)^-1, the Laplace variances of the free log rates, by sparse solves
    against blocks of unit vectors: never a dense (F, F) matrix or factorisation. ``solve``:
    a factorisation of A'A already made (:func:`factorize_precision`)."""
    n = root.shape[1]
    solve = solve or factorize_precision(root)
    variance = np.empty(n)
    for start in range(0, n, VARIANCE_CHUNK):
        stop = min(start + VARIANCE_CHUNK, n)
        unit = np.zeros((n, stop - start))
        unit[np.arange(start, stop), np.arange(stop - start)] = 1.0
        solved = solve(unit)
        variance[start:stop] = solved[np.arange(start, stop), np.arange(stop - start)]
    return variance


def pearson(
    family: str, totals: np.ndarray, mean: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson residuals (y - mu) / sqrt(V(mu)) and the mask of groups they are defined on."""
    variance = mean if family == "poisson" else mean**2
    use = (weight > 0) & (variance > 0)
    residual = np.zeros_like(mean)
    residual[use] = np.sqrt(weight[use]) * (totals[use] - mean[use]) / np.sqrt(variance[use])
    return residual, use


def design_effect(residual: np.ndarray, use: np.ndarray, clusters: np.ndarray | None) -> float:
    """sum_c (sum_{b in c} e_b)^2 / sum_b e_b^2, at least 1: how much correlated residuals
    within clusters (days of one week) inflate the variance of sums over independent days."""
    if clusters is None:
        return 1.0
    _, code = np.unique(np.asarray(clusters)[use], return_inverse=True)
    e = residual[use]
    denominator = float(e @ e)
    if denominator <= 0:
        return 1.0
    return max(float(np.sum(np.bincount(code, e) ** 2)) / denominator, 1.0)


def update_hyper(
    family: str,
    problem: AllocationProblem,
    weight: np.ndarray,
    rate: np.ndarray,
    param: np.ndarray,
    n_params: int,
    free: np.ndarray,
    pool: np.ndarray,
    hyper: Hyper,
    clusters: np.ndarray | None,
    signal: np.ndarray | None = None,
) -> tuple[Hyper, np.ndarray, sp.csr_matrix]:
    """One update of (phi, mu, tau^2) at the current rates; also the Laplace variances of the
    free log rates (F,) and the sparse root A of their precision A'A (for joint draws).

    ``signal``: (H,) each entity's platform signal summed over the window; the prior mean is
    then mu_g + beta s_h and beta is updated with mu (:func:`signal_mean_update`)."""
    mean = problem.matrix @ rate
    residual, use = pearson(family, problem.totals, mean, weight)
    scale = 1.0 / hyper.dispersion
    score = score_matrix(problem.matrix, rate, param, n_params)[:, np.flatnonzero(free)]
    inverse = inverse_variance(family, mean, weight)
    root = precision_root(score, inverse, scale, hyper.tau2)
    solve = factorize_precision(root)
    variance = posterior_variance(root, solve)
    # trace(scale info Cov) = trace(I - Cov / tau^2): the hat trace from the variances alone.
    hat = float(len(variance) - np.sum(variance) / hyper.tau2)
    # Degrees of freedom count weighted groups, so a bootstrap weight of 2 is two groups.
    n_used = float(weight[use].sum())
    dof = max(n_used - hat, 1.0)
    deff = design_effect(residual, use, clusters)
    dispersion = max(float(residual @ residual) / dof, 1e-300) * deff

    log_rate = np.log(np.maximum(rate_of_params(rate, param, n_params)[free], 1e-300))
    groups = pool[free]
    n_groups = int(groups.max(initial=-1)) + 1
    counts = np.bincount(groups, minlength=n_groups)
    if signal is not None:
        covariate = signal_covariate(problem, signal, param, n_params, free, pool)
        # The data's score in the log rates at the current rates (quasi-likelihood / phi).
        data_score = scale * (score.T @ (inverse * (problem.totals - mean)))
        data_rows = sp.diags(np.sqrt(scale * inverse)) @ score
        prior_mean, tau2, signal_weight = signal_mean_update(
            log_rate,
            groups,
            covariate,
            hyper,
            free,
            data_rows,
            data_score,
            solve,
            variance,
        )
        return (
            Hyper(prior_mean, tau2, dispersion, deff, hat, signal_weight),
            variance,
            root,
        )
    # mu_g: the posterior means' average in each group (the Laplace-EM update of a flat mu).
    mu = np.bincount(groups, log_rate, n_groups) / np.maximum(counts, 1)
    # tau^2: MacKay's evidence update tau^2 = sum (u - mu)^2 / (gamma - groups), gamma =
    # sum (1 - var / tau^2) the well-determined rates. Its fixed point is the Laplace-EM's
    # (sum (u - mu)^2 + var) / (rates - groups), but it gets there in a few rounds where the
    # EM update crawls (toward tau^2 -> 0 especially). Subtracting the groups is the REML
    # correction for estimating each mu.
    spread = float(np.sum((log_rate - mu[groups]) ** 2))
    determined = float(np.sum(1.0 - variance / hyper.tau2)) - int(np.count_nonzero(counts))
    tau2 = max(spread / determined, TAU2_FLOOR) if determined > 1e-9 else TAU2_FLOOR
    prior_mean = hyper.mean.copy()
    prior_mean[np.flatnonzero(free)] = mu[groups]
    return Hyper(prior_mean, tau2, dispersion, deff, hat), variance, root


def signal_covariate(
    problem: AllocationProblem,
    signal: np.ndarray,
    param: np.ndarray,
    n_params: int,
    free: np.ndarray,
    pool: np.ndarray,
) -> np.ndarray:
    """(P,) s = log(signal / exposure) per pooled parameter, centred within its pooling group
    (0 for parameters not pooled).

    ``signal`` is (H,), each entity's signal summed over the window; the exposure is the
    entity's own in the problem. An entity with no signal at all would have s = -inf: it
    gets half its group's smallest positive signal per exposure (zero clicks on many
    impressions is evidence of a low rate, but not of a zero one). A group where no entity
    has any signal carries none (s = 0 there).
    """
    signal = np.asarray(signal, dtype=float)
    if signal.shape != (problem.n_entities,) or not np.all(np.isfinite(signal)):
        raise ParameterError(
            f"the signal needs one finite value per entity ({problem.n_entities}); got shape "
            f"{signal.shape}.",
            fix="sum the signal (clicks, conversions...) of each entity over the window.",
        )
    if (signal < 0).any():
        raise ParameterError(
            "the signal has negative values; a count or a volume cannot be negative.",
            fix="check the signal column (clicks, conversions, reach).",
        )
    per_param_signal = np.bincount(param, signal, n_params)
    per_param_exposure = np.bincount(param, problem.entity_exposure, n_params)
    usable = free & (per_param_exposure > 0)
    ratio = np.divide(
        per_param_signal,
        per_param_exposure,
        out=np.zeros(n_params),
        where=per_param_exposure > 0,
    )
    n_pools = int(pool.max(initial=-1)) + 1
    positive = usable & (ratio > 0)
    smallest = np.full(n_pools, np.inf)
    np.minimum.at(smallest, pool[positive], ratio[positive])
    has_signal = np.isfinite(smallest)
    floor = np.where(has_signal, smallest / 2.0, 1.0)[pool]
    log_ratio = np.where(usable, np.log(np.where(ratio > 0, ratio, floor)), 0.0)
    log_ratio = np.where(has_signal[pool], log_ratio, 0.0)
    counts = np.bincount(pool[usable], minlength=n_pools)
    centre = np.bincount(pool[usable], log_ratio[usable], n_pools) / np.maximum(counts, 1)
    return np.where(usable, log_ratio - centre[pool], 0.0)


def signal_mean_update(
    log_rate: np.ndarray,
    groups: np.ndarray,
    covariate: np.ndarray,
    hyper: Hyper,
    free: np.ndarray,
    data_rows: sp.csr_matrix,
    data_score: np.ndarray,
    solve: Callable[[np.ndarray], np.ndarray],
    variance: np.ndarray,
) -> tuple[np.ndarray, float, SignalWeight]:
    """The evidence update of (mu, beta) and tau^2 when the prior mean is mu_g + beta s.

    Under the Laplace approximation the log rates' working values u~ (u~ = u + J^-1 g, J the
    data's information D'D, g their score at the current rates u) have the marginal
    Normal(X b, tau^2 I + J^-1), X = (group indicators, s). Its generalised least squares is

        b = M^-1 r,  M = X' J P^-1 X / tau^2,  r = (P^-1 X / tau^2)' (J u + g),

    with P = J + I / tau^2 the precision already factorised, and Var(b) = M^-1 (tau^2 held).
    Written with P^-1 X / tau^2, which tends to X as tau^2 -> 0, neither M nor r subtracts
    two large numbers (X'X / tau^2 - X'P^-1X / tau^2^2 would). Its fixed point is that of the
    plain EM update (b = least squares of u on X), one solve per column of X instead of
    the EM's crawl when tau^2 is small. tau^2 then takes MacKay's update around X b, one
    degree of freedom less per group and one for beta (the REML-like correction).
    """
    present, column = np.unique(groups, return_inverse=True)
    s = covariate[free]
    design = np.zeros((len(s), len(present) + 1))
    design[np.arange(len(s)), column] = 1.0
    design[:, -1] = s
    scaled = solve(design) / hyper.tau2  # P^-1 X / tau^2
    data_design = data_rows @ design
    information = data_design.T @ (data_rows @ scaled)
    information = 0.5 * (information + information.T)
    working = data_rows.T @ (data_rows @ log_rate) + data_score
    right = scaled.T @ working
    spread_s = float(s @ s)
    if spread_s <= 0:
        # No entity's signal differs from its group's: beta has no information.
        information[-1, :] = information[:, -1] = 0.0
        information[-1, -1] = 1.0
        right[-1] = 0.0
    try:
        coefficients = np.linalg.solve(information, right)
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        coefficients = np.linalg.lstsq(information, right, rcond=None)[0]
        covariance = np.linalg.pinv(information)
    beta = float(coefficients[-1])
    std_error = float(np.sqrt(covariance[-1, -1])) if spread_s > 0 else np.nan
    if not np.isfinite(std_error) or covariance[-1, -1] < 0:
        std_error = np.nan
    fitted = design @ coefficients
    spread = float(np.sum((log_rate - fitted) ** 2))
    determined = float(np.sum(1.0 - variance / hyper.tau2)) - len(present) - 1
    tau2 = max(spread / determined, TAU2_FLOOR) if determined > 1e-9 else TAU2_FLOOR
    signal_variance = beta**2 * spread_s / max(len(s) - len(present), 1)
    explained = signal_variance / (signal_variance + tau2) if signal_variance > 0 else 0.0
    prior_mean = hyper.mean.copy()
    prior_mean[np.flatnonzero(free)] = fitted
    return prior_mean, tau2, SignalWeight(beta, std_error, float(explained), covariate)


def rate_of_params(rate: np.ndarray, param: np.ndarray, n_params: int) -> np.ndarray:
    """(P,) the rate of each parameter (tied entities share it)."""
    out = np.zeros(n_params)
    out[param] = rate
    return out


def _rate_draws(fit: EMFit, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, H) rates drawn from the fit's Laplace approximation of the pooled log rates
    (other rates held at their estimate); the estimate repeated when there is none.

    With A'A the precision, x = (A'A)^-1 A' z (z standard normal) has covariance (A'A)^-1:
    joint draws from one sparse factorisation, no dense covariance."""
    param = fit.parameter_of_entity
    n_params = int(param.max(initial=-1)) + 1
    base = rate_of_params(np.nan_to_num(fit.rate), param, n_params)
    free = fit.pooled_parameters
    root = fit.log_rate_precision_root
    if root is None or free is None or not free.any():
        return np.broadcast_to(base[param], (count, len(param)))
    log_draws = np.broadcast_to(np.log(np.maximum(base, 1e-300)), (count, n_params)).copy()
    noise = root.T @ rng.normal(size=(root.shape[0], count))
    solve = factorize_precision(root)
    log_draws[:, free] = np.log(base[free]) + solve(noise).T
    weight = fit.signal_weight
    if weight is not None and np.isfinite(weight.std_error) and fit.pooling_sd:
        # The signal's weight is estimated too: given beta + d, the log rates' mode moves by
        # P^-1 s d / tau^2 (P the precision above), so drawing d ~ N(0, se^2) with each
        # draw gives the joint Laplace of (rates, beta) with beta integrated out. (A shift
        # of a group's mean mu moves all its rates alike and leaves the shares as they are.)
        direction = solve(weight.covariate[free]) / fit.pooling_sd**2
        log_draws[:, free] += np.outer(rng.normal(0.0, weight.std_error, count), direction)
    return np.where(base[None, :] > 0, np.exp(log_draws), 0.0)[:, param]


def tied_sets(parameter_of_entity: np.ndarray) -> list[np.ndarray]:
    """The ``tied`` argument that reproduces a fit's parameter map (sets of 2+ entities)."""
    order = np.argsort(parameter_of_entity, kind="stable")
    bounds = np.flatnonzero(np.diff(parameter_of_entity[order])) + 1
    return [members for members in np.split(order, bounds) if len(members) > 1]


def _default_refit(problem: AllocationProblem, fit: EMFit) -> EMFit:
    """The fit's own options on new totals (ties read back from its parameter map)."""
    from attribution_analysis.allocation.em import fit_em  # em imports this module

    tied = tied_sets(fit.parameter_of_entity)
    return fit_em(
        problem, family=fit.family, pooling=fit.pooling, tied=tied, start=fit, hold_pooling=True
    )


def split_with_rate_uncertainty(
    problem: AllocationProblem,
    fit: EMFit,
    draws: np.ndarray | None,
    *,
    n_draws: int = 1000,
    n_refits: int = 40,
    seed: int = 0,
    block_of_group: np.ndarray | None = None,
    refit: Callable[[AllocationProblem, EMFit], EMFit] | None = None,
) -> DrawSplit:
    """Credits per draw with both uncertainties: the group totals' and the rates'.

    The MMM's draws of the group totals move the rates themselves, not only the amounts
    split: a smooth error over a campaign's flight is read as that campaign's productivity.
    So ``n_refits`` total draws (evenly spaced through ``draws``) are each refitted (warm
    start from ``fit``), and each refit contributes ``n_draws / n_refits`` joint draws:
    that total draw split by the shares of log rates drawn from the refit's Laplace
    covariance. Every joint draw adds up to its group totals. Without ``draws`` the point
    totals are split by ``n_draws`` rate draws of ``fit`` itself. Same result type as
    :func:`~attribution_analysis.allocation.topdown.split_draws` (which holds the rates at
    the estimate and refits nothing).

    Parameters
    ----------
    problem
        The problem the fit was made on.
    fit
        An :class:`~attribution_analysis.allocation.em.EMFit`; without a Laplace covariance
        (``pooling="none"``, covariates) its rates are held at each refit's estimate.
    draws
        (D, G) draws of the group totals (the MMM's posterior), or None.
    n_draws
        Joint draws in all.
    n_refits
        Total draws refitted (at most D).
    seed
        Seed of the rate draws.
    block_of_group
        As in ``split_draws``: the label whose totals the campaign draws must match.
    refit
        ``refit(problem_with_drawn_totals, fit)`` returning a fit with the same options;
        by default ``fit_em`` with the fit's family, pooling and ties. Pass one that adds
        ``pooling_groups`` or ``group_clusters`` when the fit used them.
    """
    # Imported here: topdown and diagnostics import em, which imports this module.
    from attribution_analysis.allocation.diagnostics import band
    from attribution_analysis.allocation.topdown import DrawSplit, checked_draws

    rng = np.random.default_rng(seed)
    if draws is None:
        members = [(problem.totals, fit, n_draws)]
    else:
        totals = checked_draws(problem, draws)
        chosen = np.unique(np.linspace(0, len(totals) - 1, max(min(n_refits, len(totals)), 1)))
        per = max(n_draws // len(chosen), 1)
        refit = refit or _default_refit
        members = []
        for index in chosen.round().astype(int):
            drawn = replace(problem, totals=totals[index])
            members.append((totals[index], refit(drawn, fit), per))

    row_draws = []
    for cell_totals, member, count in members:
        rates = _rate_draws(member, count, rng)
        weight = rates[:, problem.entity] * problem.exposure  # (count, N)
        group_weight = np.zeros((count, problem.n_groups))
        np.add.at(group_weight.T, problem.group, weight.T)
        row_weight = group_weight[:, problem.group]
        share = np.divide(weight, row_weight, out=np.zeros_like(weight), where=row_weight > 0)
        row_draws.append(cell_totals[problem.group] * share)
    rows = np.concatenate(row_draws)
    entity_draws = np.zeros((len(rows), problem.n_entities))
    np.add.at(entity_draws.T, problem.entity, rows.T)
    lower, upper = np.quantile(rows, [0.05, 0.95], axis=0)
    entity_lower, entity_upper = band(entity_draws)

    # The split conserves mass by construction; measured, as split_draws reports it.
    if block_of_group is None:
        _, block_of_group, _ = problem.blocks
    _, block_code = np.unique(np.asarray(block_of_group), return_inverse=True)
    n_blocks = int(block_code.max(initial=0)) + 1
    allocatable = problem.group_exposure > 0
    row_block = block_code[problem.group]
    error, start = 0.0, 0
    for cell_totals, _, count in members:
        channel = np.bincount(block_code, cell_totals * allocatable, n_blocks)
        for s in range(start, start + count):
            parts = np.bincount(row_block, rows[s], n_blocks)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(channel > 0, np.abs(parts - channel) / channel, 0.0)
            error = max(error, float(rel.max(initial=0.0)))
        start += count
    return DrawSplit(
        lower=lower,
        upper=upper,
        entity_lower=entity_lower,
        entity_upper=entity_upper,
        entity_draws=entity_draws,
        max_block_error=error,
    )


def overfit_warning(n_groups_used: int, n_free_rates: int) -> str | None:
    """A sentence when free rates are few periods apart, else None (pooled fits included:
    the caller decides whether pooling answers it)."""
    if n_free_rates <= 1:
        return None
    per_rate = n_groups_used / n_free_rates
    if per_rate >= PERIODS_PER_RATE_WARNING:
        return None
    return (
        f"{n_groups_used} periods for {n_free_rates} free rates ({per_rate:.1f} per rate, "
        f"under {PERIODS_PER_RATE_WARNING:g}): free rates can overfit; keep the default "
        "partial pooling or add periods."
    )
