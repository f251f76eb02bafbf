#!/usr/bin/env python
"""Decompose the outcome into base and channel contributions (seed step 5).

Usage:
    python scripts/compute_contributions.py --workspace DIR [--override-reason "..."]

Refuses a model whose diagnostics failed unless --override-reason is given (recorded in the
output). Writes analysis/mmm_channel_contributions.json (per channel: contribution, share of
media, ROAS and marginal ROAS with 90%/95% intervals; base; sum check),
analysis/mmm_weekly_contributions.csv and analysis/model/channel_contribution_draws.nc.
"""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.adapters import rich_progress, run_json
from attribution_analysis.payloads import decompose_payload
from attribution_analysis.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument(
        "--override-reason", default=None, help="use a model that failed its criteria, and say why"
    )
    args = parser.parse_args(argv)

    def action() -> dict:
        from attribution_analysis.contributions import decompose_contributions

        with rich_progress("decompose_contributions") as progress:
            result = decompose_contributions(
                Workspace.open(args.workspace),
                override_reason=args.override_reason,
                progress=progress,
            )
        return decompose_payload(result)

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
