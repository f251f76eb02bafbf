#!/usr/bin/env python
"""Check the fitted MMM against the acceptance criteria (seed step 4).

Usage:
    python scripts/validate_model.py --workspace DIR [--backtest-periods 13]
        [--no-sensitivity-refit] [--seed 1]

Measures R-hat, bulk/tail ESS, divergences, posterior predictive coverage, LOO (Pareto k)
and LOO-PIT calibration, power-scaling prior sensitivity, a refit under vague priors
(ROAS shift per channel) and an out-of-sample backtest on the last periods. Writes
analysis/mmm_diagnostics.json with pass/fail per criterion. Prints JSON with a status field
('ok' also when the model fails its criteria: read "passed" and "failed_criteria").
"""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.adapters import rich_progress, run_json
from attribution_analysis.payloads import validate_model_payload
from attribution_analysis.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument(
        "--backtest-periods",
        type=int,
        default=13,
        help="final periods held out for the backtest (0 = skip)",
    )
    parser.add_argument(
        "--no-sensitivity-refit", action="store_true", help="skip the refit with vague priors"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    def action() -> dict:
        from attribution_analysis.mmm.diagnostics import validate_model

        with rich_progress("validate_model") as progress:
            result = validate_model(
                Workspace.open(args.workspace),
                backtest_periods=args.backtest_periods or None,
                seed=args.seed,
                sensitivity_refit=not args.no_sensitivity_refit,
                progress=progress,
            )
        return validate_model_payload(result)

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
