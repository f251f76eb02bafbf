"""The accuracy benchmark's worlds and scoring (benchmarks/worlds.py, benchmarks/mmm_accuracy.py).

The worlds are the ground truth the MMM is scored against, so they are checked against what
they state: the true totals are the sums of the weekly contributions, each channel's ROAS is
the one its world declares, and no world borrows the project's simulator. The scoring is
checked against figures computed by hand, with a negative control (a wrong estimate must
score badly). Marked slow: it imports PyMC-Marketing through the benchmark and builds every
world through ``import_data`` and ``validate_data``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import mmm_accuracy  # noqa: E402
import worlds  # noqa: E402

pytestmark = pytest.mark.slow

# The ROAS each world declares for its channels (read from the world functions' source).
DECLARED_ROAS = {
    "hill_season": {"tv": 1.1, "search": 1.9, "social": 1.3, "display": 0.7},
    "correlated_weak": {"tv": 1.0, "search": 1.8, "social": 1.1, "display": 0.15},
}


def test_worlds_do_not_import_the_project_simulator():
    tree = ast.parse((BENCHMARKS / "worlds.py").read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [m for m in imported if m and m.startswith("attribution_analysis")], imported


@pytest.mark.parametrize("name", sorted(worlds.WORLDS))
def test_world_truth_is_the_sum_of_its_weekly_contributions(name):
    world = worlds.make_world(name, 1)
    weekly = world.weekly_contribution
    for channel in world.channels:
        assert weekly[channel].min() >= 0
        assert np.isclose(weekly[channel].sum(), world.true_contribution[channel], rtol=1e-9)
        spend = world.table[f"spend_{channel}"].sum()
        assert np.isclose(spend, world.true_spend[channel], rtol=1e-6)
    assert np.isclose(sum(world.true_share.values()), 1.0)
    assert len(world.table) == worlds.WEEKS and world.table["sales"].gt(0).all()


@pytest.mark.parametrize("name", sorted(DECLARED_ROAS))
def test_world_channels_return_their_declared_roas(name):
    world = worlds.make_world(name, 2)
    for channel, roas in DECLARED_ROAS[name].items():
        # Spend in the table is rounded to cents: ROAS agrees to that precision.
        assert world.true_roas[channel] == pytest.approx(roas, rel=1e-5)


def test_score_matches_hand_computed_figures_and_fails_a_wrong_estimate():
    world = worlds.make_world("correlated_weak", 1)
    truth = world.true_contribution
    exact = {
        c: {"mean": v, "hdi_90": [0.9 * v, 1.1 * v], "share": world.true_share[c]}
        for c, v in truth.items()
    }
    perfect = mmm_accuracy.score(world, exact)
    assert perfect["share_mae_pts"] == pytest.approx(0, abs=1e-9)
    assert perfect["media_bias_pct"] == pytest.approx(0, abs=1e-9)
    assert perfect["coverage"] == 1.0 and perfect["roas_error_pct"] == pytest.approx(0)
    # Negative control: tv doubled, with an interval that misses the truth.
    wrong = {c: dict(v) for c, v in exact.items()}
    wrong["tv"] = {"mean": 2 * truth["tv"], "hdi_90": [1.5 * truth["tv"], 2.5 * truth["tv"]]}
    new_total = world.true_media_total + truth["tv"]
    wrong["tv"]["share"] = 2 * truth["tv"] / new_total
    scored = mmm_accuracy.score(world, wrong)
    assert scored["media_bias_pct"] == pytest.approx(100 * truth["tv"] / world.true_media_total)
    assert scored["coverage"] == pytest.approx(0.75)
    assert scored["roas_error_pct"] == pytest.approx(100 / 4)
    expected_mae = abs(wrong["tv"]["share"] - world.true_share["tv"]) / 4
    assert scored["share_mae_pts"] == pytest.approx(100 * expected_mae)


def test_share_spread_is_the_posterior_expected_share_error():
    # Two channels whose totals are known per draw: shares 0.2 and 0.4 in alternate draws
    # for "a", so E|share - mean| = 0.1 for both (b's share mirrors a's).
    a = np.array([20.0, 40.0] * 50)
    b = np.array([80.0, 60.0] * 50)
    spread = mmm_accuracy.share_spread({"a": a, "b": b})
    assert spread["a"]["share_expected_error"] == pytest.approx(0.1)
    assert spread["b"]["share_expected_error"] == pytest.approx(0.1)
    low, high = spread["a"]["share_hdi_90"]
    assert low == pytest.approx(0.2) and high == pytest.approx(0.4)
    # Negative control: draws that agree have no expected error.
    still = mmm_accuracy.share_spread({"a": np.full(100, 30.0), "b": np.full(100, 70.0)})
    assert still["a"]["share_expected_error"] == pytest.approx(0.0, abs=1e-12)

    # Scored against a world: the expected error is the channels' mean, the share coverage
    # counts true shares inside their interval (a wrong interval must miss).
    world = worlds.make_world("correlated_weak", 1)
    assert len(world.channels) == 4  # the figures below are for four channels
    share = world.true_share
    estimates = {
        c: {
            "mean": world.true_contribution[c],
            "hdi_90": [0.0, 2 * world.true_contribution[c]],
            "share": share[c],
            "share_expected_error": 0.01 * (i + 1),
            "share_hdi_90": [share[c] - 0.01, share[c] + 0.01] if i else [0.9, 1.0],
        }
        for i, c in enumerate(world.channels)
    }
    scored = mmm_accuracy.score(world, estimates)
    assert scored["share_expected_mae_pts"] == pytest.approx(2.5)
    assert scored["share_coverage"] == pytest.approx(0.75)


def test_every_world_passes_import_and_validation(tmp_path):
    for name in worlds.WORLDS:
        world = worlds.make_world(name, 1)
        ws = mmm_accuracy.import_world(world, tmp_path / name)
        from attribution_analysis.mmm.panel import load_model_data

        data = load_model_data(ws, None, True, True, True)
        assert sorted(data.channels) == sorted(world.channels)
        given = {*data.controls, *getattr(data, "events", [])}
        assert len(given) == 1 + len(world.controls) + len(world.events)  # + the trend


@pytest.mark.parametrize("name", sorted(worlds.WORLDS))
def test_a_go_dark_lift_is_what_the_world_loses(name):
    """Ground truth: switching a channel off in every week loses its whole contribution
    (every world's curve is 0 at zero spend), weeks without spend lose nothing (negative
    control: a lift that counted anything else would fail it), and a 4-week test loses
    less than the whole and more than its own weeks' contribution minus carry-in."""
    world = worlds.make_world(name, 1)
    for channel in world.channels:
        total = world.go_dark_lift(channel, slice(None))
        assert total == pytest.approx(world.true_contribution[channel], rel=1e-6)
        spend = world.table[f"spend_{channel}"].to_numpy(dtype=float)
        idle = np.flatnonzero(spend == 0)
        if len(idle):
            assert world.go_dark_lift(channel, slice(idle[0], idle[0] + 1)) == 0.0
        window = slice(100, 104)
        lift = world.go_dark_lift(channel, window)
        assert 0 <= lift < world.true_contribution[channel]


def test_lift_tests_of_a_world_pass_validation_and_reach_both_models(tmp_path):
    """The benchmark's lift tests are ones a user could bring: they pass validate_data, lie
    in the last year with their carry-over inside the data, report their true lift with the
    stated standard error (10% of the lift, a 90% interval), and give
    the rows PyMC-Marketing's add_lift_test_measurements takes for both fits."""
    from attribution_analysis.contracts.inputs import IncrementalityResult
    from attribution_analysis.mmm.calibration import lift_test_frame
    from attribution_analysis.mmm.panel import load_model_data

    world = worlds.make_world("hill_season", 1)
    tests = mmm_accuracy.world_lift_tests(world, 2, 0.1, seed=1)
    assert [t["channel"] for t in tests] == ["tv", "search"]  # the two largest spends
    dates = list(world.table["date"])
    for t in tests:
        first = dates.index(t["start"])
        assert len(dates) - 52 <= first <= len(dates) - 12 - 4
        truth = world.go_dark_lift(t["channel"], slice(first, first + 4))
        se = (t["ci_upper"] - t["ci_lower"]) / (2 * 1.645)
        assert se == pytest.approx(0.1 * truth, rel=1e-3)
        assert abs(t["lift"] - truth) < 4 * se
        spend = world.table[f"spend_{t['channel']}"].iloc[first : first + 4].sum()
        assert t["spend"] == pytest.approx(spend, abs=0.01)
    ws = mmm_accuracy.import_world(world, tmp_path / "ws")
    mmm_accuracy.write_lift_tests(ws, tests)
    mmm_accuracy.validate_data(ws)
    data = load_model_data(ws, None, True, True, True)
    frame = lift_test_frame([IncrementalityResult.model_validate(t) for t in tests], data)
    assert list(frame["channel"]) == ["tv", "search"]
    assert (frame["delta_y"] * 4).tolist() == pytest.approx([t["lift"] for t in tests])
