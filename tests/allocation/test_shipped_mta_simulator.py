"""On the shipped MTA simulator (no rebuilt totals) campaign productivity is recoverable."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import psi

from attribution_analysis.allocation.em import gamma_shape
from attribution_analysis.api import allocate, simulate_workspace, validate_data
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.workspace import Workspace

RANK_FLOOR = 0.8  # the Spearman target for non-collinear campaigns


@pytest.mark.parametrize("seed", [1, 2])
def test_campaign_ranks_follow_the_truth_and_the_collinear_pair_is_one_credit_set(tmp_path, seed):
    simulate_workspace(tmp_path, SimulationParams(kind="mta", seed=seed, collinear_pairs=1))
    ws = Workspace.open(tmp_path)
    validate_data(ws)
    report = allocate(ws, AllocateParams(source="mta", family="gamma"))
    assert report.truth_recovery.rank_spearman >= RANK_FLOOR
    assert report.truth_recovery.allocated_corr > report.truth_recovery.naive_allocated_corr
    assert report.mass_conservation_max_rel_error < 1e-9
    sets = [sorted(s.entities) for s in report.identifiability.credit_sets]
    assert ["tv_c02", "tv_c03"] in sets


@pytest.mark.parametrize("s", [2.0, 0.1, 1e-4, 1e-9, 1e-12])
def test_gamma_shape_solves_its_equation_across_orders_of_magnitude(s):
    """log k - psi(k) = s, from s = 2 (k ~ 0.3) to s = 1e-12 (k ~ 5e11, where brentq stalled)."""
    from scipy.optimize import brentq

    # Two groups whose ratios r solve r - log r - 1 = s: their mean statistic is exactly s.
    low = brentq(lambda r: r - np.log(r) - 1 - s, 1e-300, 1.0, xtol=1e-300, rtol=1e-15)
    high = brentq(lambda r: r - np.log(r) - 1 - s, 1.0, 1e6, rtol=1e-15)
    k = gamma_shape(np.array([low, high]), np.ones(2), np.ones(2))
    assert k is not None and np.isfinite(k)
    assert np.log(k) - psi(k) == pytest.approx(s, rel=1e-3)
