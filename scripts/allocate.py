#!/usr/bin/env python
"""Allocate group totals across entities: brick sales to HCPs, or MMM channel contributions to
campaigns (EM or Bayesian hierarchical, exact mass conservation).

Usage:
    python scripts/allocate.py --workspace DIR [--method em|bayes] [--family poisson|gamma]
        [--covariates col,log1p(col),...] [--ridge 0.1] [--source auto|hcp-brick|mta]
        [--contributions analysis/contributions.csv] [--transforms analysis/transforms.json]
        [--saturation-on channel_total|campaign] [--omega-source exposure|path_credit]
        [--zero-visit-exposure 0.5]
        [--tol 1e-8] [--max-iter 10000] [--no-accelerate] [--bootstrap 50] [--seed 0]
        [--draws 1000] [--tune 1000] [--chains 2]

Prints one JSON object: {"status": "ok", ...summary, "outputs": [...]} or
{"status": "error", "error": {"message", "file", "column", "rows", "fix", ...}}.
Exit codes: 0 ok, 2 bad input (nothing written).

Writes analysis/mta_allocation.csv (group, entity, allocated, interval columns for bayes or
contribution draws) and analysis/allocation_summary.json (rates, coefficients, log-likelihood
trace, diagnostics, provenance, and the source of the weight ω: effective exposure, or path
credit with the hash of the analysis/path_attribution.json it came from).
"""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.adapters import run_json
from attribution_analysis.allocation.step import allocate, summary_payload
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True, help="workspace folder (holds raw/)")
    parser.add_argument("--method", default="em", choices=["em", "bayes"])
    parser.add_argument("--family", default="poisson", choices=["poisson", "gamma"])
    parser.add_argument("--covariates", default="", help="comma-separated covariate specs")
    parser.add_argument("--ridge", type=float, default=0.1, help="ridge penalty (GLM M-step)")
    parser.add_argument("--source", default="auto", choices=["auto", "hcp-brick", "mta"])
    parser.add_argument("--contributions", default=None, help="contributions CSV (mta)")
    parser.add_argument("--transforms", default=None, help="adstock/saturation JSON (mta)")
    parser.add_argument(
        "--saturation-on", default="channel_total", choices=["channel_total", "campaign"]
    )
    parser.add_argument(
        "--omega-source",
        default="exposure",
        choices=["exposure", "path_credit"],
        help="mta: weigh campaigns by effective exposure, or by path credit per period "
        "(analysis/path_campaign_credit.csv: run scripts/attribute_paths.py first)",
    )
    parser.add_argument("--zero-visit-exposure", type=float, default=0.5)
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--max-iter", type=int, default=10_000)
    parser.add_argument("--no-accelerate", action="store_true", help="plain EM (no SQUAREM)")
    parser.add_argument("--bootstrap", type=int, default=50, help="ranking bootstrap replicates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args(argv)

    def action() -> dict:
        params = AllocateParams(
            source=args.source,
            method=args.method,
            family=args.family,
            covariates=[c.strip() for c in args.covariates.split(",") if c.strip()],
            ridge=args.ridge,
            tol=args.tol,
            max_iter=args.max_iter,
            accelerate=not args.no_accelerate,
            zero_visit_exposure=args.zero_visit_exposure,
            contributions=args.contributions,
            transforms_file=args.transforms,
            saturation_on=args.saturation_on,
            omega_source=args.omega_source,
            bootstrap=args.bootstrap,
            seed=args.seed,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
        )
        return summary_payload(allocate(Workspace.open(args.workspace), params))

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
