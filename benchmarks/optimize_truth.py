"""How close the recommended mix gets to the true optimum of the simulator's curves, and why.

    python benchmarks/optimize_truth.py [--seeds 1 2 3] [--channels 5] [--weeks 156]
        [--keep DIR]

For each seed: simulate an ``mmm`` workspace, validate, fit with the default settings
(NUTS, 2 x 6,000 draws), then run ``optimize_budget`` under three limit settings:

- ``±30%``: the defaults (each channel within ±30% of current spend, and no channel above
  the highest spend per period in the data);
- ``observed``: ``max_change=None``, the cap at observed spend kept;
- ``none``: ``max_change=None, allow_extrapolation=True``, no limits at all.

The shortfall of the recommendation under the *true* curves splits into two parts, printed
separately:

- ``optimizer``: the recommendation's value on the *fitted* objective (expected outcome over
  the same posterior draws) over the best value of that objective found independently (exact
  grid search at 2,000 steps, its SLSQP polish, and 20 random-start SLSQP runs with numerical
  gradients). Below 1 means the optimizer missed the optimum of its own objective.
- ``estimation``: the true outcome of that fitted optimum over the true optimum. Below 1
  means the fitted curves put the optimum in the wrong place (the MMM's error, largest where
  the curves are extrapolated beyond observed spend).

``recommended`` is the product seen end to end: the true outcome of the recommendation over
the true optimum; ``beyond`` counts channels recommended above the highest spend per period
in the data. ``--keep DIR`` keeps (and reuses) the fitted workspaces.
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
from scipy.optimize import minimize

from attribution_analysis.api import (
    fit_mmm,
    optimize_budget,
    simulate_workspace,
    validate_data,
    validate_model,
)
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.mmm.stored import open_stored_fit
from attribution_analysis.optimize.bounds import Box
from attribution_analysis.optimize.posterior import curves_from_fit, spend_history
from attribution_analysis.optimize.response import (
    ResponseCurves,
    geometric_weights,
    timeline_weights,
)
from attribution_analysis.optimize.solver import Objective, grid_optimum, optimize, project
from attribution_analysis.workspace import Workspace

SETTINGS: list[tuple[str, dict]] = [
    ("±30%", {}),
    ("observed", {"max_change": None}),
    ("none", {"max_change": None, "allow_extrapolation": True}),
]


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


def best_point(objective: Objective, box: Box, total: float, current: np.ndarray) -> np.ndarray:
    """The best point found by three routes: a fine exact grid, its polish, random starts."""
    candidates = [optimize(objective, box, total, current).spend]
    grid = grid_optimum(objective.curves, box, total, 2000)
    if grid is not None:
        candidates.append(grid)
    rng = np.random.default_rng(0)
    for _ in range(20):
        start = project(rng.dirichlet(np.ones(len(current))) * total, box, total)
        res = minimize(
            lambda u: -objective.value(u * total),
            start / total,
            method="SLSQP",
            bounds=list(zip(box.low / total, box.high / total, strict=True)),
            constraints=[{"type": "eq", "fun": lambda u: u.sum() - 1.0}],
            options={"maxiter": 300, "ftol": 1e-12},
        )
        candidates.append(project(res.x * total, box, total))
    return max(candidates, key=objective.value)


def score(root: Path, settings: dict) -> dict[str, float]:
    ws = Workspace.open(root)
    params = OptimizeBudgetParams(override_reason="benchmark", **settings)
    result = optimize_budget(ws, params)
    channels = [a.channel for a in result.allocations]
    total = result.total_budget
    box = Box(
        np.array([a.min_spend for a in result.allocations]),
        np.array([a.max_spend for a in result.allocations]),
        channels,
    )
    recommended = np.array([a.recommended_spend for a in result.allocations])
    current = np.array([a.current_spend for a in result.allocations])
    fitted = open_stored_fit(ws)
    fitted_curves = curves_from_fit(
        fitted, result.horizon_periods, params.draws, spend_history(fitted, 52)
    )
    fitted_objective = Objective(fitted_curves)
    fitted_best = best_point(fitted_objective, box, total, current)
    truth = Objective(true_curves(root, channels, result.horizon_periods))
    true_best = truth.value(best_point(truth, box, total, current))
    return {
        "optimizer": fitted_objective.value(recommended) / fitted_objective.value(fitted_best),
        "estimation": truth.value(fitted_best) / true_best,
        "recommended": truth.value(recommended) / true_best,
        "current": truth.value(current) / true_best,
        "beyond": sum(a.beyond_observed for a in result.allocations),
    }


def fitted_workspace(root: Path, seed: int, channels: int, weeks: int) -> None:
    if (root / "analysis" / "mmm_diagnostics.json").exists():
        return
    simulate_workspace(
        root, SimulationParams(kind="mmm", seed=seed, weeks=weeks, channels=channels)
    )
    ws = Workspace.open(root)
    validate_data(ws)
    fit_mmm(ws, FitMMMParams())
    validate_model(ws, backtest_periods=None, sensitivity_refit=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--keep", type=Path, default=None, help="keep fitted workspaces here")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    print(
        f"{'seed':>4} {'model':>7} {'limits':>9} {'optimizer':>10} {'estimation':>11} "
        f"{'recommended':>12} {'current':>8} {'beyond':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for seed in args.seeds:
            root = base / f"s{seed}"
            fitted_workspace(root, seed, args.channels, args.weeks)
            diagnostics = json.loads((root / "analysis" / "mmm_diagnostics.json").read_text())
            verdict = "passed" if diagnostics["passed"] else "failed"
            for label, settings in SETTINGS:
                s = score(root, settings)
                print(
                    f"{seed:>4} {verdict:>7} {label:>9} {s['optimizer']:>10.6f} "
                    f"{s['estimation']:>11.4f} {s['recommended']:>12.4f} {s['current']:>8.4f} "
                    f"{s['beyond']:>7d}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
