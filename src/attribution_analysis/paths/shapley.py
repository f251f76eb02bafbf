"""Shapley-value attribution over channel coalitions.

Journeys are grouped by the *set* of channels they touched (a coalition T, order ignored);
each observed set has a conversion rate. Raw rates are noise where a set has few journeys
(one journey that converted is a 100% rate), so every rate is shrunk toward the overall
rate p0 with a Beta prior worth ``k = prior_journeys`` pseudo-journeys:

    CR(T) = (conversions(T) + k p0) / (journeys(T) + k),

the posterior mean under Beta(k p0, k (1 - p0)). k = 0 gives the raw rates. Two worths:

``subset_sum`` (default): v(S) = sum of CR(T) over observed T inside S. The Harsanyi
dividends of this game are the CR(T) themselves, so the Shapley value has the closed form
(Zhao et al. 2018, "simplified Shapley value")

    phi_j = sum over observed T containing j of CR(T) / |T|,

exact for any number of channels, in one pass over the observed sets.

``rate_within``: v(S) = shrunk conversion rate of the journeys whose channels all lie in S
(the journeys that would be untouched if only S existed), v(S) = 0 when no journey lies in
S. It is not additive over sets, so phi_j needs the textbook sum over coalitions,

    phi_j = sum_{S not containing j} |S|! (n - |S| - 1)! / n! [v(S + j) - v(S)],

computed exactly over all 2^n coalitions (subset sums by a zeta transform) up to
``exact_max_channels``. Above it, channel orderings are sampled uniformly: the mean marginal
contribution over M orderings is unbiased, and since v lies in [0, 1] each marginal
contribution lies in [-1, 1], so Hoeffding's inequality with a union bound over the n
channels gives, with 95% probability for all channels at once,
|estimate_j - phi_j| <= eps = sqrt(2 ln(2 n / 0.05) / M).

What is shown is not phi but the share s_j = max(phi_j, 0) / A, A = sum_k max(phi_k, 0).
Clipping is 1-Lipschitz, so |a^_j - a_j| <= eps and |A^ - A| <= n eps, and

    s^_j - s_j = (a^_j - a_j) / A + s^_j (A - A^) / A
    =>  |s^_j - s_j| <= eps (1 + n s^_j) / (A^ - n eps)     (when A^ > n eps; else 1),

which is the bound reported per channel (``share_error_bounds``), on the same 95% event.
Credits are shares times the total conversions, so their bound is that times the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from attribution_analysis.paths.data import PathData, channel_sets

CONFIDENCE = 0.95
PERMUTATION_BATCH = 256
# A coalition with fewer journeys than this is "low support": its rate is mostly noise (or,
# shrunk, mostly prior), and the share of the game's worth such sets carry is reported.
LOW_SUPPORT_JOURNEYS = 20
# Sampled orderings per bootstrap replicate (shared by every replicate) for sampled
# rate_within; the interval then holds both data and permutation noise (slightly wider).
BOOTSTRAP_PERMUTATIONS = 200


@dataclass(frozen=True)
class Support:
    """How much of the game rests on coalitions with few journeys."""

    threshold: int
    n_low: int
    journey_share: float  # share of journeys in low-support coalitions
    value_share: float  # share of the grand coalition's worth v(N) they carry


@dataclass(frozen=True)
class ShapleyFit:
    value_function: str
    raw: np.ndarray  # (C,) Shapley values of the game
    exact: bool
    permutations: int | None
    standard_errors: np.ndarray | None
    error_bound: float | None  # raw scale, all channels at once, 95%
    share_error_bounds: np.ndarray | None  # (C,) bound on the shown shares, same event
    n_coalitions: int
    prior_journeys: float
    prior_rate: float
    support: Support
    conversions: np.ndarray  # (C,) credit
    value: np.ndarray | None
    coalitions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # sets, conv, jour, CR


def coalition_index(data: PathData) -> tuple[np.ndarray, np.ndarray]:
    """Observed channel sets (bitmasks) and, per unit, the index of its set."""
    sets, inverse = np.unique(channel_sets(data), return_inverse=True)
    return sets, inverse.ravel()


def coalition_table(data: PathData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observed channel sets (bitmasks) with their conversions, journeys and value."""
    sets, inverse = coalition_index(data)
    conv = np.bincount(inverse, data.conversions, minlength=len(sets))
    journeys = np.bincount(inverse, data.journeys, minlength=len(sets))
    value = (
        np.bincount(inverse, data.value, minlength=len(sets))
        if data.value is not None
        else np.zeros(len(sets))
    )
    return sets, conv, journeys, value


def _bits(sets: np.ndarray, n: int) -> np.ndarray:
    return ((sets[:, None] >> np.arange(n, dtype=np.int64)[None, :]) & 1).astype(bool)


def _overall(conv: np.ndarray, journeys: np.ndarray) -> np.ndarray:
    """Overall rate per replicate (last axis summed), kept broadcastable."""
    c, j = conv.sum(axis=-1, keepdims=True), journeys.sum(axis=-1, keepdims=True)
    return np.divide(c, j, out=np.zeros_like(c), where=j > 0)


def shrink(
    conv: np.ndarray, journeys: np.ndarray, prior_journeys: float, p0: np.ndarray | float
) -> np.ndarray:
    """Posterior-mean rate under a Beta prior of ``prior_journeys`` pseudo-journeys at rate
    ``p0``; 0 where a set has no journeys (unobserved)."""
    rate = (conv + prior_journeys * p0) / np.maximum(journeys + prior_journeys, 1e-300)
    return np.where(journeys > 0, rate, 0.0)


def subset_sum_shapley(sets: np.ndarray, rate: np.ndarray, n: int) -> np.ndarray:
    """Closed form: each observed set's rate split equally over its members ((K,) or (R, K)
    rates -> (n,) or (R, n))."""
    bits = _bits(sets, n)
    return (rate / bits.sum(axis=1)) @ bits.astype(float)


def _zeta(values: np.ndarray, n: int) -> np.ndarray:
    """f(S) = sum over T subset of S of values[..., T], for all 2^n masks (n passes)."""
    f = values.copy()
    rows = f.reshape(-1, f.shape[-1])
    for i in range(n):
        step = 1 << i
        view = rows.reshape(rows.shape[0], -1, 2 * step)
        view[:, :, step:] += view[:, :, :step]
    return f


def rate_within_exact(
    sets: np.ndarray,
    conv: np.ndarray,
    journeys: np.ndarray,
    n: int,
    prior_journeys: float = 0.0,
) -> np.ndarray:
    """Exact Shapley values of v(S) = shrunk conv-rate of journeys inside S, over all 2^n
    sets; ``conv``/``journeys`` (K,) or (R, K) replicates -> (n,) or (R, n)."""
    single = conv.ndim == 1
    conv2, jour2 = np.atleast_2d(conv), np.atleast_2d(journeys)
    size = 1 << n
    masks = np.arange(size, dtype=np.int64)
    popcount = np.bitwise_count(masks)
    # weight of a coalition S of size s (not containing j): s! (n - s - 1)! / n!
    weights = np.array(
        [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    )
    phi = np.zeros((len(conv2), n))
    chunk = max(1, (1 << 21) // size)
    for lo in range(0, len(conv2), chunk):
        c_rows, j_rows = conv2[lo : lo + chunk], jour2[lo : lo + chunk]
        rows = len(c_rows)
        cell = (np.arange(rows)[:, None] * size + sets[None, :]).ravel()
        c_in = _zeta(np.bincount(cell, c_rows.ravel(), rows * size).reshape(rows, size), n)
        j_in = _zeta(np.bincount(cell, j_rows.ravel(), rows * size).reshape(rows, size), n)
        v = shrink(c_in, j_in, prior_journeys, _overall(c_rows, j_rows))
        for j in range(n):
            bit = 1 << j
            without = masks[(masks & bit) == 0]
            gain = v[:, without | bit] - v[:, without]
            phi[lo : lo + rows, j] = gain @ weights[popcount[without]]
    return phi[0] if single else phi


def orderings(n: int, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """(M, n) rank of each channel in M uniform random orderings."""
    return np.argsort(np.argsort(rng.random((permutations, n)), axis=1), axis=1)


def rate_within_sampled(
    sets: np.ndarray,
    conv: np.ndarray,
    journeys: np.ndarray,
    n: int,
    permutations: int,
    rng: np.random.Generator,
    prior_journeys: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo over orderings: mean and standard error of each channel's marginal.
    ``conv``/``journeys`` (K,) or (R, K): every replicate uses the same orderings."""
    single = conv.ndim == 1
    conv2, jour2 = np.atleast_2d(conv), np.atleast_2d(journeys)
    reps, k = conv2.shape
    p0 = _overall(conv2, jour2)[:, :, None]
    bits = _bits(sets, n)
    rank_all = orderings(n, permutations, rng)
    total = np.zeros((reps, n))
    total_sq = np.zeros((reps, n))
    batch_size = max(1, min(PERMUTATION_BATCH, (1 << 24) // max(1, k * n)))
    for lo in range(0, permutations, batch_size):
        rank = rank_all[lo : lo + batch_size]
        batch = len(rank)
        # A set is inside the first m channels of the ordering once its last member arrived.
        last = np.where(bits[None, :, :], rank[:, None, :], -1).max(axis=2)  # (batch, K)
        cell = (np.arange(batch)[:, None] * n + last).ravel()
        member = sp.csr_matrix(
            (np.ones(batch * k), (np.tile(np.arange(k), batch), cell)), shape=(k, batch * n)
        )
        conv_at = np.asarray(member.T @ conv2.T).T.reshape(reps, batch, n)
        jour_at = np.asarray(member.T @ jour2.T).T.reshape(reps, batch, n)
        v = shrink(conv_at.cumsum(axis=2), jour_at.cumsum(axis=2), prior_journeys, p0)
        marginal_by_pos = np.diff(v, axis=2, prepend=0.0)
        marginal = np.take_along_axis(marginal_by_pos, rank[None, :, :], axis=2)
        total += marginal.sum(axis=1)
        total_sq += (marginal**2).sum(axis=1)
    mean = total / permutations
    var = np.maximum(total_sq / permutations - mean**2, 0.0)
    se = np.sqrt(var / permutations)
    return (mean[0], se[0]) if single else (mean, se)


def hoeffding_bound(permutations: int, n_channels: int = 1, confidence: float = CONFIDENCE):
    """Half-width eps with P(|mean_j - phi_j| >= eps for some j) <= 1 - confidence, marginals
    in [-1, 1] (Hoeffding per channel at level (1 - confidence) / n, union bound)."""
    delta = (1.0 - confidence) / max(n_channels, 1)
    return math.sqrt(2.0 * math.log(2.0 / delta) / permutations)


def share_error_bounds(raw: np.ndarray, eps: float) -> np.ndarray:
    """Bound on |shown share - exact share| per channel, given |raw - phi| <= eps for all
    channels: eps (1 + n s_j) / (A - n eps), capped at 1 (see the module docstring)."""
    n = len(raw)
    positive = np.clip(raw, 0.0, None)
    total = positive.sum()
    if total - n * eps <= 0:
        return np.ones(n)
    share = positive / total
    return np.minimum(eps * (1.0 + n * share) / (total - n * eps), 1.0)


def _support(
    value_function: str, conv: np.ndarray, journeys: np.ndarray, rate: np.ndarray
) -> Support:
    low = journeys < LOW_SUPPORT_JOURNEYS
    worth = rate if value_function == "subset_sum" else conv  # each set's part of v(N)
    total = worth.sum()
    return Support(
        threshold=LOW_SUPPORT_JOURNEYS,
        n_low=int(low.sum()),
        journey_share=float(journeys[low].sum() / journeys.sum()) if journeys.sum() else 0.0,
        value_share=float(worth[low].sum() / total) if total > 0 else 0.0,
    )


def raw_values(
    value_function: str,
    sets: np.ndarray,
    conv: np.ndarray,
    journeys: np.ndarray,
    n: int,
    prior_journeys: float,
    *,
    exact: bool,
    permutations: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Shapley values ((K,) or (R, K) coalition counts -> (n,) or (R, n)) and Monte Carlo
    standard errors (None when exact)."""
    if value_function == "subset_sum":
        rate = shrink(conv, journeys, prior_journeys, _overall(conv, journeys))
        return subset_sum_shapley(sets, rate, n), None
    if exact:
        return rate_within_exact(sets, conv, journeys, n, prior_journeys), None
    return rate_within_sampled(sets, conv, journeys, n, permutations, rng, prior_journeys)


def fit_shapley(
    data: PathData,
    value_function: str = "subset_sum",
    exact_max_channels: int = 16,
    permutations: int = 2000,
    seed: int = 0,
    prior_journeys: float = 100.0,
) -> ShapleyFit:
    n = len(data.channels)
    sets, conv, journeys, value = coalition_table(data)
    p0 = float(conv.sum() / journeys.sum()) if journeys.sum() > 0 else 0.0
    rate = shrink(conv, journeys, prior_journeys, p0)
    exact = value_function == "subset_sum" or n <= exact_max_channels
    raw, se = raw_values(
        value_function,
        sets,
        conv,
        journeys,
        n,
        prior_journeys,
        exact=exact,
        permutations=permutations,
        rng=np.random.default_rng(seed),
    )
    n_perm = bound = share_bounds = None
    if not exact:
        n_perm, bound = permutations, hoeffding_bound(permutations, n)
        share_bounds = share_error_bounds(raw, bound)
    share = _share(raw)
    value_credit = None
    if data.value is not None:
        value_credit = _value_split(sets, value, journeys, n, value_function, share, prior_journeys)
    return ShapleyFit(
        value_function=value_function,
        raw=raw,
        exact=exact,
        permutations=n_perm,
        standard_errors=se,
        error_bound=bound,
        share_error_bounds=share_bounds,
        n_coalitions=len(sets),
        prior_journeys=prior_journeys,
        prior_rate=p0,
        support=_support(value_function, conv, journeys, rate),
        conversions=share * float(data.conversions.sum()),
        value=value_credit,
        coalitions=(sets, conv, journeys, rate),
    )


def _share(raw: np.ndarray) -> np.ndarray:
    # Negative Shapley values (a channel whose presence lowers the rate) get no credit: a
    # share of conversions cannot be negative; the raw values keep the sign for the report.
    clipped = np.clip(raw, 0.0, None)
    total = clipped.sum(axis=-1, keepdims=True)
    return np.divide(clipped, total, out=np.zeros_like(clipped), where=total > 0)


def _value_split(
    sets: np.ndarray,
    value: np.ndarray,
    journeys: np.ndarray,
    n: int,
    value_function: str,
    share: np.ndarray,
    prior_journeys: float,
) -> np.ndarray:
    """Value credit: the same game on (shrunk) value per journey (subset_sum), else the
    conversion shares applied to the total value."""
    if value_function == "subset_sum":
        value_rate = shrink(value, journeys, prior_journeys, _overall(value, journeys))
        return _share(subset_sum_shapley(sets, value_rate, n)) * float(value.sum())
    return share * float(value.sum())
