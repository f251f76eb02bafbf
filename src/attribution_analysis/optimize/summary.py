"""The compact answer adapters return (CLI, scripts, MCP): the decision, not the curves."""

from __future__ import annotations

from typing import Any

from attribution_analysis.contracts.budget import BudgetOptimization
from attribution_analysis.optimize.step import OUTPUT


def summary_payload(result: BudgetOptimization) -> dict[str, Any]:
    return {
        "step": "optimize_budget",
        "total_budget": result.total_budget,
        "budget_per_period": result.budget_per_period,
        "horizon_periods": result.horizon_periods,
        "allocations": [
            {
                "channel": a.channel,
                "current_spend": round(a.current_spend, 2),
                "recommended_spend": round(a.recommended_spend, 2),
                "change_pct": None if a.change_pct is None else round(a.change_pct, 4),
                "bound_active": a.bound_active,
                "saturated": a.saturation.saturated,
                "beyond_observed": a.beyond_observed,
            }
            for a in result.allocations
        ],
        "outcome": result.outcome.model_dump(mode="json"),
        "scenarios": [
            {
                "name": s.name,
                "lift_vs_current": s.lift_vs_current.model_dump(mode="json"),
                "probability_better": s.probability_better,
            }
            for s in result.scenarios
        ],
        "findings": [f.model_dump(mode="json", exclude_none=True) for f in result.findings],
        "outputs": [OUTPUT],
    }
