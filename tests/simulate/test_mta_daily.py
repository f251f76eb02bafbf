"""The daily hard-case campaign simulator: the cases it promises are present and consistent."""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis.simulate.mta import (
    HARD_CASE,
    HARD_CASE_WITH_MMM_NOISE,
    simulate_daily_campaigns,
)

SEEDS = range(6)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_world_has_the_promised_shape_and_hard_cases(seed):
    world = simulate_daily_campaigns(seed, HARD_CASE)
    n_days, k = len(world.dates), len(world.campaigns)
    assert 90 <= n_days <= 180 and 5 <= k <= 10
    kinds = set(world.campaigns["kind"])
    assert {"always_on", "short_flight", "late_launch"} <= kinds
    short = world.campaigns[world.campaigns["kind"] == "short_flight"]
    assert ((short["last_day"] - short["first_day"] + 1) <= 21).all()
    late = world.campaigns[world.campaigns["kind"] == "late_launch"]
    assert (late["first_day"] >= 0.7 * n_days - 1).all()
    d = world.delivery
    assert (d["reach"] <= d["impressions"]).all() and (d[["spend", "clicks"]] >= 0).all().all()
    daily = d.groupby("date")["contribution_true"].sum().reindex(world.dates, fill_value=0.0)
    assert np.allclose(daily.to_numpy(), world.total_true, rtol=1e-12)
    assert np.array_equal(world.total, world.total_true) and world.total_draws is None
    assert world.true_share.sum() == pytest.approx(1.0)


def test_the_overstated_campaign_gets_more_clicks_per_unit_of_contribution():
    ratios = []
    for seed in SEEDS:
        world = simulate_daily_campaigns(seed, HARD_CASE)
        per = world.delivery.groupby("campaign")[["clicks", "contribution_true"]].sum()
        ratio = per["clicks"] / per["contribution_true"]
        ratios.append(ratio[world.overstated] / ratio.drop(world.overstated).median())
    assert np.median(ratios) > 2.0


def test_mmm_noise_hands_over_draws_around_a_biased_centre():
    world = simulate_daily_campaigns(1, HARD_CASE_WITH_MMM_NOISE)
    draws = world.total_draws
    assert draws is not None and draws.shape == (HARD_CASE_WITH_MMM_NOISE.n_draws, len(world.dates))
    assert np.allclose(world.total, draws.mean(axis=0))
    log_error = np.log(world.total / world.total_true)
    assert np.std(log_error) > 0.05  # the centre is off the truth, day by day
    # Smooth, not white: neighbouring days' errors are strongly correlated.
    centred = log_error - log_error.mean()
    assert np.corrcoef(centred[:-1], centred[1:])[0, 1] > 0.8
    # The truth sits inside the draws' 90% band on most days (a calibrated posterior).
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    inside = np.mean((world.total_true >= low) & (world.total_true <= high))
    assert inside > 0.5


def test_the_same_seed_gives_the_same_world():
    a, b = simulate_daily_campaigns(4, HARD_CASE), simulate_daily_campaigns(4, HARD_CASE)
    assert a.delivery.equals(b.delivery)
