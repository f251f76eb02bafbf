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
    fit = shapley.fit_shapley(_data(tmp_path), "subset_sum")
    np.testing.assert_allclose(fit.raw, [0.4, 0.5], atol=1e-12)
    np.testing.assert_allclose(fit.conversions, [4.0, 5.0], atol=1e-12)
    assert fit.exact and fit.n_coalitions == 3


def test_rate_within_shapley_matches_the_textbook_sum_by_hand(tmp_path):
    # v(S) = conversion rate of journeys whose channels lie in S:
    # v(a) = 1/10, v(b) = 2/10, v(ab) = 9/30 = 0.3.
    # phi_a = 1/2 (0.1) + 1/2 (0.3 - 0.2) = 0.1; phi_b = 1/2 (0.2) + 1/2 (0.3 - 0.1) = 0.2.
    # Efficiency: 0.1 + 0.2 = v(ab). Shares 1/3, 2/3 of 9 conversions -> 3 and 6.
    fit = shapley.fit_shapley(_data(tmp_path), "rate_within")
    np.testing.assert_allclose(fit.raw, [0.1, 0.2], atol=1e-12)
    np.testing.assert_allclose(fit.conversions, [3.0, 6.0], atol=1e-12)


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
    bound = shapley.hoeffding_bound(permutations)
    assert np.all(np.abs(estimate - exact) <= bound)
    # The CLT errors are much tighter than the worst-case bound; 4 SE covers the estimate.
    assert np.all(np.abs(estimate - exact) <= 4 * se + 1e-12)


def test_above_the_threshold_the_report_says_it_sampled(tmp_path):
    fit = shapley.fit_shapley(_data(tmp_path), "rate_within", exact_max_channels=1)
    assert not fit.exact and fit.permutations == 2000
    assert fit.error_bound == pytest.approx(shapley.hoeffding_bound(2000))
    np.testing.assert_allclose(fit.raw, [0.1, 0.2], atol=fit.error_bound)
