"""Bootstrap intervals for every method's channel shares and the Markov removal effects.

Journeys are resampled as a multinomial over the distinct merged paths, each path split into
its converting and its non-converting journeys: one replicate draws the same number of
journeys as observed, with probabilities (conversions_i, nulls_i) / total. Every method is
then recomputed on the replicate's counts, vectorised over replicates where the method is a
matrix product (heuristics, subset-sum Shapley, exact rate-within Shapley), one exact sparse
solve per replicate for Markov (milliseconds each). The interval is the 5th to 95th
percentile of the replicates (a 90% percentile interval, matching the MMM's 90% HDI).

Heuristic credit of a resampled journey is the mean credit of that path's observed
conversions (time decay: the mean over its journeys' touch ages, which resampling keeps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from attribution_analysis.paths import heuristics, markov, shapley
from attribution_analysis.paths.data import PathData

LEVEL = 0.90
CELLS_PER_CHUNK = 1 << 23  # replicates x paths held at once
RULE = (
    "journeys resampled as a multinomial over the distinct paths' converting and "
    "non-converting counts (same total), every method recomputed per replicate; 5th-95th "
    "percentile of the replicates"
)


@dataclass(frozen=True)
class Intervals:
    replicates: int
    seed: int
    shares: dict[str, tuple[np.ndarray, np.ndarray]]  # method -> (lower, upper) per channel
    removal_effect: tuple[np.ndarray, np.ndarray] | None


# One replicate-chunk function per method: (conv (r, U), nulls (r, U)) -> shares (r, C);
# Markov also returns removal effects.
ShareFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def heuristic_weights(
    data: PathData, inverse: np.ndarray, n_merged: int, rule: str, **options: object
) -> np.ndarray:
    """(P, C) mean credit per conversion of each merged path under ``rule``."""
    weight = heuristics.touch_weights(data, rule, **options)  # type: ignore[arg-type]
    unit = data.touch_unit
    n = len(data.channels)
    cell = inverse[unit] * n + data.touch_channel
    credit = np.bincount(cell, weight * data.conversions[unit], minlength=n_merged * n)
    conv = np.bincount(inverse, data.conversions, minlength=n_merged)
    credit = credit.reshape(n_merged, n)
    return np.divide(credit, conv[:, None], out=np.zeros_like(credit), where=conv[:, None] > 0)


def linear_share_fn(weights: np.ndarray) -> ShareFn:
    def fn(conv: np.ndarray, nulls: np.ndarray) -> np.ndarray:
        return markov._share(conv @ weights)

    return fn


def shapley_share_fn(
    merged: PathData,
    value_function: str,
    exact: bool,
    prior_journeys: float,
    seed: int,
) -> ShareFn:
    sets, inverse = shapley.coalition_index(merged)
    to_set = sp.csr_matrix(
        (np.ones(len(inverse)), (np.arange(len(inverse)), inverse)),
        shape=(len(inverse), len(sets)),
    )
    n = len(merged.channels)
    rng = np.random.default_rng(seed + 1)

    def fn(conv: np.ndarray, nulls: np.ndarray) -> np.ndarray:
        c = np.asarray((to_set.T @ conv.T).T)
        j = np.asarray((to_set.T @ (conv + nulls).T).T)
        raw, _ = shapley.raw_values(
            value_function,
            sets,
            c,
            j,
            n,
            prior_journeys,
            exact=exact,
            permutations=shapley.BOOTSTRAP_PERMUTATIONS,
            rng=rng,
        )
        return shapley._share(raw)

    return fn


def resample_chunks(merged: PathData, replicates: int, seed: int):
    """Yield (conv, nulls) blocks of (r, P) replicate counts, r summing to ``replicates``."""
    counts = np.concatenate([merged.conversions, merged.nulls])
    total = counts.sum()
    n_draw = round(float(total))
    p = counts / total
    rng = np.random.default_rng(seed)
    n_paths = merged.n_units
    chunk = max(1, CELLS_PER_CHUNK // max(1, 2 * n_paths))
    done = 0
    while done < replicates:
        r = min(chunk, replicates - done)
        draw = rng.multinomial(n_draw, p, size=r).astype(float)
        yield draw[:, :n_paths], draw[:, n_paths:]
        done += r


def bootstrap(
    merged: PathData,
    share_fns: dict[str, ShareFn],
    chain: markov.ChainStructure | None,
    replicates: int,
    seed: int,
) -> Intervals:
    """Percentile intervals of each method's shares (and Markov removal effects)."""
    shares: dict[str, list[np.ndarray]] = {m: [] for m in share_fns}
    effects: list[np.ndarray] = []
    markov_shares: list[np.ndarray] = []
    for conv, nulls in resample_chunks(merged, replicates, seed):
        for method, fn in share_fns.items():
            shares[method].append(fn(conv, nulls))
        if chain is not None:
            for b in range(len(conv)):
                _, p_conv, p_without, _, _ = markov.solve_chain(chain, conv[b], nulls[b])
                re = markov.removal_effects(p_conv, p_without)
                effects.append(re)
                markov_shares.append(markov._share(re))
    tail = (1.0 - LEVEL) / 2.0 * 100.0

    def band(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = np.percentile(draws, [tail, 100.0 - tail], axis=0)
        return low, high

    out = {m: band(np.concatenate(v)) for m, v in shares.items()}
    removal = None
    if chain is not None:
        out[f"markov_order_{chain.order}"] = band(np.array(markov_shares))
        removal = band(np.array(effects))
    return Intervals(replicates, seed, out, removal)
