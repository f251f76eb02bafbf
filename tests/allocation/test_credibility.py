"""The credibility yardstick against a hand computation, and its two limiting cases.

The hand computation below follows the Bühlmann–Straub textbook formulas one scalar at a
time (plain loops over campaigns and days), independently of the module's vectorised code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from attribution_analysis.allocation.credibility import credibility_split
from attribution_analysis.allocation.problem import problem_from_arrays

MASS_TOL = 1e-9

# Three days, three campaigns; campaign 2 only runs on days 0 and 1.
TOTALS = [100.0, 80.0, 120.0]
ROWS = [  # (day, campaign, reach, clicks)
    (0, 0, 1000.0, 30.0),
    (0, 1, 500.0, 20.0),
    (0, 2, 200.0, 2.0),
    (1, 0, 800.0, 20.0),
    (1, 1, 700.0, 35.0),
    (1, 2, 300.0, 5.0),
    (2, 0, 1200.0, 25.0),
    (2, 1, 400.0, 30.0),
]


def _tiny():
    day, campaign, reach, clicks = (np.array(c) for c in zip(*ROWS, strict=True))
    return problem_from_arrays(TOTALS, day, campaign, reach, 3), clicks


def _by_hand() -> tuple[list[float], list[float], float]:
    day_clicks = {t: sum(c for d, _, _, c in ROWS if d == t) for t in range(3)}
    obs: dict[int, list[tuple[float, float]]] = {k: [] for k in range(3)}
    for d, k, m, c in ROWS:
        naive = TOTALS[d] * c / day_clicks[d] / m
        obs[k].append((m, math.log(naive)))
    m_k = [sum(m for m, _ in obs[k]) for k in range(3)]
    x_k = [sum(m * x for m, x in obs[k]) / m_k[k] for k in range(3)]
    s2 = sum(m * (x - x_k[k]) ** 2 for k in range(3) for m, x in obs[k]) / sum(
        len(obs[k]) - 1 for k in range(3)
    )
    m_all = sum(m_k)
    x_bar = sum(m_k[k] * x_k[k] for k in range(3)) / m_all
    tau2 = (sum(m_k[k] * (x_k[k] - x_bar) ** 2 for k in range(3)) - s2 * 2) / (
        m_all - sum(m**2 for m in m_k) / m_all
    )
    k_cred = s2 / tau2
    z = [m_k[k] / (m_k[k] + k_cred) for k in range(3)]
    centre = sum(z[k] * x_k[k] for k in range(3)) / sum(z)
    rate = [math.exp(z[k] * x_k[k] + (1 - z[k]) * centre) for k in range(3)]
    return rate, z, k_cred


def test_the_credibility_split_matches_a_hand_computation():
    problem, clicks = _tiny()
    fit = credibility_split(problem, clicks)
    rate, z, k_cred = _by_hand()
    assert fit.k == pytest.approx(k_cred, rel=1e-10)
    assert fit.credibility == pytest.approx(z, rel=1e-10)
    assert fit.rate == pytest.approx(rate, rel=1e-10)
    # Daily split by rate x reach, by hand for day 0.
    day0 = [rate[k] * m for d, k, m, _ in ROWS if d == 0]
    expected = [TOTALS[0] * w / sum(day0) for w in day0]
    assert fit.allocated[:3] == pytest.approx(expected, rel=1e-10)


def test_the_pieces_add_up_to_each_day_total():
    problem, clicks = _tiny()
    fit = credibility_split(problem, clicks)
    summed = np.bincount(problem.group, fit.allocated, problem.n_groups)
    assert np.max(np.abs(summed - problem.totals) / problem.totals) < MASS_TOL


def test_equal_click_rates_pool_fully_and_the_split_follows_reach():
    """Negative control: clicks proportional to reach leave no between-campaign spread, so
    Z = 0 and every campaign gets the channel rate (the split is by reach alone)."""
    problem, _ = _tiny()
    clicks = 0.03 * problem.exposure
    fit = credibility_split(problem, clicks)
    assert np.all(fit.credibility == 0.0) and math.isinf(fit.k)
    reach_share = problem.exposure / np.bincount(problem.group, problem.exposure)[problem.group]
    assert fit.share == pytest.approx(reach_share, rel=1e-12)


def test_a_wider_spread_between_campaigns_earns_more_credibility():
    """Z = m / (m + s2 / tau2) rises with the between-campaign spread tau2."""
    problem, _ = _tiny()
    jitter = np.random.default_rng(0).uniform(0.9, 1.1, problem.n_rows)

    def credibility(per_click: list[float]) -> np.ndarray:
        clicks = np.array(per_click)[problem.entity] * problem.exposure * jitter
        return credibility_split(problem, clicks).credibility

    narrow, wide = credibility([0.02, 0.03, 0.045]), credibility([0.005, 0.05, 0.4])
    assert np.all(narrow > 0) and np.all(wide > narrow)
