"""How close the recommended mix gets to the true optimum of the simulator's curves.

    python benchmarks/optimize_truth.py [--seeds 1 2 3] [--channels 5] [--weeks 156]

For each seed: simulate an ``mmm`` workspace, validate, fit with the default settings
(NUTS, 2 x 6,000 draws), run ``optimize_budget`` with the default ±30% limits and with no
limits, then score the recommendation, the current mix and the true optimum under the *true*
curves (the simulator's adstock, Hill and beta, same horizon convention). The true optimum
is found on the true curves by the exact grid search (2,000 steps) and SLSQP polish.
The gap between recommended and true optimum is the MMM's estimation error seen through
the optimizer; on the true curves themselves the optimizer reaches the optimum exactly.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.data.validate import validate_data
from attribution_analysis.mmm.diagnostics import validate_model
from attribution_analysis.mmm.fit import fit_mmm
from attribution_analysis.optimize import optimize_budget
from attribution_analysis.optimize.bounds import Box
from attribution_analysis.optimize.response import (
    ResponseCurves,
    geometric_weights,
    timeline_weights,
)
from attribution_analysis.optimize.solver import Objective, grid_optimum, optimize
from attribution_analysis.simulate import simulate_workspace
from attribution_analysis.workspace import Workspace


def true_curves(root: Path, channels: list[str], horizon: int) -> ResponseCurves:
    truth = json.loads((root / "truth" / "parameters.json").read_text())["channels"]
    panel = pd.read_csv(root / "analysis" / "prepared_panel.csv")
    scale = np.array([panel[f"spend_{c}"].max() for c in channels])

    def param(key: str) -> np.ndarray:
        return np.array([truth[c][key] for c in channels])[None, None, :]

    l_max = int(truth[channels[0]]["l_max"])
    timeline, counts = timeline_weights(geometric_weights(param("adstock_alpha"), l_max), horizon)
    return ResponseCurves(
        channels=channels,
        horizon=horizon,
        timeline_weight=timeline,
        period_count=counts,
        beta=param("beta"),
        saturation="hill",
        slope=param("hill_slope"),
        kappa=param("hill_kappa"),
        lam=None,
        input_per_spend=(1 / scale)[None, :],
        target_scale=np.array([1.0]),
    )


def score(root: Path, max_change: float | None) -> tuple[float, float, bool]:
    ws = Workspace.open(root)
    result = optimize_budget(
        ws, OptimizeBudgetParams(max_change=max_change, override_reason="benchmark")
    )
    channels = [a.channel for a in result.allocations]
    curves = true_curves(root, channels, result.horizon_periods)
    box = Box(
        np.array([a.min_spend for a in result.allocations]),
        np.array([a.max_spend for a in result.allocations]),
        channels,
    )
    recommended = np.array([a.recommended_spend for a in result.allocations])
    current = np.array([a.current_spend for a in result.allocations])
    truth = Objective(curves)
    grid = grid_optimum(curves, box, result.total_budget, 2000)
    best = max(optimize(truth, box, result.total_budget, current).value, truth.value(grid))
    passed = bool(json.loads((root / "analysis" / "mmm_diagnostics.json").read_text())["passed"])
    return truth.value(recommended) / best, truth.value(current) / best, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--weeks", type=int, default=156)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    print(
        f"{'seed':>4} {'model':>7} {'limits':>8} {'recommended/optimum':>20} "
        f"{'current/optimum':>16}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            root = Path(tmp) / f"s{seed}"
            params = SimulationParams(
                kind="mmm", seed=seed, weeks=args.weeks, channels=args.channels
            )
            simulate_workspace(root, params)
            ws = Workspace.open(root)
            validate_data(ws)
            fit_mmm(ws, FitMMMParams())
            validate_model(ws, backtest_periods=None, sensitivity_refit=False)
            for max_change in (0.3, None):
                achieved, current, passed = score(root, max_change)
                label = "±30%" if max_change is not None else "none"
                verdict = "passed" if passed else "failed"
                print(f"{seed:>4} {verdict:>7} {label:>8} {achieved:>20.4f} {current:>16.4f}")


if __name__ == "__main__":
    main()
