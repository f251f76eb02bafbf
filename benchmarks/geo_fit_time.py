"""Seconds to fit a geo panel: the project's fit_mmm beside PyMC-Marketing's plain default.

    python benchmarks/geo_fit_time.py [--geos 50] [--weeks 156] [--seed 1]
        [--models ours,library] [--quick] [--out results.jsonl]

The panel is ``benchmarks/geo_world.py``'s world, brought in as a user would
(``import_data`` with the geo column, ``validate_data``). Both fits run in this one process
on the same prepared table, one after the other:

- ours: ``fit_mmm`` with the project's defaults (nutpie, 2 chains, 1,000 warm-up draws,
  sampling until the convergence gates pass or 6,000 draws, retry on failure), cache off;
- library: ``pymc_marketing.mmm.MMM(dims=("geo",))`` with GeometricAdstock(l_max=8),
  LogisticSaturation, its default priors and ``fit()`` defaults, on the same X and y.

Each fit appends one JSON line (seconds, draws, convergence) to ``--out`` when it ends, and
the machine's load average at the start and end, since timings on a shared machine are
only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from attribution_analysis.api import fit_mmm, validate_data
from attribution_analysis.contracts.importing import ChannelColumns, ImportDataParams, ImportRoles
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig, SamplerSettings
from attribution_analysis.mmm.convergence import convergence_summary, passes_gates
from attribution_analysis.mmm.panel import load_model_data
from attribution_analysis.runner import run_step
from attribution_analysis.steps import step
from attribution_analysis.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from geo_world import GeoWorld, geo_panel

# --quick: the library's own default length for ours too (no sampling until the gates pass,
# no retry), so that both fits draw the same number of samples.
QUICK_SAMPLER = SamplerSettings(draws=1000, tune=1000, stop_at_gates=False)


def import_world(world: GeoWorld, root: Path) -> Workspace:
    ws = Workspace.create(root)
    roles = ImportRoles(
        date="date",
        geo="geo",
        target="sales",
        target_kind="revenue",
        channels={c: ChannelColumns(spend=f"spend_{c}") for c in world.channels},
        controls=world.controls,
    )
    params = ImportDataParams(
        content=world.table.to_csv(index=False), dry_run=False, roles=roles, country=None
    )
    run_step(step("import_data"), ws, params)
    validate_data(ws)
    return ws


def time_ours(ws: Workspace, seed: int, quick: bool) -> dict:
    params = FitMMMParams(seed=seed, use_cache=False)
    if quick:
        params = params.model_copy(update={"sampler": QUICK_SAMPLER, "retry": False})
    start = time.perf_counter()
    result = fit_mmm(ws, params)
    return {
        "model": "ours",
        "seconds": time.perf_counter() - start,
        "sampling_seconds": result.sampling_seconds,
        "draws_per_chain": result.draws_per_chain,
        "remedies": result.remedies_tried,
        "convergence": result.convergence,
    }


def fit_library(ws: Workspace, seed: int):
    """PyMC-Marketing's plain default geo MMM fitted on the table our fit models (same X and
    y): the model, its posterior tree and the seconds the fit took."""
    from mmm_accuracy import library_default

    config = MMMConfig()
    data = load_model_data(
        ws, None, config.use_trend, config.use_holidays, config.use_external_factors
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmm = library_default(data.channels, data.target, data.controls, dims=("geo",))
        tree = mmm.fit(
            data.X[["date", "geo", *data.channels, *data.controls]],
            data.y,
            random_seed=seed,
            progressbar=False,
        )
    return mmm, tree, time.perf_counter() - start


def time_library(ws: Workspace, seed: int, quick: bool) -> dict:
    _, tree, seconds = fit_library(ws, seed)
    summary = convergence_summary(tree)
    return {
        "model": "library",
        "seconds": seconds,
        "draws_per_chain": int(tree["posterior"].sizes["draw"]),
        "chains": int(tree["posterior"].sizes["chain"]),
        "gates": passes_gates(summary),
        "convergence": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--geos", type=int, default=50)
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", default="ours,library")
    parser.add_argument("--quick", action="store_true", help="1,000 draws for ours too")
    parser.add_argument("--out", type=Path, default=Path("geo_fit_time.jsonl"))
    args = parser.parse_args()
    world = geo_panel(args.seed, args.geos, args.weeks)
    with tempfile.TemporaryDirectory() as tmp:
        ws = import_world(world, Path(tmp) / "ws")
        for model in args.models.split(","):
            load_before = os.getloadavg()[0]
            record = (time_ours if model == "ours" else time_library)(ws, args.seed, args.quick)
            record |= {
                "geos": args.geos,
                "weeks": args.weeks,
                "seed": args.seed,
                "quick": args.quick,
                "cpus": os.cpu_count(),
                "load_start": load_before,
                "load_end": os.getloadavg()[0],
            }
            with args.out.open("a") as out:
                out.write(json.dumps(record, default=str) + "\n")
            print(json.dumps(record, default=str), flush=True)


if __name__ == "__main__":
    main()
