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

from attribution_analysis.allocation.step import ALLOCATION_PATH, allocate
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.workspace import Workspace
from tests.allocation.conftest import consistent_contributions, productivity_spearman
from tests.allocation.test_step import COVARIATES, hcp_truth, split_by

SEEDS = [1, 2, 3, 4, 5]
ORACLE_SHARE = 0.97
NAIVE_MARGIN = 0.03
# corr(X beta_hat, X beta_true) with 80 bricks: the brick totals blur the covariate signal.
# Over 20 seeds the covariate EM gives 0.82-0.99 (median ~0.95) while a GLM on the *true*
# z_bh gives ~0.995: the spread is information lost to aggregation, not estimator error.
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
