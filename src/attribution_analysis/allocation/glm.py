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
from scipy import sparse

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
        return self.jacobian() @ beta

    def jacobian(self) -> np.ndarray:
        """The linear map from standardised to original coefficients."""
        jac = np.diag(1.0 / self.scale)
        jac[0, 1:] = -self.center[1:] / self.scale[1:]
        return jac


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


def _penalised(
    design: np.ndarray,
    b: np.ndarray,
    penalty: np.ndarray,
    fit: float,
    score: np.ndarray,
    weight: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian of ``fit - 0.5 b' P b``, given the family's objective
    ``fit``, its derivative in each eta (``score``) and minus its second derivative
    (``weight``)."""
    value = float(fit - 0.5 * b @ penalty @ b)
    grad = design.T @ score - penalty @ b
    hess = -(design.T @ (weight[:, None] * design)) - penalty
    return value, grad, hess


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
        return _penalised(design, b, penalty, credit @ eta - mean.sum(), credit - mean, mean)

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
        return _penalised(design, b, penalty, -(down.sum() + up.sum()), down - up, down + up)

    return _newton(objective, beta)


def coefficient_covariance(
    family: str,
    matrix: sparse.csr_matrix,
    rate: np.ndarray,
    design: np.ndarray,
    mean: np.ndarray,
    totals: np.ndarray,
    weight: np.ndarray,
    penalty: np.ndarray,
) -> np.ndarray | None:
    """Robust covariance of the standardised coefficients, clustered two ways, or None.

    The EM maximises the observed-data (penalised) likelihood, so its precision is measured
    on the *observed* model y_b ~ F(mu_b(beta)), not on the complete-data surrogate the
    M-step maximises (which would overstate the information lost to aggregation). The
    score of beta is a sum over (group, entity) pairs,

        s_bh = e_b rate_h w_bh x_h,   e_b = c_b (y_b - mu_b),  c_b = 1/mu_b (Poisson) or
        1/mu_b^2 (Gamma, the objective's shape-1 scale),

    and pairs are dependent twice over: within a group (one residual) and within an entity
    (an entity more or less productive than its covariates say pushes the residuals of
    every group it is in the same way; campaigns run for many weeks). So the "meat" is the
    two-way cluster sum (Cameron, Gelbach & Miller 2011): by group + by entity - by pair,
    its negative eigenvalues clipped. Residuals are scaled by 1 / (1 - leverage) at both
    levels (HC3 for groups, CR3 for entities), because with few entities (a few dozen
    campaigns) the plain cluster sum runs far too narrow: on the mta simulator, 90%
    intervals covered 29% (groups only), 69% (two-way) and 97% (two-way with the scaling);
    on the HCP-brick simulator 91% (Poisson) and 95% (Gamma). Conservative beats narrow.

    The bread is the curvature of the penalised objective, H = D' diag(w c) D + P with
    D = d mu / d beta; the ridge enters as a Gaussian prior's precision. No dispersion or
    Gamma shape is needed and a wrong variance function does not matter. None when fewer
    groups than coefficients remain or H is singular (a collinear design with no ridge).
    """
    used = weight > 0
    n_used = int(used.sum())
    n_params = design.shape[1]
    if n_used <= n_params:
        return None
    grad = np.asarray(matrix @ (rate[:, None] * design))  # D = d mu_b / d beta, (G, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        curvature = np.where(used, weight / (mean if family == "poisson" else mean**2), 0.0)
    hessian = grad.T @ (curvature[:, None] * grad) + penalty
    try:
        chol = np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return None
    bread = np.linalg.solve(chol.T, np.linalg.solve(chol, np.eye(n_params)))
    leverage = curvature * np.einsum("bi,ij,bj->b", grad, bread, grad)
    residual = np.where(used, curvature * (totals - mean), 0.0)
    residual = residual / np.clip(1.0 - leverage, 1e-3, None)
    by_group = grad.T @ ((residual**2)[:, None] * grad)
    squared = matrix.multiply(matrix).T  # (H, G): w_bh^2
    entity_score = rate * (matrix.T @ residual)  # times x_h: the score summed per entity
    entity_leverage = (rate**2 * (squared @ curvature)) * np.einsum(
        "hi,ij,hj->h", design, bread, design
    )
    entity_score = entity_score / np.clip(1.0 - entity_leverage, 1e-3, None)
    by_entity = design.T @ ((entity_score**2)[:, None] * design)
    pair_square = rate**2 * (squared @ residual**2)
    by_pair = design.T @ (pair_square[:, None] * design)
    meat = by_group + by_entity - by_pair
    values, vectors = np.linalg.eigh((meat + meat.T) / 2.0)
    meat = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    covariance = bread @ meat @ bread
    return (covariance + covariance.T) / 2.0
