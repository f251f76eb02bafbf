#!/usr/bin/env python
"""Validate workspace data for the MMM (seed spec step 1).

Usage:
    python scripts/fit_mmm.py --validate --workspace DIR [--grain auto|weekly|daily]
        [--country US] [--start YYYY-MM-DD] [--end YYYY-MM-DD] [--max-gap 4]

Prints one JSON object: {"status": "ok", ...summary, "outputs": [...]} or
{"status": "error", "error": {"message", "file", "column", "rows", "fix", ...}}.
Exit codes: 0 ok, 2 bad input (nothing written).

Model fitting (without --validate) is not part of this version yet; the script refuses it
rather than pretend.
"""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.adapters import run_json
from attribution_analysis.contracts.validation import ValidateDataParams
from attribution_analysis.data.validate import validate_data
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
    args = parser.parse_args(argv)
    if not args.validate:
        parser.error("model fitting is not available in this version; run with --validate")

    def action() -> dict:
        params = ValidateDataParams(
            grain=args.grain,
            country=args.country or None,
            start=args.start,
            end=args.end,
            max_gap_periods=args.max_gap,
        )
        report = validate_data(Workspace.open(args.workspace), params)
        return {
            "step": "validate_data",
            "validation_status": report.status,
            "grain": report.grain,
            "window": report.window.model_dump(mode="json"),
            "channels": [c.channel for c in report.channels],
            "warnings": [w.model_dump(mode="json") for w in report.warnings],
            "outputs": [
                report.panel.path,
                "analysis/data_validation.json",
                *([report.campaign_panel.path] if report.campaign_panel else []),
            ],
        }

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
