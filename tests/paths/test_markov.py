"""Markov removal effects against values worked out by hand (absorbing-chain arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis.api import attribute_paths
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.paths.inputs import load_aggregated
from attribution_analysis.paths.markov import fit_markov
from tests.paths.helpers import workspace_with

# Three distinct paths, four journeys, two conversions:
#   a > b : 1 conversion, 0 nulls
#   a     : 0 conversions, 1 null
#   b     : 1 conversion, 1 null
PATHS = "path,conversions,value,nulls\na > b,1,30,0\na,0,0,1\nb,1,10,1\n"


def _fit(tmp_path, order: int, text: str = PATHS):
    ws = workspace_with(tmp_path, {"raw/paths.csv": text})
    return fit_markov(load_aggregated(ws).data, order)


def test_first_order_removal_effects_match_the_hand_computed_chain(tmp_path):
    # Transition counts: start->a 2, start->b 2; a->b 1, a->null 1; b->conv 2, b->null 1.
    # So P(start->a) = P(start->b) = 1/2, P(a->b) = 1/2, P(b->conv) = 2/3.
    # P(conv | b) = 2/3; P(conv | a) = 1/2 * 2/3 = 1/3;
    # P(conv) = 1/2 * 1/3 + 1/2 * 2/3 = 1/2 (= 2 conversions / 4 journeys).
    # Without a: start->a goes to null, P = 1/2 * 2/3 = 1/3, RE_a = 1 - (1/3)/(1/2) = 1/3.
    # Without b: no path reaches conversion, P = 0, RE_b = 1.
    # Shares: (1/3) / (4/3) = 1/4 and 3/4 of the 2 conversions -> 0.5 and 1.5.
    fit = _fit(tmp_path, order=1)
    assert fit.p_conversion == pytest.approx(1 / 2)
    np.testing.assert_allclose(fit.p_without, [1 / 3, 0.0], atol=1e-12)
    np.testing.assert_allclose(fit.removal_effect, [1 / 3, 1.0], atol=1e-12)
    np.testing.assert_allclose(fit.conversions, [0.5, 1.5], atol=1e-12)
    # Every conversion leaves from b, whose conversions are worth (30 + 10) / 2 = 20 on
    # average, so the value removal effects equal the conversion ones: 40 -> 10 and 30.
    np.testing.assert_allclose(fit.value, [10.0, 30.0], atol=1e-12)


def test_second_order_states_remember_the_previous_channel(tmp_path):
    # States (a), (a,b), (b). start->(a) 2, start->(b) 2; (a)->(a,b) 1, (a)->null 1;
    # (a,b)->conv 1; (b)->conv 1, (b)->null 1.
    # P(conv) = 1/2 * (1/2 * 1) + 1/2 * 1/2 = 1/2.
    # Without a (drops (a) and (a,b)): P = 1/2 * 1/2 = 1/4, RE_a = 1/2.
    # Without b (drops (a,b) and (b)): P = 0, RE_b = 1.
    # Shares 1/3 and 2/3 of 2 conversions -> 2/3 and 4/3 (first order gave 0.5 and 1.5).
    fit = _fit(tmp_path, order=2)
    assert fit.n_states == 3
    np.testing.assert_allclose(fit.removal_effect, [0.5, 1.0], atol=1e-12)
    np.testing.assert_allclose(fit.conversions, [2 / 3, 4 / 3], atol=1e-12)


def test_repeated_channels_are_merged_like_channelattribution(tmp_path):
    repeated = PATHS.replace("a > b,", "a > a > b > b,")
    merged = _fit(tmp_path / "1", order=1, text=repeated)
    np.testing.assert_allclose(merged.conversions, [0.5, 1.5], atol=1e-12)


def test_the_step_reports_removal_effects_and_the_transition_matrix(tmp_path):
    ws = workspace_with(tmp_path, {"raw/paths.csv": PATHS})
    report = attribute_paths(ws, AttributePathsParams(method="markov"))
    effects = {r.channel: r.removal_effect for r in report.markov.removal_effects}
    assert effects == pytest.approx({"a": 1 / 3, "b": 1.0})
    probs = {(t.source, t.target): t.probability for t in report.markov.transitions}
    assert probs[("(start)", "a")] == pytest.approx(0.5)
    assert probs[("b", "(conversion)")] == pytest.approx(2 / 3)
    assert report.metadata.input_hashes["raw/paths.csv"]
    assert (tmp_path / "analysis" / "path_attribution.json").exists()


# Paths with revisits (a > b > a), a repeat to merge (a > a > b) and a path that ends where
# it started, so third-order states differ from first- and second-order ones.
REVISITS = [
    ("a > b > a > c", 2, 1),
    ("b > a > b", 1, 2),
    ("c > a > b > c > a", 1, 0),
    ("a > c", 0, 2),
    ("b > c > b > a", 1, 1),
    ("c", 0, 1),
    ("a > a > b", 1, 0),
    ("c > b > a > c > b", 0, 1),
    ("b > c > b", 1, 1),
    ("c > a > c", 1, 2),
]


def _dense_absorption(
    paths: list[tuple[str, int, int]], order: int, removed: str | None = None
) -> tuple[float, int]:
    """P(start reaches conversion) by a dense solve of the full transition matrix.

    Written independently of the project's code: states are tuples of the last ``order``
    channels (shorter at the start of a path), counts are gathered by a plain loop over the
    paths, and removing a channel turns every state holding it into a certain step to null.
    Returns the probability and the number of transient states (start excluded).
    """
    counts: dict[tuple[tuple[str, ...], object], float] = {}
    states: set[tuple[str, ...]] = set()
    for text, conversions, nulls in paths:
        steps = [s.strip() for s in text.split(">")]
        steps = [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]]
        previous: tuple[str, ...] = ()
        for i in range(len(steps)):
            state = tuple(steps[max(0, i - order + 1) : i + 1])
            states.add(state)
            key = (previous, state)
            counts[key] = counts.get(key, 0.0) + conversions + nulls
            previous = state
        counts[(previous, "conv")] = counts.get((previous, "conv"), 0.0) + conversions
        counts[(previous, "null")] = counts.get((previous, "null"), 0.0) + nulls
    labels: list[object] = [(), *sorted(states), "conv", "null"]
    index = {label: i for i, label in enumerate(labels)}
    n = len(labels)
    matrix = np.zeros((n, n))
    for (source, target), count in counts.items():
        matrix[index[source], index[target]] += count
    matrix[: n - 2] /= matrix[: n - 2].sum(axis=1, keepdims=True)
    if removed is not None:
        for state in states:
            if removed in state:
                matrix[index[state]] = 0.0
                matrix[index[state], index["null"]] = 1.0
    transient = n - 2
    q = matrix[:transient, :transient]
    r = matrix[:transient, index["conv"]]
    absorbed = np.linalg.solve(np.eye(transient) - q, r)
    return float(absorbed[0]), len(states)


def test_third_order_removal_effects_match_a_dense_brute_force_solve(tmp_path):
    text = "path,conversions,nulls\n" + "".join(f"{p},{c},{n}\n" for p, c, n in REVISITS)
    fit = _fit(tmp_path, order=3, text=text)
    p_all, n_states = _dense_absorption(REVISITS, order=3)
    assert fit.n_states == n_states
    assert fit.p_conversion == pytest.approx(p_all, abs=1e-12)
    channels = ["a", "b", "c"]
    p_without = np.array([_dense_absorption(REVISITS, 3, removed=c)[0] for c in channels])
    np.testing.assert_allclose(fit.p_without, p_without, atol=1e-12)
    removal = 1 - p_without / p_all
    np.testing.assert_allclose(fit.removal_effect, removal, atol=1e-12)
    conversions = sum(c for _, c, _ in REVISITS)
    np.testing.assert_allclose(fit.conversions, removal / removal.sum() * conversions, atol=1e-12)
    # The chain really is third order here: first order gives other removal effects.
    assert not np.allclose(_fit(tmp_path / "k1", order=1, text=text).removal_effect, removal)
