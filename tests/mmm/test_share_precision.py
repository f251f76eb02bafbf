"""The decomposition's share_precision finding: the share error the posterior expects of
itself, computed by hand on draws whose spread is known."""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis.mmm.decompose import share_precision


def test_expected_share_error_matches_a_hand_computation_and_names_the_least_certain():
    # Draws alternate between two splits: a 20/30/50 and a 40/30/30 split of 100.
    media = np.array([[20.0, 30.0, 50.0], [40.0, 30.0, 30.0]] * 200)
    finding = share_precision(media, ["a", "b", "c"])
    # E|share - mean|: a 0.10, b 0, c 0.10; their mean 0.0667 -> 6.67 points.
    assert finding.value == pytest.approx(100 * 0.2 / 3, abs=0.01)
    assert finding.subject in {"a", "c"}
    assert finding.code == "share_precision" and finding.severity == "info"
    assert "6.7 points" in finding.message


def test_draws_that_agree_expect_no_error():
    # Negative control: scaling every channel together leaves the shares where they are.
    base = np.array([10.0, 30.0, 60.0])
    media = np.outer(np.linspace(0.5, 2.0, 300), base)
    finding = share_precision(media, ["a", "b", "c"])
    assert finding.value == pytest.approx(0.0, abs=1e-9)
