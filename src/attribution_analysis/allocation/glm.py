"""M-step of the covariate model: log rate = X beta, fitted by penalised Newton (numpy).

Both families reduce, after the E-step, to entity-level sufficient statistics, so the M-step
costs O(entities x covariates^2) whatever the size of the long table:

* Poisson: maximise  sum_h [S_h eta_h - E_h exp(eta_h)],  S_h = expected credit of h,
  E_h = its total exposure (the offset log E_h of the usual GLM).
* Gamma (the minorising surrogate of the Gamma log-likelihood, see ``em.py``):
  maximise  sum_h [-a_h exp(-eta_h) - B_h exp(eta_h)].

Both are concave in beta. A ridge term 0.5 * penalty * ||beta_(-0)||^2 on the standardised
coefficients (never the intercept) makes an intercept plus a full one-hot block, or any
other collinear design, solvable. Newton steps are halved until the objective increases,
which is what keeps every EM pass monotone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_NEWTON_STEPS = 50
NEWTON_TOL = 1e-15
STEP_TOL = 1e-11
MAX_HALVINGS = 40


@dataclass(frozen=True)
class Standardized:
    """A design with every non-intercept column centred and scaled to unit sd."""

    matrix: np.ndarray  # (H, p), column 0 = 1
    center: np.ndarray  # (p,), 0 for the intercept
    scale: np.ndarray  # (p,), 1 for the intercept

    def to_original(self, beta: np.ndarray) -> np.ndarray:
        """Coefficients on the original columns (intercept absorbs the centring)."""
        original = beta / self.scale
        original[0] = beta[0] - np.sum(beta[1:] * self.center[1:] / self.scale[1:])
        return original


def standardize(design: np.ndarray) -> Standardized:
    """Centre and scale the columns after the first (which must be the intercept)."""
    design = np.asarray(design, dtype=float)
    center = design.mean(axis=0)
    scale = design.std(axis=0)
    center[0], scale[0] = 0.0, 1.0
    scale = np.where(scale > 0, scale, 1.0)
    return Standardized((design - center) / scale, center, scale)


def penalty_matrix(n_columns: int, strength: float) -> np.ndarray:
    diagonal = np.full(n_columns, float(strength))
    diagonal[0] = 0.0
    return np.diag(diagonal)


Objective = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]


def _newton(objective: Objective, beta: np.ndarray) -> np.ndarray:
    """Maximise a smooth concave ``objective`` (value, gradient, Hessian) from ``beta``."""
    value, grad, hess = objective(beta)
    for _ in range(MAX_NEWTON_STEPS):
        try:
            step = np.linalg.solve(-hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(-hess, grad, rcond=None)[0]
        t = 1.0
        for _ in range(MAX_HALVINGS):
            candidate = beta + t * step
            new_value, new_grad, new_hess = objective(candidate)
            if np.isfinite(new_value) and new_value >= value:
                break
            t *= 0.5
        else:
            return beta  # no ascent direction left at machine precision
        gain = new_value - value
        beta, value, grad, hess = candidate, new_value, new_grad, new_hess
        # Both tests, because the EM fixed point needs beta itself, not just the value.
        if np.max(np.abs(t * step)) < STEP_TOL or gain <= NEWTON_TOL * (abs(value) + 1.0):
            break
    return beta


def fit_poisson(
    design: np.ndarray,
    credit: np.ndarray,
    exposure: np.ndarray,
    beta: np.ndarray,
    penalty: np.ndarray,
) -> np.ndarray:
    """Maximise sum_h [S_h eta_h - E_h exp(eta_h)] - 0.5 beta' P beta over beta."""

    def objective(b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        eta = design @ b
        mean = exposure * np.exp(eta)
        value = float(credit @ eta - mean.sum() - 0.5 * b @ penalty @ b)
        grad = design.T @ (credit - mean) - penalty @ b
        hess = -(design.T @ (mean[:, None] * design)) - penalty
        return value, grad, hess

    return _newton(objective, beta)


def fit_gamma_surrogate(
    design: np.ndarray,
    a: np.ndarray,
    b_coef: np.ndarray,
    beta: np.ndarray,
    penalty: np.ndarray,
) -> np.ndarray:
    """Maximise sum_h [-a_h exp(-eta_h) - B_h exp(eta_h)] - 0.5 beta' P beta over beta."""

    def objective(b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        eta = design @ b
        down, up = a * np.exp(-eta), b_coef * np.exp(eta)
        value = float(-(down.sum() + up.sum()) - 0.5 * b @ penalty @ b)
        grad = design.T @ (down - up) - penalty @ b
        hess = -(design.T @ ((down + up)[:, None] * design)) - penalty
        return value, grad, hess

    return _newton(objective, beta)
