"""What-if plans: shift spend between channels, change the total, or a user-given plan.

Plans are built and checked before any optimization runs, so a bad scenario (unknown
channel, shift to itself) fails fast. A total change that the limits cannot accommodate is
not a typo but an answer ("a 50% cut does not fit the minimums"): it is reported as
infeasible with its reason while the other scenarios still run.
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
from attribution_analysis.errors import ParameterError, render
from attribution_analysis.optimize.bounds import Box, resolve_box, unknown_channels


@dataclass(frozen=True)
class PlannedScenario:
    name: str
    kind: str
    description: str
    spend: np.ndarray | None  # fixed plan; None = optimize under ``box`` and ``total``
    box: Box | None = None
    total: float | None = None
    infeasible: tuple[str, str] | None = None  # (reason, fix) when the limits rule it out


def plan_scenarios(
    params: OptimizeBudgetParams,
    channels: list[str],
    baseline: np.ndarray,
    actual_current: np.ndarray,
    total_budget: float,
    observed_cap: np.ndarray | None = None,
) -> list[PlannedScenario]:
    """``observed_cap``: the same cap on spend above observed levels as the main plan."""
    names: set[str] = set()
    planned = []
    for i, scenario in enumerate(params.scenarios):
        item = _plan(
            scenario, params, channels, baseline, actual_current, total_budget, observed_cap, i
        )
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
    observed_cap: np.ndarray | None,
    index: int,
) -> PlannedScenario:
    where = f"scenario {index + 1}"
    if isinstance(scenario, ShiftScenario):
        return _shift(scenario, channels, baseline, where)
    if isinstance(scenario, TotalChangeScenario):
        return _total_change(
            scenario, params, channels, actual_current, total_budget, observed_cap, where
        )
    assert isinstance(scenario, AllocationScenario)
    return _allocation(scenario, channels, baseline, where, index)


def _shift(
    scenario: ShiftScenario, channels: list[str], baseline: np.ndarray, where: str
) -> PlannedScenario:
    """Move a share of one channel's current spend to another; the rest unchanged."""
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


def _total_change(
    scenario: TotalChangeScenario,
    params: OptimizeBudgetParams,
    channels: list[str],
    actual_current: np.ndarray,
    total_budget: float,
    observed_cap: np.ndarray | None,
    where: str,
) -> PlannedScenario:
    """A larger or smaller total, re-optimized under the same limits (or infeasible)."""
    total = total_budget * (1 + scenario.change)
    name = scenario.name or f"total {scenario.change:+.0%}"
    description = (
        f"total budget {scenario.change:+.0%} ({total:,.2f}), mix re-optimized under the "
        "same limits."
    )
    # Unknown channels in the bounds are a typo of the whole request, not of this
    # scenario: resolve_box on the main budget has already refused them.
    try:
        box = resolve_box(
            params.bounds, params.max_change, channels, actual_current, total, observed_cap
        )
    except ParameterError as exc:
        return PlannedScenario(
            name=name,
            kind="total_change",
            description=description,
            spend=None,
            # Written to the output file: the parameters named in plain words.
            infeasible=(
                render(f"{where} (total {total:,.2f}): {exc.problem}"),
                render(exc.fix),
            ),
        )
    return PlannedScenario(
        name=name,
        kind="total_change",
        description=description,
        spend=None,
        box=box,
        total=total,
    )


def _allocation(
    scenario: AllocationScenario,
    channels: list[str],
    baseline: np.ndarray,
    where: str,
    index: int,
) -> PlannedScenario:
    """The user's own plan; channels left out keep current spend."""
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
