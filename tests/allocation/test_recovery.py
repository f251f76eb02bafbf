"""Recovery across seeds: the figures behind the named tolerances of test_step.py.

The EM checks are quick and run by default; the euros comparison is marked slow.

HCP-brick, default simulator (400 HCPs, 80 bricks): the covariate EM against the oracle
split (true rates) and the naive split (visits alone), and corr(X beta_hat, X beta_true).
MTA: campaign productivity ranks when the channel totals carry the signal.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.step import ALLOCATION_PATH
from attribution_analysis.api import allocate
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.workspace import Workspace
from tests.allocation.conftest import consistent_contributions, productivity_spearman
from tests.allocation.test_step import COVARIATES, hcp_truth, split_by

SEEDS = [1, 2, 3, 4, 5]
ORACLE_SHARE = 0.97
NAIVE_MARGIN = 0.03
# corr(X beta_hat, X beta_true) with 80 bricks: the brick totals blur the covariate signal.
# Over 200 simulated data sets the exact observed-data MLE (which the EM reaches, see the last
# test) gives median 0.951, 10% quantile 0.89, minimum 0.69, >= 0.95 in 52% of them, while a
# GLM on the *true* z_bh gives ~0.995: information lost to aggregation, not estimator error.
LOG_RATE_FLOOR = 0.80
LOG_RATE_MEDIAN = 0.93
GAMMA_ORACLE_SHARE = 0.90  # Gamma family on pair-level Gamma euros (0.92-0.95 seen)
POISSON_ON_EUROS_SHARE = 0.95  # quasi-Poisson on the same euros (0.97-0.99 seen)


def _hcp_run(root, **params):
    report = allocate(Workspace.open(root), AllocateParams(bootstrap=0, **params))
    table = pd.read_csv(root / ALLOCATION_PATH, dtype={"group": str, "entity": str})
    pairs, rate_true = hcp_truth(root)
    merged = pairs.merge(
        table, left_on=["brick_id", "hcp_id"], right_on=["group", "entity"], suffixes=("", "_")
    )
    ours = np.corrcoef(merged["allocated"], merged["z_true"])[0, 1]
    oracle = np.corrcoef(split_by(merged, rate_true), merged["z_true"])[0, 1]
    naive = np.corrcoef(split_by(merged, rate_true * 0 + 1), merged["z_true"])[0, 1]
    rates = pd.Series({e.entity: e.rate for e in report.entities}, dtype=float)
    log_corr = np.corrcoef(np.log(rates.reindex(rate_true.index)), np.log(rate_true))[0, 1]
    return ours, oracle, naive, log_corr, report


def _copy(simulated_root, tmp_path, **kwargs):
    target = tmp_path / "-".join(f"{k}{v}" for k, v in kwargs.items())
    shutil.copytree(simulated_root(**kwargs), target)
    return target


def test_covariate_em_tracks_the_oracle_on_every_seed(simulated_root, tmp_path):
    rows = []
    for seed in SEEDS:
        root = _copy(simulated_root, tmp_path, kind="hcp-brick", seed=seed)
        ours, oracle, naive, log_corr, report = _hcp_run(root, covariates=COVARIATES)
        free, *_ = _hcp_run(root)
        rows.append((seed, ours, oracle, naive, free, log_corr))
        assert report.mass_conservation_max_rel_error < 1e-9
    table = pd.DataFrame(rows, columns=["seed", "glm", "oracle", "naive", "free", "log_rate"])
    print("\n" + table.round(3).to_string(index=False))
    assert (table["glm"] >= ORACLE_SHARE * table["oracle"]).all()
    assert (table["glm"] >= table["naive"] + NAIVE_MARGIN).all()
    assert (table["log_rate"] >= LOG_RATE_FLOOR).all()
    assert table["log_rate"].median() >= LOG_RATE_MEDIAN
    # Free rates overfit with ~2.6 bricks per HCP: never better than the covariate model.
    assert (table["free"] < table["glm"]).all()


@pytest.mark.slow
def test_euros_are_split_by_both_families_with_the_quasi_poisson_ahead(simulated_root, tmp_path):
    """The simulator's euros are a sum of pair-level Gammas (shape 4): Var(y_b) grows like
    sum_h mu_bh^2, closer to the Poisson variance function than to the brick-level Gamma's
    mu_b^2. So the Poisson quasi-likelihood splits them best; the Gamma family (right for
    multiplicative noise on the totals, see the MTA test) still tracks the oracle."""
    rows = []
    for seed in (6, 1, 2):
        root = _copy(
            simulated_root,
            tmp_path,
            kind="hcp-brick",
            seed=seed,
            hcp_family="gamma",
            unit_value=50.0,
        )
        gamma, oracle, naive, _, report = _hcp_run(root, covariates=COVARIATES, family="gamma")
        poisson, *_ = _hcp_run(root, covariates=COVARIATES)
        rows.append((seed, gamma, poisson, oracle, naive))
        assert report.convergence.gamma_shape is not None and report.convergence.monotone
    table = pd.DataFrame(rows, columns=["seed", "gamma", "poisson", "oracle", "naive"])
    print("\n" + table.round(3).to_string(index=False))
    assert (table["gamma"] >= GAMMA_ORACLE_SHARE * table["oracle"]).all()
    assert (table["poisson"] >= POISSON_ON_EUROS_SHARE * table["oracle"]).all()
    assert (table["poisson"] >= table["gamma"]).all()


@pytest.mark.slow  # coverage / recovery against simulated truth: statistical
def test_campaign_productivity_ranks_are_recovered_on_every_seed(validated_mta):
    rhos = []
    for seed in SEEDS:
        root = validated_mta(seed=seed, collinear_pairs=1)
        path = consistent_contributions(root, seed=seed)
        report = allocate(
            Workspace.open(root), AllocateParams(contributions=path, family="gamma", bootstrap=0)
        )
        rhos.append(productivity_spearman(root, report))
        assert all(b.relative_error < 1e-9 for b in report.block_totals)
    print("\nSpearman per seed:", np.round(rhos, 3))
    assert min(rhos) >= 0.8


def _simulated_arrays(seed: int, **simulation):
    """Problem, reference-coded design (GP the reference) and true coefficients."""
    from attribution_analysis.allocation.problem import problem_from_arrays
    from attribution_analysis.simulate.hcp_brick import SPECIALTIES, simulate_hcp_brick

    truth = simulate_hcp_brick(np.random.default_rng(seed), **simulation)
    hcps, pairs = truth.hcps, truth.pairs
    entity = pd.Index(hcps["hcp_id"]).get_indexer(pairs["hcp_id"])
    group = pd.factorize(pairs["brick_id"])[0]
    exposure = pairs["exposure"].to_numpy()
    totals = np.bincount(group, pairs["z_true"].to_numpy())
    others = [s for s in SPECIALTIES if s != "GP"]
    design = np.column_stack(
        [np.ones(len(hcps)), hcps["seniority_x0.1"], hcps["log1p_potential"]]
        + [hcps[f"spec_{s}"] for s in others]
    )
    beta = dict(zip(truth.feature_names, truth.beta_true, strict=True))
    gp = beta["spec_GP"]
    true = np.array(
        [
            beta["intercept"] + gp + np.log(simulation.get("unit_value", 1.0)),
            beta["seniority_x0.1"],
            beta["log1p_potential"],
            *[beta[f"spec_{s}"] - gp for s in others],
        ]
    )
    problem = problem_from_arrays(totals, group, entity, exposure, len(hcps))
    return problem, design, true


def test_covariate_em_converges_to_the_exact_observed_data_mle():
    """The spread of corr(X beta_hat, X beta_true) across seeds is the data's, not the EM's:
    without ridge the EM lands on the maximum of the observed-data likelihood, found here
    independently by BFGS (see benchmarks/hcp_identifiability.py for 200 data sets)."""
    from scipy.optimize import minimize

    from attribution_analysis.allocation.em import fit_em

    for seed in SEEDS:
        problem, X, _ = _simulated_arrays(seed)
        group, entity, w, y = problem.group, problem.entity, problem.exposure, problem.totals

        def negative_loglik(beta, X=X, group=group, entity=entity, w=w, y=y):
            rate = np.exp(X @ beta)
            mu = np.bincount(group, rate[entity] * w)
            g = ((y / mu)[group] - 1.0) * w * rate[entity]
            return -(y @ np.log(mu) - mu.sum()), -(X.T @ np.bincount(entity, g, len(rate)))

        mle = minimize(negative_loglik, np.zeros(X.shape[1]), jac=True, method="BFGS").x
        fit = fit_em(problem, design=X, ridge=0.0, tol=1e-10)
        assert fit.converged and fit.monotone
        np.testing.assert_allclose(fit.coefficients, mle, atol=2e-4)
        assert negative_loglik(fit.coefficients)[0] <= negative_loglik(mle)[0] + 1e-6


# 90% intervals of the EM coefficients (sandwich clustered by brick and by HCP), over 150
# simulated data sets x 7 coefficients: 0.91 (Poisson) and 0.95 (Gamma) pooled when this was
# written. With 1,050 trials the pooled coverage has sd ~0.01; per coefficient (150) ~0.025.
# Slightly conservative is accepted; narrow is not.
COVERAGE_POOLED = (0.86, 0.97)
COVERAGE_EACH = 0.80


@pytest.mark.slow  # coverage / recovery against simulated truth: statistical
@pytest.mark.parametrize(
    "family, simulation",
    [("poisson", {}), ("gamma", {"family": "gamma", "unit_value": 50.0})],
)
def test_em_coefficient_intervals_cover_the_truth(family, simulation):
    """Poisson: the simulator's own model. Gamma: the euros are sums of pair-level Gammas, so
    the brick-level Gamma variance is wrong and only a robust covariance covers."""
    from attribution_analysis.allocation.em import fit_em

    hits = []
    for seed in range(3000, 3150):
        problem, X, true = _simulated_arrays(seed, **simulation)
        fit = fit_em(problem, family=family, design=X, tol=1e-10)
        hits.append(np.abs(fit.coefficients - true) <= 1.6448536 * fit.coefficient_std_error)
    coverage = np.mean(hits, axis=0)
    print(f"\n{family} coverage per coefficient: {np.round(coverage, 3)}")
    assert COVERAGE_POOLED[0] <= coverage.mean() <= COVERAGE_POOLED[1]
    assert coverage.min() >= COVERAGE_EACH


@pytest.mark.slow  # coverage / recovery against simulated truth: statistical
def test_em_coefficient_intervals_cover_campaign_drivers(validated_mta):
    """Campaigns run for many weeks, so a campaign more productive than its objective and
    creative family says lifts every week's residual: intervals clustered by group alone
    covered 29% here, by group and campaign 69%, with the leverage scaling 97% (30 seeds).
    """
    from attribution_analysis.simulate.mta import FAMILY_EFFECT, OBJECTIVE_EFFECT

    effects = {"objective": OBJECTIVE_EFFECT, "creative_family": FAMILY_EFFECT}
    hits = []
    for seed in range(1, 16):
        root = validated_mta(seed=seed)
        path = consistent_contributions(root, seed=seed)
        report = allocate(
            Workspace.open(root),
            AllocateParams(
                contributions=path,
                family="gamma",
                bootstrap=0,
                covariates=["objective", "creative_family"],
            ),
        )
        for c in report.coefficients:
            column, _, level = c.name.rstrip("]").partition("[")
            if column in effects:
                reference = report.reference_levels[column]
                true = effects[column][level] - effects[column][reference]
                hits.append(c.lower_90 <= true <= c.upper_90)
    print(f"\ncampaign-driver coverage: {np.mean(hits):.3f} over {len(hits)} intervals")
    assert len(hits) == 60
    assert np.mean(hits) >= 0.85
