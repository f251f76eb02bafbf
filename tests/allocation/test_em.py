"""EM engine: exact split, monotone objective, the MLE it claims, acceleration, edge cases.

Problems are drawn from the allocation model with fixed seeds (tests/allocation/conftest.py);
the generating rates are the truth. Maximum-likelihood claims are checked against
independent references: the score equations, and statsmodels GLMs where the problem reduces
to one.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.problem import problem_from_arrays
from attribution_analysis.allocation.truth import split_with
from attribution_analysis.errors import ParameterError
from tests.allocation.conftest import draw_problem

MASS_TOL = 1e-12  # the split is exact up to floating-point rounding
SCORE_TOL = 1e-6  # relative score at a 1e-10 tolerance fit
GLM_TOL = 1e-6  # coefficients vs statsmodels (both at their own convergence)


@pytest.mark.parametrize("family", ["poisson", "gamma"])
@pytest.mark.parametrize("with_design", [False, True])
def test_every_group_total_is_split_exactly(family, with_design):
    drawn = draw_problem(1, family=family)
    p = drawn.problem
    design = np.column_stack([np.ones(p.n_entities), np.log(drawn.rate)]) if with_design else None
    fit = fit_em(p, family=family, design=design)
    summed = np.bincount(p.group, fit.allocated, p.n_groups)
    assert np.max(np.abs(summed - p.totals) / p.totals) < MASS_TOL
    assert fit.mass_error < MASS_TOL
    assert np.all(fit.allocated >= 0) and fit.converged


@pytest.mark.parametrize("family", ["poisson", "gamma"])
@pytest.mark.parametrize("accelerate", [False, True])
def test_the_objective_trace_never_decreases(family, accelerate):
    drawn = draw_problem(2, family=family)
    fit = fit_em(drawn.problem, family=family, accelerate=accelerate, tol=1e-10)
    steps = np.diff(fit.trace)
    assert len(fit.trace) > 5
    assert np.all(steps >= -1e-9 * np.abs(fit.trace[:-1])), steps.min()
    assert fit.monotone and fit.max_relative_decrease <= 1e-9


def test_free_poisson_rates_solve_the_likelihood_equations():
    p = draw_problem(3).problem
    fit = fit_em(p, tol=1e-12, max_iter=50_000, pooling="none")
    mean = p.matrix @ fit.rate
    score = p.matrix.T @ (p.totals / mean - 1.0)  # d loglik / d rate_h
    interior = fit.rate > 1e-6 * np.median(fit.rate)
    assert np.max(np.abs(score[interior]) / p.entity_exposure[interior]) < SCORE_TOL


def test_free_gamma_rates_solve_the_gamma_score_equations():
    p = draw_problem(4, family="gamma").problem
    fit = fit_em(p, family="gamma", tol=1e-12, max_iter=50_000, pooling="none")
    mean = p.matrix @ fit.rate
    score = p.matrix.T @ (p.totals / mean**2 - 1.0 / mean)  # d/d rate of -y/mu - log mu
    scale = p.matrix.T @ (1.0 / mean)
    assert np.max(np.abs(score) / scale) < SCORE_TOL


def _one_entity_per_group(seed: int, family: str):
    """Every group holds one entity: the split is trivial and the M-step is a plain GLM."""
    rng = np.random.default_rng(seed)
    n_entities, n_groups = 60, 900
    x = rng.normal(size=(n_entities, 2))
    beta = np.array([0.3, 0.4, -0.25])
    design = np.column_stack([np.ones(n_entities), x])
    rate = np.exp(design @ beta)
    entity = rng.integers(0, n_entities, n_groups)
    exposure = rng.gamma(3.0, 1.0, n_groups)
    mean = rate[entity] * exposure
    y = rng.poisson(mean).astype(float) if family == "poisson" else rng.gamma(5.0, mean / 5.0)
    problem = problem_from_arrays(y, np.arange(n_groups), entity, exposure, n_entities)
    return problem, design, entity, exposure, y


@pytest.mark.parametrize(
    ("family", "sm_family"),
    [("poisson", sm.families.Poisson()), ("gamma", sm.families.Gamma(sm.families.links.Log()))],
)
def test_the_covariate_m_step_matches_a_statsmodels_glm(family, sm_family):
    problem, design, entity, exposure, y = _one_entity_per_group(5, family)
    fit = fit_em(problem, family=family, design=design, ridge=0.0, tol=1e-12)
    reference = sm.GLM(y, design[entity], family=sm_family, offset=np.log(exposure)).fit(tol=1e-12)
    assert np.allclose(fit.coefficients, reference.params, atol=GLM_TOL, rtol=GLM_TOL)


def test_squarem_reaches_the_same_maximum_in_far_fewer_passes():
    p = draw_problem(6, n_groups=3000, n_entities=300, per_group=10).problem
    plain = fit_em(p, accelerate=False, tol=1e-9, max_iter=100_000, pooling="none")
    fast = fit_em(p, accelerate=True, tol=1e-9, max_iter=100_000, pooling="none")
    assert plain.converged and fast.converged
    assert abs(fast.loglik - plain.loglik) <= 1e-7 * abs(plain.loglik)
    assert np.max(np.abs(fast.share - plain.share)) < 1e-3
    # EM needs thousands of passes here; SQUAREM (3 passes per cycle) an order fewer.
    assert plain.iterations >= 5 * fast.iterations, (plain.iterations, fast.iterations)


def test_free_rates_recover_the_generating_rates_when_groups_are_plentiful():
    drawn = draw_problem(7, n_groups=4000, n_entities=40, per_group=5)
    fit = fit_em(drawn.problem, pooling="none")
    # 500 groups per entity: the MLE is close to the truth (sampling sd of log rate ~0.05),
    # so the split is nearly the oracle's (the one made with the true rates).
    assert np.corrcoef(np.log(fit.rate), np.log(drawn.rate))[0, 1] > 0.97
    oracle = split_with(drawn.problem, drawn.rate)
    assert np.corrcoef(fit.allocated, drawn.z)[0, 1] > 0.99 * np.corrcoef(oracle, drawn.z)[0, 1]


def test_a_group_with_zero_exposure_is_listed_and_never_divided_by():
    problem = problem_from_arrays(
        totals=[10.0, 4.0, 6.0],
        group=[0, 0, 1, 2],
        entity=[0, 1, 1, 0],
        exposure=[1.0, 2.0, 0.0, 3.0],
    )
    fit = fit_em(problem)
    assert fit.unallocatable.tolist() == [1]
    assert np.all(np.isfinite(fit.allocated)) and np.all(np.isfinite(fit.share))
    assert fit.allocated[2] == 0.0
    summed = np.bincount(problem.group, fit.allocated, 3)
    assert summed[0] == pytest.approx(10.0) and summed[2] == pytest.approx(6.0)


def test_tied_entities_share_one_rate_and_split_their_credit_by_exposure():
    drawn = draw_problem(8)
    fit = fit_em(drawn.problem, tied=[np.array([0, 1, 2])])
    assert fit.rate[0] == fit.rate[1] == fit.rate[2]
    assert len(np.unique(fit.parameter_of_entity)) == drawn.problem.n_entities - 2


@pytest.mark.parametrize("pooling", ["none", "channel"])
def test_integer_group_weights_equal_repeating_the_groups(pooling):
    drawn = draw_problem(9, n_groups=120)
    p = drawn.problem
    weights = np.random.default_rng(0).integers(0, 3, p.n_groups).astype(float)
    weighted = fit_em(p, group_weights=weights, tol=1e-12, max_iter=50_000, pooling=pooling)
    copies = np.repeat(np.arange(p.n_groups), weights.astype(int))
    rows = np.concatenate([np.flatnonzero(p.group == g) for g in copies])
    new_group = np.repeat(np.arange(len(copies)), [np.sum(p.group == g) for g in copies])
    repeated = problem_from_arrays(
        p.totals[copies], new_group, p.entity[rows], p.exposure[rows], p.n_entities
    )
    plain = fit_em(repeated, tol=1e-12, max_iter=50_000, pooling=pooling)
    both = weighted.estimable & plain.estimable
    assert np.allclose(weighted.rate[both], plain.rate[both], rtol=1e-6)


def test_an_entity_whose_groups_all_sold_nothing_gets_rate_zero():
    problem = problem_from_arrays(
        totals=[0.0, 5.0], group=[0, 1, 1], entity=[0, 1, 2], exposure=[2.0, 1.0, 1.0]
    )
    fit = fit_em(problem)
    assert fit.rate[0] == 0.0 and fit.allocated[0] == 0.0


def test_all_zero_totals_are_refused_with_a_fix():
    problem = problem_from_arrays([0.0, 0.0], [0, 1], [0, 1], [1.0, 1.0])
    with pytest.raises(ParameterError, match="nothing to allocate"):
        fit_em(problem)


def test_gamma_leaves_zero_totals_out_of_the_fit_but_still_splits_the_rest():
    drawn = draw_problem(10, family="gamma")
    p = drawn.problem
    totals = p.totals.copy()
    totals[:5] = 0.0
    zeroed = problem_from_arrays(totals, p.group, p.entity, p.exposure, p.n_entities)
    fit = fit_em(zeroed, family="gamma")
    assert np.isfinite(fit.loglik) and fit.converged
    assert np.all(fit.allocated[np.isin(p.group, np.arange(5))] == 0.0)
    assert fit.gamma_shape is not None and fit.gamma_shape > 0


@pytest.mark.parametrize(
    ("family", "sm_family"),
    [("poisson", sm.families.Poisson()), ("gamma", sm.families.Gamma(sm.families.links.Log()))],
)
def test_coefficient_errors_match_a_cluster_robust_glm_when_groups_are_single(family, sm_family):
    """One entity per group: the two-way sandwich reduces to clustering by entity, which
    statsmodels computes independently; ours only adds the leverage scaling (wider)."""
    problem, design, entity, exposure, y = _one_entity_per_group(5, family)
    fit = fit_em(problem, family=family, design=design, ridge=0.0, tol=1e-12)
    reference = sm.GLM(y, design[entity], family=sm_family, offset=np.log(exposure)).fit(
        tol=1e-12, cov_type="cluster", cov_kwds={"groups": entity, "use_correction": False}
    )
    ratio = fit.coefficient_std_error / reference.bse
    assert np.all(ratio >= 1.0 - 1e-6), ratio
    assert np.all(ratio <= 1.3), ratio  # 1.05-1.21 when written


def test_no_coefficient_errors_when_groups_are_fewer_than_coefficients():
    design = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 1.0, 0.0]])
    problem = problem_from_arrays(
        np.array([5.0, 9.0]), np.array([0, 0, 1, 1]), np.array([0, 1, 2, 3]), np.ones(4), 4
    )
    fit = fit_em(problem, design=design, design_names=["intercept", "x", "z"])
    assert fit.coefficients is not None and fit.coefficient_std_error is None
    from attribution_analysis.allocation.summary import coefficients

    reported = coefficients(fit, None)
    assert [c.name for c in reported] == ["intercept", "x", "z"]
    assert all(c.std_error is None and c.lower_90 is None for c in reported)
