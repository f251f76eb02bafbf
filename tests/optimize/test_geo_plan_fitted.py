"""optimize_budget by geo x channel on a real (small) geo fit, through the step (slow: one
NUTS fit of a 4-geo panel). The pure optimizer is checked against an independent one in
test_geo_plan.py; here the step's plumbing: the cell curves reproduce the national plan's
current outcome on the fitted draws, every limit holds, the cells add up to the budget, and
impossible geo limits leave the workspace as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attribution_analysis.api import (
    fit_mmm,
    optimize_budget,
    simulate_workspace,
    validate_data,
    validate_model,
)
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.errors import ParameterError
from attribution_analysis.mmm.stored import open_stored_fit
from attribution_analysis.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def geo_fit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("geo_fit")
    simulate_workspace(root, SimulationParams(kind="mmm", seed=5, weeks=104, channels=3, geos=4))
    ws = Workspace.open(root)
    validate_data(ws)
    fit_mmm(
        ws,
        FitMMMParams.model_validate(
            {"sampler": {"draws": 500, "tune": 500}, "fallback_to_ridge": False}
        ),
    )
    validate_model(ws, backtest_periods=None, sensitivity_refit=False)
    return root


def _plan(**kwargs) -> OptimizeBudgetParams:
    return OptimizeBudgetParams(override_reason="slow test of the geo plan", **kwargs)


def test_geo_plan_through_the_step(geo_fit):
    ws = Workspace.open(geo_fit)
    geos = open_stored_fit(ws).geos
    held, capped = str(geos[1]), str(geos[0])
    result = optimize_budget(
        ws,
        _plan(
            geo_bounds=[
                {"geo": held, "min_change": 0.0, "max_change": 0.0},
                {"geo": capped, "max_spend": 30_000.0},
            ]
        ),
    )
    plan = result.geo_plan
    assert plan is not None
    # The current geo x channel mix is the national plan's current mix, cell by cell.
    assert plan.outcome.current.mean == pytest.approx(result.outcome.current.mean, rel=1e-9)
    spend = np.array([c.recommended_spend for c in plan.cells])
    assert spend.sum() == pytest.approx(result.total_budget, rel=1e-9)
    totals = {g.geo: g for g in plan.geo_totals}
    assert totals[held].recommended_spend == pytest.approx(totals[held].current_spend, rel=1e-6)
    assert totals[capped].recommended_spend <= 30_000.0 * (1 + 1e-9)
    for cell in plan.cells:
        assert cell.min_spend - 1e-6 <= cell.recommended_spend <= cell.max_spend + 1e-6
    channel = {a.channel: a for a in result.allocations}
    for name, value in plan.channel_totals.items():
        assert channel[name].min_spend - 1e-6 <= value <= channel[name].max_spend + 1e-6
    assert plan.optimizer.max_constraint_violation < 1e-6 * result.total_budget


def test_impossible_geo_limits_leave_the_workspace_as_it_was(geo_fit):
    ws = Workspace.open(geo_fit)
    before = sorted(p.name for p in (geo_fit / "analysis" / "budget_plans").glob("*"))
    geo = open_stored_fit(ws).geos[0]
    with pytest.raises(ParameterError, match="needs at least"):
        optimize_budget(
            ws, _plan(plan_name="too_much", geo_bounds=[{"geo": geo, "min_spend": 1e9}])
        )
    after = sorted(p.name for p in (geo_fit / "analysis" / "budget_plans").glob("*"))
    assert after == before


def test_validate_model_backtests_a_geo_fit(geo_fit, tmp_path):
    """The default validate_model holds out the last weeks of every geo and refits: on a geo
    panel its predictions come back in sales units (PyMC-Marketing scales a geo target by
    one maximum, a 0-d value, which the backtest once took for one scale per geo and
    crashed on). Predictions left on the model's 0-1 scale would miss by about 100%."""
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(geo_fit, root)
    diagnostics = validate_model(Workspace.open(root), backtest_periods=13, sensitivity_refit=False)
    backtest = diagnostics.backtest
    assert backtest is not None and backtest["holdout_periods"] == 13
    assert backtest["mape"] < 0.15, backtest
    assert backtest["coverage_90"] >= 0.6, backtest
