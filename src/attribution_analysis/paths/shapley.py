"""Shapley-value attribution over channel coalitions.

Journeys are grouped by the *set* of channels they touched (a coalition T, order ignored);
each observed set has a conversion rate CR(T) = conversions / journeys. Two coalition worths:

``subset_sum`` (default): v(S) = sum of CR(T) over observed T inside S. The Harsanyi
dividends of this game are the CR(T) themselves, so the Shapley value has the closed form
(Zhao et al. 2018, "simplified Shapley value")

    phi_j = sum over observed T containing j of CR(T) / |T|,

exact for any number of channels, in one pass over the observed sets.

``rate_within``: v(S) = conversion rate of the journeys whose channels all lie in S (the
journeys that would be untouched if only S existed), v(empty) = 0. It is not additive over
sets, so phi_j needs the textbook sum over coalitions,

    phi_j = sum_{S not containing j} |S|! (n - |S| - 1)! / n! [v(S + j) - v(S)],

computed exactly over all 2^n coalitions (subset sums by a zeta transform) up to
``exact_max_channels``. Above it, channel orderings are sampled uniformly: the mean marginal
contribution over M orderings is unbiased, and since v lies in [0, 1] each marginal
contribution lies in [-1, 1], so Hoeffding's inequality bounds the error per channel:
P(|estimate - phi_j| >= eps) <= 2 exp(-M eps^2 / 2), i.e. eps = sqrt(2 ln(2 / 0.05) / M)
with 95% probability. The CLT standard errors are reported beside it (usually far tighter).

Raw values are then scaled to shares and multiplied by the total conversions (and value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attribution_analysis.paths.data import PathData, channel_sets

CONFIDENCE = 0.95
PERMUTATION_BATCH = 256


@dataclass(frozen=True)
class ShapleyFit:
    value_function: str
    raw: np.ndarray  # (C,) Shapley values of the game
    exact: bool
    permutations: int | None
    standard_errors: np.ndarray | None
    error_bound: float | None
    n_coalitions: int
    conversions: np.ndarray  # (C,) credit
    value: np.ndarray | None


def coalition_table(data: PathData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observed channel sets (bitmasks) with their conversions, journeys and value."""
    masks = channel_sets(data)
    sets, inverse = np.unique(masks, return_inverse=True)
    inverse = inverse.ravel()
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


def subset_sum_shapley(sets: np.ndarray, rate: np.ndarray, n: int) -> np.ndarray:
    """Closed form: each observed set's rate split equally over its members."""
    bits = _bits(sets, n)
    size = bits.sum(axis=1)
    return (bits * (rate / size)[:, None]).sum(axis=0)


def _zeta(values: np.ndarray, n: int) -> np.ndarray:
    """f(S) = sum over T subset of S of values[T], for all 2^n masks (in place, n passes)."""
    f = values.copy()
    for i in range(n):
        step = 1 << i
        view = f.reshape(-1, 2 * step)
        view[:, step:] += view[:, :step]
    return f


def rate_within_exact(
    sets: np.ndarray, conv: np.ndarray, journeys: np.ndarray, n: int
) -> np.ndarray:
    """Exact Shapley values of v(S) = conv-rate of journeys inside S, over all 2^n sets."""
    size = 1 << n
    conv_full = np.zeros(size)
    jour_full = np.zeros(size)
    np.add.at(conv_full, sets, conv)
    np.add.at(jour_full, sets, journeys)
    c_in = _zeta(conv_full, n)
    j_in = _zeta(jour_full, n)
    v = np.divide(c_in, j_in, out=np.zeros(size), where=j_in > 0)
    masks = np.arange(size, dtype=np.int64)
    popcount = np.bitwise_count(masks)
    # weight of a coalition S of size s (not containing j): s! (n - s - 1)! / n!
    weights = np.array(
        [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    )
    phi = np.zeros(n)
    for j in range(n):
        bit = 1 << j
        without = masks[(masks & bit) == 0]
        phi[j] = float((weights[popcount[without]] * (v[without | bit] - v[without])).sum())
    return phi


def rate_within_sampled(
    sets: np.ndarray,
    conv: np.ndarray,
    journeys: np.ndarray,
    n: int,
    permutations: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo over orderings: mean and standard error of each channel's marginal."""
    bits = _bits(sets, n)
    total = np.zeros(n)
    total_sq = np.zeros(n)
    done = 0
    while done < permutations:
        batch = min(PERMUTATION_BATCH, permutations - done)
        perms = np.argsort(rng.random((batch, n)), axis=1)  # uniform orderings
        rank = np.argsort(perms, axis=1)  # rank[b, channel] = its position
        # A set is inside the first m channels of the ordering once its last member arrived.
        last = np.where(bits[None, :, :], rank[:, None, :], -1).max(axis=2)  # (batch, K)
        cell = (np.arange(batch)[:, None] * n + last).ravel()
        conv_at = np.bincount(cell, np.tile(conv, batch), minlength=batch * n).reshape(batch, n)
        jour_at = np.bincount(cell, np.tile(journeys, batch), minlength=batch * n)
        jour_at = jour_at.reshape(batch, n)
        c_cum, j_cum = conv_at.cumsum(axis=1), jour_at.cumsum(axis=1)
        v = np.divide(c_cum, j_cum, out=np.zeros_like(c_cum), where=j_cum > 0)
        marginal_by_pos = np.diff(np.concatenate([np.zeros((batch, 1)), v], axis=1), axis=1)
        marginal = np.take_along_axis(marginal_by_pos, rank, axis=1)  # per channel
        total += marginal.sum(axis=0)
        total_sq += (marginal**2).sum(axis=0)
        done += batch
    mean = total / permutations
    var = np.maximum(total_sq / permutations - mean**2, 0.0)
    return mean, np.sqrt(var / permutations)


def hoeffding_bound(permutations: int, confidence: float = CONFIDENCE) -> float:
    """Half-width eps with P(|mean - phi| >= eps) <= 1 - confidence, marginals in [-1, 1]."""
    return math.sqrt(2.0 * math.log(2.0 / (1.0 - confidence)) / permutations)


def fit_shapley(
    data: PathData,
    value_function: str = "subset_sum",
    exact_max_channels: int = 16,
    permutations: int = 2000,
    seed: int = 0,
) -> ShapleyFit:
    n = len(data.channels)
    sets, conv, journeys, value = coalition_table(data)
    rate = np.divide(conv, journeys, out=np.zeros_like(conv), where=journeys > 0)
    exact, n_perm, se, bound = True, None, None, None
    if value_function == "subset_sum":
        raw = subset_sum_shapley(sets, rate, n)
    elif n <= exact_max_channels:
        raw = rate_within_exact(sets, conv, journeys, n)
    else:
        rng = np.random.default_rng(seed)
        raw, se = rate_within_sampled(sets, conv, journeys, n, permutations, rng)
        exact, n_perm, bound = False, permutations, hoeffding_bound(permutations)
    share = _share(raw)
    value_credit = None
    if data.value is not None:
        value_credit = _value_split(sets, value, journeys, rate, n, value_function, share)
    return ShapleyFit(
        value_function=value_function,
        raw=raw,
        exact=exact,
        permutations=n_perm,
        standard_errors=se,
        error_bound=bound,
        n_coalitions=len(sets),
        conversions=share * float(data.conversions.sum()),
        value=value_credit,
    )


def _share(raw: np.ndarray) -> np.ndarray:
    # Negative Shapley values (a channel whose presence lowers the rate) get no credit: a
    # share of conversions cannot be negative; the raw values keep the sign for the report.
    clipped = np.clip(raw, 0.0, None)
    total = clipped.sum()
    return clipped / total if total > 0 else np.zeros_like(raw)


def _value_split(
    sets: np.ndarray,
    value: np.ndarray,
    journeys: np.ndarray,
    rate: np.ndarray,
    n: int,
    value_function: str,
    share: np.ndarray,
) -> np.ndarray:
    """Value credit: the same game on value per journey (subset_sum), else the conversion
    shares applied to the total value."""
    if value_function == "subset_sum":
        value_rate = np.divide(value, journeys, out=np.zeros_like(value), where=journeys > 0)
        return _share(subset_sum_shapley(sets, value_rate, n)) * float(value.sum())
    return share * float(value.sum())
