"""Partial pooling in the EM: it beats free rates where periods are few, leaves rich data
alone, conserves mass, warns on overfit, and its intervals cover the simulated truth.

Truth comes from ``simulate.mta.simulate_daily_campaigns`` (true campaign contributions of
a daily world) and, for the engine-level checks, from ``draw_problem`` (generating rates).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation import pooling as partial_pooling
from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.pooling import split_with_rate_uncertainty
from attribution_analysis.allocation.problem import AllocationProblem, problem_from_arrays
from attribution_analysis.simulate.mta import (
    HARD_CASE,
    DailyCampaignWorld,
    DailyCaseConfig,
    simulate_daily_campaigns,
)
from tests.allocation.conftest import draw_problem

MASS_TOL = 1e-9
SEEDS = range(8)
# 7 campaigns over 16 weeks with an MMM-like noisy total: the overfitting case.
FEW_PERIODS = DailyCaseConfig(days=(112, 112), campaigns=(7, 7), mmm_noise=True)
FEW_PERIOD_SEEDS = range(12)  # pooled wins on 10 of these 12; the mean gap is ~20%
# Coverage of nominal 90% intervals over ~60 campaign shares: binomial sd ~0.04.
COVERAGE_RANGE = (0.78, 0.99)


def _weekly(world: DailyCampaignWorld) -> AllocationProblem:
    """The daily world summed to weeks: reach as exposure, the seen total as the total."""
    d = world.delivery
    week = (d["date"] - world.dates[0]).dt.days.to_numpy() // 7
    codes = pd.Categorical(d["campaign"], categories=world.campaigns["campaign"]).codes
    cells = (
        pd.DataFrame({"week": week, "campaign": codes, "reach": d["reach"]})
        .groupby(["week", "campaign"], as_index=False)["reach"]
        .sum()
    )
    totals = np.bincount(np.arange(len(world.dates)) // 7, world.total)
    return problem_from_arrays(
        totals,
        cells["week"].to_numpy(),
        cells["campaign"].to_numpy(),
        cells["reach"].to_numpy(float),
        len(world.campaigns),
    )


def _daily(world: DailyCampaignWorld) -> AllocationProblem:
    d = world.delivery
    day = (d["date"] - world.dates[0]).dt.days.to_numpy()
    codes = pd.Categorical(d["campaign"], categories=world.campaigns["campaign"]).codes
    return problem_from_arrays(
        world.total, day, codes, d["reach"].to_numpy(float), len(world.campaigns)
    )


def _share_mae(problem: AllocationProblem, allocated: np.ndarray, truth: np.ndarray) -> float:
    parts = np.bincount(problem.entity, allocated, problem.n_entities)
    return float(np.abs(parts / parts.sum() - truth).mean())


def test_pooling_beats_free_rates_when_periods_are_few():
    """Mean share MAE over seeds: pooled < free (the overfit the issue reports), and pooled <
    full pooling (negative control: a split by exposure alone, which a pooled fit collapsing
    to the channel mean would equal, is not what wins)."""
    pooled, free, exposure_only = [], [], []
    for seed in FEW_PERIOD_SEEDS:
        world = simulate_daily_campaigns(seed, FEW_PERIODS)
        problem = _weekly(world)
        truth = world.true_share.to_numpy()
        pooled.append(_share_mae(problem, fit_em(problem).allocated, truth))
        free.append(_share_mae(problem, fit_em(problem, pooling="none").allocated, truth))
        flat = problem.totals[problem.group] * problem.exposure
        exposure_only.append(
            _share_mae(problem, flat / problem.group_exposure[problem.group], truth)
        )
    print(
        f"\nshare MAE pooled {np.mean(pooled):.4f} free {np.mean(free):.4f} "
        f"exposure only {np.mean(exposure_only):.4f}"
    )
    assert np.mean(pooled) < 0.9 * np.mean(free)
    assert np.mean(pooled) < 0.9 * np.mean(exposure_only)


def test_rich_data_keep_their_own_rates():
    """Daily exact totals over months: the data weight of every rate is near 1, and the
    pooled split is the free one to within a fraction of a share point."""
    world = simulate_daily_campaigns(3, HARD_CASE)
    problem = _daily(world)
    pooled, free = fit_em(problem), fit_em(problem, pooling="none")
    assert pooled.data_weight is not None and np.all(pooled.data_weight > 0.9)
    gap = _share_mae(problem, pooled.allocated, world.true_share.to_numpy())
    assert abs(gap - _share_mae(problem, free.allocated, world.true_share.to_numpy())) < 2e-3


def test_equal_true_rates_are_pooled_toward_one_rate():
    """Every entity with the same rate: tau shrinks to a small value; with spread rates it
    stays near the generating spread (log sd 0.5)."""
    equal = fit_em(draw_problem(11, n_groups=60, rate=np.ones(40)).problem)
    spread = fit_em(draw_problem(11, n_groups=2000).problem)
    assert equal.pooling_sd is not None and spread.pooling_sd is not None
    assert equal.pooling_sd < 0.15
    assert 0.35 < spread.pooling_sd < 0.65


@pytest.mark.parametrize("family", ["poisson", "gamma"])
def test_pooled_fits_split_every_group_total_exactly(family):
    drawn = draw_problem(12, n_groups=50, family=family)
    fit = fit_em(drawn.problem, family=family)
    p = drawn.problem
    summed = np.bincount(p.group, fit.allocated, p.n_groups)
    assert fit.pooling == "channel" and fit.hyper_converged
    assert np.max(np.abs(summed - p.totals) / p.totals) < MASS_TOL
    assert fit.monotone


def test_free_rates_on_few_periods_are_flagged_and_pooled_ones_say_why_that_is_fine():
    problem = _weekly(simulate_daily_campaigns(0, FEW_PERIODS))
    free = fit_em(problem, pooling="none")
    pooled = fit_em(problem)
    assert any("pooling='none'" in w for w in free.warnings)
    assert any("can overfit" in w for w in free.warnings)
    assert any("pooled toward" in w for w in pooled.warnings)
    rich = fit_em(_daily(simulate_daily_campaigns(0, HARD_CASE)), pooling="none")
    assert not any("can overfit" in w for w in rich.warnings)  # negative control


def _coverage(config: DailyCaseConfig, seeds: range) -> tuple[float, float]:
    """(coverage of the true window shares by 90% intervals, largest mass error)."""
    hits, worst = [], 0.0
    for seed in seeds:
        world = simulate_daily_campaigns(seed, config)
        problem = _daily(world)
        fit = fit_em(problem)
        split = split_with_rate_uncertainty(problem, fit, world.total_draws, seed=seed)
        share = split.entity_draws / split.entity_draws.sum(axis=1, keepdims=True)
        low, high = np.quantile(share, [0.05, 0.95], axis=0)
        truth = world.true_share.to_numpy()
        hits.append((truth >= low) & (truth <= high))
        worst = max(worst, split.max_block_error)
    return float(np.concatenate(hits).mean()), worst


def test_intervals_cover_the_true_shares_with_exact_totals():
    coverage, mass_error = _coverage(HARD_CASE, SEEDS)
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], coverage
    assert mass_error < MASS_TOL


def test_holding_rates_fixed_does_not_cover():
    """Negative control: the old intervals (MMM draws split with fixed shares) on a noisy
    total miss most true shares, so the coverage above is the rates' uncertainty at work."""
    from attribution_analysis.allocation.topdown import split_draws

    hits = []
    for seed in range(4):
        world = simulate_daily_campaigns(seed, replace(HARD_CASE, mmm_noise=True))
        problem = _daily(world)
        fit = fit_em(problem)
        drawn = split_draws(problem, fit.share, world.total_draws)
        share = drawn.entity_draws / drawn.entity_draws.sum(axis=1, keepdims=True)
        low, high = np.quantile(share, [0.05, 0.95], axis=0)
        truth = world.true_share.to_numpy()
        hits.append((truth >= low) & (truth <= high))
    assert np.concatenate(hits).mean() < 0.6


@pytest.mark.slow
def test_intervals_cover_the_true_shares_when_the_total_carries_mmm_noise():
    coverage, mass_error = _coverage(replace(HARD_CASE, mmm_noise=True), range(12))
    assert COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1], coverage
    assert mass_error < MASS_TOL


def _tiny_problem(seed: int) -> AllocationProblem:
    """12 periods x 5 entities with overlapping flights (dense enough to couple the rates)."""
    rng = np.random.default_rng(seed)
    group, entity = np.nonzero(rng.random((12, 5)) < 0.7)
    exposure = rng.gamma(2.0, 50.0, len(group))
    rate = np.array([0.02, 0.05, 0.03, 0.08, 0.04])
    totals = np.bincount(group, rate[entity] * exposure, 12) * rng.gamma(20.0, 1 / 20.0, 12)
    return problem_from_arrays(totals, group, entity, exposure, 5)


@pytest.mark.parametrize("family", ["poisson", "gamma"])
def test_sparse_laplace_variances_equal_a_dense_inverse_on_a_tiny_problem(family):
    """The sparse precision root and its solves (pooling.update_hyper) against numpy's dense
    inverse of G' diag(w / V(mu)) G / phi + I / tau^2 written out here from the model."""
    problem = _tiny_problem(3)
    rate = np.array([0.025, 0.04, 0.03, 0.07, 0.05])
    weight = np.ones(problem.n_groups)
    # phi such that data and prior weigh alike (a Gamma's information per group is ~1).
    dispersion = 1.7 if family == "poisson" else 0.02
    hyper = partial_pooling.Hyper(np.full(5, np.log(0.04)), 0.3, dispersion, 1.0, 0.0)
    free = np.ones(5, dtype=bool)
    _, variance, root = partial_pooling.update_hyper(
        family, problem, weight, rate, np.arange(5), 5, free, np.zeros(5, int), hyper, None
    )
    dense_w = np.zeros((problem.n_groups, 5))
    np.add.at(dense_w, (problem.group, problem.entity), problem.exposure)
    mean = dense_w @ rate
    score = dense_w * rate  # d mu_b / d log rate_h
    info = score.T @ np.diag(weight / (mean if family == "poisson" else mean**2)) @ score
    covariance = np.linalg.inv(info / hyper.dispersion + np.eye(5) / hyper.tau2)
    np.testing.assert_allclose(variance, np.diag(covariance), rtol=1e-10)
    np.testing.assert_allclose((root.T @ root).toarray(), np.linalg.inv(covariance), rtol=1e-9)
    # Negative control: the information's diagonal alone (rates treated as uncoupled) is
    # far off here, so the comparison above can fail.
    uncoupled = 1.0 / (np.diag(info) / hyper.dispersion + 1.0 / hyper.tau2)
    assert np.max(np.abs(uncoupled / np.diag(covariance) - 1.0)) > 0.05


def test_joint_rate_draws_have_the_dense_laplace_covariance():
    """Draws of the pooled log rates made by sparse solves have the covariance of the dense
    inverse computed here (20,000 draws: sampling error of a variance ~1%)."""
    problem = _tiny_problem(5)
    fit = fit_em(problem)
    root = fit.log_rate_precision_root
    assert root is not None
    covariance = np.linalg.inv((root.T @ root).toarray())
    draws = partial_pooling._rate_draws(fit, 20_000, np.random.default_rng(0))
    empirical = np.cov(np.log(draws), rowvar=False)
    np.testing.assert_allclose(np.diag(empirical), np.diag(covariance), rtol=0.05)
    assert np.max(np.abs(empirical - covariance)) < 0.05 * np.max(np.diag(covariance))
    np.testing.assert_allclose(fit.log_rate_covariance, np.diag(covariance), rtol=1e-3)


def test_two_channels_on_different_exposure_units_pool_each_toward_its_own_mean():
    """Exact totals from two blocks whose rates differ by 10^4 (per impression, per unit of
    spend): a level shared by both channels would start one of them far off and collapse
    the pooling; each block pooled toward its own mean recovers the true rates."""
    rng = np.random.default_rng(11)
    rate = np.array([2e-4, 5e-4, 1e-4, 3e-4, 2.0, 4.0])
    rows = []
    for day in range(60):
        for h in range(4):
            rows.append((day, h, rng.gamma(2.0, 5e4)))  # impressions
        for h in (4, 5):
            rows.append((60 + day, h, rng.gamma(2.0, 20.0)))  # spend, its own groups
    group, entity, exposure = (np.array(column) for column in zip(*rows, strict=True))
    totals = np.bincount(group, rate[entity] * exposure, 120)
    fit = fit_em(problem_from_arrays(totals, group, entity, exposure, 6))
    np.testing.assert_allclose(fit.rate, rate, rtol=1e-3)
    assert fit.mass_error < MASS_TOL
    # Negative control: the split by delivery alone misses the truth by far more.
    weight = exposure / np.bincount(group, exposure, 120)[group]
    true_share = rate[entity] * exposure / totals[group]
    assert np.max(np.abs(weight - true_share)) > 0.1


def test_refits_on_resampled_totals_keep_the_main_fits_pooling_when_held():
    """Bootstrap replicates and MMM draws refit the rates under the main fit's pooling
    strength and dispersion (re-estimating them on a replicate with few distinct groups
    drives the dispersion towards 0); without ``hold_pooling`` they are re-estimated."""
    world = simulate_daily_campaigns(3, FEW_PERIODS)
    problem = _weekly(world)
    main = fit_em(problem)
    weights = (
        np.random.default_rng(0)
        .multinomial(problem.n_groups, np.full(problem.n_groups, 1.0 / problem.n_groups))
        .astype(float)
    )
    held = fit_em(problem, group_weights=weights, start=main, hold_pooling=True)
    assert (held.pooling_sd, held.dispersion) == (main.pooling_sd, main.dispersion)
    totals = np.bincount(problem.group, held.allocated, problem.n_groups)
    assert np.allclose(totals, problem.totals, rtol=MASS_TOL)
    free = fit_em(problem, group_weights=weights, start=main)
    assert (free.pooling_sd, free.dispersion) != (main.pooling_sd, main.dispersion)
