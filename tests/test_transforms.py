"""The NumPy transform twins match PyMC-Marketing's own functions on a grid."""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis import transforms

pmm = pytest.importorskip("pymc_marketing.mmm.transformers")
ptx = pytest.importorskip("pytensor.xtensor")
pt = pytest.importorskip("pytensor.tensor")

X = np.concatenate([[0.0, 1e-9], np.linspace(0.01, 3.0, 40)])


def _evaluate(expr) -> np.ndarray:
    return np.asarray(expr.eval())


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.8])
@pytest.mark.parametrize("normalize", [True, False])
def test_geometric_adstock_matches_pymc_marketing(alpha, normalize):
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 1.0, size=30) * (rng.random(30) > 0.3)
    xt = ptx.as_xtensor(pt.as_tensor_variable(x), dims=("date",))
    expected = _evaluate(
        pmm.geometric_adstock(xt, alpha=alpha, l_max=8, normalize=normalize, dim="date")
    )
    got = transforms.geometric_adstock(x, alpha, 8, normalize=normalize)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_geometric_adstock_runs_along_the_requested_axis():
    x = np.random.default_rng(1).random((3, 20, 2))
    along = transforms.geometric_adstock(x, 0.5, 6, axis=1)
    for g in range(3):
        for c in range(2):
            np.testing.assert_allclose(
                along[g, :, c], transforms.geometric_adstock(x[g, :, c], 0.5, 6)
            )


@pytest.mark.parametrize(("slope", "kappa"), [(0.7, 0.3), (1.0, 1.0), (2.5, 0.5), (40.0, 0.8)])
def test_hill_matches_pymc_marketing(slope, kappa):
    xt = ptx.as_xtensor(pt.as_tensor_variable(X), dims=("x",))
    expected = _evaluate(pmm.hill_function(xt, slope=slope, kappa=kappa))
    # PyTensor's sigmoid differs from SciPy's expit in the last digits (about 5e-9).
    np.testing.assert_allclose(transforms.hill(X, slope, kappa), expected, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("lam", [0.1, 1.0, 4.0])
def test_logistic_saturation_matches_pymc_marketing(lam):
    xt = ptx.as_xtensor(pt.as_tensor_variable(X), dims=("x",))
    expected = _evaluate(pmm.logistic_saturation(xt, lam=lam))
    np.testing.assert_allclose(
        transforms.logistic_saturation(X, lam), expected, rtol=1e-9, atol=1e-12
    )
