"""The robustness pass of optimize_budget, recomputed from the per-draw arrays.

Every variant's limits are rebuilt from the prepared panel (not from the step's output), its
lift, interval and P(better) from the per-draw outcomes of its allocation, its directions
from its allocation and its own current mix with the 1% rule, and its optimality against an
independent brute-force search (or, for the non-separable CVaR objective, against the
feasible points the variant must beat). The findings are checked with negative controls.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.api import optimize_budget
from attribution_analysis.contracts.budget import ChannelBound, OptimizeBudgetParams
from attribution_analysis.mmm.stored import open_stored_fit
from attribution_analysis.optimize.plans import read_plan
from attribution_analysis.optimize.posterior import curves_from_fit, spend_history
from attribution_analysis.steps import execute, step
from attribution_analysis.workspace import Workspace
from tests.optimize.test_optimize_fitted_model import HORIZON, NOT_THE_GATE, _fitted_optimum, _hdi90

DRAWS = 200
YEAR = 52  # the main plan's default basis for 'current spend'
TOLERANCE = 0.01  # the documented 'hold' band: within ±1% of current spend


def _plan(**kwargs) -> OptimizeBudgetParams:
    return OptimizeBudgetParams(override_reason=NOT_THE_GATE, draws=DRAWS, **kwargs)


def _panel_spend(root: Path, channels: list[str]) -> np.ndarray:
    panel = pd.read_csv(root / "analysis" / "prepared_panel.csv")
    return panel[[f"spend_{c}" for c in channels]].to_numpy(dtype=float)


def _directions(spend: np.ndarray, current: np.ndarray) -> list[str]:
    return [
        "increase" if s > b * (1 + TOLERANCE) else "decrease" if s < b * (1 - TOLERANCE) else "hold"
        for s, b in zip(spend, current, strict=True)
    ]


def _cvar(totals: np.ndarray, level: float = 0.1) -> float:
    ordered = np.sort(totals)
    return float(ordered[: math.ceil(level * ordered.size)].mean())


def test_robustness_table_recomputed_from_the_draws(validated):
    ws = Workspace.open(validated)
    answer = execute(step("optimize_budget"), ws, _plan())  # what an agent reads
    result = read_plan(ws, answer["plan_name"])  # the plan file
    robustness = result.robustness
    assert robustness is not None, "robustness is computed by default"
    channels = [a.channel for a in result.allocations]
    spend = _panel_spend(validated, channels)
    year = spend[-YEAR:].mean(axis=0) * HORIZON  # the main plan's current spend
    total = year.sum()
    assert result.total_budget == pytest.approx(total)
    cap = spend.max(axis=0) * HORIZON  # the observed-spend cap, not lifted by default
    recent_mix = spend[-HORIZON:].mean(axis=0) / spend[-HORIZON:].mean(axis=0).sum()
    recent_current = recent_mix * total  # the same budget, the last horizon's mix

    def limits(current: np.ndarray, change: float) -> tuple[np.ndarray, np.ndarray]:
        return current * (1 - change), np.minimum(current * (1 + change), cap)

    expected = {  # name: (low, high, the variant's own current mix)
        "risk_averse": (*limits(year, 0.3), year),
        "recent_basis": (*limits(recent_current, 0.3), recent_current),
        "wider_limits": (*limits(year, 0.6), year),
        "narrower_limits": (*limits(year, 0.15), year),
    }
    assert [v.name for v in robustness.variants] == list(expected)

    fitted = open_stored_fit(ws)
    curves = curves_from_fit(fitted, HORIZON, DRAWS, spend_history(fitted, YEAR))
    now = curves.outcome(year).sum(axis=1)
    recommended = np.array([a.recommended_spend for a in result.allocations])
    for variant in robustness.variants:
        assert variant.infeasible is None and variant.allocation is not None
        x = np.array([variant.allocation[c] for c in channels])
        low, high, current = expected[variant.name]
        assert x.sum() == pytest.approx(total, rel=1e-9)
        assert np.all(x >= low - 1e-6 * total) and np.all(x <= high + 1e-6 * total), variant.name
        lift = curves.outcome(x).sum(axis=1) - now  # against the main plan's current mix
        assert variant.lift.mean == pytest.approx(lift.mean(), rel=1e-9)
        np.testing.assert_allclose(variant.lift.hdi_90, _hdi90(lift), rtol=1e-9)
        assert variant.probability_better == pytest.approx((lift > 0).mean())
        assert variant.directions == dict(zip(channels, _directions(x, current), strict=True))
        totals = curves.outcome(x).sum(axis=1)
        if variant.name == "risk_averse":
            # The main plan and the current mix are feasible here: the variant beats both on
            # the worst 10% of draws, its own objective.
            assert _cvar(totals) >= _cvar(curves.outcome(recommended).sum(axis=1)) - 1e-9
            assert _cvar(totals) >= _cvar(now) - 1e-9
        else:
            # Expected outcome: the optimum within the variant's limits by brute force.
            best = _fitted_optimum(curves, total, low, high)
            assert totals.mean() >= best * (1 - 1e-6), variant.name

    main = _directions(recommended, year)
    for c, row in enumerate(robustness.channels):
        assert row.channel == channels[c] and row.direction == main[c]
        flips = [v.name for v in robustness.variants if v.directions[row.channel] != main[c]]
        assert row.flips_in == flips
        assert row.holds_in == [v.name for v in robustness.variants if v.name not in flips]
        assert row.robust == (not flips)
        assert row.at_limit == result.allocations[c].bound_active
        if flips:
            assert row.channel in robustness.summary
    fragile = {f.subject for f in result.findings if f.code == "fragile_move"}
    assert fragile == {row.channel for row in robustness.channels if not row.robust}
    assert answer["robustness_summary"] == robustness.summary
    assert {a["channel"]: a["robust"] for a in answer["allocations"]} == {
        row.channel: row.robust for row in robustness.channels
    }


def test_variants_follow_the_main_plan_s_choices(validated):
    """A risk-averse plan on the last horizon's spend without a change limit: the variants
    are the expected outcome, the year's basis and the default ±30% (names and limits from
    the data); robustness=false skips the pass."""
    ws = Workspace.open(validated)
    result = optimize_budget(
        ws, _plan(objective="cvar", current_basis_periods=HORIZON, max_change=None)
    )
    assert [v.name for v in result.robustness.variants] == [
        "risk_neutral",
        "year_basis",
        "narrower_limits",
    ]
    channels = [a.channel for a in result.allocations]
    spend = _panel_spend(validated, channels)
    recent = spend[-HORIZON:].mean(axis=0) * HORIZON
    by_name = {v.name: v for v in result.robustness.variants}
    narrower = np.array([by_name["narrower_limits"].allocation[c] for c in channels])
    assert np.all(narrower >= 0.7 * recent - 1e-6) and np.all(narrower <= 1.3 * recent + 1e-6)
    year_mix = spend[-YEAR:].mean(axis=0) / spend[-YEAR:].mean(axis=0).sum()
    year_current = year_mix * recent.sum()
    year_plan = np.array([by_name["year_basis"].allocation[c] for c in channels])
    assert by_name["year_basis"].directions == dict(
        zip(channels, _directions(year_plan, year_current), strict=True)
    )
    assert "instead of the last 13" in by_name["year_basis"].description
    skipped = optimize_budget(ws, _plan(robustness=False))
    assert skipped.robustness is None
    assert not any(f.code == "fragile_move" for f in skipped.findings)


def _set_verdicts(root: Path, verdicts: dict[str, str]) -> bool:
    path = root / "analysis" / "mmm_diagnostics.json"
    diagnostics = json.loads(path.read_text())
    for row in diagnostics["identification"]:
        row["verdict"] = verdicts[row["channel"]]
    path.write_text(json.dumps(diagnostics))
    return bool(diagnostics["passed"])


def test_money_into_a_prior_driven_channel_is_named_and_a_data_driven_one_is_not(validated):
    ws = Workspace.open(validated)
    plan = optimize_budget(ws, _plan(robustness=False))
    channels = [a.channel for a in plan.allocations]
    grown = {a.channel for a in plan.allocations if a.recommended_spend > 1.01 * a.current_spend}
    assert grown, "the plan moves no money: the check would pass vacuously"

    # Negative control: the same plan with every channel decided by the data.
    _set_verdicts(validated, dict.fromkeys(channels, "data_driven"))
    control = optimize_budget(ws, _plan(robustness=False))
    assert [a.recommended_spend for a in control.allocations] == pytest.approx(
        [a.recommended_spend for a in plan.allocations]
    )
    assert not any(f.code.startswith("budget_into_") for f in control.findings)

    _set_verdicts(validated, {c: "prior_driven" if c in grown else "data_driven" for c in channels})
    flagged = optimize_budget(ws, _plan(robustness=False))
    found = {f.subject for f in flagged.findings if f.code == "budget_into_prior_driven"}
    assert found == grown


def test_a_channel_set_by_its_limit_is_named_and_a_free_one_is_not(validated):
    """tv's own bounds pin its spend (min = max): the limit set it, whatever the curves.
    The others have no limit but the budget, so none of them can sit on one."""
    ws = Workspace.open(validated)
    channels = ["paid_search", "social", "tv"]
    year = _panel_spend(validated, channels)[-YEAR:].mean(axis=0) * HORIZON
    pinned = 0.8 * year[2]
    result = optimize_budget(
        ws,
        _plan(
            max_change=None,
            allow_extrapolation=True,
            bounds=[ChannelBound(channel="tv", min_spend=pinned, max_spend=pinned)],
            robustness=False,
        ),
    )
    flagged = [f for f in result.findings if f.code == "limit_bound"]
    assert [f.subject for f in flagged] == ["tv"]
    assert "min_spend" in flagged[0].message and "the limit, not the data" in flagged[0].message

    # The default plan: the channels at their ±30% (or observed-spend) limit, from the data.
    default = optimize_budget(ws, _plan(robustness=False))
    cap = _panel_spend(validated, channels).max(axis=0) * HORIZON
    low, high = 0.7 * year, np.minimum(1.3 * year, cap)
    spend = np.array([a.recommended_spend for a in default.allocations])
    tolerance = 1e-6 * year.sum()
    at_limit = {
        c
        for c, x, lo, hi in zip(channels, spend, low, high, strict=True)
        if x <= lo + tolerance or x >= hi - tolerance
    }
    assert {f.subject for f in default.findings if f.code == "limit_bound"} == at_limit
