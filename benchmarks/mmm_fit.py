"""PyMC-Marketing's plain ``fit()`` against this project's fit path, same model, same data.

    python benchmarks/mmm_fit.py [--weeks 156] [--channels 4]

Both fit the model this project builds (PyMC-Marketing's MMM with the project's default
priors), so the comparison is about sampling, not priors; a reference row fits the plain
``fit()`` with PyMC-Marketing's own default priors (fresh only). Two situations:

- fresh: a new Python process with an empty PyTensor compile cache (a first fit on a machine);
- warm: the same process fits a second data set of the same structure (the MCP server's
  case). The plain path builds a new MMM (PyMC-Marketing bakes data into the graph); this
  project's path swaps the data into the already compiled model.

Printed per run: wall seconds (compilation included), min bulk ESS over the free parameters,
ESS per wall second, max R-hat, divergences, whether the seed's gates (R-hat < 1.05, bulk
ESS > 400) pass; then the ESS-per-second ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from attribution_analysis.api import fit_mmm, simulate_workspace, validate_data
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.mmm.convergence import convergence_summary, passes_gates
from attribution_analysis.mmm.fit import prepare
from attribution_analysis.workspace import Workspace

# PyMC-Marketing's own default priors for the curves this project re-specifies.
LIBRARY_PRIORS = {
    "adstock_alpha": {"dist": "Beta", "kwargs": {"alpha": 1.0, "beta": 3.0}},
    "saturation_kappa": {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}},
    "saturation_slope": {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}},
}


def plain_fit(root: Path, seed: int, library_priors: bool = False) -> dict:
    """``MMM.fit()`` with its defaults on the model this project builds (or, with
    ``library_priors``, on the model with PyMC-Marketing's own default priors)."""
    ws = Workspace.open(root)
    start = time.perf_counter()
    config = MMMConfig(priors=LIBRARY_PRIORS) if library_priors else MMMConfig()
    data, mmm, _ = prepare(ws, FitMMMParams(config=config))
    tree = mmm.fit(data.X, data.y, random_seed=seed, progressbar=False)
    wall = time.perf_counter() - start
    label = "fit(), library priors" if library_priors else "pymc-marketing fit()"
    return _row(label, wall, convergence_summary(tree))


def project_fit(root: Path, seed: int) -> dict:
    ws = Workspace.open(root)
    start = time.perf_counter()
    result = fit_mmm(ws, FitMMMParams(seed=seed, use_cache=False))
    wall = time.perf_counter() - start
    return _row(
        "attribution-analysis fit_mmm",
        wall,
        result.convergence,
        reused=result.compile_reused,
        retried=bool(result.remedies_tried),
    )


def _row(label: str, wall: float, summary: dict, **extra) -> dict:
    return {
        "label": label,
        "wall_s": round(wall, 2),
        "min_ess_bulk": round(summary["min_ess_bulk"], 1),
        "ess_per_s": round(summary["min_ess_bulk"] / wall, 2),
        "max_rhat": round(summary["max_rhat"], 4),
        "divergences": summary["divergences"],
        "gates_pass": passes_gates(summary) and summary["min_ess_bulk"] > 400,
        **extra,
    }


def worker(kind: str, roots: list[Path], seed: int) -> list[dict]:
    warnings.simplefilter("ignore")
    if kind == "library":
        return [plain_fit(root, seed, library_priors=True) for root in roots]
    fit = plain_fit if kind == "plain" else project_fit
    return [fit(root, seed) for root in roots]


def run_fresh(kind: str, root: Path, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as compiledir:
        env = {
            **os.environ,
            "PYTENSOR_FLAGS": f"base_compiledir={compiledir}",
            "NUMBA_CACHE_DIR": compiledir,
        }
        out = subprocess.run(
            [sys.executable, __file__, "--worker", kind, "--roots", str(root), "--seed", str(seed)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", choices=["plain", "ours", "library"])
    parser.add_argument("--roots", nargs="*")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, [Path(r) for r in args.roots], args.seed)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        roots = []
        for data_seed in (101, 102):
            root = Path(tmp) / f"ws{data_seed}"
            simulate_workspace(
                root,
                SimulationParams(
                    kind="mmm", seed=data_seed, weeks=args.weeks, channels=args.channels
                ),
            )
            validate_data(Workspace.open(root))
            roots.append(root)
        fresh = {kind: run_fresh(kind, roots[0], args.seed) for kind in ("plain", "ours")}
        reference = run_fresh("library", roots[0], args.seed)
        # Warm: first fit in this process warms caches; the second data set is what we time.
        with tempfile.TemporaryDirectory() as compiledir:
            env = {
                **os.environ,
                "PYTENSOR_FLAGS": f"base_compiledir={compiledir}",
                "NUMBA_CACHE_DIR": compiledir,
            }
            warm = {}
            for kind in ("plain", "ours"):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        kind,
                        "--roots",
                        *map(str, roots),
                        "--seed",
                        str(args.seed),
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                )
                warm[kind] = json.loads(out.stdout.strip().splitlines()[-1])[1]
    header = (
        f"{'situation':8s} {'path':30s} {'wall s':>7s} {'min ESS':>8s} {'ESS/s':>7s} "
        f"{'R-hat':>7s} {'div':>4s} {'gates':>6s}"
    )
    print(f"MMM fit benchmark: {args.weeks} weeks x {args.channels} channels, 2 chains")
    print(header)
    for situation, rows in (("fresh", fresh), ("warm", warm)):
        for row in rows.values():
            print(
                f"{situation:8s} {row['label']:30s} {row['wall_s']:7.1f} "
                f"{row['min_ess_bulk']:8.0f} {row['ess_per_s']:7.1f} {row['max_rhat']:7.3f} "
                f"{row['divergences']:4d} {'pass' if row['gates_pass'] else 'FAIL':>6s}"
            )
    row = reference
    print(
        f"{'fresh':8s} {row['label']:30s} {row['wall_s']:7.1f} {row['min_ess_bulk']:8.0f} "
        f"{row['ess_per_s']:7.1f} {row['max_rhat']:7.3f} {row['divergences']:4d} "
        f"{'pass' if row['gates_pass'] else 'FAIL':>6s}  (reference)"
    )
    for situation, rows in (("fresh", fresh), ("warm", warm)):
        ratio = rows["ours"]["ess_per_s"] / rows["plain"]["ess_per_s"]
        print(f"{situation}: ESS per second, this project / plain fit() = {ratio:.1f}x")


if __name__ == "__main__":
    main()
