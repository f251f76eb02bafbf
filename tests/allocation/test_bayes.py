"""The hierarchical Bayesian allocation: a real (small) NUTS fit by default, coverage slow.

Coverage is judged against the truth and against the oracle: z is integer, so even the
predictive split made with the *true* rates covers its 90% interval more than 90% of the
time (about 92-94% here). The model's coverage must sit in the issue's 85-95% band, widened
by that discreteness, and close to the oracle's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.bayes import fit_bayes, predictive_split, use_overdispersion
from attribution_analysis.allocation.loaders import load_hcp_brick
from attribution_analysis.allocation.problem import problem_from_arrays
from attribution_analysis.api import allocate
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.workspace import Workspace
from tests.allocation.conftest import draw_problem

COVARIATES = ["specialty", "seniority/10", "log1p(potential)"]
SMALL = dict(draws=300, tune=300, chains=2)
COVERAGE_BAND = (0.85, 0.965)  # nominal 90%; discreteness of z pushes the top above 95%
ORACLE_GAP = 0.03  # model coverage within this of the true-rate predictive coverage


def _truth_credit(root, table: pd.DataFrame) -> np.ndarray:
    pairs = pd.read_csv(root / "truth" / "pair_truth.csv", dtype={"hcp_id": str})
    merged = table.merge(
        pairs, left_on=["group", "entity"], right_on=["brick_id", "hcp_id"], how="left"
    )
    return merged["z_true"].to_numpy()


def test_a_small_hierarchical_fit_conserves_mass_and_gives_a_cold_start_hcp_no_credit(simulated):
    root = simulated(kind="hcp-brick", seed=4, n_hcps=60, n_bricks=20)
    with (root / "raw" / "hcps.csv").open("a") as handle:
        handle.write("H9999,GP,10,1.0\n")  # works in no brick: predicted from covariates only
    report = allocate(
        Workspace.open(root),
        AllocateParams(method="bayes", covariates=COVARIATES, seed=1, **SMALL),
    )
    assert report.m_step == "bayes" and report.bayes is not None
    assert report.mass_conservation_max_rel_error < 1e-9
    table = pd.read_csv(root / "analysis" / "mta_allocation.csv", dtype={"group": str})
    sales = pd.read_csv(root / "raw" / "brick_sales.csv", dtype={"brick_id": str})
    summed = table.groupby("group")["allocated"].sum().reindex(sales["brick_id"])
    assert np.allclose(summed, sales["sales"], rtol=1e-9)
    # The mean credit of a pair can sit outside its 5%-95% predictive quantiles (a pair with
    # a small expected credit has an upper quantile of 0), so only what any draws satisfy:
    assert (table["lower_90"] <= table["upper_90"] + 1e-9).all()
    assert (table["allocated"] >= 0).all()
    idle = next(e for e in report.entities if e.entity == "H9999")
    assert idle.total_allocated == 0.0 and not idle.estimable and idle.cold_start
    assert idle.productivity_lower_90 <= idle.productivity_upper_90
    pair = report.bayes.top_pairs[0]
    assert 0.0 <= pair.probability <= 1.0
    names = [c.name for c in report.coefficients]
    assert "seniority/10" in names and "specialty[GP]" in names


def test_p_a_greater_than_b_and_its_converse_add_to_one():
    drawn = draw_problem(31, n_groups=60, n_entities=8, per_group=3)
    fit = fit_bayes(drawn.problem, family="poisson", seed=2, **SMALL)
    assert fit.probability_greater(0, 1) + fit.probability_greater(1, 0) == pytest.approx(1.0)
    assert fit.max_rhat is not None and np.isfinite(fit.max_rhat)


def test_gamma_predictive_splits_are_dirichlet_and_sum_to_the_group_total():
    drawn = draw_problem(32, n_groups=50, n_entities=6, per_group=3, family="gamma")
    rates = np.tile(drawn.rate, (200, 1))
    shape = np.full(200, 5.0)
    share, credit = predictive_split(drawn.problem, rates, shape, np.random.default_rng(0))
    p = drawn.problem
    sums = np.stack([np.bincount(p.group, row, p.n_groups) for row in credit[:5]])
    assert np.allclose(sums, p.totals[None, :])
    # The Dirichlet mean is the expected share.
    assert np.allclose(credit.mean(axis=0), share[0] * p.totals[p.group], rtol=0.1, atol=0.5)


@pytest.mark.slow
def test_a_cold_start_hcp_is_pooled_towards_the_hierarchy(simulated):
    """How close the cold start's rate comes to the hierarchy's prediction depends on the
    posterior's entity-level spread: a statistical check, so slow."""
    root = simulated(kind="hcp-brick", seed=4, n_hcps=60, n_bricks=20)
    with (root / "raw" / "hcps.csv").open("a") as handle:
        handle.write("H9999,GP,10,1.0\n")  # works in no brick: predicted from covariates only
    report = allocate(
        Workspace.open(root),
        AllocateParams(method="bayes", covariates=COVARIATES, seed=1, **SMALL),
    )
    idle = next(e for e in report.entities if e.entity == "H9999")
    assert idle.total_allocated == 0.0 and not idle.estimable and idle.cold_start
    # Pooled: its rate is the hierarchy's prediction for a GP with seniority 10 and
    # potential 1 (posterior-mean coefficients), up to the entity-level spread.
    coef = {c.name: c.estimate for c in report.coefficients}
    predicted = (
        coef["intercept"]
        + coef["seniority/10"] * 1.0
        + coef["log1p(potential)"] * np.log(2.0)
        + coef["specialty[GP]"]
    )
    assert abs(np.log(idle.rate) - predicted) < 0.3
    assert idle.productivity_upper_90 - idle.productivity_lower_90 > 0.1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ninety_percent_intervals_cover_the_true_split_as_the_oracle_does(simulated, seed):
    root = simulated(kind="hcp-brick", seed=seed)
    report = allocate(
        Workspace.open(root),
        AllocateParams(method="bayes", covariates=COVARIATES, seed=seed, draws=500, tune=500),
    )
    table = pd.read_csv(root / "analysis" / "mta_allocation.csv", dtype={"group": str})
    z = _truth_credit(root, table)
    coverage = np.mean((z >= table["lower_90"] - 1e-9) & (z <= table["upper_90"] + 1e-9))
    # Oracle: the same predictive split with the true rates.
    inputs = load_hcp_brick(Workspace.open(root), AllocateParams())
    truth = pd.read_csv(root / "truth" / "hcp_truth.csv", dtype={"hcp_id": str})
    true_rate = truth.set_index("hcp_id")["lambda_true"].reindex(inputs.problem.entity_labels)
    rates = np.tile(true_rate.to_numpy(), (1000, 1))
    _, credit = predictive_split(inputs.problem, rates, None, np.random.default_rng(seed))
    low, high = np.quantile(credit, [0.05, 0.95], axis=0)
    order = pd.MultiIndex.from_arrays(
        [
            inputs.problem.group_labels[inputs.problem.group],
            inputs.problem.entity_labels[inputs.problem.entity],
        ]
    ).get_indexer(pd.MultiIndex.from_frame(table[["group", "entity"]].astype(str)))
    oracle = np.mean((z >= low[order]) & (z <= high[order]))
    print(f"seed {seed}: coverage {coverage:.3f}, oracle {oracle:.3f}")
    assert COVERAGE_BAND[0] <= coverage <= COVERAGE_BAND[1]
    assert abs(coverage - oracle) <= ORACLE_GAP
    assert report.bayes.divergences == 0 or report.bayes.divergences < 10


def test_a_single_chain_reports_rhat_as_undefined_and_says_so(simulated):
    # ArviZ gives NaN for the R-hat of one chain; the summary must stay valid JSON, record
    # no R-hat, and warn that convergence was not checked.
    import json

    root = simulated(kind="hcp-brick", seed=4, n_hcps=60, n_bricks=20)
    report = allocate(
        Workspace.open(root), AllocateParams(method="bayes", draws=100, tune=100, chains=1)
    )
    assert report.bayes is not None and report.bayes.max_rhat is None
    assert "rhat_undefined" in {f.code for f in report.findings}
    written = json.loads((root / "analysis" / "allocation_summary.json").read_text())
    assert written["bayes"]["max_rhat"] is None


def _large_counts(seed: int, n_groups: int = 40):
    """Unit totals in the thousands with a common 20% group multiplier (overdispersion)."""
    rng = np.random.default_rng(seed)
    rate = np.array([0.5, 1.0, 2.0, 1.5])
    group = np.repeat(np.arange(n_groups), 4)
    entity = np.tile(np.arange(4), n_groups)
    exposure = rng.gamma(4.0, 250.0, len(group))
    multiplier = rng.gamma(25.0, 1 / 25.0, n_groups)  # cv 0.2
    totals = rng.poisson(np.bincount(group, rate[entity] * exposure) * multiplier).astype(float)
    return problem_from_arrays(totals, group, entity, exposure, 4), rate


def test_only_large_unit_counts_are_fitted_as_overdispersed():
    assert use_overdispersion("poisson", np.array([0.0, 900.0, 1500.0, 2000.0]), None)
    assert not use_overdispersion("poisson", np.array([3.0, 40.0, 900.0]), None)  # control
    assert not use_overdispersion("gamma", np.array([5000.0]), None)
    assert not use_overdispersion("poisson", np.array([5000.0]), False)


@pytest.mark.slow  # a new model structure: ~30 s of compilation on 2 shared cores
def test_large_unit_counts_switch_to_an_overdispersed_likelihood_and_conserve_mass():
    problem, _ = _large_counts(0, n_groups=20)
    fit = fit_bayes(problem, draws=100, tune=150, chains=1, seed=1)
    assert fit.overdispersed
    summed = np.bincount(problem.group, fit.allocated, problem.n_groups)
    assert np.max(np.abs(summed - problem.totals) / problem.totals) < 1e-9


@pytest.mark.slow
def test_overdispersed_rate_intervals_cover_where_the_poisson_ones_do_not():
    """Relative rates (to entity 0) from a 90% band: the negative binomial covers the
    generating ratios; the Poisson (negative control) is far too narrow to."""
    hits = {True: [], False: []}
    for seed in range(3):
        problem, rate = _large_counts(seed)
        for over in (True, False):
            fit = fit_bayes(problem, overdispersed=over, seed=seed, **SMALL)
            ratio = fit.rate_draws[:, 1:] / fit.rate_draws[:, :1]
            low, high = np.quantile(ratio, [0.05, 0.95], axis=0)
            truth = rate[1:] / rate[0]
            hits[over] += list((truth >= low) & (truth <= high))
    assert np.mean(hits[True]) >= 0.75
    assert np.mean(hits[False]) < np.mean(hits[True]) - 0.3
