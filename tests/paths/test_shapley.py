"""Shapley values against hand-computed ones, and the sampled approximation against exact."""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis.paths import shapley
from attribution_analysis.paths.inputs import load_aggregated
from tests.paths.helpers import workspace_with

# Coalitions {a}: 10 journeys, 1 conversion (CR 0.1); {b}: 10, 2 (CR 0.2); {a,b}: 10, 6
# (CR 0.6). Path order does not matter for Shapley: 'b > a' and 'a > b' are one coalition.
PATHS = "path,conversions,nulls\na,1,9\nb,2,8\na > b,4,4\nb > a,2,0\n"


def _data(tmp_path):
    return load_aggregated(workspace_with(tmp_path, {"raw/paths.csv": PATHS})).data


def test_subset_sum_shapley_matches_the_simplified_formula_by_hand(tmp_path):
    # phi_a = CR{a} + CR{a,b} / 2 = 0.1 + 0.3 = 0.4; phi_b = 0.2 + 0.3 = 0.5.
    # Textbook check: v(a) = 0.1, v(b) = 0.2, v(ab) = 0.1 + 0.2 + 0.6 = 0.9;
    # phi_a = 1/2 (0.1 - 0) + 1/2 (0.9 - 0.2) = 0.4. Shares 4/9, 5/9 of 9 conversions.
    fit = shapley.fit_shapley(_data(tmp_path), "subset_sum", prior_journeys=0)
    np.testing.assert_allclose(fit.raw, [0.4, 0.5], atol=1e-12)
    np.testing.assert_allclose(fit.conversions, [4.0, 5.0], atol=1e-12)
    assert fit.exact and fit.n_coalitions == 3


def test_rate_within_shapley_matches_the_textbook_sum_by_hand(tmp_path):
    # v(S) = conversion rate of journeys whose channels lie in S:
    # v(a) = 1/10, v(b) = 2/10, v(ab) = 9/30 = 0.3.
    # phi_a = 1/2 (0.1) + 1/2 (0.3 - 0.2) = 0.1; phi_b = 1/2 (0.2) + 1/2 (0.3 - 0.1) = 0.2.
    # Efficiency: 0.1 + 0.2 = v(ab). Shares 1/3, 2/3 of 9 conversions -> 3 and 6.
    fit = shapley.fit_shapley(_data(tmp_path), "rate_within", prior_journeys=0)
    np.testing.assert_allclose(fit.raw, [0.1, 0.2], atol=1e-12)
    np.testing.assert_allclose(fit.conversions, [3.0, 6.0], atol=1e-12)


# {a}: 1000 journeys, 100 conversions; {b}: 1000, 50; {c}: 1 journey that converted.
THIN = "path,conversions,nulls\na,100,900\nb,50,950\nc,1,0\n"


def test_a_one_journey_set_is_shrunk_toward_the_overall_rate(tmp_path):
    data = load_aggregated(workspace_with(tmp_path, {"raw/paths.csv": THIN})).data
    raw = shapley.fit_shapley(data, "subset_sum", prior_journeys=0)
    # Raw rates 0.1, 0.05, 1: c takes 1 / 1.15 of 151 conversions = 131.3.
    np.testing.assert_allclose(raw.conversions[2], 151 / 1.15, rtol=1e-12)
    fit = shapley.fit_shapley(data, "subset_sum", prior_journeys=100)
    # p0 = 151 / 2001; CR = (conv + 100 p0) / (journeys + 100), by hand:
    p0 = 151 / 2001
    rates = np.array([(100 + 100 * p0) / 1100, (50 + 100 * p0) / 1100, (1 + 100 * p0) / 101])
    np.testing.assert_allclose(rates, [0.0977693, 0.0523148, 0.0846161], atol=1e-7)
    np.testing.assert_allclose(fit.raw, rates, rtol=1e-12)
    np.testing.assert_allclose(fit.conversions, rates / rates.sum() * 151, rtol=1e-12)
    assert fit.conversions[2] < 55  # was 131
    # Support: {c} is the one set under 20 journeys: 1 / 2001 of the journeys, and the
    # share of v(N) = sum of CR its shrunk rate carries.
    assert fit.support.n_low == 1
    assert fit.support.journey_share == pytest.approx(1 / 2001)
    assert fit.support.value_share == pytest.approx(rates[2] / rates.sum())


def test_rate_within_uses_the_shrunk_rate_of_the_journeys_inside_s(tmp_path):
    data = load_aggregated(workspace_with(tmp_path, {"raw/paths.csv": THIN})).data
    k, p0 = 10.0, 151 / 2001

    def v(c, j):
        return (c + k * p0) / (j + k)

    # Exact Shapley over 3 players from the shrunk worth of every coalition, by hand.
    worth = {
        frozenset(): 0.0,
        frozenset("a"): v(100, 1000),
        frozenset("b"): v(50, 1000),
        frozenset("c"): v(1, 1),
        frozenset("ab"): v(150, 2000),
        frozenset("ac"): v(101, 1001),
        frozenset("bc"): v(51, 1001),
        frozenset("abc"): v(151, 2001),
    }
    expected = []
    for j in "abc":
        others = [x for x in "abc" if x != j]
        phi = (
            worth[frozenset(j)] / 3
            + sum(worth[frozenset({o, j})] - worth[frozenset({o})] for o in others) / 6
            + (worth[frozenset("abc")] - worth[frozenset(others)]) / 3
        )
        expected.append(phi)
    fit = shapley.fit_shapley(data, "rate_within", prior_journeys=k)
    np.testing.assert_allclose(fit.raw, expected, rtol=1e-12)
    assert fit.raw.sum() == pytest.approx(p0)  # efficiency: v(N) shrunk to itself is p0


def test_the_share_bound_matches_its_formula_by_hand():
    # eps for M = 2000 orderings, 3 channels, 95% for all at once: sqrt(2 ln(2 * 3 / 0.05) / M)
    eps = shapley.hoeffding_bound(2000, 3)
    assert eps == pytest.approx(np.sqrt(2 * np.log(120) / 2000))
    # raw (0.5, 0.3, -0.1): A = 0.8, shares 0.625, 0.375, 0; bound eps (1 + 3 s) / (A - 3 eps)
    raw = np.array([0.5, 0.3, -0.1])
    bounds = shapley.share_error_bounds(raw, 0.01)
    np.testing.assert_allclose(
        bounds, [0.01 * 2.875 / 0.77, 0.01 * 2.125 / 0.77, 0.01 / 0.77], rtol=1e-12
    )
    # When the positive total cannot be told from zero, nothing is bounded.
    np.testing.assert_allclose(shapley.share_error_bounds(raw, 0.3), [1, 1, 1])


def test_sampled_shares_stay_within_their_reported_share_bound():
    """The bound on what is shown (clipped, renormalised shares), checked where it is tight
    enough to fail: few orderings, many replications, low rates (small positive total A, so
    share errors are raw errors / A, far above the raw-scale eps of the old statement)."""
    rng = np.random.default_rng(5)
    n = 5
    sets = np.unique(rng.integers(1, 1 << n, size=25))
    journeys = rng.integers(5, 60, size=len(sets)).astype(float)
    conv = rng.binomial(journeys.astype(int), 0.04).astype(float)
    exact = shapley.rate_within_exact(sets, conv, journeys, n)
    exact_share = shapley._share(exact)
    permutations = 400
    eps = shapley.hoeffding_bound(permutations, n)
    for seed in range(40):
        estimate, _ = shapley.rate_within_sampled(
            sets, conv, journeys, n, permutations, np.random.default_rng(seed)
        )
        assert np.all(np.abs(estimate - exact) <= eps)
        bounds = shapley.share_error_bounds(estimate, eps)
        error = np.abs(shapley._share(estimate) - exact_share)
        assert np.all(error <= bounds)


def test_the_share_bound_covers_every_raw_error_within_eps():
    """The derivation itself, where it can fail: raw values moved anywhere within eps
    (including to the corners, where the bound is tight) never move a shown share by more
    than the bound computed from the moved values. A raw-scale eps would not do."""
    eps = 0.005
    exact, moved = np.array([0.02, 0.01]), np.array([0.015, 0.015])
    error = np.abs(shapley._share(moved) - shapley._share(exact))
    assert error.max() == pytest.approx(1 / 6)  # 2/3 -> 1/2: 33x the raw-scale eps
    assert np.all(error <= shapley.share_error_bounds(moved, eps))
    rng = np.random.default_rng(0)
    tight = 0.0
    for _ in range(3000):
        n = int(rng.integers(2, 8))
        phi = rng.uniform(-0.02, 0.08, n)
        eps = float(rng.uniform(0.0005, 0.01))
        estimate = phi + eps * rng.choice([-1.0, 1.0], n) * rng.uniform(0.9, 1.0, n)
        bounds = shapley.share_error_bounds(estimate, eps)
        error = np.abs(shapley._share(estimate) - shapley._share(phi))
        assert np.all(error <= bounds + 1e-12)
        tight = max(tight, float((error / bounds).max()))
    assert tight > 0.3  # the bound is not vacuous on these draws


def test_sampled_shapley_stays_within_its_reported_bound_of_the_exact_value():
    rng = np.random.default_rng(5)
    n = 7
    sets = rng.integers(1, 1 << n, size=60)
    sets = np.unique(sets)
    journeys = rng.integers(5, 50, size=len(sets)).astype(float)
    conv = rng.binomial(journeys.astype(int), 0.3).astype(float)
    exact = shapley.rate_within_exact(sets, conv, journeys, n)
    assert exact.sum() == pytest.approx(conv.sum() / journeys.sum())  # efficiency
    permutations = 4000
    estimate, se = shapley.rate_within_sampled(sets, conv, journeys, n, permutations, rng)
    bound = shapley.hoeffding_bound(permutations, n)
    assert np.all(np.abs(estimate - exact) <= bound)
    # The CLT errors are much tighter than the worst-case bound; 4 SE covers the estimate.
    assert np.all(np.abs(estimate - exact) <= 4 * se + 1e-12)


def test_replicated_counts_give_the_same_values_as_one_at_a_time():
    rng = np.random.default_rng(2)
    n = 4
    sets = np.unique(rng.integers(1, 1 << n, size=12))
    journeys = rng.integers(1, 40, size=(3, len(sets))).astype(float)
    conv = rng.binomial(journeys.astype(int), 0.2).astype(float)
    batch = shapley.rate_within_exact(sets, conv, journeys, n, 25.0)
    for r in range(3):
        np.testing.assert_allclose(
            batch[r], shapley.rate_within_exact(sets, conv[r], journeys[r], n, 25.0)
        )


def test_above_the_threshold_the_report_says_it_sampled(tmp_path):
    fit = shapley.fit_shapley(
        _data(tmp_path), "rate_within", exact_max_channels=1, prior_journeys=0
    )
    assert not fit.exact and fit.permutations == 2000
    assert fit.error_bound == pytest.approx(shapley.hoeffding_bound(2000, 2))
    np.testing.assert_allclose(fit.raw, [0.1, 0.2], atol=fit.error_bound)
    np.testing.assert_allclose(
        fit.share_error_bounds, shapley.share_error_bounds(fit.raw, fit.error_bound)
    )
