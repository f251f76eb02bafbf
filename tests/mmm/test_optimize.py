"""optimize_budget on a real fit: the response matches PyMC-Marketing's graph, the
recommendation reaches the true optimum of the simulator's curves, bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from attribution_analysis.contracts.budget import ChannelBound, OptimizeBudgetParams
from attribution_analysis.errors import ModelRejectedError, ParameterError
from attribution_analysis.mmm.loaded import open_fit
from attribution_analysis.optimize import optimize_budget
from attribution_analysis.optimize.posterior import curves_from_fit, spend_history
from attribution_analysis.summaries import thin_draws
from attribution_analysis.transforms import geometric_adstock, hill
from attribution_analysis.workspace import Workspace

HORIZON = 13


def test_response_matches_the_library_graph(validated):
    """Our closed form vs PyMC-Marketing's own channel_contribution on a flat plan."""
    import pymc as pm

    fitted = open_fit(Workspace.open(validated))
    history = spend_history(fitted, 52)
    curves = curves_from_fit(fitted, HORIZON, 60, history)
    plan = history.current_per_period * HORIZON * np.array([0.5, 1.0, 1.7])
    ours = curves.outcome(plan)  # (S, C)

    model = fitted.mmm.model
    n_dates = model["channel_data"].get_value().shape[0]
    block = np.zeros((n_dates, len(plan)))
    block[:HORIZON] = plan / HORIZON  # flat spend, then the carry-over tail in zeros
    posterior = thin_draws(fitted.tree["posterior"].to_dataset(), 60)
    original = model["channel_data"].get_value()
    model["channel_data"].set_value(block)
    try:
        values = pm.compute_deterministics(
            posterior[[v.name for v in model.free_RVs]],
            model=model,
            var_names=["channel_contribution"],
            progressbar=False,
        )
    finally:
        model["channel_data"].set_value(original)
    library = (
        (values["channel_contribution"] * float(model["target_scale"].get_value()))
        .sum("date")
        .stack(sample=("chain", "draw"))
        .transpose("sample", "channel")
        .to_numpy()
    )
    np.testing.assert_allclose(ours, library, rtol=1e-6)


def _true_outcome(spend: np.ndarray, truth: dict, scale: np.ndarray, channels: list[str]):
    """Truth under the plan convention, written independently of the package: a flat block
    of spend for HORIZON periods, zeros after, through the simulator's own transforms."""
    total = 0.0
    for c, channel in enumerate(channels):
        p = truth[channel]
        timeline = np.zeros(HORIZON + int(p["l_max"]))
        timeline[:HORIZON] = spend[c] / HORIZON / scale[c]
        adstocked = geometric_adstock(timeline, p["adstock_alpha"], int(p["l_max"]))
        total += p["beta"] * hill(adstocked, p["hill_slope"], p["hill_kappa"]).sum()
    return total


def _true_optimum(total, low, high, truth, scale, channels, seed=0):
    """Many-start SLSQP on the true curves (numerical gradients), independent of ours; every
    feasible end point counts, converged or not, and the best wins."""
    rng = np.random.default_rng(seed)
    lo, hi = low / total, high / total

    def negative(u):
        return -_true_outcome(u * total, truth, scale, channels)

    best = -np.inf
    for _ in range(30):
        # A random feasible start: Dirichlet weights spread over the room above the minimums.
        start = lo + rng.dirichlet(np.ones(len(channels))) * (1 - lo.sum())
        start = np.clip(start, lo, hi)
        res = minimize(
            negative,
            start,
            method="SLSQP",
            bounds=list(zip(lo, hi, strict=True)),
            constraints=[{"type": "eq", "fun": lambda u: u.sum() - 1}],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        feasible = abs(res.x.sum() - 1) < 1e-6 and np.all(res.x >= lo - 1e-9)
        if feasible and np.all(res.x <= hi + 1e-9):
            best = max(best, -res.fun)
    assert np.isfinite(best), "no feasible optimum found on the true curves"
    return best


@pytest.mark.parametrize("max_change", [None, 0.3])
def test_recommendation_reaches_the_true_optimum(validated, max_change):
    ws = Workspace.open(validated)
    result = optimize_budget(ws, OptimizeBudgetParams(max_change=max_change, draws=400))
    truth = json.loads((validated / "truth" / "parameters.json").read_text())["channels"]
    channels = [a.channel for a in result.allocations]
    panel = pd.read_csv(validated / "analysis" / "prepared_panel.csv")
    scale = np.array([panel[f"spend_{c}"].max() for c in channels])
    recommended = np.array([a.recommended_spend for a in result.allocations])
    current = np.array([a.current_spend for a in result.allocations])
    low = np.array([a.min_spend for a in result.allocations])
    high = np.array([a.max_spend for a in result.allocations])
    assert recommended.sum() == pytest.approx(result.total_budget, rel=1e-9)
    assert np.all(recommended >= low - 1e-6) and np.all(recommended <= high + 1e-6)
    if max_change is not None:
        np.testing.assert_allclose(low, current * (1 - max_change), rtol=1e-9)
        np.testing.assert_allclose(high, current * (1 + max_change), rtol=1e-9)
    best = _true_optimum(result.total_budget, low, high, truth, scale, channels)
    achieved = _true_outcome(recommended, truth, scale, channels)
    at_current = _true_outcome(current, truth, scale, channels)
    assert achieved >= 0.98 * best, (achieved / best, achieved, best)
    assert best > at_current  # the test would be empty if current were already optimal


def test_output_carries_uncertainty_scenarios_and_curves(validated):
    ws = Workspace.open(validated)
    params = OptimizeBudgetParams.model_validate(
        {
            "horizon_periods": 8,
            "bounds": [{"channel": "paid_search", "min_change": -0.1, "max_change": 0.1}],
            "scenarios": [
                {
                    "kind": "shift",
                    "from_channel": "tv",
                    "to_channel": "paid_search",
                    "fraction": 0.2,
                },
                {"kind": "total_change", "change": 0.2},
                {"kind": "allocation", "name": "no tv", "allocation": {"tv": 0}},
            ],
            "draws": 200,
        }
    )
    result = optimize_budget(ws, params)
    written = json.loads((validated / "analysis" / "mmm_budget_optimization.json").read_text())
    assert written["metadata"]["input_hashes"] and written["metadata"]["run_id"]
    assert written["budget_per_period"] == pytest.approx(written["total_budget"] / 8)
    search = next(a for a in result.allocations if a.channel == "paid_search")
    assert search.current_spend * 0.9 - 1e-6 <= search.recommended_spend
    assert search.recommended_spend <= search.current_spend * 1.1 + 1e-6
    lift = result.outcome.lift
    assert lift.hdi_90[0] <= lift.mean <= lift.hdi_90[1]
    assert result.outcome.lift.mean >= -1e-9  # never recommends worse than current on average
    assert 0 <= result.outcome.probability_better <= 1
    names = [s.name for s in result.scenarios]
    assert names == ["shift 20% tv->paid_search", "total +20%", "no tv"]
    more = result.scenarios[1]
    assert more.total_spend == pytest.approx(result.total_budget * 1.2)
    assert more.lift_vs_current.mean > 0  # more money, more outcome
    no_tv = result.scenarios[2]
    assert no_tv.allocation["tv"] == 0 and no_tv.lift_vs_current.mean < 0
    for curve in result.curves:
        assert len(curve.spend) == params.curve_points
        assert np.all(np.diff(curve.outcome_mean) >= -1e-9)  # Hill curves never fall
        assert all(lo <= hi for lo, hi in zip(curve.mroas_low, curve.mroas_high, strict=True))
    assert {a.channel for a in result.allocations} == {c.channel for c in result.curves}


def _analysis_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "analysis").glob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bounds": [ChannelBound(channel="radio", max_spend=10)]}, "does not have"),
        ({"bounds": [ChannelBound(channel="tv", min_spend=5e9)]}, "above the whole budget"),
        (
            {
                "max_change": None,
                "bounds": [
                    ChannelBound(channel="tv", min_change=0.5),
                    ChannelBound(channel="paid_search", min_change=0.5),
                ],
            },
            "minimums add up",
        ),
        ({"max_change": 0.0, "total_budget": 1e9}, "maximums add up"),
        (
            {
                "scenarios": [
                    {"kind": "shift", "from_channel": "tv", "to_channel": "tv", "fraction": 0.1}
                ]
            },
            "to itself",
        ),
    ],
)
def test_bad_requests_are_refused_before_any_work(validated, params, message):
    before = _analysis_bytes(validated)
    with pytest.raises(ParameterError, match=message):
        optimize_budget(Workspace.open(validated), OptimizeBudgetParams(**params))
    assert _analysis_bytes(validated) == before


def test_failed_model_is_refused_unless_overridden(validated):
    path = validated / "analysis" / "mmm_diagnostics.json"
    diagnostics = json.loads(path.read_text())
    diagnostics["criteria"][0]["passed"] = False
    path.write_text(json.dumps(diagnostics))
    ws = Workspace.open(validated)
    with pytest.raises(ModelRejectedError, match="failed its acceptance criteria"):
        optimize_budget(ws, OptimizeBudgetParams(draws=50))
    result = optimize_budget(ws, OptimizeBudgetParams(draws=50, override_reason="board deadline"))
    assert result.metadata.extra["override_reason"] == "board deadline"
    assert any(f.code == "override" for f in result.findings)


def test_a_per_period_budget_typed_as_a_total_is_flagged(validated):
    ws = Workspace.open(validated)
    history = spend_history(open_fit(ws), 52)
    per_period = float(history.current_per_period.sum())
    result = optimize_budget(
        ws, OptimizeBudgetParams(total_budget=per_period, max_change=None, draws=50)
    )
    assert any(f.code == "budget_far_from_current" for f in result.findings)
