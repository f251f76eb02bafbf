"""NumPy twins of PyMC-Marketing's media transforms, for simulators and fast evaluation.

The model itself uses PyMC-Marketing's own components; these pure functions exist where a
tensor graph would be overkill (simulating data, evaluating response curves on posterior
draws). ``tests/test_transforms.py`` checks them against PyMC-Marketing on a grid.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def geometric_adstock(
    x: np.ndarray, alpha: float | np.ndarray, l_max: int, normalize: bool = True, axis: int = 0
) -> np.ndarray:
    """Carry-over: y_t = sum_{l < l_max} w_l x_{t-l}, w_l = alpha^l (normalised to sum 1).

    Periods before the first observation count as zero spend, as in PyMC-Marketing.
    """
    x = np.moveaxis(np.asarray(x, dtype=float), axis, 0)
    alpha = np.asarray(alpha, dtype=float)
    weights = alpha[..., None] ** np.arange(l_max)  # (..., l_max)
    if normalize:
        weights = weights / weights.sum(axis=-1, keepdims=True)
    out = np.zeros_like(x)
    for lag in range(min(l_max, x.shape[0])):
        w = weights[..., lag]
        out[lag:] += w * x[: x.shape[0] - lag]
    return np.moveaxis(out, 0, axis)


def hill(x: np.ndarray, slope: float | np.ndarray, kappa: float | np.ndarray) -> np.ndarray:
    """Hill curve x^s / (x^s + k^s), 0 at x = 0; evaluated in log space to avoid overflow."""
    x = np.asarray(x, dtype=float)
    safe = np.maximum(x, np.finfo(float).tiny)
    return np.where(x > 0, expit(slope * (np.log(safe) - np.log(kappa))), 0.0)


def logistic_saturation(x: np.ndarray, lam: float | np.ndarray) -> np.ndarray:
    """(1 - e^{-lam x}) / (1 + e^{-lam x}) = tanh(lam x / 2)."""
    return np.tanh(np.asarray(lam) * np.asarray(x, dtype=float) / 2.0)
