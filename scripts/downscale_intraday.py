#!/usr/bin/env python
"""Spread each period's campaign credit over hours by the campaign's hourly delivery.

Usage:
    python scripts/downscale_intraday.py --workspace DIR [--profile raw/hourly_delivery.csv]

Reads analysis/mta_allocation.csv (from allocate.py) and the hourly delivery CSV (campaign,
hour 0-23, impressions[, date]); writes analysis/mta_allocation_hourly.csv and
analysis/intraday_summary.json. Every row's hourly parts add up to its credit. The split
assumes credit follows delivery within a period; it says nothing about which hours work.
"""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.adapters import run_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--profile", default="raw/hourly_delivery.csv")
    args = parser.parse_args(argv)

    def action() -> dict:
        from attribution_analysis.contracts.intraday import DownscaleParams
        from attribution_analysis.steps import execute, step
        from attribution_analysis.workspace import Workspace

        spec = step("downscale_intraday")
        params = DownscaleParams(profile_file=args.profile)
        return execute(spec, Workspace.open(args.workspace), params)

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
