"""The optimizer on synthetic response curves (no MCMC): constraints always hold, infeasible
requests name the conflicting limits, the global optimum is found on S-shaped curves, and
channel names stay attached to their spend."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution_analysis.contracts.budget import ChannelBound
from attribution_analysis.errors import ParameterError
from attribution_analysis.optimize.bounds import resolve_box, violation
from attribution_analysis.optimize.response import (
    ResponseCurves,
    geometric_weights,
    timeline_weights,
)
from attribution_analysis.optimize.solver import Objective, optimize, project


def make_curves(
    seed: int, n_channels: int, n_draws: int = 40, horizon: int = 8, names=None
) -> ResponseCurves:
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0.1, 0.8, (n_draws, 1, n_channels))
    l_max = 6
    timeline, counts = timeline_weights(geometric_weights(alpha, l_max), horizon)
    return ResponseCurves(
        channels=names or [f"ch{c}" for c in range(n_channels)],
        horizon=horizon,
        timeline_weight=timeline,
        period_count=counts,
        beta=rng.lognormal(0, 0.5, (n_draws, 1, n_channels)),
        saturation="hill",
        slope=rng.uniform(0.7, 3.0, (n_draws, 1, n_channels)),
        kappa=rng.uniform(0.2, 1.0, (n_draws, 1, n_channels)),
        lam=None,
        input_per_spend=np.full((1, n_channels), 1 / 100.0),
        target_scale=np.array([1000.0]),
    )


@st.composite
def problems(draw):
    n = draw(st.integers(2, 5))
    seed = draw(st.integers(0, 10_000))
    current = np.array(draw(st.lists(st.floats(0, 2000), min_size=n, max_size=n)))
    total = draw(st.floats(1.0, 20_000))
    bounds = []
    for c in range(n):
        if draw(st.booleans()):
            lo = draw(st.none() | st.floats(0, 8000))
            hi = draw(st.none() | st.floats(0, 8000))
            if lo is not None and hi is not None and lo > hi:
                lo, hi = hi, lo
            bounds.append(ChannelBound(channel=f"ch{c}", min_spend=lo, max_spend=hi))
    max_change = draw(st.none() | st.floats(0, 2))
    return seed, n, current, total, bounds, max_change


@settings(max_examples=60, deadline=None)
@given(problems())
def test_constraints_hold_or_the_conflict_is_named(problem):
    seed, n, current, total, bounds, max_change = problem
    curves = make_curves(seed, n)
    channels = curves.channels
    try:
        box = resolve_box(bounds, max_change, channels, current, total)
    except ParameterError as exc:
        # Refused only when really infeasible, and the message names a limit.
        low, high = _limits(bounds, max_change, channels, current, total)
        assert (
            low.sum() > total * (1 - 1e-9)
            or high.sum() < total * (1 + 1e-9)
            or np.any(low > np.minimum(high, total) * (1 + 1e-12))
        )
        assert "min" in exc.problem or "max" in exc.problem
        return
    objective = Objective(curves)
    solution = optimize(objective, box, total, current, seed=seed)
    assert solution.spend.sum() == pytest.approx(total, rel=1e-9, abs=1e-9)
    tolerance = 1e-9 * max(1.0, total)
    assert np.all(solution.spend >= box.low - tolerance)
    assert np.all(solution.spend <= box.high + tolerance)
    assert violation(solution.spend, box, total) <= tolerance
    # Never worse than the feasible equal split or the (projected) current mix.
    for start in (np.full(n, total / n), current * total / max(current.sum(), 1e-12)):
        assert solution.value >= objective.value(project(start, box, total)) - 1e-9 * abs(
            solution.value
        )


def _limits(bounds, max_change, channels, current, total):
    """The effective limits, recomputed independently of resolve_box."""
    low = np.zeros(len(channels))
    high = np.full(len(channels), total)
    named = {b.channel: b for b in bounds}
    for c, ch in enumerate(channels):
        b = named.get(ch)
        if b is None:
            if max_change is not None:
                low[c] = current[c] * (1 - max_change)
                high[c] = current[c] * (1 + max_change)
            continue
        if b.min_spend is not None:
            low[c] = max(low[c], b.min_spend)
        if b.max_spend is not None:
            high[c] = min(high[c], b.max_spend)
    return low, high


def test_global_optimum_on_s_curves_matches_brute_force():
    """Two S-shaped channels where a local method started at the equal split stalls."""
    curves = ResponseCurves(
        channels=["a", "b"],
        horizon=1,
        timeline_weight=np.ones((1, 1, 2, 1)),
        period_count=np.ones(1),
        beta=np.array([[[1.0, 1.0]]]),
        saturation="hill",
        slope=np.array([[[4.0, 4.0]]]),
        kappa=np.array([[[0.6, 0.6]]]),
        lam=None,
        input_per_spend=np.array([[1.0, 1.0]]),
        target_scale=np.array([1.0]),
    )
    total = 1.0
    box = resolve_box([], None, ["a", "b"], np.array([0.5, 0.5]), total)
    solution = optimize(Objective(curves), box, total, np.array([0.5, 0.5]))
    grid = np.linspace(0, total, 100_001)
    brute = max(
        curves.channel_outcome(0, grid)[0][:, 0] + curves.channel_outcome(1, total - grid)[0][:, 0]
    )
    assert solution.value == pytest.approx(brute, rel=1e-6)
    # Both at 0.5 gives 2 * h(0.5/0.6); all in one channel gives h(1/0.6): the corner wins.
    assert max(solution.spend) == pytest.approx(total, rel=1e-6)


def test_channel_names_follow_their_spend():
    """Swap channel order in the curves: the dominant channel keeps the money by name."""
    base = make_curves(3, 3, names=["tv", "search", "social"])
    boosted = base.beta.copy()
    boosted[:, :, 1] *= 20  # 'search' is by far the best channel
    curves = replace(base, beta=boosted)
    order = [2, 0, 1]
    permuted = replace(
        curves,
        channels=[curves.channels[i] for i in order],
        timeline_weight=curves.timeline_weight[:, :, order],
        beta=curves.beta[:, :, order],
        slope=curves.slope[:, :, order],
        kappa=curves.kappa[:, :, order],
        input_per_spend=curves.input_per_spend[:, order],
    )
    results = {}
    for c in (curves, permuted):
        box = resolve_box([], None, c.channels, np.full(3, 100.0), 300.0)
        spend = optimize(Objective(c), box, 300.0, np.full(3, 100.0)).spend
        results[tuple(c.channels)] = dict(zip(c.channels, spend, strict=True))
    first, second = results.values()
    assert max(first, key=first.get) == "search" == max(second, key=second.get)
    for name in first:
        assert first[name] == pytest.approx(second[name], rel=1e-4, abs=1e-3)


def test_risk_averse_objective_protects_the_tail():
    curves = make_curves(11, 4, n_draws=200)
    current = np.full(4, 250.0)
    box = resolve_box([], None, curves.channels, current, 1000.0)
    mean_opt = optimize(Objective(curves, "mean"), box, 1000.0, current)
    cvar = Objective(curves, "cvar", 0.1)
    cvar_opt = optimize(cvar, box, 1000.0, current)
    assert cvar.value(cvar_opt.spend) >= cvar.value(mean_opt.spend) - 1e-9
    assert Objective(curves).value(mean_opt.spend) >= Objective(curves).value(cvar_opt.spend)


def test_gradient_matches_finite_differences():
    curves = make_curves(5, 3)
    spend = np.array([300.0, 50.0, 900.0])
    _, gradient = curves.outcome_and_gradient(spend)
    for c in range(3):
        step = np.zeros(3)
        step[c] = 1e-3
        numeric = (curves.outcome(spend + step) - curves.outcome(spend - step))[:, c] / 2e-3
        np.testing.assert_allclose(gradient[:, c], numeric, rtol=1e-5, atol=1e-9)
