"""HCP -> brick generator (the course's design, vectorised where it matters).

HCPs have specialty, seniority and potential; each works in K ~ Poisson(2.5) bricks (at
least 1) chosen with brick popularity weights, with visits as exposure. Productivity
lambda_h = exp(X_h beta); each HCP's latent sales in a brick are z ~ Poisson(lambda_h w_hb)
(or negative binomial for overdispersion, or Gamma for euros) and the brick observes only
y_b = sum_h z_hb.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

SPECIALTIES = ["GP", "CARDIO", "ENDO", "ONCO", "PULMO"]
SPECIALTY_P = [0.45, 0.18, 0.15, 0.12, 0.10]
TRUE_INTERCEPT = -0.3
TRUE_SENIORITY = 0.20  # per 10 years
TRUE_LOG1P_POTENTIAL = 0.55
TRUE_SPECIALTY = {"GP": 0.0, "CARDIO": 0.25, "ENDO": 0.15, "ONCO": 0.35, "PULMO": 0.10}
Family = Literal["poisson", "negbin", "gamma"]


@dataclass
class HcpBrickTruth:
    hcps: pd.DataFrame  # hcp_id, specialty, seniority, potential, lambda_true, features
    pairs: pd.DataFrame  # hcp_id, brick_id, visits, exposure, mu, z_true
    bricks: pd.DataFrame  # brick_id, sales
    feature_names: list[str]
    beta_true: list[float]


def simulate_hcp_brick(
    rng: np.random.Generator,
    n_hcps: int = 400,
    n_bricks: int = 80,
    avg_bricks_per_hcp: float = 2.5,
    family: Family = "poisson",
    dispersion: float = 5.0,
    gamma_shape: float = 4.0,
    unit_value: float = 1.0,
) -> HcpBrickTruth:
    specialty = rng.choice(SPECIALTIES, size=n_hcps, p=SPECIALTY_P)
    seniority = rng.integers(0, 21, size=n_hcps)
    potential = rng.lognormal(0.0, 0.6, size=n_hcps)
    onehot = np.stack([(specialty == s).astype(float) for s in SPECIALTIES], axis=1)
    X = np.column_stack([np.ones(n_hcps), seniority / 10.0, np.log1p(potential), onehot])
    names = ["intercept", "seniority_x0.1", "log1p_potential", *[f"spec_{s}" for s in SPECIALTIES]]
    beta = np.array(
        [
            TRUE_INTERCEPT,
            TRUE_SENIORITY,
            TRUE_LOG1P_POTENTIAL,
            *[TRUE_SPECIALTY[s] for s in SPECIALTIES],
        ]
    )
    lam = np.exp(X @ beta)

    k = np.clip(rng.poisson(avg_bricks_per_hcp, size=n_hcps), 1, max(1, n_bricks // 2))
    popularity = rng.lognormal(0.0, 0.7, size=n_bricks)
    popularity /= popularity.sum()
    hcp_idx, brick_idx, visits = [], [], []
    for h in range(n_hcps):  # sampling without replacement per HCP; 400 draws, cheap
        bricks = rng.choice(n_bricks, size=k[h], replace=False, p=popularity)
        base = rng.poisson(2.5)
        v = base + rng.poisson(0.15 * seniority[h] + 1.0, size=k[h])
        hcp_idx += [h] * k[h]
        brick_idx += bricks.tolist()
        visits += v.tolist()
    hcp_idx, brick_idx = np.array(hcp_idx), np.array(brick_idx)
    visits = np.array(visits, dtype=float)
    exposure = np.where(visits == 0, 0.5, visits)  # an assigned HCP keeps a small exposure
    mu = lam[hcp_idx] * exposure * unit_value
    if family == "poisson":
        z = rng.poisson(mu).astype(float)
    elif family == "negbin":
        z = rng.poisson(rng.gamma(dispersion, mu / dispersion)).astype(float)
    else:
        z = np.round(rng.gamma(gamma_shape, mu / gamma_shape), 2)

    hcp_ids = np.array([f"H{h:04d}" for h in range(n_hcps)])
    brick_ids = np.array([f"B{b:03d}" for b in range(n_bricks)])
    pairs = pd.DataFrame(
        {
            "hcp_id": hcp_ids[hcp_idx],
            "brick_id": brick_ids[brick_idx],
            "visits": visits,
            "exposure": exposure,
            "mu": mu,
            "z_true": z,
        }
    )
    pairs = pairs.sort_values(["brick_id", "hcp_id"]).reset_index(drop=True)
    bricks = pairs.groupby("brick_id", sort=True)["z_true"].sum().rename("sales").reset_index()
    hcps = pd.DataFrame(
        {
            "hcp_id": hcp_ids,
            "specialty": specialty,
            "seniority": seniority,
            "potential": np.round(potential, 6),
            "lambda_true": lam,
        }
    )
    for j, name in enumerate(names):
        hcps[name] = X[:, j]
    return HcpBrickTruth(hcps, pairs, bricks, names, beta.tolist())
