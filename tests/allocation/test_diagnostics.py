"""Diagnostics: proportional profiles, conditioning, cold start, stability, evidence."""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis.allocation import diagnostics
from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.problem import problem_from_arrays
from tests.allocation.conftest import draw_problem


def _with_copies(factor: float = 0.7, jitter: float = 0.0):
    """Entity 1 re-exposed exactly where entity 0 is, at ``factor`` times (plus jitter)."""
    p = draw_problem(20, n_groups=300, n_entities=30, per_group=5).problem
    rng = np.random.default_rng(1)
    keep = p.entity != 1
    rows0 = p.entity == 0
    copy = p.exposure[rows0] * factor * (1 + jitter * rng.standard_normal(rows0.sum()))
    return problem_from_arrays(
        p.totals,
        np.concatenate([p.group[keep], p.group[rows0]]),
        np.concatenate([p.entity[keep], np.ones(rows0.sum(), dtype=np.int32)]),
        np.concatenate([p.exposure[keep], copy]),
        p.n_entities,
    )


def test_exactly_proportional_profiles_form_one_credit_set():
    sets = diagnostics.proportional_sets(_with_copies())
    assert [s.members.tolist() for s in sets] == [[0, 1]]
    assert sets[0].min_cosine == pytest.approx(1.0)


def test_nearly_proportional_profiles_are_caught_and_distinct_ones_are_not():
    assert [
        s.members.tolist() for s in diagnostics.proportional_sets(_with_copies(jitter=0.01))
    ] == [[0, 1]]
    assert diagnostics.proportional_sets(_with_copies(jitter=0.3)) == []


def test_the_hashing_fallback_finds_exact_copies(monkeypatch):
    monkeypatch.setattr(diagnostics, "MAX_GRAM_NONZEROS", 0)
    sets = diagnostics.proportional_sets(_with_copies())
    assert [s.members.tolist() for s in sets] == [[0, 1]]


def test_a_block_with_more_entities_than_groups_is_singular():
    wide = problem_from_arrays([3.0, 4.0], [0, 0, 1, 1, 1], [0, 1, 0, 1, 2], [1, 2, 3, 1, 1])
    assert diagnostics.block_conditions(wide)[0].condition_number is None
    tall = draw_problem(21).problem
    condition = diagnostics.block_conditions(tall)[0].condition_number
    assert condition is not None and 1 <= condition < 100


def test_cold_start_flags_idle_single_group_and_tiny_entities():
    problem = problem_from_arrays(
        totals=[5.0, 5.0, 5.0],
        group=[0, 0, 1, 1, 2, 2],
        entity=[0, 1, 0, 1, 0, 2],
        exposure=[10.0, 0.1, 10.0, 0.1, 10.0, 5.0],
        n_entities=4,
    )
    cold = diagnostics.cold_start(problem)
    # entity 1: 0.2 < 10% of the median entity (5); entity 2: one group; entity 3: nothing
    assert np.flatnonzero(cold.mask).tolist() == [1, 2, 3]
    assert "below" in cold.reasons[0] and "1 group" in cold.reasons[1]
    assert "no exposure" in cold.reasons[2]


def _stability(drawn) -> np.ndarray:
    fit = fit_em(drawn.problem)
    return diagnostics.bootstrap_stability(
        drawn.problem,
        fit,
        lambda w, start: fit_em(drawn.problem, group_weights=w, start=start, tol=1e-6),
        replicates=30,
        seed=0,
    ).spearman


@pytest.mark.slow  # a statistical property of the bootstrap
def test_rankings_are_stable_with_plenty_of_groups_and_shaky_with_few():
    plenty = _stability(draw_problem(22, n_groups=3000, n_entities=30, per_group=4))
    few = _stability(draw_problem(22, n_groups=40, n_entities=30, per_group=4))
    assert np.quantile(plenty, 0.05) > 0.8
    # 40 groups for 30 rates: resampled groups reorder the ranking substantially.
    assert np.quantile(few, 0.05) < 0.5 and np.median(few) < np.median(plenty) - 0.2


def test_the_f_test_finds_real_differences_and_holds_its_level_under_equal_rates():
    signal, null = [], []
    for seed in range(20):
        for rate, out in ((None, signal), (np.ones(30), null)):
            p = draw_problem(seed, n_groups=600, n_entities=30, per_group=4, rate=rate).problem
            fit, equal = fit_em(p), fit_em(p, tied=[np.arange(30)])
            out.append(diagnostics.productivity_evidence(p, fit, equal, n_params=30)[0])
    assert all(t.p_value < 1e-6 for t in signal)
    # Under the null F ~ F(29, 570): mean ~1, about 1 in 20 below p = 0.05.
    assert abs(np.mean([t.statistic for t in null]) - 1.0) < 0.25
    assert sum(t.p_value < 0.05 for t in null) <= 4


def test_relative_productivity_has_mean_one_in_every_block():
    rate = np.array([1.0, 3.0, 10.0, 30.0, 7.0])
    block = np.array([0, 0, 1, 1, 1])
    use = np.array([True, True, True, True, False])
    relative = diagnostics.relative_productivity(rate, use, block, 2)
    assert relative[:2].mean() == pytest.approx(1.0) and relative[2:4].mean() == pytest.approx(1.0)
    draws = np.vstack([rate, 2 * rate])
    assert np.allclose(diagnostics.relative_productivity(draws, use, block, 2)[1], relative)


def test_recovery_centres_log_rates_within_blocks():
    metrics = diagnostics.recovery(
        allocated=np.array([1.0, 2.0, 3.0]),
        true_allocated=np.array([1.0, 2.0, 3.0]),
        log_rate=np.log([2.0, 4.0, 8.0]),
        true_log_rate=np.log([1.0, 2.0, 4.0]),  # same up to a scale
        entity_block=np.zeros(3, dtype=int),
    )
    assert metrics["allocated_corr"] == pytest.approx(1.0)
    assert metrics["log_rate_rmse"] == pytest.approx(0.0, abs=1e-12)
