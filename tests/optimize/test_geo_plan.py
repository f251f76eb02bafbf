"""The geo x channel optimizer on synthetic geo response curves (no MCMC).

Checked against an independent implementation: the outcome written out from the Hill and
adstock formulas per geo, maximized by SciPy from many random starts under the same limits.
Per-geo limits hold and the plan adds up to the budget; a negative control shows the check
can fail (the national split is beaten where geos differ).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from attribution_analysis.contracts.budget import ChannelBound, GeoBound
from attribution_analysis.errors import ParameterError
from attribution_analysis.optimize.bounds import resolve_box
from attribution_analysis.optimize.geo import (
    cell_curves,
    feasible_point,
    optimize_geo,
    resolve_geo_limits,
)
from attribution_analysis.optimize.response import (
    ResponseCurves,
    geometric_weights,
    timeline_weights,
)
from attribution_analysis.optimize.solver import Objective

GEOS = ["north", "south", "east", "west"]
CHANNELS = ["tv", "search", "social"]
HORIZON, L_MAX = 8, 5


def geo_world(seed: int, draws: int = 60) -> dict:
    """Per-draw Hill/geometric parameters per geo x channel, geos deliberately unequal."""
    rng = np.random.default_rng(seed)
    shape = (draws, len(GEOS), len(CHANNELS))
    geo_strength = np.array([2.5, 1.0, 0.6, 1.4])[None, :, None]
    return {
        "alpha": rng.uniform(0.2, 0.7, shape),
        "beta": rng.lognormal(0, 0.3, shape) * geo_strength,
        "slope": rng.uniform(0.8, 2.5, shape),
        "kappa": rng.uniform(0.3, 1.0, shape),
        "scale": rng.uniform(50, 200, (len(GEOS), len(CHANNELS))),  # spend scale per cell
        "target_scale": rng.uniform(500, 1500, len(GEOS)),
        "share": rng.dirichlet(np.ones(len(GEOS)), len(CHANNELS)).T,  # (G, C), columns sum 1
    }


def national_curves(world: dict) -> ResponseCurves:
    """The curves the national plan uses: each channel split over geos by ``share``."""
    timeline, counts = timeline_weights(geometric_weights(world["alpha"], L_MAX), HORIZON)
    return ResponseCurves(
        channels=CHANNELS,
        horizon=HORIZON,
        timeline_weight=timeline,
        period_count=counts,
        beta=world["beta"],
        saturation="hill",
        slope=world["slope"],
        kappa=world["kappa"],
        lam=None,
        input_per_spend=world["share"] / world["scale"],
        target_scale=world["target_scale"],
    )


def independent_outcome(world: dict, cells: np.ndarray) -> np.ndarray:
    """Per-draw outcome (S,) of spend per cell (G*C,): a flat plan over HORIZON periods, from
    zero adstock, counted over the horizon and the carry-over tail, written out directly."""
    spend = cells.reshape(len(GEOS), len(CHANNELS)) / HORIZON
    lags = np.arange(L_MAX)
    t = np.arange(HORIZON + L_MAX - 1)[:, None]
    active = ((t - lags >= 0) & (t - lags < HORIZON)).astype(float)  # (T, L)
    weights = world["alpha"][..., None] ** lags
    weights = weights / weights.sum(axis=-1, keepdims=True)  # (S, G, C, L)
    x = spend / world["scale"] * np.einsum("sgcl,tl->tsgc", weights, active)
    x = np.maximum(x, 1e-300)
    hill = x ** world["slope"] / (x ** world["slope"] + world["kappa"] ** world["slope"])
    return (world["beta"] * hill * world["target_scale"][None, :, None]).sum(axis=(0, 2, 3))


def _limits(world, total, current, geo_bounds=(), max_change=None, channel_bounds=()):
    channel_box = resolve_box(list(channel_bounds), None, CHANNELS, current.sum(axis=0), total)
    return resolve_geo_limits(
        list(geo_bounds), max_change, GEOS, CHANNELS, current, total, channel_box, None
    )


def _solve(world, limits, total, current):
    curves = cell_curves(national_curves(world), world["scale"], GEOS)
    return optimize_geo(Objective(curves), limits, total, [], current.ravel())


def _independent_best(world, limits, total, starts=10, seed=0) -> float:
    """SLSQP on the written-out outcome (finite-difference gradients) from random feasible
    starts; the best value found."""
    rng = np.random.default_rng(seed)
    n = len(GEOS) * len(CHANNELS)
    geo = np.kron(np.eye(len(GEOS)), np.ones((1, len(CHANNELS))))
    channel = np.kron(np.ones((1, len(GEOS))), np.eye(len(CHANNELS)))
    cons = [
        {"type": "eq", "fun": lambda u: u.sum() - 1.0},
        {"type": "ineq", "fun": lambda u: geo @ u - limits.geo_low / total},
        {"type": "ineq", "fun": lambda u: limits.geo_high / total - geo @ u},
        {"type": "ineq", "fun": lambda u: channel @ u - limits.channel_low / total},
        {"type": "ineq", "fun": lambda u: limits.channel_high / total - channel @ u},
    ]
    bounds = list(
        zip(limits.cell_low.ravel() / total, limits.cell_high.ravel() / total, strict=True)
    )
    best = -np.inf
    for _ in range(starts):
        start = rng.dirichlet(np.ones(n))
        res = minimize(
            lambda u: -independent_outcome(world, u * total).mean() / 1e3,
            start,
            method="SLSQP",
            bounds=bounds,
            constraints=cons,
            options={"maxiter": 120, "ftol": 1e-10},
        )
        if limits.violation(res.x * total, total) < 1e-4 * total:
            best = max(best, independent_outcome(world, res.x * total).mean())
    return best


def test_cell_curves_equal_the_national_curves_at_the_current_split():
    world = geo_world(1)
    spend = np.array([400.0, 250.0, 150.0])
    national = national_curves(world).outcome(spend).sum(axis=1)
    cells = cell_curves(national_curves(world), world["scale"], GEOS)
    by_cell = cells.outcome((world["share"] * spend[None, :]).ravel()).sum(axis=1)
    np.testing.assert_allclose(by_cell, national, rtol=1e-12)
    independent = independent_outcome(world, (world["share"] * spend[None, :]).ravel())
    np.testing.assert_allclose(by_cell, independent, rtol=1e-9)


@pytest.mark.parametrize("seed", [1, 2])
def test_geo_plan_reaches_the_independent_optimum_within_per_geo_limits(seed):
    world = geo_world(seed)
    total = 900.0
    current = world["share"] * np.array([400.0, 300.0, 200.0])[None, :]
    geo_bounds = [
        GeoBound(geo="north", max_spend=260.0),  # the strongest geo is held down
        GeoBound(geo="east", min_spend=150.0),  # the weakest is kept up
        GeoBound(geo="west", channel="tv", max_spend=60.0),
    ]
    limits = _limits(world, total, current, geo_bounds)
    solution = _solve(world, limits, total, current)
    cells = solution.spend.reshape(len(GEOS), len(CHANNELS))
    assert cells.sum() == pytest.approx(total, rel=1e-12)
    assert cells[0].sum() <= 260.0 * (1 + 1e-9)
    assert cells[2].sum() >= 150.0 * (1 - 1e-9)
    assert cells[3, 0] <= 60.0 * (1 + 1e-9)
    assert cells.min() >= 0
    ours = independent_outcome(world, solution.spend).mean()
    theirs = _independent_best(world, limits, total, seed=seed)
    assert np.isfinite(theirs)  # the independent search found feasible points to compare
    assert ours >= theirs * (1 - 1e-4), (ours, theirs)
    # The national split (current shares per channel) is beaten: geos differ on purpose.
    keep_split = independent_outcome(world, current.ravel() * total / current.sum()).mean()
    assert ours > keep_split * 1.01


def test_channel_limits_hold_on_the_sum_over_geos():
    world = geo_world(3)
    total = 900.0
    current = world["share"] * np.array([300.0, 300.0, 300.0])[None, :]
    limits = _limits(
        world,
        total,
        current,
        channel_bounds=[ChannelBound(channel="tv", min_spend=400.0)],
        max_change=0.5,
    )
    solution = _solve(world, limits, total, current)
    cells = solution.spend.reshape(len(GEOS), len(CHANNELS))
    assert cells[:, 0].sum() >= 400.0 * (1 - 1e-9)
    assert np.all(cells <= current * 1.5 * (1 + 1e-9))
    assert np.all(cells >= current * 0.5 * (1 - 1e-9))
    assert cells.sum() == pytest.approx(total, rel=1e-12)
    theirs = _independent_best(world, limits, total, starts=8)
    assert np.isfinite(theirs)
    assert independent_outcome(world, solution.spend).mean() >= theirs * (1 - 1e-4)


@pytest.mark.parametrize(
    ("geo_bounds", "message"),
    [
        ([GeoBound(geo="mars", max_spend=1.0)], "geo 'mars'"),
        ([GeoBound(geo="north", channel="radio", max_spend=1.0)], "channel 'radio'"),
        (
            [GeoBound(geo=g, max_spend=100.0) for g in GEOS],
            "the geo and cell maximums add up to 400.00",
        ),
        (
            [GeoBound(geo=g, min_spend=300.0) for g in GEOS],
            "the geo minimums add up to 1,200.00",
        ),
        (
            [
                GeoBound(geo="north", min_spend=500.0),
                *[GeoBound(geo="north", channel=c, max_spend=100.0) for c in CHANNELS],
            ],
            "needs at least 500.00, but its cells can take at most 300.00",
        ),
        ([GeoBound(geo="north"), GeoBound(geo="north")], "more than once"),
    ],
)
def test_impossible_geo_limits_are_named(geo_bounds, message):
    world = geo_world(1)
    current = world["share"] * np.array([300.0, 300.0, 300.0])[None, :]
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        _limits(world, 900.0, current, geo_bounds)


def test_limits_that_only_clash_jointly_are_refused():
    """Each kind of limit alone can hold; together they cannot (the LP says so)."""
    world = geo_world(1)
    current = world["share"] * np.array([300.0, 300.0, 300.0])[None, :]
    geo_bounds = [GeoBound(geo=g, channel="tv", max_spend=50.0) for g in GEOS[:3]]
    geo_bounds.append(GeoBound(geo="west", max_spend=100.0))
    channel = [ChannelBound(channel="tv", min_spend=300.0)]  # tv can find 150 + 100 at most
    with pytest.raises(ParameterError, match="cannot all hold"):
        _limits(world, 900.0, current, geo_bounds, channel_bounds=channel)
    loose = _limits(world, 900.0, current, geo_bounds[:3])
    assert feasible_point(loose, 900.0) is not None  # negative control
