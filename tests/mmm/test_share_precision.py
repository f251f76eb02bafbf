"""The decomposition's share_precision finding: the share error the posterior expects of
itself, computed by hand on draws whose spread is known."""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis.mmm.decompose import expected_share_error, share_precision


def test_expected_share_error_matches_a_hand_computation_and_names_the_least_certain():
    # Draws alternate between a 20/30/50 and a 44/30/26 split of 100: E|share - mean| is
    # 0.12 for a and c, 0 for b.
    media = np.array([[20.0, 30.0, 50.0], [44.0, 30.0, 26.0]] * 200)
    expected = expected_share_error(media)
    assert expected == pytest.approx([0.12, 0.0, 0.12])
    # Uneven spreads, one clear winner: a moves by 0.2, c by 0.1, b by 0.1 the other way.
    media = np.array([[20.0, 40.0, 40.0], [40.0, 30.0, 30.0]] * 200)
    finding = share_precision(media, ["a", "b", "c"], "bayesian_nuts")
    assert expected_share_error(media) == pytest.approx([0.1, 0.05, 0.05])
    assert finding.value == pytest.approx(100 * 0.2 / 3, abs=0.05)
    assert finding.subject == "a"  # not c, the largest mean share
    assert finding.code == "share_precision" and finding.severity == "info"
    assert "6.7 points" in finding.message and "the posterior" in finding.message


def test_draws_that_agree_expect_no_error():
    # Negative control: scaling every channel together leaves the shares where they are.
    base = np.array([10.0, 30.0, 60.0])
    media = np.outer(np.linspace(0.5, 2.0, 300), base)
    finding = share_precision(media, ["a", "b", "c"], "bayesian_nuts")
    assert finding.value == pytest.approx(0.0, abs=1e-9)


def test_draws_without_media_are_left_out_and_the_source_is_named():
    media = np.array([[20.0, 80.0], [40.0, 60.0], [0.0, 0.0]] * 100)
    finding = share_precision(media, ["a", "b"], "ridge_bootstrap")
    assert finding.value == pytest.approx(10.0)  # the all-zero replicates do not count
    assert "the bootstrap" in finding.message and "nan" not in finding.message


def test_no_statement_where_the_draws_cannot_make_one():
    media = np.array([[20.0, 80.0], [40.0, 60.0]] * 100)
    assert share_precision(media, ["a", "b"], "bayesian_map") is None  # one point, no spread
    assert share_precision(media[:, :1], ["a"], "bayesian_nuts") is None  # one channel
    assert share_precision(np.zeros((10, 2)), ["a", "b"], "ridge_bootstrap") is None
    assert "understates" in share_precision(media, ["a", "b"], "bayesian_advi").message
