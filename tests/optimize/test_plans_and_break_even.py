"""Named plans, break-even and the lift as a share of the whole outcome.

Break-even and the lift's share are checked against a hand computation on the posterior
draws (the stored parameters through the simulator's own transforms, no package curve code),
the whole outcome against the raw outcome file; named plans through the step, the Python API
and the listing step.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from attribution_analysis.api import list_budget_plans, optimize_budget
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.errors import WorkspaceError
from attribution_analysis.mmm.stored import open_stored_fit
from attribution_analysis.optimize.plans import DEFAULT_PLAN, read_plan
from attribution_analysis.optimize.posterior import curves_from_fit, spend_history
from attribution_analysis.steps import execute, step
from attribution_analysis.transforms import geometric_adstock, hill
from attribution_analysis.workspace import Workspace
from tests.optimize.test_optimize_fitted_model import HORIZON, NOT_THE_GATE, _hdi90

DRAWS = 100


def _plan(**kwargs) -> OptimizeBudgetParams:
    return OptimizeBudgetParams(override_reason=NOT_THE_GATE, **kwargs)


def test_two_named_plans_coexist_and_are_listed(validated):
    ws = Workspace.open(validated)
    first = optimize_budget(ws, _plan(draws=50, robustness=False))
    assert first.plan_name == DEFAULT_PLAN
    assert not any(f.code == "plan_replaced" for f in first.findings)
    cut_budget = 0.9 * first.total_budget
    optimize_budget(
        ws, _plan(draws=50, robustness=False, plan_name="cut_10", total_budget=cut_budget)
    )
    folder = validated / "analysis" / "budget_plans"
    assert sorted(p.name for p in folder.iterdir()) == ["cut_10.json", "recommended.json"]
    assert read_plan(ws, "cut_10").total_budget == pytest.approx(cut_budget)
    assert read_plan(ws).total_budget == pytest.approx(first.total_budget)

    listed = list_budget_plans(ws)
    assert [p.name for p in listed] == ["cut_10", "recommended"]  # newest first
    assert listed[0].total_budget == pytest.approx(cut_budget)
    assert listed[0].path == "analysis/budget_plans/cut_10.json"
    answer = execute(step("list_budget_plans"), ws, step("list_budget_plans").params())
    assert [p["name"] for p in answer["plans"]] == ["cut_10", "recommended"]
    assert answer["default_plan"] == "recommended" and answer["outputs"] == []

    # Re-using a name replaces that plan, says so, and leaves the other one alone.
    kept = (folder / "cut_10.json").read_bytes()
    again = execute(
        step("optimize_budget"),
        ws,
        _plan(draws=50, robustness=False, total_budget=1.1 * first.total_budget),
    )
    assert again["plans"] == ["recommended", "cut_10"]
    replaced = [f for f in again["findings"] if f["code"] == "plan_replaced"]
    assert len(replaced) == 1 and replaced[0]["subject"] == "recommended"
    assert (folder / "cut_10.json").read_bytes() == kept
    assert read_plan(ws).total_budget == pytest.approx(1.1 * first.total_budget)

    with pytest.raises(WorkspaceError, match="'cut_10', 'recommended'"):
        read_plan(ws, "tv_first")
    with pytest.raises(ValidationError, match="plan_name"):
        _plan(plan_name="Big Plan!")


def test_a_conversions_target_says_why_there_is_no_break_even(validated):
    ws = Workspace.open(validated)
    result = optimize_budget(ws, _plan(draws=100, robustness=False))
    assert result.target == "conversions"
    assert all(a.break_even is None for a in result.allocations)
    assert "value_per_conversion" in result.break_even_note
    (note,) = [f for f in result.findings if f.code == "break_even_unavailable"]
    assert note.severity == "info" and note.message == result.break_even_note

    # With a value per conversion: ROAS in conversions per unit of spend against
    # 1 / (value x margin), on the per-draw outcome at current spend.
    value, margin = 40.0, 0.5
    valued = optimize_budget(
        ws, _plan(draws=100, robustness=False, value_per_conversion=value, margin=margin)
    )
    assert valued.break_even_note == ""
    fitted = open_stored_fit(ws)
    curves = curves_from_fit(fitted, HORIZON, 100, spend_history(fitted, 52))
    current = np.array([a.current_spend for a in valued.allocations])
    outcome = curves.outcome(current)
    for c, a in enumerate(valued.allocations):
        assert a.break_even.threshold_roas == pytest.approx(1 / (value * margin))
        roas = outcome[:, c] / current[c]
        assert a.break_even.roas_current.mean == pytest.approx(roas.mean(), rel=1e-9)
        assert a.break_even.probability_below == pytest.approx((roas < 1 / (value * margin)).mean())


def _hand_outcome(root: Path, spend: np.ndarray, channels: list[str]) -> np.ndarray:
    """Per-draw outcome (S, C) of a flat plan over the horizon (then the carry-over tail),
    from the posterior draws through the simulator's own transforms: beta x Hill(adstock(
    spend / the channel's largest weekly spend)) x the largest weekly outcome, summed over
    the periods (PyMC-Marketing's max scaling; no package curve code)."""
    import xarray as xr

    manifest = json.loads((root / "analysis" / "mmm_fit.json").read_text())
    path = root / manifest["result"]["model_path"]
    posterior = xr.open_dataset(path, group="posterior", engine="h5netcdf").load()
    every = (posterior.sizes["chain"] * posterior.sizes["draw"]) // DRAWS  # the step's thinning
    posterior = posterior.isel(draw=slice(None, None, max(1, every))).stack(s=("chain", "draw"))
    panel = pd.read_csv(root / "analysis" / "prepared_panel.csv")
    l_max = manifest["params"]["config"]["l_max"]
    out = np.zeros((posterior.sizes["s"], len(channels)))
    for c, channel in enumerate(channels):
        draws = posterior.sel(channel=channel)
        timeline = np.zeros((HORIZON + l_max, out.shape[0]))  # (periods, draws)
        timeline[:HORIZON] = spend[c] / HORIZON / panel[f"spend_{channel}"].max()
        adstocked = geometric_adstock(timeline, draws["adstock_alpha"].to_numpy(), l_max)
        response = hill(
            adstocked, draws["saturation_slope"].to_numpy(), draws["saturation_kappa"].to_numpy()
        )
        out[:, c] = draws["saturation_beta"].to_numpy() * response.sum(axis=0)
    return out * panel["conversions"].max()


def test_break_even_matches_a_hand_computation(validated, monkeypatch):
    ws = Workspace.open(validated)
    plain = optimize_budget(ws, _plan(draws=DRAWS, robustness=False))
    channels = [a.channel for a in plain.allocations]
    current = np.array([a.current_spend for a in plain.allocations])
    roas = _hand_outcome(validated, current, channels) / current  # conversions per unit
    step_size = 1e-4 * current
    marginal = (
        _hand_outcome(validated, current + step_size, channels)
        - _hand_outcome(validated, current - step_size, channels)
    ) / (2 * step_size)
    # A value per conversion that puts the threshold at the median ROAS of the middle
    # channel: that one is uncertain, those clearly above or below it are decided.
    middle = int(np.argsort(roas.mean(axis=0))[1])
    value = 1 / float(np.median(roas[:, middle]))
    result = optimize_budget(ws, _plan(draws=DRAWS, robustness=False, value_per_conversion=value))
    threshold = 1 / value
    verdicts = []
    for c, a in enumerate(result.allocations):
        view = a.break_even
        below = float((roas[:, c] < threshold).mean())
        expected = "loses_money" if below >= 0.9 else "pays_back" if below <= 0.1 else "uncertain"
        assert view.threshold_roas == pytest.approx(threshold)
        assert view.roas_current.mean == pytest.approx(roas[:, c].mean(), rel=1e-6)
        assert view.probability_below == pytest.approx(below)
        assert view.marginal_probability_below == pytest.approx((marginal[:, c] < threshold).mean())
        assert view.verdict == expected
        verdicts.append(expected)
    assert len(set(verdicts)) >= 2, verdicts  # not every channel on the same side
    losing = {c for c, v in zip(channels, verdicts, strict=True) if v == "loses_money"}
    assert {f.subject for f in result.findings if f.code == "loses_money"} == losing
    assert not any(f.code == "break_even_unavailable" for f in result.findings)

    # A revenue target: the threshold is 1/margin (1 without one). The threshold depends on
    # the target only through its name, so the same draws are read as revenue (one fit
    # fewer); a conversion is worth far less than a unit of spend here, so every channel
    # loses money in every draw, which the hand computation has to agree with.
    import dataclasses

    from attribution_analysis.optimize import step as optimize_step

    def as_revenue(ws):
        fitted = open_stored_fit(ws)
        return dataclasses.replace(fitted, data=dataclasses.replace(fitted.data, target="revenue"))

    monkeypatch.setattr(optimize_step, "open_stored_fit", as_revenue)
    revenue = optimize_budget(ws, _plan(draws=DRAWS, robustness=False, margin=0.4))
    assert revenue.break_even_note == ""
    for c, a in enumerate(revenue.allocations):
        assert a.break_even.threshold_roas == pytest.approx(2.5)
        assert "margin 0.4" in a.break_even.basis
        assert a.break_even.probability_below == pytest.approx((roas[:, c] < 2.5).mean())
        assert a.break_even.verdict == "loses_money"
    assert {f.subject for f in revenue.findings if f.code == "loses_money"} == set(channels)
    unpriced = optimize_budget(ws, _plan(draws=DRAWS, robustness=False))
    assert all(a.break_even.threshold_roas == 1.0 for a in unpriced.allocations)
    assert "no margin given" in unpriced.allocations[0].break_even.basis


def test_lift_as_a_share_of_the_whole_outcome(validated):
    """The whole outcome is the raw outcome file's last horizon; the share is per draw."""
    ws = Workspace.open(validated)
    result = optimize_budget(ws, _plan(draws=DRAWS, robustness=False))
    raw = pd.read_csv(validated / "raw" / "conversions.csv")
    total = float(raw["conversions"].iloc[-HORIZON:].sum())
    assert result.outcome.total_outcome.mean == pytest.approx(total, rel=1e-9)
    assert "observed conversions over the last 13 periods" in result.outcome.total_outcome_basis
    channels = [a.channel for a in result.allocations]
    current = np.array([a.current_spend for a in result.allocations])
    recommended = np.array([a.recommended_spend for a in result.allocations])
    lift = (
        _hand_outcome(validated, recommended, channels)
        - _hand_outcome(validated, current, channels)
    ).sum(axis=1)
    assert result.outcome.lift.mean == pytest.approx(lift.mean(), rel=1e-6)
    share = lift / total
    assert result.outcome.lift_pct_of_total.mean == pytest.approx(share.mean(), rel=1e-6)
    np.testing.assert_allclose(result.outcome.lift_pct_of_total.hdi_90, _hdi90(share), rtol=1e-6)
    # The media-only share stays what it was: lift / media-driven outcome, a larger number.
    assert result.outcome.lift_pct.mean > result.outcome.lift_pct_of_total.mean > 0
