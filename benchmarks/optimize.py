"""This project's budget optimizer against PyMC-Marketing's own, same fitted model.

    python benchmarks/optimize.py [--channels 10] [--draws 500] [--horizon 13]

Fits one MMM (simulated, ``--channels`` channels, ``--draws`` posterior draws in all), then
on the same posterior and the same per-channel bounds (±30% of current spend):

- ours: response curves from the posterior (setup), the point optimum (grid search + SLSQP,
  expected outcome over every draw), and the uncertainty pass (outcome of current and
  recommended mix on every draw, lift interval, probability better);
- PyMC-Marketing: ``mmm.budget_optimizer(start, end).allocate_budget(...)`` (first call,
  which compiles, and a second warm call), and its uncertainty pass
  ``evaluate_response_distribution`` on both plans.

Both recommendations are then scored with *both* objectives (ours, and the library's
compiled objective, which also counts carry-in from the last weeks of observed spend), so
"equal or better" is judged on the library's home ground too. Figures are seconds on this
machine and ratios within this one run.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from attribution_analysis.api import (
    fit_mmm,
    optimize_budget,
    simulate_workspace,
    validate_data,
    validate_model,
)
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.contracts.mmm import FitMMMParams, SamplerSettings
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.mmm.loaded import open_fit
from attribution_analysis.mmm.stored import open_stored_fit
from attribution_analysis.optimize.bounds import resolve_box
from attribution_analysis.optimize.posterior import curves_from_fit, spend_history
from attribution_analysis.optimize.solver import Objective, optimize
from attribution_analysis.summaries import interval
from attribution_analysis.workspace import Workspace


def build(root: Path, channels: int, draws: int, seed: int) -> Workspace:
    simulate_workspace(root, SimulationParams(kind="mmm", seed=seed, weeks=104, channels=channels))
    ws = Workspace.open(root)
    validate_data(ws)
    sampler = SamplerSettings(draws=draws // 2, tune=500, chains=2)
    # NUTS only: the comparison needs a posterior both optimizers can read (500 draws will not
    # pass the ESS > 400 gate, which does not matter for timing).
    fit_mmm(ws, FitMMMParams(sampler=sampler, seed=seed, retry=False, fallback_to_ridge=False))
    validate_model(ws, backtest_periods=None, sensitivity_refit=False)
    return ws


def ours(ws: Workspace, draws: int, horizon: int) -> dict:
    fitted = open_stored_fit(ws)
    t0 = time.perf_counter()
    history = spend_history(fitted, 52)
    curves = curves_from_fit(fitted, horizon, draws, history)
    t1 = time.perf_counter()
    current = history.current_per_period * horizon
    total = float(current.sum())
    box = resolve_box([], 0.3, history.channels, current, total)
    objective = Objective(curves)
    solution = optimize(objective, box, total, current)
    t2 = time.perf_counter()
    now = curves.outcome(current).sum(axis=1)
    rec = curves.outcome(solution.spend).sum(axis=1)
    lift = interval(rec - now)
    probability = float((rec > now).mean())
    t3 = time.perf_counter()
    return {
        "curves": curves,
        "channels": history.channels,
        "current": current,
        "box": box,
        "total": total,
        "spend": solution.spend,
        "setup": t1 - t0,
        "point": t2 - t1,
        "uncertainty": t3 - t2,
        "lift": lift,
        "probability": probability,
        "draws": curves.n_draws,
    }


def library(fitted, mine: dict, horizon: int) -> dict:
    mmm = fitted.mmm
    channels = mine["channels"]
    last = pd.Timestamp(fitted.data.X["date"].max())
    start = last + pd.Timedelta(weeks=1)
    end = start + pd.Timedelta(weeks=horizon - 1)
    bounds = {
        c: (float(lo / horizon), float(hi / horizon))
        for c, lo, hi in zip(channels, mine["box"].low, mine["box"].high, strict=True)
    }
    per_period = mine["total"] / horizon  # the library's total_budget is per period
    t0 = time.perf_counter()
    optimizer = mmm.budget_optimizer(start_date=start, end_date=end)
    first = optimizer.allocate_budget(total_budget=per_period, budget_bounds=bounds)
    t1 = time.perf_counter()
    second = optimizer.allocate_budget(total_budget=per_period, budget_bounds=bounds)
    t2 = time.perf_counter()
    budgets = second.budgets.sel(channel=channels).to_numpy() * horizon

    def plan(spend: np.ndarray) -> xr.DataArray:
        return xr.DataArray(spend / horizon, dims=["channel"], coords={"channel": channels})

    t3 = time.perf_counter()
    now = optimizer.evaluate_response_distribution(plan(mine["current"]))
    rec = optimizer.evaluate_response_distribution(plan(budgets))
    t4 = time.perf_counter()
    lift = (rec - now).to_numpy().ravel()
    score = {
        "library_plan": float(optimizer.evaluate_response_distribution(plan(budgets)).mean()),
        "our_plan": float(optimizer.evaluate_response_distribution(plan(mine["spend"])).mean()),
    }
    del first
    return {
        "spend": budgets,
        "first_call": t1 - t0,
        "warm_call": t2 - t1,
        "uncertainty": t4 - t3,
        "lift": interval(lift),
        "probability": float((lift > 0).mean()),
        "score_library_objective": score,
        "converged": bool(second.scipy_result.success),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--horizon", type=int, default=13)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        ws = build(Path(tmp) / "ws", args.channels, args.draws, args.seed)
        print(
            f"fit {args.channels} channels, {args.draws} draws: "
            f"{time.perf_counter() - started:.0f} s (not part of the comparison)"
        )
        mine = ours(ws, args.draws, args.horizon)
        theirs = library(open_fit(ws), mine, args.horizon)
        step_start = time.perf_counter()
        optimize_budget(
            ws,
            OptimizeBudgetParams(
                horizon_periods=args.horizon, draws=args.draws, override_reason="benchmark"
            ),
        )
        step = time.perf_counter() - step_start

    ours_obj = Objective(mine["curves"])
    our_value = ours_obj.value(mine["spend"])
    their_value = ours_obj.value(theirs["spend"])
    lib = theirs["score_library_objective"]
    rows = [
        ("point optimum", mine["point"], theirs["warm_call"], theirs["first_call"]),
        ("uncertainty pass (2 plans, all draws)", mine["uncertainty"], theirs["uncertainty"], None),
        (
            "point + uncertainty",
            mine["setup"] + mine["point"] + mine["uncertainty"],
            theirs["warm_call"] + theirs["uncertainty"],
            theirs["first_call"] + theirs["uncertainty"],
        ),
    ]
    print(f"\n{mine['draws']} draws, {len(mine['channels'])} channels, horizon {args.horizon}")
    print(
        f"{'':40s} {'ours s':>9s} {'library warm s':>15s} {'library 1st s':>14s} "
        f"{'speed-up warm':>14s} {'speed-up 1st':>13s}"
    )
    for label, a, b, c in rows:
        first = f"{c:14.3f}" if c is not None else f"{'':14s}"
        ratio_first = f"{c / a:12.1f}x" if c is not None else ""
        print(f"{label:40s} {a:9.3f} {b:15.3f} {first} {b / a:13.1f}x {ratio_first}")
    print(
        f"(ours: curve setup {mine['setup']:.3f} s included in the last row; the whole "
        f"optimize_budget step with scenarios-free defaults, model reload and JSON: "
        f"{step:.2f} s)"
    )
    print("\nobjective (expected media outcome over the horizon), each plan under each scorer:")
    print(
        f"  our scorer:     ours {our_value:,.2f}   library's plan {their_value:,.2f}   "
        f"ratio {our_value / their_value:.5f}"
    )
    print(
        f"  library scorer: ours {lib['our_plan']:,.2f}   library's plan "
        f"{lib['library_plan']:,.2f}   ratio {lib['our_plan'] / lib['library_plan']:.5f}"
    )
    print(
        f"\nlift vs current, ours: {mine['lift'].mean:,.1f} "
        f"[{mine['lift'].hdi_90[0]:,.1f}, {mine['lift'].hdi_90[1]:,.1f}] "
        f"P(better) {mine['probability']:.3f}"
    )
    print(
        f"lift vs current, library: {theirs['lift'].mean:,.1f} "
        f"[{theirs['lift'].hdi_90[0]:,.1f}, {theirs['lift'].hdi_90[1]:,.1f}] "
        f"P(better) {theirs['probability']:.3f} (converged: {theirs['converged']})"
    )
    diff = np.abs(mine["spend"] - theirs["spend"]) / mine["total"]
    print(f"largest difference in recommended spend: {diff.max():.2%} of the budget")


if __name__ == "__main__":
    main()
