"""Lag weights: the NumPy geometric shortcut equals PyMC-Marketing's own adstock function,
and the library path handles Weibull adstock; compressed timelines keep every period."""

from __future__ import annotations

import numpy as np
from pymc_marketing.mmm import GeometricAdstock, WeibullPDFAdstock

from attribution_analysis.optimize.response import (
    geometric_weights,
    library_adstock_weights,
    timeline_weights,
)


def test_numpy_geometric_weights_equal_the_library():
    alpha = np.random.default_rng(0).uniform(0.05, 0.95, (7, 2, 3))
    for normalize in (True, False):
        adstock = GeometricAdstock(l_max=6, normalize=normalize)
        library = library_adstock_weights(adstock, {"alpha": alpha})
        np.testing.assert_allclose(geometric_weights(alpha, 6, normalize), library, rtol=1e-12)


def test_weibull_weights_come_from_the_library():
    rng = np.random.default_rng(1)
    params = {"lam": rng.uniform(0.5, 3, (4, 1, 2)), "k": rng.uniform(0.5, 3, (4, 1, 2))}
    weights = library_adstock_weights(WeibullPDFAdstock(l_max=8), params)
    assert weights.shape == (4, 1, 2, 8)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-9)  # normalised PDF


def test_compressed_timeline_counts_every_period():
    weights = geometric_weights(np.array([0.6]), 5)
    for horizon in (1, 3, 5, 13, 52):
        compact, counts = timeline_weights(weights, horizon)
        assert counts.sum() == horizon + 5 - 1
        # Total adstocked input = every unit of spend fully carried (weights sum to 1).
        assert np.isclose((compact * counts).sum(), horizon)
