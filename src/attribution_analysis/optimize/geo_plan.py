"""The ``geo_plan`` section of a budget plan (``by_geo``): spend per geo x channel.

The national plan decides each channel's total and keeps its current split over geos; this
section decides the split too, on the same posterior draws, budget and channel limits, with
per-geo and per-cell limits (``optimize.geo``). It is compared with the current mix and with
the national plan on the same draws, so a user sees what re-splitting across geos adds and
how sure the model is of it.
"""

from __future__ import annotations

import numpy as np

from attribution_analysis.contracts.budget import (
    MOVE_TOLERANCE,
    GeoCellAllocation,
    GeoPlan,
    GeoTotal,
    OptimizeBudgetParams,
)
from attribution_analysis.contracts.common import Finding
from attribution_analysis.errors import ParameterError, arg
from attribution_analysis.mmm.stored import StoredFit
from attribution_analysis.optimize.bounds import Box
from attribution_analysis.optimize.geo import (
    GeoLimits,
    cell_curves,
    optimize_geo,
    resolve_geo_limits,
)
from attribution_analysis.optimize.outcomes import (
    active_bound,
    optimizer_report,
    outcome_summary,
)
from attribution_analysis.optimize.posterior import SpendHistory, cell_max_per_period
from attribution_analysis.optimize.solver import Objective
from attribution_analysis.summaries import interval

# How the geo plan's risk is said: per-geo curves are estimated from one geo's data each
# (PyMC-Marketing's geo model pools nothing across geos), so moves between geos are less
# certain than moves between channels nationally.
GEO_CAUTION = (
    "each geo's curves are estimated from that geo's data alone (PyMC-Marketing's geo model "
    "pools nothing across geos), so moving money between geos rests on noisier curves than "
    "the national plan: quote the lift against the national plan with its interval and "
    "P(better), and test large geo moves (a geo experiment) before committing them."
)


def require_geo_panel(params: OptimizeBudgetParams, fitted: StoredFit) -> None:
    """Refuse ``by_geo`` on a national model before any work."""
    if params.by_geo and not fitted.data.geo:
        raise ParameterError(
            f"{arg('by_geo')} plans spend per geo x channel, but this model is national (its "
            "data has no geo column).",
            fix=f"drop {arg('by_geo')} and {arg('geo_bounds')}, or fit the MMM on a geo panel "
            "(a 'geo' column in the MMM table).",
            parameter="by_geo",
        )


def geo_plan(
    params: OptimizeBudgetParams,
    fitted: StoredFit,
    history: SpendHistory,
    objective: Objective,
    channel_box: Box,
    total: float,
    baseline: np.ndarray,
    national: np.ndarray,
) -> tuple[GeoPlan, list[Finding]]:
    """The plan per geo x channel and its findings. ``baseline`` and ``national`` (C,): the
    current mix at the planned budget and the national plan's recommendation."""
    geos, channels = fitted.geos, history.channels
    share = history.geo_share  # (G, C)
    current = baseline[None, :] * share
    horizon = objective.curves.horizon
    most = cell_max_per_period(fitted) * horizon  # the observed-spend cap per cell
    cap = None if params.allow_extrapolation else most
    limits = resolve_geo_limits(
        params.geo_bounds, params.max_change, geos, channels, current, total, channel_box, cap
    )
    cells = cell_curves(objective.curves, fitted.channel_scale(), geos)
    cell_objective = Objective(cells, objective.kind, objective.risk_level)
    national_cells = (national[None, :] * share).ravel()
    solution = optimize_geo(
        cell_objective,
        limits,
        total,
        [("national plan", national_cells), ("current", current.ravel())],
        current.ravel(),
    )
    now = cells.outcome(current.ravel())  # (S, G*C)
    rec, rec_gradient = cells.outcome_and_gradient(solution.spend)
    national_total = cells.outcome(national_cells).sum(axis=1)
    shape = (len(geos), len(channels))
    spend = solution.spend.reshape(shape)
    beyond = spend > most * (1 + 1e-4)
    plan = GeoPlan(
        geos=geos,
        cells=[
            GeoCellAllocation(
                geo=geo,
                channel=channel,
                current_spend=float(current[g, c]),
                recommended_spend=float(spend[g, c]),
                change_pct=_change(spend[g, c], current[g, c]),
                min_spend=float(limits.cell_low[g, c]),
                max_spend=float(limits.cell_high[g, c]),
                bound_active=active_bound(
                    spend[g, c], limits.cell_low[g, c], limits.cell_high[g, c], total
                ),
                outcome_current=interval(now[:, i]),
                outcome_recommended=interval(rec[:, i]),
                mroas_recommended=interval(rec_gradient[:, i]),
                beyond_observed=bool(beyond[g, c]),
            )
            for g, geo in enumerate(geos)
            for c, channel in enumerate(channels)
            for i in [g * len(channels) + c]
        ],
        geo_totals=_geo_totals(geos, limits, current, spend, now, rec, total),
        channel_totals={c: float(v) for c, v in zip(channels, spend.sum(axis=0), strict=True)},
        outcome=outcome_summary(now.sum(axis=1), rec.sum(axis=1)),
        lift_vs_national_plan=interval(rec.sum(axis=1) - national_total),
        probability_better_than_national=float((rec.sum(axis=1) > national_total).mean()),
        optimizer=optimizer_report(params, solution),
        limits=_limits_text(params, limits),
    )
    return plan, _findings(plan, limits, most, horizon)


def _change(new: float, old: float) -> float | None:
    return float(new / old - 1) if old > 0 else None


def _geo_totals(
    geos: list[str],
    limits: GeoLimits,
    current: np.ndarray,
    spend: np.ndarray,
    now: np.ndarray,
    rec: np.ndarray,
    total: float,
) -> list[GeoTotal]:
    n_channels = current.shape[1]
    rows = []
    for g, geo in enumerate(geos):
        cols = slice(g * n_channels, (g + 1) * n_channels)
        low = max(limits.geo_low[g], limits.cell_low[g].sum())
        high = min(limits.geo_high[g], limits.cell_high[g].sum())
        rows.append(
            GeoTotal(
                geo=geo,
                current_spend=float(current[g].sum()),
                recommended_spend=float(spend[g].sum()),
                change_pct=_change(spend[g].sum(), current[g].sum()),
                min_spend=float(low),
                max_spend=float(high),
                bound_active=active_bound(
                    spend[g].sum(), limits.geo_low[g], limits.geo_high[g], total
                ),
                outcome_current=interval(now[:, cols].sum(axis=1)),
                outcome_recommended=interval(rec[:, cols].sum(axis=1)),
            )
        )
    return rows


def _limits_text(params: OptimizeBudgetParams, limits: GeoLimits) -> str:
    parts = ["the national plan's channel limits on each channel's total over geos"]
    if params.max_change is not None:
        parts.append(
            f"max_change ±{params.max_change:g} on every geo x channel cell without its own bound"
        )
    if not params.allow_extrapolation:
        parts.append("each cell's spend per period capped at the most it ever spent in one")
    named = [s for s in limits.geo_sources if not s.endswith("(no limits)")]
    if named:
        parts.append("geo totals: " + "; ".join(named))
    cells = [b for b in params.geo_bounds if b.channel is not None]
    if cells:
        parts.append(f"{len(cells)} cell bound(s) from geo_bounds")
    return "; ".join(parts) + "."


def _findings(plan: GeoPlan, limits: GeoLimits, most: np.ndarray, horizon: int) -> list[Finding]:
    findings = [
        Finding(
            code="geo_plan_per_geo_curves",
            severity="info",
            value=round(plan.probability_better_than_national, 4),
            message=f"the plan per geo x channel beats the national plan in "
            f"{plan.probability_better_than_national:.0%} of draws (lift "
            f"{plan.lift_vs_national_plan.mean:,.2f}, 90% interval "
            f"{plan.lift_vs_national_plan.hdi_90[0]:,.2f} to "
            f"{plan.lift_vs_national_plan.hdi_90[1]:,.2f}); {GEO_CAUTION}",
        )
    ]
    for row in plan.geo_totals:
        if row.bound_active is not None:
            findings.append(
                Finding(
                    code="geo_limit_bound",
                    severity="info",
                    subject=row.geo,
                    value=round(row.recommended_spend, 2),
                    message=f"geo {row.geo!r} sits on its {row.bound_active}imum "
                    f"({row.recommended_spend:,.2f}): the geo optimum may lie beyond it.",
                )
            )
    n_channels = len(limits.channels)
    for i, cell in enumerate(plan.cells):
        if cell.beyond_observed:
            g, c = divmod(i, n_channels)
            per_period = cell.recommended_spend / horizon
            findings.append(
                Finding(
                    code="extrapolated_spend",
                    severity="warning",
                    subject=f"{cell.geo}/{cell.channel}",
                    value=round(per_period, 2),
                    threshold=round(float(most[g, c] / horizon), 2),
                    message=f"the recommended {cell.channel} spend in geo {cell.geo!r} per "
                    f"period ({per_period:,.2f}) exceeds the most that cell ever spent in one "
                    f"({most[g, c] / horizon:,.2f}); the curve there is extrapolated.",
                )
            )
    moved = [
        row
        for row in plan.geo_totals
        if row.change_pct is not None and abs(row.change_pct) > MOVE_TOLERANCE
    ]
    if moved:
        biggest = max(moved, key=lambda r: abs(r.change_pct or 0.0))
        findings.append(
            Finding(
                code="geo_moves",
                severity="info",
                value=round(float(biggest.change_pct or 0.0), 4),
                subject=biggest.geo,
                message=f"{len(moved)} of {len(plan.geo_totals)} geos change their total by "
                f"more than {MOVE_TOLERANCE:.0%}; the largest: {biggest.geo!r} "
                f"{biggest.change_pct:+.0%}.",
            )
        )
    return findings
