"""What-if plans: shift spend between channels, change the total, or a user-given plan.

Plans are built and checked before any optimization runs, so a bad scenario fails fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribution_analysis.contracts.budget import (
    AllocationScenario,
    OptimizeBudgetParams,
    Scenario,
    ShiftScenario,
    TotalChangeScenario,
)
from attribution_analysis.errors import ParameterError
from attribution_analysis.optimize.bounds import Box, resolve_box, unknown_channels


@dataclass(frozen=True)
class PlannedScenario:
    name: str
    kind: str
    description: str
    spend: np.ndarray | None  # fixed plan; None = optimize under ``box`` and ``total``
    box: Box | None = None
    total: float | None = None


def plan_scenarios(
    params: OptimizeBudgetParams,
    channels: list[str],
    baseline: np.ndarray,
    actual_current: np.ndarray,
    total_budget: float,
) -> list[PlannedScenario]:
    names: set[str] = set()
    planned = []
    for i, scenario in enumerate(params.scenarios):
        item = _plan(scenario, params, channels, baseline, actual_current, total_budget, i)
        if item.name in names:
            raise ParameterError(
                f"two scenarios are named {item.name!r}.", fix="give each scenario its own name."
            )
        names.add(item.name)
        planned.append(item)
    return planned


def _plan(
    scenario: Scenario,
    params: OptimizeBudgetParams,
    channels: list[str],
    baseline: np.ndarray,
    actual_current: np.ndarray,
    total_budget: float,
    index: int,
) -> PlannedScenario:
    where = f"scenario {index + 1}"
    if isinstance(scenario, ShiftScenario):
        unknown_channels([scenario.from_channel, scenario.to_channel], channels, where)
        if scenario.from_channel == scenario.to_channel:
            raise ParameterError(
                f"{where} shifts spend from {scenario.from_channel!r} to itself.",
                fix="name two different channels.",
            )
        a, b = channels.index(scenario.from_channel), channels.index(scenario.to_channel)
        if baseline[a] <= 0:
            raise ParameterError(
                f"{where}: channel {scenario.from_channel!r} has no current spend to shift.",
                fix="shift from a channel that is active, or use an 'allocation' scenario.",
            )
        spend = baseline.copy()
        moved = scenario.fraction * baseline[a]
        spend[a] -= moved
        spend[b] += moved
        return PlannedScenario(
            name=scenario.name
            or f"shift {scenario.fraction:.0%} {scenario.from_channel}->{scenario.to_channel}",
            kind="shift",
            description=f"move {scenario.fraction:.0%} of {scenario.from_channel}'s spend "
            f"({moved:,.2f}) to {scenario.to_channel}; other channels unchanged.",
            spend=spend,
        )
    if isinstance(scenario, TotalChangeScenario):
        total = total_budget * (1 + scenario.change)
        try:
            box = resolve_box(params.bounds, params.max_change, channels, actual_current, total)
        except ParameterError as exc:
            raise ParameterError(
                f"{where} (total {scenario.change:+.0%} = {total:,.2f}): {exc.problem}",
                fix=exc.fix,
            ) from None
        return PlannedScenario(
            name=scenario.name or f"total {scenario.change:+.0%}",
            kind="total_change",
            description=f"total budget {scenario.change:+.0%} ({total:,.2f}), mix re-optimized "
            "under the same limits.",
            spend=None,
            box=box,
            total=total,
        )
    assert isinstance(scenario, AllocationScenario)
    unknown_channels(list(scenario.allocation), channels, where)
    spend = baseline.copy()
    for channel, value in scenario.allocation.items():
        spend[channels.index(channel)] = value
    if spend.sum() <= 0:
        raise ParameterError(f"{where} spends nothing at all.", fix="give some channel spend.")
    return PlannedScenario(
        name=scenario.name or f"plan {index + 1}",
        kind="allocation",
        description="user plan: "
        + ", ".join(f"{c} {v:,.2f}" for c, v in scenario.allocation.items())
        + "; other channels at current spend.",
        spend=spend,
    )
