#!/usr/bin/env python
"""Recommend a budget mix on the fitted MMM, with its expected lift and interval (seed step 6).

Usage:
    python scripts/optimize_budget.py --workspace DIR [--total-budget X] [--horizon-weeks 13]
        [--constraints bounds.csv|bounds.json] [--max-change 0.3|none] [--allow-extrapolation]
        [--objective mean|cvar] [--risk-level 0.1]
        [--scenario shift:tv:search:0.2] [--scenario total:+0.1] [--scenario plan:tv=1e5]
        [--draws 500] [--seed 0] [--override-reason "..."]

--total-budget is the total over the whole horizon (all channels), not per week; the default
is current spend over the horizon. Each channel's spend per period is capped at the highest
spend per period in the data unless --allow-extrapolation is given. Writes
analysis/mmm_budget_optimization.json: current vs recommended spend per channel, expected
outcome and lift with 90%/95% intervals, the probability the recommendation beats the
current mix, scenarios (infeasible ones with their reason), mROAS curves, saturation flags.
Refuses a model that failed validation unless --override-reason is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attribution_analysis.adapters import rich_progress, run_json
from attribution_analysis.optimize.inputs import SCENARIO_HELP


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--total-budget", type=float, default=None, help="total over horizon")
    parser.add_argument("--horizon-weeks", "--horizon-periods", type=int, default=13)
    parser.add_argument("--constraints", type=Path, default=None, help="bounds CSV or JSON")
    parser.add_argument("--max-change", default="0.3", help="±share per channel, or 'none'")
    parser.add_argument(
        "--allow-extrapolation",
        action="store_true",
        help="lift the cap at the highest spend per period seen in the data",
    )
    parser.add_argument("--objective", default="mean", choices=["mean", "cvar"])
    parser.add_argument("--risk-level", type=float, default=0.1)
    parser.add_argument("--scenario", action="append", default=[], help=SCENARIO_HELP)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override-reason", default=None)
    args = parser.parse_args(argv)

    def action() -> dict:
        from attribution_analysis.optimize import optimize_budget
        from attribution_analysis.optimize.inputs import (
            params_from_flags,
            parse_max_change,
            parse_scenario,
            read_bounds,
        )
        from attribution_analysis.optimize.summary import summary_payload
        from attribution_analysis.workspace import Workspace

        ws = Workspace.open(args.workspace)
        params = params_from_flags(
            {
                "total_budget": args.total_budget,
                "horizon_periods": args.horizon_weeks,
                "bounds": read_bounds(args.constraints) if args.constraints else [],
                "max_change": parse_max_change(args.max_change),
                "allow_extrapolation": args.allow_extrapolation,
                "objective": args.objective,
                "risk_level": args.risk_level,
                "scenarios": [parse_scenario(s) for s in args.scenario],
                "draws": args.draws,
                "seed": args.seed,
                "override_reason": args.override_reason,
            }
        )
        with rich_progress("optimize_budget") as progress:
            result = optimize_budget(ws, params, progress=progress)
        return summary_payload(result)

    return run_json(action)


if __name__ == "__main__":
    sys.exit(main())
