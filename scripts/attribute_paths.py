#!/usr/bin/env python
"""Credit conversions to channels from user journeys (heuristics, Markov removal effects,
Shapley values) and reconcile the credits with the MMM.

Usage:
    python scripts/attribute_paths.py --workspace DIR [--method heuristics|markov|shapley|all]
        [--order K] [--source auto|journeys|paths] [--half-life-days 7]
        [--direct-channels direct,...] [--shapley-value subset_sum|rate_within]
        [--shapley-permutations 2000] [--shapley-prior-journeys 100]
        [--bootstrap-replicates 200] [--seed 0] [--no-reconcile]
        [--channel-map path_name=mmm_name,...] [--calibration-method markov]

Reads raw/journeys.csv (journey_id, timestamp, channel, converted[, campaign,
conversion_value]) or raw/paths.csv (path 'a > b > c', conversions[, value, nulls]).

Prints one JSON object: {"status": "ok", "input", "shares", "shares_interval_90",
"removal_effects", "removal_effects_interval_90", "outputs", ...}
or {"status": "error", "error": {"message", "file", "column", "rows", "fix", ...}}.
Exit codes: 0 ok, 2 bad input (nothing written).

Writes analysis/path_attribution.json (credits per channel per method, removal effects,
transition summary, reconciliation with the MMM, provenance); when the journeys carry
campaigns, analysis/path_campaign_credit.csv (campaign credit by conversion day, the ω of
`allocate.py --omega-source path_credit`) and, with the MMM contributions,
analysis/path_campaign_omega.csv (MMM totals split over campaigns by path credit).
"""

from __future__ import annotations

import argparse
import sys

from attribution_analysis.adapters import run_json
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.paths import attribute_paths, summary_payload
from attribution_analysis.workspace import Workspace


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for item in (p.strip() for p in text.split(",") if p.strip()):
        name, _, target = item.partition("=")
        out[name.strip()] = target.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True, help="workspace folder (holds raw/)")
    parser.add_argument(
        "--method", default="all", choices=["heuristics", "markov", "shapley", "all"]
    )
    parser.add_argument("--order", type=int, default=1, help="Markov order k (1-4)")
    parser.add_argument("--source", default="auto", choices=["auto", "journeys", "paths"])
    parser.add_argument("--half-life-days", type=float, default=7.0)
    parser.add_argument("--direct-channels", default="direct", help="comma-separated")
    parser.add_argument(
        "--shapley-value", default="subset_sum", choices=["subset_sum", "rate_within"]
    )
    parser.add_argument("--shapley-permutations", type=int, default=2000)
    parser.add_argument(
        "--shapley-prior-journeys",
        type=float,
        default=100.0,
        help="pseudo-journeys of the prior shrinking each channel set's rate (0: raw)",
    )
    parser.add_argument(
        "--bootstrap-replicates", type=int, default=200, help="0 skips the intervals"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reconcile", action="store_true", help="skip the MMM comparison")
    parser.add_argument("--channel-map", default="", help="path_name=mmm_name,...")
    parser.add_argument(
        "--calibration-method",
        default="markov",
        choices=["markov", "shapley", "linear", "first_touch", "last_touch", "position_based"],
    )
    args = parser.parse_args(argv)

    def action() -> dict:
        params = AttributePathsParams(
            method=args.method,
            order=args.order,
            source=args.source,
            half_life_days=args.half_life_days,
            direct_channels=[c.strip() for c in args.direct_channels.split(",") if c.strip()],
            shapley_value=args.shapley_value,
            shapley_permutations=args.shapley_permutations,
            shapley_prior_journeys=args.shapley_prior_journeys,
            bootstrap_replicates=args.bootstrap_replicates,
            seed=args.seed,
            reconcile=not args.no_reconcile,
            channel_map=_pairs(args.channel_map),
            calibration_method=args.calibration_method,
        )
        return summary_payload(attribute_paths(Workspace.open(args.workspace), params))

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
