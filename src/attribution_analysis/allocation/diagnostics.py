"""What the allocation can and cannot tell: identifiability, cold start, stability, truth.

* Proportional exposure profiles: two entities whose exposures are proportional across every
  group enter the likelihood only through their sum, so the data fix their *combined* credit
  and nothing about its split. They are reported as a credit set, never split as if known.
* Conditioning: the condition number of each block's column-normalised exposure matrix; a
  block with more entities than groups cannot identify one free rate per entity at all.
* Cold start: entities seen in few groups or with little exposure.
* Bootstrap stability: groups resampled with replacement, rates refitted, and the ranking
  of productivities compared with the full-data ranking.
* Recovery (simulated workspaces): credit and log-rate against the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import xarray as xr
from scipy.sparse.csgraph import connected_components
from scipy.stats import f as f_dist
from scipy.stats import spearmanr

from attribution_analysis.allocation.em import EMFit, fit_em
from attribution_analysis.allocation.pooling import tied_sets
from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.summaries import band_90

PROPORTIONAL_COSINE = 0.999  # profiles within 0.1% of proportional: the data cannot split them
MAX_GRAM_NONZEROS = 50_000_000  # pairwise cosines only while sum_b n_b^2 stays below this
MAX_DENSE_CELLS = 4_000_000  # dense SVD for blocks up to this many groups x entities
MAX_BLOCKS_REPORTED = 200
SINGULAR_RATIO = 1e-12  # smallest / largest singular value below this: singular
COLD_MIN_GROUPS = 2  # fewer groups than this: cold start
COLD_EXPOSURE_FRACTION = 0.1  # exposure below this fraction of the median entity: cold start


def band(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central 90% interval over the first axis of ``draws`` (draws x anything), NaNs
    skipped: :func:`attribution_analysis.summaries.band_90` on a plain array."""
    dims = ["sample", *(f"dim_{i}" for i in range(1, np.ndim(draws)))]
    return band_90(xr.DataArray(np.asarray(draws, dtype=float), dims=dims), "sample")


@dataclass(frozen=True)
class ProportionalSet:
    members: np.ndarray  # entity codes
    min_cosine: float


@dataclass(frozen=True)
class BlockCondition:
    block: int
    n_groups: int
    n_entities: int
    condition_number: float | None


@dataclass(frozen=True)
class ColdStart:
    mask: np.ndarray  # (H,) bool
    reasons: list[str]  # per flagged entity, aligned with np.flatnonzero(mask)


@dataclass(frozen=True)
class Stability:
    replicates: int
    spearman: np.ndarray  # (replicates,)
    rank_low: np.ndarray  # (H,) 5% quantile of the within-block rank (1 = best), NaN if none
    rank_high: np.ndarray  # (H,) 95% quantile


def relative_productivity(
    rate: np.ndarray, use: np.ndarray, entity_block: np.ndarray, n_blocks: int
) -> np.ndarray:
    """Rates divided by their block's arithmetic mean over ``use`` entities (last axis).

    Works on one vector (H,) or on draws (S, H); entities of blocks without a usable rate,
    and unusable entities, get the global mean as reference (their own block has none).
    """
    rate = np.asarray(rate, dtype=float)
    onehot = sp.csr_matrix(
        (np.ones(len(entity_block)), (np.arange(len(entity_block)), entity_block)),
        shape=(len(entity_block), n_blocks),
    )
    clean = np.where(use, np.nan_to_num(rate, nan=0.0), 0.0)
    sums = (onehot.T @ clean.T).T  # (..., n_blocks)
    counts = onehot.T @ use.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sums / counts
        overall = clean.sum(axis=-1, keepdims=True) / max(use.sum(), 1)
        reference = np.where(counts > 0, means, overall)
        return rate / reference[..., entity_block]


def proportional_sets(
    problem: AllocationProblem, min_cosine: float = PROPORTIONAL_COSINE
) -> list[ProportionalSet]:
    """Sets of entities whose exposure profiles over groups are (nearly) proportional.

    Pairwise cosines come from the sparse Gram matrix W'W of the column-normalised exposure;
    when that would be too large (sum over groups of squared group sizes above
    MAX_GRAM_NONZEROS) only exactly proportional profiles are found, by hashing two random
    projections of the normalised profiles.
    """
    w = problem.matrix
    norms = np.sqrt(np.bincount(problem.entity, problem.exposure**2, problem.n_entities))
    exposed = norms > 0
    scaled = w @ sp.diags(np.where(exposed, 1.0 / np.where(exposed, norms, 1.0), 0.0))
    sizes = np.bincount(problem.group, minlength=problem.n_groups).astype(np.int64)
    if int(np.sum(sizes**2)) <= MAX_GRAM_NONZEROS:
        gram = (scaled.T @ scaled).tocoo()
        keep = (gram.row < gram.col) & (gram.data >= min_cosine)
        rows, cols = gram.row[keep], gram.col[keep]
    else:
        rng = np.random.default_rng(0)
        projections = scaled.T @ rng.standard_normal((problem.n_groups, 2))
        signature = np.column_stack(
            [np.round(projections, 10), problem.entity_groups.astype(float)]
        )
        signature = signature[exposed]
        codes = np.flatnonzero(exposed)
        _, inverse = np.unique(signature, axis=0, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        same = np.diff(inverse[order]) == 0
        rows, cols = codes[order[:-1][same]], codes[order[1:][same]]
    if len(rows) == 0:
        return []
    graph = sp.coo_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(problem.n_entities, problem.n_entities)
    )
    _, label = connected_components(graph, directed=False)
    involved = np.union1d(rows, cols)
    sets = []
    for value in np.unique(label[involved]):
        members = np.flatnonzero(label == value)
        block = scaled[:, members]
        cosines = (block.T @ block).toarray()
        sets.append(ProportionalSet(members, float(cosines.min())))
    return sets


def block_conditions(problem: AllocationProblem) -> list[BlockCondition]:
    """Condition number of each block's column-normalised exposure matrix (largest blocks)."""
    n_blocks, group_block, entity_block = problem.blocks
    g_count = np.bincount(group_block, weights=problem.group_exposure > 0, minlength=n_blocks)
    h_count = np.bincount(entity_block, weights=problem.entity_exposure > 0, minlength=n_blocks)
    real = np.flatnonzero(h_count > 0)
    real = real[np.argsort(-h_count[real], kind="stable")][:MAX_BLOCKS_REPORTED]
    out = []
    for block in real:
        n_g, n_h = int(g_count[block]), int(h_count[block])
        condition = None
        if n_g >= n_h and n_g * n_h <= MAX_DENSE_CELLS:
            groups = np.flatnonzero((group_block == block) & (problem.group_exposure > 0))
            entities = np.flatnonzero((entity_block == block) & (problem.entity_exposure > 0))
            dense = problem.matrix[groups][:, entities].toarray()
            dense /= np.linalg.norm(dense, axis=0)
            values = np.linalg.svd(dense, compute_uv=False)
            if values[-1] > SINGULAR_RATIO * values[0]:
                condition = float(values[0] / values[-1])
        out.append(BlockCondition(int(block), n_g, n_h, condition))
    return out


def design_condition(problem: AllocationProblem, design: np.ndarray) -> float | None:
    """Condition number of the group-level design W X with standardised columns.

    Under the covariate model mu_b = sum_h exp(x_h beta) w_bh; near beta = 0 its Jacobian is
    W X, so this measures how well the groups separate the covariate effects.
    """
    grouped = problem.matrix @ design
    grouped = grouped[problem.group_exposure > 0]
    if grouped.shape[0] < grouped.shape[1]:
        return None
    centred = grouped.copy()
    centred[:, 1:] -= centred[:, 1:].mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    if np.any(norms == 0):
        return None
    values = np.linalg.svd(centred / norms, compute_uv=False)
    if values[-1] <= SINGULAR_RATIO * values[0]:
        return None
    return float(values[0] / values[-1])


def cold_start(
    problem: AllocationProblem,
    min_groups: int = COLD_MIN_GROUPS,
    exposure_fraction: float = COLD_EXPOSURE_FRACTION,
) -> ColdStart:
    """Entities in fewer than ``min_groups`` groups or with little exposure."""
    groups = problem.entity_groups
    exposure = problem.entity_exposure
    positive = exposure[exposure > 0]
    median = float(np.median(positive)) if len(positive) else 0.0
    none = exposure <= 0
    few = (groups < min_groups) & ~none
    little = (exposure < exposure_fraction * median) & ~none & ~few
    mask = none | few | little
    reasons = []
    for h in np.flatnonzero(mask):
        if none[h]:
            reasons.append("no exposure in any group: rate from covariates or prior only")
        elif few[h]:
            reasons.append(f"exposed in {int(groups[h])} group(s) (< {min_groups})")
        else:
            reasons.append(
                f"exposure {exposure[h]:.4g} below {exposure_fraction:.0%} of the median "
                f"entity ({median:.4g})"
            )
    return ColdStart(mask, reasons)


def block_ranks(values: np.ndarray, use: np.ndarray, entity_block: np.ndarray) -> np.ndarray:
    """Rank (1 = highest) of each usable entity within its block; NaN elsewhere."""
    ranks = np.full(len(values), np.nan)
    codes = np.flatnonzero(use)
    if len(codes) == 0:
        return ranks
    order = codes[np.lexsort((-values[codes], entity_block[codes]))]
    blocks = entity_block[order]
    starts = np.r_[0, np.flatnonzero(np.diff(blocks)) + 1]
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ranks[order] = position + 1
    return ranks


def bootstrap_stability(
    problem: AllocationProblem,
    fit: EMFit,
    refit: Callable[[np.ndarray, EMFit], EMFit],
    replicates: int,
    seed: int,
) -> Stability:
    """Resample allocatable groups with replacement, refit, compare productivity rankings.

    ``refit(weights, start)`` must fit the same model with group weights (the bootstrap
    counts), starting from ``start``.
    """
    n_blocks, _, entity_block = problem.blocks
    base_use = fit.estimable & np.isfinite(fit.rate)
    base = relative_productivity(fit.rate, base_use, entity_block, n_blocks)
    allocatable = np.flatnonzero(problem.group_exposure > 0)
    rng = np.random.default_rng(seed)
    correlations = np.full(replicates, np.nan)
    ranks = np.full((replicates, problem.n_entities), np.nan)
    for r in range(replicates):
        counts = np.bincount(
            rng.choice(allocatable, size=len(allocatable)), minlength=problem.n_groups
        )
        replicate = refit(counts.astype(float), fit)
        use = replicate.estimable & np.isfinite(replicate.rate) & base_use
        if use.sum() < 3:
            continue
        productivity = relative_productivity(replicate.rate, use, entity_block, n_blocks)
        # Rates equal within every block (e.g. covariates=['channel']) have no ranking to
        # compare: the correlation is undefined, so the replicate adds no value to it.
        if np.ptp(base[use]) > 0 and np.ptp(productivity[use]) > 0:
            correlations[r] = spearmanr(base[use], productivity[use]).statistic
        ranks[r] = block_ranks(productivity, use, entity_block)
    seen = ~np.all(np.isnan(ranks), axis=0)
    low = np.full(problem.n_entities, np.nan)
    high = np.full(problem.n_entities, np.nan)
    if seen.any():
        low[seen], high[seen] = band(ranks[:, seen])
    return Stability(replicates, correlations[np.isfinite(correlations)], low, high)


@dataclass(frozen=True)
class Evidence:
    """Quasi-likelihood F test: do the totals show rates differing within a block?"""

    block: int | None  # connected block (problem.blocks); None: one test for all blocks
    statistic: float
    df: int
    residual_df: int
    p_value: float


def _group_loglik(problem: AllocationProblem, mean: np.ndarray, family: str) -> np.ndarray:
    y = problem.totals
    use = problem.group_exposure > 0
    out = np.zeros(problem.n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        if family == "poisson":
            out[use] = np.where(y[use] > 0, y[use] * np.log(mean[use]), 0.0) - mean[use]
        else:
            out[use] = -y[use] / mean[use] - np.log(mean[use])
    return out


def productivity_evidence(
    problem: AllocationProblem,
    fit: EMFit,
    equal: EMFit,
    n_params: int,
) -> list[Evidence]:
    """Test the fitted rates against equal rates within each block (F test, estimated
    dispersion from the fitted model's Pearson residuals).

    The totals are informative about productivity only through how they move with the mix
    of entities; when that signal is absent (channel totals that do not depend on which
    campaigns ran) every ranking is noise, and this test says so. ``equal`` is the fit with
    one rate per connected block; ``n_params`` the number of rates (or coefficients) of
    ``fit``. A pooled fit is tested through its free MLE (refitted here).
    Free rates get one test per block; a covariate model, whose coefficients are shared
    across blocks, one test overall. No test when the fitted model leaves no residual
    degrees of freedom (more rates than groups).
    """
    if fit.m_step == "free" and fit.pooling != "none":
        # The F test compares maximum-likelihood fits; a pooled fit's shrunk rates would
        # understate the gain over equal rates. Test the free MLE (same ties) instead.
        fit = fit_em(
            problem,
            family=fit.family,
            pooling="none",
            tied=tied_sets(fit.parameter_of_entity),
            start=fit,
        )
    use = (problem.group_exposure > 0) & (problem.totals >= 0)
    residual_df = int(use.sum()) - n_params
    if residual_df <= 0:
        return []
    y, mean = problem.totals[use], fit.group_mean[use]
    variance = mean if fit.family == "poisson" else mean**2
    dispersion = float(np.sum((y - mean) ** 2 / variance) / residual_df)
    if dispersion <= 0:
        return []
    gain = _group_loglik(problem, fit.group_mean, fit.family) - _group_loglik(
        problem, equal.group_mean, equal.family
    )
    n_blocks, group_block, entity_block = problem.blocks
    if fit.m_step == "free":
        block_gain = np.bincount(group_block, gain, n_blocks)
        # Tied entities share one rate: count distinct rates per block, not entities.
        exposed = np.flatnonzero(problem.entity_exposure > 0)
        pairs = np.unique(
            np.column_stack([entity_block[exposed], fit.parameter_of_entity[exposed]]), axis=0
        )
        rates = np.bincount(pairs[:, 0], minlength=n_blocks)
        tests = [(b, float(block_gain[b]), int(rates[b]) - 1) for b in range(n_blocks)]
    else:
        n_real = int(np.unique(entity_block[problem.entity_exposure > 0]).size)
        tests = [(None, float(gain.sum()), n_params - n_real)]
    out: list[Evidence] = []
    for block, delta, df in tests:
        if df <= 0:
            continue
        statistic = max(2.0 * float(delta), 0.0) / df / dispersion
        out.append(
            Evidence(
                block=block,
                statistic=statistic,
                df=int(df),
                residual_df=residual_df,
                p_value=float(f_dist.sf(statistic, df, residual_df)),
            )
        )
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def recovery(
    allocated: np.ndarray,
    true_allocated: np.ndarray,
    log_rate: np.ndarray,
    true_log_rate: np.ndarray,
    entity_block: np.ndarray,
) -> dict[str, float | None]:
    """Correlation and RMSE of the credit, and of the block-centred log rate, vs the truth.

    Centring within block fixes the scale, which the shares do not depend on.
    """
    finite = np.isfinite(log_rate) & np.isfinite(true_log_rate)
    est, tru, blk = log_rate[finite], true_log_rate[finite], entity_block[finite]
    if len(est):
        counts = np.bincount(blk)
        with np.errstate(divide="ignore", invalid="ignore"):
            est = est - (np.bincount(blk, est) / counts)[blk]
            tru = tru - (np.bincount(blk, tru) / counts)[blk]
    return {
        "allocated_corr": correlation(allocated, true_allocated),
        "allocated_rmse": float(np.sqrt(np.mean((allocated - true_allocated) ** 2))),
        "log_rate_corr": correlation(est, tru),
        "log_rate_rmse": float(np.sqrt(np.mean((est - tru) ** 2))) if len(est) else None,
    }
