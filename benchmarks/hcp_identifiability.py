"""How well can brick totals identify what drives HCP productivity? EM against the ceiling.

    python benchmarks/hcp_identifiability.py [--datasets 200] [--first-seed 1000] [--bayes 0]

Draws many data sets from the course's HCP-brick simulator at its defaults (400 HCPs, 80
bricks, log rate = X beta with specialty, seniority and potential, Poisson sales) and, on
each, scores corr(X beta_hat, X beta_true) for:

* the covariate EM (no ridge, and the default ridge 0.1);
* the exact maximum-likelihood estimate of the same observed-data model, found here by
  SciPy's BFGS on y_b ~ Poisson(sum_h exp(X_h beta) w_bh), independently of the EM code.
  The model is the simulator's own, so no unbiased estimator does much better: this is the
  ceiling that 80 brick totals allow;
* with ``--bayes N``, on the first N data sets, the hierarchical Bayesian model (posterior
  mean of the log rates; specialty levels partially pooled), about 5 s per data set;
* the same GLM fitted on the true pair-level sales z_bh, which no real data set shows: the
  information lost to aggregation is the gap between this line and the one above.

Prints the distribution of each (median, 10% quantile, minimum, share of data sets at or
above 0.95) and the largest gap between EM without ridge and the exact MLE.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from attribution_analysis.allocation.bayes import fit_bayes
from attribution_analysis.allocation.covariates import build_design
from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.problem import problem_from_arrays
from attribution_analysis.simulate.hcp_brick import SPECIALTIES, simulate_hcp_brick

THRESHOLD = 0.95
COVARIATES = ["specialty", "seniority/10", "log1p(potential)"]


def design_of(hcps: pd.DataFrame) -> np.ndarray:
    """Intercept, seniority/10, log1p(potential), specialty against GP (the commonest)."""
    indicators = [hcps[f"spec_{s}"].to_numpy() for s in SPECIALTIES if s != "GP"]
    return np.column_stack(
        [np.ones(len(hcps)), hcps["seniority_x0.1"], hcps["log1p_potential"], *indicators]
    )


def exact_mle(design, group, entity, exposure, totals) -> np.ndarray:
    """Observed-data Poisson MLE of beta by BFGS with the analytic gradient."""

    def negative_loglik(beta):
        rate = np.exp(design @ beta)
        mean = np.bincount(group, rate[entity] * exposure, len(totals))
        ratio = (totals / mean)[group] * exposure - exposure
        gradient = design.T @ np.bincount(entity, ratio * rate[entity], len(rate))
        return -float(totals @ np.log(mean) - mean.sum()), -gradient

    start = np.zeros(design.shape[1])
    return minimize(negative_loglik, start, jac=True, method="BFGS", options={"gtol": 1e-9}).x


def glm_on_true_z(design, entity, exposure, z) -> np.ndarray:
    def negative_loglik(beta):
        mean = np.exp(design @ beta)[entity] * exposure
        gradient = design.T @ np.bincount(entity, z - mean, design.shape[0])
        return -float(z @ np.log(mean) - mean.sum()), -gradient

    start = np.zeros(design.shape[1])
    return minimize(negative_loglik, start, jac=True, method="BFGS").x


def score(seed: int, bayes: bool) -> dict[str, float]:
    truth = simulate_hcp_brick(np.random.default_rng(seed))
    hcps = truth.hcps.set_index("hcp_id")
    pairs = truth.pairs
    entity = hcps.index.get_indexer(pairs["hcp_id"]).astype(np.int32)
    group, _ = pd.factorize(pairs["brick_id"])
    group = group.astype(np.int32)
    exposure = pairs["exposure"].to_numpy()
    z = pairs["z_true"].to_numpy()
    totals = np.bincount(group, z)
    design = design_of(hcps)
    log_rate = np.log(hcps["lambda_true"].to_numpy())

    def corr(beta):
        return float(np.corrcoef(design @ beta, log_rate)[0, 1])

    problem = problem_from_arrays(totals, group, entity, exposure, len(hcps))
    row = {}
    for label, ridge in (("em_no_ridge", 0.0), ("em_default", 0.1)):
        fit = fit_em(problem, design=design, ridge=ridge, tol=1e-10)
        row[label] = float(np.corrcoef(np.log(fit.rate), log_rate)[0, 1])
    if bayes:
        table = truth.hcps[["hcp_id", "specialty", "seniority", "potential"]]
        pooled = build_design(table, "hcp_id", list(hcps.index), COVARIATES)
        fit = fit_bayes(problem, pooled, draws=500, tune=500, seed=seed)
        posterior_log_rate = np.log(fit.rate_draws).mean(axis=0)
        row["bayes_hierarchical"] = float(np.corrcoef(posterior_log_rate, log_rate)[0, 1])
    row["exact_mle"] = corr(exact_mle(design, group, entity, exposure, totals))
    row["glm_on_true_z"] = corr(glm_on_true_z(design, entity, exposure, z))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--bayes", type=int, default=0, help="data sets also fitted by NUTS")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.datasets)
    rows = [score(s, bayes=i < args.bayes) for i, s in enumerate(seeds)]
    table = pd.DataFrame(rows)
    summary = pd.DataFrame(
        {
            "median": table.median(),
            "q10": table.quantile(0.10),
            "min": table.min(),
            "data sets": table.count(),
            f"share >= {THRESHOLD}": (table >= THRESHOLD).where(table.notna()).mean(),
        }
    )
    print(f"corr(X beta_hat, X beta_true) over {len(table)} simulated HCP-brick data sets")
    print(summary.round(3).to_string())
    gap = (table["em_no_ridge"] - table["exact_mle"]).abs().max()
    print(f"largest |EM without ridge - exact MLE|: {gap:.2e}")


if __name__ == "__main__":
    main()
