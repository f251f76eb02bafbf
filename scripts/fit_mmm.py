#!/usr/bin/env python
"""Validate workspace data (seed step 1) or fit the Bayesian MMM (steps 2-3).

Usage:
    python scripts/fit_mmm.py --validate --workspace DIR [--grain auto|weekly|daily]
        [--country US] [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--max-gap 4]
    python scripts/fit_mmm.py --workspace DIR [--calibrate] [--quick map|advi]
        [--config CONFIG.json] [--backend nutpie|pymc|numpyro] [--draws N] [--tune N]
        [--chains N] [--target-accept P] [--seed S] [--no-cache]

--config holds an MMMConfig as JSON (target, adstock, l_max, saturation,
yearly_seasonality, financial_services, priors...; see schemas/).

Prints one JSON object: {"status": "ok", ...} or {"status": "error", "error": {"message",
"file", "column", "rows", "fix", ...}}. Exit codes: 0 ok, 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attribution_analysis.adapters import rich_progress, run_json
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig, SamplerSettings
from attribution_analysis.contracts.validation import ValidateDataParams
from attribution_analysis.data.validate import validate_data
from attribution_analysis.errors import ParameterError
from attribution_analysis.payloads import fit_payload, validate_payload
from attribution_analysis.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True, help="workspace folder (holds raw/)")
    parser.add_argument("--validate", action="store_true", help="validate and prepare the data")
    parser.add_argument("--grain", default="auto", choices=["auto", "weekly", "daily"])
    parser.add_argument("--country", default="US", help="holiday calendar ISO code ('' = none)")
    parser.add_argument("--start", default=None, help="first date of the window")
    parser.add_argument("--end", default=None, help="last date of the window")
    parser.add_argument("--max-gap", type=int, default=4, help="longest gap imputed (periods)")
    parser.add_argument("--calibrate", action="store_true", help="use the lift tests")
    parser.add_argument("--quick", choices=["map", "advi"], default=None)
    parser.add_argument("--config", default=None, help="MMMConfig JSON file")
    parser.add_argument("--backend", choices=["nutpie", "pymc", "numpyro"], default=None)
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument("--target-accept", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-cache", action="store_true", help="refit even if cached")
    args = parser.parse_args(argv)

    def validate() -> dict:
        params = ValidateDataParams(
            grain=args.grain,
            country=args.country or None,
            start=args.start,
            end=args.end,
            max_gap_periods=args.max_gap,
        )
        return validate_payload(validate_data(Workspace.open(args.workspace), params))

    def fit() -> dict:
        from attribution_analysis.mmm.fit import fit_mmm

        config = MMMConfig()
        if args.config:
            try:
                config = MMMConfig.model_validate(json.loads(Path(args.config).read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise ParameterError(
                    f"could not read --config {args.config}: {exc}.",
                    fix="pass a JSON file holding an MMMConfig.",
                ) from None
        sampler = {
            k: v
            for k, v in {
                "backend": args.backend,
                "draws": args.draws,
                "tune": args.tune,
                "chains": args.chains,
                "target_accept": args.target_accept,
            }.items()
            if v is not None
        }
        params = FitMMMParams(
            config=config,
            sampler=SamplerSettings(**sampler),
            calibrate=args.calibrate,
            quick=args.quick,
            use_cache=not args.no_cache,
            **({"seed": args.seed} if args.seed is not None else {}),
        )
        with rich_progress("fit_mmm") as progress:
            result = fit_mmm(Workspace.open(args.workspace), params, progress)
        return fit_payload(result)

    return run_json(validate if args.validate else fit)


if __name__ == "__main__":
    sys.exit(main())
