"""The answer of ``optimize_budget`` (MCP tool, CLI, scripts): the decision, not the curves."""

from __future__ import annotations

from attribution_analysis.contracts.budget import (
    AllocationAnswer,
    BudgetAnswer,
    BudgetOptimization,
    GeoPlanAnswer,
    GeoTotalAnswer,
    ScenarioAnswer,
)

STEP = "optimize_budget"


def budget_answer(result: BudgetOptimization, outputs: list[str], plans: list[str]) -> BudgetAnswer:
    """The step's answer from the content of the plan file; ``plans``: every plan in the
    workspace once this one is stored, newest first."""
    robust = (
        {row.channel: row.robust for row in result.robustness.channels}
        if result.robustness is not None
        else {}
    )
    return BudgetAnswer(
        step=STEP,
        outputs=outputs,
        plan_name=result.plan_name,
        plans=plans,
        target=result.target,
        outcome_unit=result.outcome_unit,
        total_budget=result.total_budget,
        budget_per_period=result.budget_per_period,
        horizon_periods=result.horizon_periods,
        grain=result.grain,
        current_basis=result.current_basis,
        allocations=[
            AllocationAnswer(
                channel=a.channel,
                current_spend=round(a.current_spend, 2),
                recommended_spend=round(a.recommended_spend, 2),
                change_pct=None if a.change_pct is None else round(a.change_pct, 4),
                bound_active=a.bound_active,
                saturated=a.saturation.saturated,
                beyond_observed=a.beyond_observed,
                robust=robust.get(a.channel),
                break_even=None if a.break_even is None else a.break_even.verdict,
            )
            for a in result.allocations
        ],
        outcome=result.outcome,
        scenarios=[
            ScenarioAnswer(
                name=s.name,
                kind=s.kind,
                total_spend=s.total_spend,
                lift_vs_current=s.lift_vs_current,
                probability_better=s.probability_better,
            )
            for s in result.scenarios
        ],
        infeasible_scenarios=result.infeasible_scenarios,
        robustness_summary="" if result.robustness is None else result.robustness.summary,
        break_even_note=result.break_even_note,
        geo_plan=_geo_answer(result),
        findings=result.findings,
    )


def _geo_answer(result: BudgetOptimization) -> GeoPlanAnswer | None:
    plan = result.geo_plan
    if plan is None:
        return None
    return GeoPlanAnswer(
        geo_totals=[
            GeoTotalAnswer(
                geo=row.geo,
                current_spend=round(row.current_spend, 2),
                recommended_spend=round(row.recommended_spend, 2),
                change_pct=None if row.change_pct is None else round(row.change_pct, 4),
                bound_active=row.bound_active,
            )
            for row in plan.geo_totals
        ],
        channel_totals={c: round(v, 2) for c, v in plan.channel_totals.items()},
        lift=plan.outcome.lift,
        probability_better=plan.outcome.probability_better,
        lift_vs_national_plan=plan.lift_vs_national_plan,
        probability_better_than_national=plan.probability_better_than_national,
    )
