"""Budget by geo x channel: the same budget, with each channel's split over geos chosen too.

The national plan keeps every channel's current split over geos (``input_per_spend``); here
each geo x channel cell is a decision variable. A geo model's outcome is a sum over cells of
``beta[g, c] * target_scale[g] * sat(spend[g, c] / scale[g, c] * W)``, so the cells are laid
out as the channels of a one-row ``ResponseCurves`` (target scale folded into beta, input per
unit of spend 1 / scale) and the national objective, CVaR included, works on them unchanged.

Limits couple cells three ways: a box per cell, a range per geo total, a range per channel
total (the national plan's channel limits), all summing to the budget. No library solves this
non-concave programme globally; as in ``solver``, an exact dynamic programme on a budget grid
(channels within each geo, then geos; cell boxes and geo totals held exactly, channel totals
left to the polish) finds the basin, and SciPy's SLSQP polishes it and the other starts
under every limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linprog, minimize

from attribution_analysis.contracts.budget import GeoBound
from attribution_analysis.errors import ParameterError, arg
from attribution_analysis.optimize.bounds import OBSERVED_CAP_LABEL, Box
from attribution_analysis.optimize.response import ResponseCurves
from attribution_analysis.optimize.solver import Objective, Solution

# Budget units of the grid start (more cells than the national plan: finer grid), and the
# draws it averages (the start only finds the basin; the polish uses every draw).
GRID_STEPS = 160
GRID_DRAWS = 200
_EPS = 1e-9


@dataclass(frozen=True)
class GeoLimits:
    """Every limit of a geo x channel plan, in currency over the horizon."""

    geos: list[str]
    channels: list[str]
    cell_low: np.ndarray  # (G, C)
    cell_high: np.ndarray  # (G, C)
    geo_low: np.ndarray  # (G,)
    geo_high: np.ndarray  # (G,)
    channel_low: np.ndarray  # (C,)
    channel_high: np.ndarray  # (C,)
    cell_sources: list[str]  # per cell (geo-major), for messages
    geo_sources: list[str]  # per geo

    def violation(self, spend: np.ndarray, total: float) -> float:
        """Largest breach of any limit or of the budget, in currency (0 when feasible)."""
        cells = spend.reshape(self.cell_low.shape)
        geo, channel = cells.sum(axis=1), cells.sum(axis=0)
        return float(
            max(
                0.0,
                np.max(self.cell_low - cells),
                np.max(cells - self.cell_high),
                np.max(self.geo_low - geo),
                np.max(geo - self.geo_high),
                np.max(self.channel_low - channel),
                np.max(channel - self.channel_high),
                abs(cells.sum() - total),
            )
        )


def cell_curves(
    curves: ResponseCurves, channel_scale: np.ndarray, geos: list[str]
) -> ResponseCurves:
    """The geo model's curves with one variable per geo x channel cell (geo-major order)."""
    draws, n_geos, n_channels, periods = curves.timeline_weight.shape
    cells = n_geos * n_channels

    def flat(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values.reshape(draws, 1, cells)

    scale = np.broadcast_to(channel_scale, (n_geos, n_channels))
    # A cell never spent on has scale 0: PyMC-Marketing feeds the model 0 there, so spend in
    # it earns nothing (and the observed-spend cap holds it at 0 unless lifted).
    unit = np.where(scale > 0, 1.0 / np.where(scale > 0, scale, 1.0), 0.0)
    return replace(
        curves,
        channels=[f"{g}/{c}" for g in geos for c in curves.channels],
        timeline_weight=curves.timeline_weight.reshape(draws, 1, cells, periods),
        beta=(curves.beta * curves.target_scale[None, :, None]).reshape(draws, 1, cells),
        slope=flat(curves.slope),
        kappa=flat(curves.kappa),
        lam=flat(curves.lam),
        input_per_spend=unit.reshape(1, cells),
        target_scale=np.ones(1),
    )


def resolve_geo_limits(
    geo_bounds: list[GeoBound],
    max_change: float | None,
    geos: list[str],
    channels: list[str],
    current: np.ndarray,
    total: float,
    channel_box: Box,
    cell_cap: np.ndarray | None,
) -> GeoLimits:
    """Cell, geo and channel limits; refuses limits that name unknown geos or channels, or
    that cannot all hold with the budget (named).

    ``current`` (G, C): each cell's current spend at the planned budget. ``max_change``
    limits every cell without its own bound (relative to the cell's current spend), as it
    limits every channel in the national plan. ``cell_cap`` (G, C): the most each cell ever
    spent in one period x the horizon (None when extrapolation is allowed).
    """
    _check_names(geo_bounds, geos, channels)
    n_geos, n_channels = current.shape
    cell_low, cell_high = np.zeros_like(current), np.full_like(current, total)
    cell_parts: list[list[str]] = [[] for _ in range(n_geos * n_channels)]
    by_cell = {(b.geo, b.channel): b for b in geo_bounds if b.channel is not None}
    for g, geo in enumerate(geos):
        for c, channel in enumerate(channels):
            parts = cell_parts[g * n_channels + c]
            bound = by_cell.get((geo, channel))
            if bound is not None:
                low, high = _apply(bound, current[g, c], parts)
                cell_low[g, c], cell_high[g, c] = low, min(high, total)
            elif max_change is not None:
                cell_low[g, c] = max(0.0, current[g, c] * (1 - max_change))
                cell_high[g, c] = current[g, c] * (1 + max_change)
                parts.append(f"max_change ±{max_change:g} of current {current[g, c]:,.2f}")
            if cell_cap is not None and cell_cap[g, c] < cell_high[g, c]:
                cell_high[g, c] = cell_cap[g, c]
                parts.append(f"{OBSERVED_CAP_LABEL} in this geo {cell_cap[g, c]:,.2f}")
    cell_sources = [
        f"geo {g!r}, channel {c!r} ({'; '.join(cell_parts[i * n_channels + j]) or 'no limits'})"
        for i, g in enumerate(geos)
        for j, c in enumerate(channels)
    ]
    for i in range(n_geos * n_channels):
        g, c = divmod(i, n_channels)
        if cell_low[g, c] > cell_high[g, c] + _EPS * max(1.0, cell_high[g, c]):
            raise ParameterError(
                f"{cell_sources[i]}: its limits leave no room (lowest {cell_low[g, c]:,.2f} > "
                f"highest {cell_high[g, c]:,.2f}).",
                fix="loosen one of these limits (the observed-spend cap lifts with "
                f"{arg('allow_extrapolation')} true).",
                parameter="geo_bounds",
            )
        cell_high[g, c] = max(cell_high[g, c], cell_low[g, c])
    geo_low, geo_high, geo_sources = _geo_totals(geo_bounds, geos, current.sum(axis=1), total)
    limits = GeoLimits(
        geos=geos,
        channels=channels,
        cell_low=cell_low,
        cell_high=cell_high,
        geo_low=geo_low,
        geo_high=geo_high,
        channel_low=channel_box.low.copy(),
        channel_high=channel_box.high.copy(),
        cell_sources=cell_sources,
        geo_sources=geo_sources,
    )
    _check_feasible(limits, total, channel_box.sources)
    return limits


def _check_names(geo_bounds: list[GeoBound], geos: list[str], channels: list[str]) -> None:
    seen: set[tuple[str, str | None]] = set()
    for bound in geo_bounds:
        if bound.geo not in geos:
            raise ParameterError(
                f"geo_bounds name geo {bound.geo!r}, which the model does not have.",
                fix=f"use the data's geo labels: {', '.join(geos)}.",
                parameter="geo_bounds",
            )
        if bound.channel is not None and bound.channel not in channels:
            raise ParameterError(
                f"geo_bounds name channel {bound.channel!r}, which the model does not have.",
                fix=f"use the MMM's channel names: {', '.join(channels)}.",
                parameter="geo_bounds",
            )
        key = (bound.geo, bound.channel)
        if key in seen:
            raise ParameterError(
                f"geo_bounds give {bound.label} more than once.",
                fix="merge its limits into one entry.",
                parameter="geo_bounds",
            )
        seen.add(key)


def _apply(bound: GeoBound, current: float, parts: list[str]) -> tuple[float, float]:
    """[low, high] from one bound's absolute and relative limits (the tighter wins)."""
    low, high = 0.0, np.inf
    if bound.min_spend is not None:
        low = max(low, bound.min_spend)
        parts.append(f"min_spend {bound.min_spend:,.2f}")
    if bound.max_spend is not None:
        high = min(high, bound.max_spend)
        parts.append(f"max_spend {bound.max_spend:,.2f}")
    if bound.min_change is not None:
        low = max(low, current * (1 + bound.min_change))
        parts.append(f"min_change {bound.min_change:+g} of current {current:,.2f}")
    if bound.max_change is not None:
        high = min(high, current * (1 + bound.max_change))
        parts.append(f"max_change {bound.max_change:+g} of current {current:,.2f}")
    return low, high


def _geo_totals(
    geo_bounds: list[GeoBound], geos: list[str], current: np.ndarray, total: float
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    low, high = np.zeros(len(geos)), np.full(len(geos), total)
    sources = []
    by_geo = {b.geo: b for b in geo_bounds if b.channel is None}
    for g, geo in enumerate(geos):
        parts: list[str] = []
        bound = by_geo.get(geo)
        if bound is not None:
            lo, hi = _apply(bound, float(current[g]), parts)
            low[g], high[g] = lo, min(hi, total)
        sources.append(f"geo {geo!r} total ({'; '.join(parts) or 'no limits'})")
    return low, high, sources


def _check_feasible(limits: GeoLimits, total: float, channel_sources: list[str]) -> None:
    """The named necessary conditions first (each with the limits behind it), then a linear
    programme for the joint system (cells, geos and channels together)."""
    tolerance = _EPS * max(1.0, total)
    cells_low, cells_high = limits.cell_low.sum(axis=1), limits.cell_high.sum(axis=1)
    for g, geo in enumerate(limits.geos):
        if limits.geo_low[g] > cells_high[g] + tolerance:
            raise ParameterError(
                f"{limits.geo_sources[g]} needs at least {limits.geo_low[g]:,.2f}, but its "
                f"cells can take at most {cells_high[g]:,.2f}.",
                fix=f"lower the geo's minimum or raise its cells' limits (geo {geo!r} in "
                f"{arg('geo_bounds')}; the observed-spend cap lifts with "
                f"{arg('allow_extrapolation')} true).",
                parameter="geo_bounds",
            )
        if limits.geo_high[g] < cells_low[g] - tolerance:
            raise ParameterError(
                f"{limits.geo_sources[g]} allows at most {limits.geo_high[g]:,.2f}, but its "
                f"cells need at least {cells_low[g]:,.2f}.",
                fix="raise the geo's maximum or lower its cells' minimums (max_change holds "
                "each cell within ± that share of its current spend).",
                parameter="geo_bounds",
            )
    lowest = np.maximum(limits.geo_low, cells_low).sum()
    highest = np.minimum(limits.geo_high, cells_high).sum()
    if lowest > total + tolerance:
        raise ParameterError(
            f"the geo minimums add up to {lowest:,.2f}, more than the total budget {total:,.2f}.",
            fix="raise the total budget or lower the geo (or cell) minimums.",
            parameter="geo_bounds",
        )
    if highest < total - tolerance:
        raise ParameterError(
            f"the geo and cell maximums add up to {highest:,.2f}, less than the total budget "
            f"{total:,.2f}, so the budget cannot be spent per geo.",
            fix="lower the total budget, raise the geo maximums, or lift the per-cell limits "
            f"({arg('max_change')} none, {arg('allow_extrapolation')} true).",
            parameter="geo_bounds",
        )
    if feasible_point(limits, total) is None:
        raise ParameterError(
            "the geo limits, the per-cell limits and the channel limits cannot all hold at "
            f"this budget ({total:,.2f}), although each kind alone can. Channel limits: "
            f"{'; '.join(channel_sources)}.",
            fix="loosen the geo or channel limits that pull against each other (a channel "
            "minimum may need more of a geo than that geo's maximum allows).",
            parameter="geo_bounds",
        )


def _aggregation(n_geos: int, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(G, G*C) and (C, G*C) 0/1 matrices that sum the cells per geo and per channel."""
    geo = np.kron(np.eye(n_geos), np.ones((1, n_channels)))
    channel = np.kron(np.ones((1, n_geos)), np.eye(n_channels))
    return geo, channel


def feasible_point(limits: GeoLimits, total: float) -> np.ndarray | None:
    """A spend vector meeting every limit (SciPy's HiGHS LP), or None when there is none."""
    n_geos, n_channels = limits.cell_low.shape
    geo, channel = _aggregation(n_geos, n_channels)
    rows = np.vstack([geo, -geo, channel, -channel])
    bounds = np.concatenate(
        [limits.geo_high, -limits.geo_low, limits.channel_high, -limits.channel_low]
    )
    done = linprog(
        np.zeros(n_geos * n_channels),
        A_ub=rows,
        b_ub=bounds,
        A_eq=np.ones((1, n_geos * n_channels)),
        b_eq=[total],
        bounds=list(zip(limits.cell_low.ravel(), limits.cell_high.ravel(), strict=True)),
        method="highs",
    )
    return done.x if done.status == 0 else None


def nested_grid_optimum(
    curves: ResponseCurves, limits: GeoLimits, total: float, steps: int = GRID_STEPS
) -> np.ndarray | None:
    """Exact maximum of the expected outcome on a budget grid under the cell boxes and the
    geo totals (channels within each geo, then geos; O(G C steps^2)); channel totals are not
    held here. None when the grid cannot place the budget."""
    n_geos, n_channels = limits.cell_low.shape
    low, high = limits.cell_low, limits.cell_high
    free = total - low.sum()
    if free <= 0:
        return low.ravel().copy()
    delta = free / steps
    units = np.arange(steps + 1)
    thinned = _thinned(curves, GRID_DRAWS)
    geo_best = np.full((n_geos, steps + 1), -np.inf)
    choices = np.zeros((n_geos, n_channels, steps + 1), dtype=int)
    for g in range(n_geos):
        best = np.full(steps + 1, -np.inf)
        best[0] = 0.0
        for c in range(n_channels):
            most = int(min(steps, np.floor((high[g, c] - low[g, c]) / delta + 1e-9)))
            spend = low[g, c] + units[: most + 1] * delta
            gain = thinned.channel_outcome(g * n_channels + c, spend)[0].mean(axis=1)
            best, choices[g, c] = _combine(best, gain, units)
        # The geo's total must sit within its range: other unit counts are not allowed.
        base = low[g].sum()
        allowed = (base + units * delta >= limits.geo_low[g] - _EPS * total) & (
            base + units * delta <= limits.geo_high[g] + _EPS * total
        )
        geo_best[g] = np.where(allowed, best, -np.inf)
    best = np.full(steps + 1, -np.inf)
    best[0] = 0.0
    geo_choice = np.zeros((n_geos, steps + 1), dtype=int)
    for g in range(n_geos):
        best, geo_choice[g] = _combine(best, geo_best[g], units)
    if not np.isfinite(best[steps]):
        return None
    spend = low.copy()
    remaining = steps
    for g in reversed(range(n_geos)):
        in_geo = geo_choice[g, remaining]
        remaining -= in_geo
        for c in reversed(range(n_channels)):
            j = choices[g, c, in_geo]
            spend[g, c] += j * delta
            in_geo -= j
    return spend.ravel()


def _combine(
    best: np.ndarray, gain: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One knapsack stage: new_best[b] = max_j gain[j] + best[b - j], and the argmax j."""
    width = len(gain)
    b_minus_j = units[:, None] - units[None, :width]
    gain = np.where(np.isfinite(gain), gain, -np.inf)
    candidate = np.where(b_minus_j >= 0, gain[None, :] + best[np.clip(b_minus_j, 0, None)], -np.inf)
    return candidate.max(axis=1), candidate.argmax(axis=1)


def _thinned(curves: ResponseCurves, draws: int) -> ResponseCurves:
    step = max(1, curves.n_draws // draws)
    if step == 1:
        return curves

    def pick(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[::step]

    return replace(
        curves,
        timeline_weight=curves.timeline_weight[::step],
        beta=curves.beta[::step],
        slope=pick(curves.slope),
        kappa=pick(curves.kappa),
        lam=pick(curves.lam),
    )


def repair(spend: np.ndarray, limits: GeoLimits, total: float) -> np.ndarray:
    """Clip to the cell boxes and put the budget's rounding residue where every limit has
    room for it (SLSQP meets equalities to ~1e-10, the plan must add up exactly)."""
    n_geos, n_channels = limits.cell_low.shape
    cells = np.clip(spend.reshape(n_geos, n_channels), limits.cell_low, limits.cell_high)
    for _ in range(n_geos * n_channels):
        gap = total - cells.sum()
        if abs(gap) <= 1e-12 * max(1.0, total):
            break
        geo, channel = cells.sum(axis=1), cells.sum(axis=0)
        if gap > 0:
            room = np.minimum.reduce(
                [
                    limits.cell_high - cells,
                    np.broadcast_to((limits.geo_high - geo)[:, None], cells.shape),
                    np.broadcast_to((limits.channel_high - channel)[None, :], cells.shape),
                ]
            )
        else:
            room = np.minimum.reduce(
                [
                    cells - limits.cell_low,
                    np.broadcast_to((geo - limits.geo_low)[:, None], cells.shape),
                    np.broadcast_to((channel - limits.channel_low)[None, :], cells.shape),
                ]
            )
        g, c = np.unravel_index(int(np.argmax(room)), cells.shape)
        if room[g, c] <= 0:
            break
        cells[g, c] += np.sign(gap) * min(abs(gap), room[g, c])
    return cells.ravel()


def optimize_geo(
    objective: Objective,
    limits: GeoLimits,
    total: float,
    candidates: list[tuple[str, np.ndarray]],
    current: np.ndarray,
) -> Solution:
    """The best plan per cell under every limit: SLSQP from the grid optimum and from
    ``candidates`` (e.g. the national plan spread by the current split), keeping the best
    point that meets every limit; the LP's feasible point is the last resort."""
    started = time.perf_counter()
    tolerance = 1e-6 * max(1.0, total)
    starts: list[tuple[str, np.ndarray]] = []
    if objective.kind == "mean":
        grid = nested_grid_optimum(objective.curves, limits, total)
        if grid is not None:
            starts.append(("grid", grid))
    starts.extend(candidates)
    fallback = feasible_point(limits, total)
    if fallback is not None:
        starts.append(("feasible point", fallback))
    n_geos, n_channels = limits.cell_low.shape
    geo, channel = _aggregation(n_geos, n_channels)
    scale = total  # SLSQP works on spend / total: every variable is O(1)
    start_values = [objective.value(s) for _, s in starts]
    reference = max(abs(v) for v in start_values) or 1.0

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = objective.value_and_gradient(u * scale)
        return -value / reference, -gradient * scale / reference

    constraints = [
        {"type": "eq", "fun": lambda u: u.sum() - 1.0, "jac": lambda u: np.ones_like(u)},
        *_range_constraint(geo, limits.geo_low / scale, limits.geo_high / scale),
        *_range_constraint(channel, limits.channel_low / scale, limits.channel_high / scale),
    ]
    results: list[tuple[float, bool | None, str, np.ndarray]] = []
    for (label, start), value in zip(starts, start_values, strict=True):
        if limits.violation(start, total) <= tolerance:
            results.append((value, None, f"{label} (start kept: no polish did better)", start))
    polished = 0
    converged = False
    messages = []
    for label, start in starts:
        if label == "feasible point" and len(starts) > 1:
            continue  # a vertex of the limits: a start only when nothing else exists
        res = minimize(
            fun,
            start / scale,
            jac=True,
            method="SLSQP",
            bounds=list(
                zip(limits.cell_low.ravel() / scale, limits.cell_high.ravel() / scale, strict=True)
            ),
            constraints=constraints,
            options={"maxiter": 1000, "ftol": 1e-12},
        )
        polished += 1
        converged = converged or bool(res.success)
        messages.append(f"{label}: {res.message}")
        candidate = repair(res.x * scale, limits, total)
        if limits.violation(candidate, total) <= tolerance:
            results.append((objective.value(candidate), bool(res.success), messages[-1], candidate))
    if not results:
        raise ParameterError(
            "no plan per geo x channel met every limit (" + "; ".join(messages) + ").",
            fix="loosen the geo limits (geo_bounds) or the channel limits.",
            parameter="geo_bounds",
        )
    value, _, message, spend = max(results, key=lambda r: r[0])
    return Solution(
        spend=spend,
        value=value,
        value_at_current=objective.value(current),
        starts=polished,
        converged=converged,
        message=message
        if converged
        else f"{message}; no SLSQP run converged ({'; '.join(messages)})",
        max_violation=limits.violation(spend, total),
        seconds=time.perf_counter() - started,
        method=f"grid search per geo then across geos ({GRID_STEPS} steps, expected outcome "
        f"on {GRID_DRAWS} draws) + SLSQP under cell, geo and channel limits from {polished} "
        "starts",
    )


def _range_constraint(matrix: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[dict]:
    """low <= matrix @ u <= high as one SLSQP inequality block; rows with no limit (0 and
    the whole budget) dropped, and no block at all when none is left."""
    lower = low > 0
    upper = high < 1.0 - 1e-12
    a = np.vstack([matrix[lower], -matrix[upper]])
    b = np.concatenate([-low[lower], high[upper]])
    if not len(b):
        return []
    return [{"type": "ineq", "fun": lambda u: a @ u + b, "jac": lambda u: a}]
