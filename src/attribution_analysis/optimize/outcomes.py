"""Figures shared by the national and the geo x channel plan: which limit a spend sits on,
the current-vs-recommended outcome summary on the same draws, and the optimizer's record."""

from __future__ import annotations

import numpy as np

from attribution_analysis.contracts.budget import (
    OptimizeBudgetParams,
    OptimizerReport,
    OutcomeSummary,
)
from attribution_analysis.optimize.solver import Solution
from attribution_analysis.summaries import interval


def active_bound(value: float, low: float, high: float, total: float) -> str | None:
    tolerance = 1e-6 * max(total, 1.0)
    if value <= low + tolerance and low > 0:
        return "min"
    if value >= high - tolerance and high < total:
        return "max"
    return None


def outcome_summary(current_total: np.ndarray, recommended_total: np.ndarray) -> OutcomeSummary:
    """Current vs recommended on the same draws: the lift and P(lift > 0)."""
    lift = recommended_total - current_total
    return OutcomeSummary(
        current=interval(current_total),
        recommended=interval(recommended_total),
        lift=interval(lift),
        lift_pct=interval(lift / current_total),
        probability_better=float((lift > 0).mean()),
    )


def optimizer_report(params: OptimizeBudgetParams, solution: Solution) -> OptimizerReport:
    risk = f" (worst {params.risk_level:.0%} of draws)" if params.objective == "cvar" else ""
    return OptimizerReport(
        method=solution.method,
        objective=params.objective + risk,
        objective_value=solution.value,
        objective_at_current=solution.value_at_current,  # the same baseline mix
        starts=solution.starts,
        converged=solution.converged,
        message=solution.message,
        max_constraint_violation=solution.max_violation,
        seconds=round(solution.seconds, 4),
    )
