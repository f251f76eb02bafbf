"""Robustness of a recommendation: the plan re-optimized under changed assumptions.

A recommendation is as good as the assumptions it rests on. Four of them are choices the
user may not know they made: the objective (expected outcome or the worst draws), what
"current spend" means (the last horizon or the last year), and how far each channel may
move (the limits). Each variant changes one of them, re-optimizes on the same posterior
draws (the response curves are built once), and the plan says, per channel, whether the
direction of the move (increase, decrease, hold) survives every variant.

Every variant's lift is measured against the main plan's current mix, on the main plan's
curves, so the lifts of the variants and of the plan can be read side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribution_analysis.contracts.budget import (
    MOVE_TOLERANCE,
    ChannelRobustness,
    Direction,
    OptimizeBudgetParams,
    Robustness,
    RobustnessVariant,
)
from attribution_analysis.contracts.common import Finding
from attribution_analysis.errors import ParameterError, render
from attribution_analysis.mmm.stored import StoredFit
from attribution_analysis.optimize.bounds import Box, resolve_box
from attribution_analysis.optimize.posterior import rebased, spend_history
from attribution_analysis.optimize.response import ResponseCurves
from attribution_analysis.optimize.solver import Objective, optimize
from attribution_analysis.summaries import interval

RISK_AVERSE_LEVEL = 0.1  # the risk-averse variant maximizes the mean of the worst 10% of draws
YEAR_PERIODS = {"weekly": 52, "daily": 365}  # the 'year' basis in periods of the grain
LIMIT_FACTOR = 2.0  # wider limits: max_change x2; narrower: max_change / 2
NARROWER_WITHOUT_LIMIT = 0.3  # with no max_change in the plan, 'narrower' is the default ±30%
# The CVaR variant's objective is not separable, so the solver polishes random starts too;
# one is enough to check a direction (the grid, current and equal-split starts remain).
VARIANT_RANDOM_STARTS = 1


@dataclass(frozen=True)
class MainPlan:
    """What the robustness pass needs of the main plan (optimize.step's Plan and Solution)."""

    channels: list[str]
    horizon: int
    basis_periods: int  # periods the main plan's 'current spend' was averaged over
    actual: np.ndarray  # (C,) current spend over the horizon (the limits are relative to it)
    total: float
    baseline: np.ndarray  # (C,) current mix at the planned budget
    recommended: np.ndarray  # (C,)
    cap: np.ndarray | None  # observed-spend cap over the horizon, None when lifted
    at_limit: list[str | None]  # per channel: the limit the recommendation sits on


@dataclass(frozen=True)
class Variant:
    """One changed assumption, ready to optimize (or why it cannot be)."""

    name: str
    description: str
    objective: Objective | None = None
    box: Box | None = None
    baseline: np.ndarray | None = None  # the variant's own current mix at the planned budget
    infeasible: str | None = None


def direction(spend: np.ndarray, baseline: np.ndarray, total: float) -> list[Direction]:
    """Per channel: 'increase' / 'decrease' beyond ±MOVE_TOLERANCE of current, else 'hold'.
    A channel with no current spend 'increases' once it gets more than a rounding residue."""
    out: list[Direction] = []
    for s, b in zip(spend, baseline, strict=True):
        if b <= 0:
            out.append("increase" if s > 1e-9 * max(total, 1.0) else "hold")
        elif s > b * (1 + MOVE_TOLERANCE):
            out.append("increase")
        elif s < b * (1 - MOVE_TOLERANCE):
            out.append("decrease")
        else:
            out.append("hold")
    return out


def variants(
    params: OptimizeBudgetParams, fitted: StoredFit, main: MainPlan, curves: ResponseCurves
) -> list[Variant]:
    """The variants of this plan: objective, basis of current spend, wider and narrower
    limits (each only where it changes something)."""
    found = [_objective_variant(params, main, curves)]
    found.extend(_basis_variants(params, fitted, main, curves))
    found.extend(_limit_variants(params, main, curves))
    return found


def _objective_variant(
    params: OptimizeBudgetParams, main: MainPlan, curves: ResponseCurves
) -> Variant:
    box, why = _box(params, params.max_change, main.actual, main)
    if params.objective == "mean":
        name, objective = "risk_averse", Objective(curves, "cvar", RISK_AVERSE_LEVEL)
        description = (
            f"maximizes the mean of the worst {RISK_AVERSE_LEVEL:.0%} of draws instead of "
            "the expected outcome"
        )
    else:
        name, objective = "risk_neutral", Objective(curves, "mean")
        description = "maximizes the expected outcome instead of the worst draws"
    return Variant(name, description, objective, box, main.baseline, why)


def _basis_variants(
    params: OptimizeBudgetParams, fitted: StoredFit, main: MainPlan, curves: ResponseCurves
) -> list[Variant]:
    """'Current spend' over the last horizon (recent_basis) or the last year (year_basis),
    whichever the main plan did not use; the mix changes, the budget stays the same."""
    grain = fitted.data.report.window.grain
    year = YEAR_PERIODS.get(grain, 52)
    out = []
    for name, periods, words in (
        ("recent_basis", main.horizon, "the last horizon"),
        ("year_basis", year, "the last year"),
    ):
        history = spend_history(fitted, periods)
        if history.basis_periods == main.basis_periods:
            continue  # the main plan's own basis (or the data are too short to differ)
        description = (
            f"current spend = mean spend per period over {words} ({history.basis_start} to "
            f"{history.basis_end}, {history.basis_periods} periods) instead of the last "
            f"{main.basis_periods}, scaled to the same total"
        )
        recent = history.current_per_period
        if recent.sum() <= 0:
            out.append(Variant(name, description, infeasible="no spend in that window"))
            continue
        mix = recent / recent.sum()
        # The same level of current spend as the main plan (its budget when it had none).
        level = main.actual.sum() if main.actual.sum() > 0 else main.total
        actual = mix * level
        box, why = _box(params, params.max_change, actual, main)
        objective = Objective(rebased(curves, fitted, history), params.objective, params.risk_level)
        out.append(Variant(name, description, objective, box, mix * main.total, why))
    return out


def _limit_variants(
    params: OptimizeBudgetParams, main: MainPlan, curves: ResponseCurves
) -> list[Variant]:
    objective = Objective(curves, params.objective, params.risk_level)
    out = []
    own = " (channels with their own bounds keep them)" if params.bounds else ""
    if params.max_change is not None:
        wider = params.max_change * LIMIT_FACTOR
        box, why = _box(params, wider, main.actual, main)
        out.append(
            Variant(
                "wider_limits",
                f"each channel within ±{wider:.0%} of current spend instead of "
                f"±{params.max_change:.0%}{own}",
                objective,
                box,
                main.baseline,
                why,
            )
        )
        narrower = params.max_change / LIMIT_FACTOR
        was = f"±{params.max_change:.0%}"
    else:
        narrower, was = NARROWER_WITHOUT_LIMIT, "no limit"
    box, why = _box(params, narrower, main.actual, main)
    out.append(
        Variant(
            "narrower_limits",
            f"each channel within ±{narrower:.0%} of current spend instead of {was}{own}",
            objective,
            box,
            main.baseline,
            why,
        )
    )
    return out


def _box(
    params: OptimizeBudgetParams, max_change: float | None, actual: np.ndarray, main: MainPlan
) -> tuple[Box | None, str | None]:
    """The limits under ``max_change`` (the user's own bounds kept), or why none exist."""
    try:
        return resolve_box(
            params.bounds, max_change, main.channels, actual, main.total, main.cap
        ), None
    except ParameterError as exc:
        return None, render(exc.problem)


def robustness(
    params: OptimizeBudgetParams, fitted: StoredFit, main: MainPlan, curves: ResponseCurves
) -> Robustness:
    """Every variant re-optimized on the same draws, and per channel whether the direction
    of the recommended move holds in all the feasible ones."""
    current_total = curves.outcome(main.baseline).sum(axis=1)
    results = [
        _solve(variant, curves, current_total, main.total, params.seed)
        for variant in variants(params, fitted, main, curves)
    ]
    recommended = direction(main.recommended, main.baseline, main.total)
    channels = []
    for c, channel in enumerate(main.channels):
        feasible = [r for r in results if r.directions is not None]
        holds = [r.name for r in feasible if r.directions[channel] == recommended[c]]
        flips = [r.name for r in feasible if r.directions[channel] != recommended[c]]
        channels.append(
            ChannelRobustness(
                channel=channel,
                direction=recommended[c],
                holds_in=holds,
                flips_in=flips,
                robust=not flips,
                at_limit=main.at_limit[c],
            )
        )
    return Robustness(variants=results, channels=channels, summary=_summary(channels, results))


def _solve(
    variant: Variant, curves: ResponseCurves, current_total: np.ndarray, total: float, seed: int
) -> RobustnessVariant:
    if variant.infeasible is not None or variant.objective is None or variant.box is None:
        return RobustnessVariant(
            name=variant.name,
            description=variant.description,
            allocation=None,
            directions=None,
            lift=None,
            probability_better=None,
            infeasible=variant.infeasible or "the limits leave no feasible plan",
        )
    assert variant.baseline is not None
    solution = optimize(
        variant.objective,
        variant.box,
        total,
        variant.baseline,
        seed=seed,
        random_starts=VARIANT_RANDOM_STARTS,
    )
    spend = solution.spend
    lift = curves.outcome(spend).sum(axis=1) - current_total
    names = curves.channels
    return RobustnessVariant(
        name=variant.name,
        description=variant.description,
        allocation={c: float(v) for c, v in zip(names, spend, strict=True)},
        directions=dict(zip(names, direction(spend, variant.baseline, total), strict=True)),
        lift=interval(lift),
        probability_better=float((lift > 0).mean()),
    )


def _summary(channels: list[ChannelRobustness], results: list[RobustnessVariant]) -> str:
    feasible = [r.name for r in results if r.directions is not None]
    if not feasible:
        return "No variant could be planned under its limits, so robustness is unknown."

    def move(ch: ChannelRobustness) -> str:
        return f"{ch.direction} {ch.channel}" if ch.direction != "hold" else f"hold {ch.channel}"

    robust = [move(ch) for ch in channels if ch.robust]
    fragile = [
        f"{move(ch)} (not under {', '.join(ch.flips_in)})" for ch in channels if not ch.robust
    ]
    tested = ", ".join(feasible)
    if not fragile:
        return (
            f"Every move holds under all {len(feasible)} variants ({tested}): {'; '.join(robust)}."
        )
    held = (
        f"Moves that hold under every variant ({tested}): {'; '.join(robust)}. "
        if robust
        else (f"No move holds under every variant ({tested}). ")
    )
    return f"{held}Moves that depend on the assumptions: {'; '.join(fragile)}."


def robustness_findings(result: Robustness) -> list[Finding]:
    """'fragile_move' per channel whose direction flips in some variant, and 'limit_bound'
    per channel sitting on a limit."""
    findings = []
    by_name = {v.name: v for v in result.variants}
    for ch in result.channels:
        if not ch.robust:
            why = "; ".join(f"{name}: {by_name[name].description}" for name in ch.flips_in)
            findings.append(
                Finding(
                    code="fragile_move",
                    severity="warning",
                    subject=ch.channel,
                    value=float(len(ch.flips_in)),
                    message=f"the recommendation to {ch.direction} {ch.channel} does not hold "
                    f"when the assumptions change ({why}). Present it as depending on those "
                    "choices, or test it before committing.",
                )
            )
    return findings


def limit_findings(
    channels: list[str], at_limit: list[str | None], sources: list[str]
) -> list[Finding]:
    """'limit_bound' per channel whose recommended spend sits on a limit: the limit, not the
    data, set that channel's spend (the optimum may lie beyond it)."""
    findings = []
    for channel, side, source in zip(channels, at_limit, sources, strict=True):
        if side is None:
            continue
        word = "lowest" if side == "min" else "highest"
        # Box.sources words each channel's limits as "channel (where they come from)".
        source = source.removeprefix(channel).strip().removeprefix("(").removesuffix(")")
        findings.append(
            Finding(
                code="limit_bound",
                severity="warning",
                subject=channel,
                message=f"{channel} sits at its {word} allowed spend ({source}): the limit, not "
                "the data, set this channel's spend, and the optimum may lie beyond it. See the "
                "'wider_limits' variant for where the data alone would take it, and widen "
                "the limit only as far as a test or the observed spend range supports.",
            )
        )
    return findings
