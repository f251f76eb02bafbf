"""Figures shared by the national and the geo x channel plan: which limit a spend sits on,
and the current-vs-recommended outcome summary on the same draws."""

from __future__ import annotations

import numpy as np

from attribution_analysis.contracts.budget import OutcomeSummary
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
