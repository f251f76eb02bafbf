"""Campaign split on short daily windows: our default EM against the credibility yardstick.

Worlds: ``attribution_analysis.simulate.mta.simulate_daily_campaigns`` (one channel, 5-10
campaigns, 90-180 days, an always-on campaign, short flights, late launches, one campaign
whose clicks overstate its incrementality), with the channel total exact or carrying
MMM-like noise (level bias plus a smooth daily error, handed over as posterior draws whose
mean the split uses). Three families: the default (campaigns' daily delivery jitters
independently), paced delivery (campaigns move together, less co-movement evidence), and a
concave response (contribution ~ reach^0.7 within a campaign: outside the rate x exposure
family that every method here assumes). A fourth family repeats paced delivery with honest
clicks (no campaign's click-through inflated), to show how the platform signal's weight reacts
when clicks do and do not mislead. Two more families sum the days to 16 weekly totals
(7-12 campaigns, the issue's overfitting case: a few periods per rate), with inflated and
with honest clicks, and with clicks that track incrementality closely: there co-movement
separates campaigns poorly and the signal has the most to add.

Methods, all on reach as exposure and all adding up to the channel total every day:

* naive clicks: each day's total split by the campaigns' clicks that day;
* credibility: the Bühlmann-credibility baseline (``allocation/credibility.py``);
* EM free: ``fit_em(pooling="none")``, for reference;
* EM default: ``fit_em`` with its defaults (partial pooling), intervals from
  ``pooling.split_with_rate_uncertainty`` (rate draws x the channel-total draws).
* EM + clicks: the default with the campaigns' clicks as a platform signal
  (``platform_signal``: the rates' prior mean moves with log clicks per reached user, its
  weight beta estimated from the data), intervals likewise.

For EM + clicks the table also gives the estimated beta (mean over seeds, and how often its
90% interval excludes 0), the share of the rates' spread the signal explains, and the share
error of the campaign whose clicks are inflated (``overstated_error``), against the others'.

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
    "paced, honest clicks": replace(SMOOTH_DELIVERY, overstated_clicks=1.0),
}
# Scarce evidence: the daily world summed to 16 weekly totals, 7-12 campaigns (the issue's
# overfitting case, a few periods per rate), where co-movement alone separates campaigns
# poorly and a platform signal has the most to add.
SCARCE = DailyCaseConfig(days=(112, 112), campaigns=(7, 12))
WEEKLY_FAMILIES: dict[str, DailyCaseConfig] = {
    "16 weeks, weekly totals": SCARCE,
    "16 weeks, honest clicks": replace(SCARCE, overstated_clicks=1.0),
    # Clicks that track incrementality closely (click-through proportional to productivity,
    # little noise, none inflated): what the signal adds when it is good.
    "16 weeks, clicks track it": replace(
        SCARCE, overstated_clicks=1.0, click_signal=1.0, click_noise_sd=0.1
    ),
}
FAMILIES.update(WEEKLY_FAMILIES)
INTERVAL_METHODS = ("EM default", "EM + clicks")


def problem_of(
    world: DailyCampaignWorld, weekly: bool = False
) -> tuple[AllocationProblem, np.ndarray, np.ndarray | None]:
    """(problem on reach, clicks per row, draws of the totals or None), daily or with the
    days summed to weeks (totals, reach, clicks and draws alike)."""
    d = world.delivery
    period = (d["date"] - world.dates[0]).dt.days.to_numpy()
    codes = pd.Categorical(d["campaign"], categories=world.campaigns["campaign"]).codes
    reach, clicks = d["reach"].to_numpy(float), d["clicks"].to_numpy(float)
    totals, draws = world.total, world.total_draws
    if weekly:
        week_of_day = np.arange(len(world.dates)) // 7
        cells = (
            pd.DataFrame({"week": period // 7, "campaign": codes, "reach": reach, "clicks": clicks})
            .groupby(["week", "campaign"], as_index=False)[["reach", "clicks"]]
            .sum()
        )
        period, codes = cells["week"].to_numpy(), cells["campaign"].to_numpy()
        reach, clicks = cells["reach"].to_numpy(), cells["clicks"].to_numpy()
        totals = np.bincount(week_of_day, totals)
        if draws is not None:
            draws = np.stack([np.bincount(week_of_day, row) for row in draws])
    problem = problem_from_arrays(totals, period, codes, reach, len(world.campaigns))
    return problem, clicks, draws


def shares(problem: AllocationProblem, allocated: np.ndarray) -> np.ndarray:
    parts = np.bincount(problem.entity, allocated, problem.n_entities)
    return parts / parts.sum()


def one_seed(
    seed: int, config: DailyCaseConfig, weekly: bool = False
) -> tuple[list[dict], dict[str, np.ndarray]]:
    world = simulate_daily_campaigns(seed, config)
    problem, clicks, draws = problem_of(world, weekly)
    truth = world.true_share.to_numpy()
    day_clicks = np.bincount(problem.group, clicks, problem.n_groups)[problem.group]
    by_clicks = problem.totals[problem.group] * np.divide(
        clicks, day_clicks, out=np.zeros_like(clicks), where=day_clicks > 0
    )
    campaign_clicks = np.bincount(problem.entity, clicks, problem.n_entities)
    fits, seconds = {}, {}
    for name, options in (
        ("EM default", {}),
        ("EM + clicks", {"platform_signal": campaign_clicks}),
    ):
        started = time.perf_counter()
        fits[name] = fit_em(problem, **options)
        seconds[name] = time.perf_counter() - started
    estimates = {
        "naive clicks": shares(problem, by_clicks),
        "credibility": shares(problem, credibility_split(problem, clicks).allocated),
        "EM free": shares(problem, fit_em(problem, pooling="none").allocated),
        **{name: shares(problem, fit.allocated) for name, fit in fits.items()},
    }
    for check in ("EM default", "EM + clicks", "credibility"):
        assert abs(estimates[check].sum() - 1.0) < 1e-9
    covered = {}
    for name in INTERVAL_METHODS:
        drawn = split_with_rate_uncertainty(problem, fits[name], draws, seed=seed)
        share_draws = drawn.entity_draws / drawn.entity_draws.sum(axis=1, keepdims=True)
        low, high = np.quantile(share_draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
        covered[name] = (truth >= low) & (truth <= high)
    overstated = int(np.flatnonzero(world.campaigns["campaign"] == world.overstated)[0])
    weight = fits["EM + clicks"].signal_weight
    assert weight is not None
    signal_rows = {
        "beta": weight.beta,
        "beta_excludes_0": float(abs(weight.beta) > 1.645 * weight.std_error),
        "explained": weight.explained,
    }
    rows = [
        {
            "seed": seed,
            "method": name,
            "mae": float(np.abs(est - truth).mean()),
            "spearman": float(spearmanr(est, truth)[0]),
            "overstated_error": float(abs(est[overstated] - truth[overstated])),
            "seconds": seconds.get(name, np.nan),
            **{k: v if name == "EM + clicks" else np.nan for k, v in signal_rows.items()},
        }
        for name, est in estimates.items()
    ]
    return rows, covered


def run(seeds: int, families: list[str] | None = None) -> pd.DataFrame:
    tables = []
    for family, base in FAMILIES.items():
        if families and family not in families:
            continue
        for noise in (False, True):
            config = replace(base, mmm_noise=noise)
            rows: list[dict] = []
            covered: dict[str, list[np.ndarray]] = {name: [] for name in INTERVAL_METHODS}
            for seed in range(seeds):
                seed_rows, seed_covered = one_seed(seed, config, family in WEEKLY_FAMILIES)
                rows += seed_rows
                for name in INTERVAL_METHODS:
                    covered[name].append(seed_covered[name])
            frame = pd.DataFrame(rows)
            summary = frame.groupby("method", sort=False).agg(
                mae_mean=("mae", "mean"),
                mae_worst=("mae", "max"),
                spearman_mean=("spearman", "mean"),
                spearman_worst=("spearman", "min"),
                overstated_error=("overstated_error", "mean"),
                beta=("beta", "mean"),
                beta_excludes_0=("beta_excludes_0", "mean"),
                explained=("explained", "mean"),
            )
            summary["coverage_90"] = np.nan
            for name in INTERVAL_METHODS:
                summary.loc[name, "coverage_90"] = float(np.concatenate(covered[name]).mean())
            summary["seconds_per_fit"] = frame.groupby("method", sort=False)["seconds"].mean()
            summary.insert(0, "mmm_noise", noise)
            summary.insert(0, "family", family)
            tables.append(summary.reset_index())
    return pd.concat(tables, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--families", nargs="*", choices=list(FAMILIES), default=None)
    args = parser.parse_args()
    table = run(args.seeds, args.families)
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(f"{args.seeds} seeds per row; coverage over all campaigns of all seeds")
        print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
