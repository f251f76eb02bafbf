"""The penalised Newton M-step solvers, against statsmodels and closed forms."""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm

from attribution_analysis.allocation import glm


def _entities(seed: int, n: int = 200):
    rng = np.random.default_rng(seed)
    design = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    exposure = rng.gamma(2.0, 3.0, n)
    credit = rng.poisson(exposure * np.exp(design @ np.array([0.2, 0.5, -0.3]))).astype(float)
    return design, exposure, credit


def test_unpenalised_poisson_step_is_the_statsmodels_glm_with_offset():
    design, exposure, credit = _entities(0)
    beta = glm.fit_poisson(design, credit, exposure, np.zeros(3), glm.penalty_matrix(3, 0.0))
    reference = sm.GLM(credit, design, family=sm.families.Poisson(), offset=np.log(exposure))
    assert np.allclose(beta, reference.fit(tol=1e-12).params, atol=1e-8)


def test_ridge_makes_an_intercept_plus_full_one_hot_design_solvable():
    rng = np.random.default_rng(1)
    level = rng.integers(0, 3, 150)
    onehot = np.eye(3)[level]
    design = np.column_stack([np.ones(150), onehot])  # rank 3 of 4 columns
    exposure = rng.gamma(2.0, 2.0, 150)
    credit = rng.poisson(exposure * np.exp(np.array([0.0, 0.3, -0.2])[level])).astype(float)
    penalty = glm.penalty_matrix(4, 1.0)
    beta = glm.fit_poisson(design, credit, exposure, np.zeros(4), penalty)
    assert np.all(np.isfinite(beta))
    gradient = design.T @ (credit - exposure * np.exp(design @ beta)) - penalty @ beta
    assert np.max(np.abs(gradient)) < 1e-6
    # Level effects are identified up to the intercept: their differences match the data.
    observed = [np.log(credit[level == k].sum() / exposure[level == k].sum()) for k in range(3)]
    fitted = beta[0] + beta[1:]
    assert np.allclose(np.diff(fitted), np.diff(observed), atol=0.02)


def test_gamma_surrogate_with_an_intercept_has_its_closed_form_maximum():
    rng = np.random.default_rng(2)
    a, b = rng.gamma(2.0, 1.0, 50), rng.gamma(2.0, 1.0, 50)
    design = np.ones((50, 1))
    beta = glm.fit_gamma_surrogate(design, a, b, np.zeros(1), glm.penalty_matrix(1, 0.0))
    # maximise -A e^-eta - B e^eta  =>  e^(2 eta) = A / B
    assert np.isclose(beta[0], 0.5 * np.log(a.sum() / b.sum()), atol=1e-10)


def test_standardised_coefficients_map_back_to_the_same_linear_predictor():
    design, _, _ = _entities(3)
    scaled = glm.standardize(design)
    beta = np.array([0.1, -0.7, 0.4])
    assert np.allclose(scaled.matrix @ beta, design @ scaled.to_original(beta))
