"""Campaign split on short daily windows: our default EM against the credibility yardstick.

Worlds: ``attribution_analysis.simulate.mta.simulate_daily_campaigns`` (one channel, 5-10
campaigns, 90-180 days, an always-on campaign, short flights, late launches, one campaign
whose clicks overstate its incrementality), with the channel total exact or carrying
MMM-like noise (level bias plus a smooth daily error, handed over as posterior draws whose
mean the split uses). Three families: the default (campaigns' daily delivery jitters
independently), paced delivery (campaigns move together, less co-movement evidence), and a
concave response (contribution ~ reach^0.7 within a campaign: outside the rate x exposure
family that every method here assumes).

Methods, all on reach as exposure and all adding up to the channel total every day:

* naive clicks: each day's total split by the campaigns' clicks that day;
* credibility: the Bühlmann-credibility baseline (``allocation/credibility.py``);
* EM free: ``fit_em(pooling="none")``, for reference;
* EM default: ``fit_em`` with its defaults (partial pooling), intervals from
  ``pooling.split_with_rate_uncertainty`` (rate draws x the channel-total draws).

Per seed: share MAE (mean over campaigns of |estimated - true share of the window's total|)
and Spearman against the true shares; per family: their mean and worst seed, and the 90%
interval coverage of the true campaign shares (all campaigns of all seeds pooled).

Run: ``.venv/bin/python benchmarks/allocation_pooling.py [--seeds 30]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from attribution_analysis.allocation.credibility import credibility_split
from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.pooling import split_with_rate_uncertainty
from attribution_analysis.allocation.problem import AllocationProblem, problem_from_arrays
from attribution_analysis.simulate.mta import (
    CONCAVE_RESPONSE,
    HARD_CASE,
    SMOOTH_DELIVERY,
    DailyCampaignWorld,
    DailyCaseConfig,
    simulate_daily_campaigns,
)

LEVEL = 0.90
FAMILIES: dict[str, DailyCaseConfig] = {
    "jittered delivery": HARD_CASE,
    "paced delivery": SMOOTH_DELIVERY,
    "concave response": CONCAVE_RESPONSE,
}


def problem_of(world: DailyCampaignWorld) -> tuple[AllocationProblem, np.ndarray, np.ndarray]:
    """(problem on reach, clicks per row, week of each day)."""
    d = world.delivery
    day = (d["date"] - world.dates[0]).dt.days.to_numpy()
    codes = pd.Categorical(d["campaign"], categories=world.campaigns["campaign"]).codes
    problem = problem_from_arrays(
        world.total, day, codes, d["reach"].to_numpy(float), len(world.campaigns)
    )
    return problem, d["clicks"].to_numpy(float), np.arange(len(world.dates)) // 7


def shares(problem: AllocationProblem, allocated: np.ndarray) -> np.ndarray:
    parts = np.bincount(problem.entity, allocated, problem.n_entities)
    return parts / parts.sum()


def one_seed(seed: int, config: DailyCaseConfig) -> tuple[list[dict], np.ndarray]:
    world = simulate_daily_campaigns(seed, config)
    problem, clicks, _ = problem_of(world)
    truth = world.true_share.to_numpy()
    day_clicks = np.bincount(problem.group, clicks, problem.n_groups)[problem.group]
    by_clicks = problem.totals[problem.group] * np.divide(
        clicks, day_clicks, out=np.zeros_like(clicks), where=day_clicks > 0
    )
    started = time.perf_counter()
    default = fit_em(problem)
    seconds = time.perf_counter() - started
    estimates = {
        "naive clicks": shares(problem, by_clicks),
        "credibility": shares(problem, credibility_split(problem, clicks).allocated),
        "EM free": shares(problem, fit_em(problem, pooling="none").allocated),
        "EM default": shares(problem, default.allocated),
    }
    for check in ("EM default", "credibility"):
        assert abs(estimates[check].sum() - 1.0) < 1e-9
    drawn = split_with_rate_uncertainty(problem, default, world.total_draws, seed=seed)
    share_draws = drawn.entity_draws / drawn.entity_draws.sum(axis=1, keepdims=True)
    low, high = np.quantile(share_draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    covered = (truth >= low) & (truth <= high)
    rows = [
        {
            "seed": seed,
            "method": name,
            "mae": float(np.abs(est - truth).mean()),
            "spearman": float(spearmanr(est, truth)[0]),
            "seconds": seconds if name == "EM default" else np.nan,
        }
        for name, est in estimates.items()
    ]
    return rows, covered


def run(seeds: int) -> pd.DataFrame:
    tables = []
    for family, base in FAMILIES.items():
        for noise in (False, True):
            config = replace(base, mmm_noise=noise)
            rows: list[dict] = []
            covered: list[np.ndarray] = []
            for seed in range(seeds):
                seed_rows, seed_covered = one_seed(seed, config)
                rows += seed_rows
                covered.append(seed_covered)
            frame = pd.DataFrame(rows)
            summary = frame.groupby("method", sort=False).agg(
                mae_mean=("mae", "mean"),
                mae_worst=("mae", "max"),
                spearman_mean=("spearman", "mean"),
                spearman_worst=("spearman", "min"),
            )
            summary["coverage_90"] = np.nan
            summary.loc["EM default", "coverage_90"] = float(np.concatenate(covered).mean())
            summary["seconds_per_fit"] = frame.groupby("method", sort=False)["seconds"].mean()
            summary.insert(0, "mmm_noise", noise)
            summary.insert(0, "family", family)
            tables.append(summary.reset_index())
    return pd.concat(tables, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    args = parser.parse_args()
    table = run(args.seeds)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"{args.seeds} seeds per row; coverage over all campaigns of all seeds")
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
