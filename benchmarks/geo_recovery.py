"""Per-geo and national recovery of the project's geo MMM on ``benchmarks/geo_world.py``.

    python benchmarks/geo_recovery.py [--seeds 1 2 3] [--geos 20] [--weeks 104]
        [--draws 1000] [--models ours,library] [--config FILE.json] [--out results.jsonl]

ours: the same path and settings as the slow test ``tests/mmm/test_geo_recovery.py``
(import with the geo role -> validate -> fit -> validate_model -> decompose; 1,000 draws
after 1,000 warm-up per chain, no retry, no ridge fallback), one seed at a time, so that
seeds can be run apart on a busy machine.

library: the plain peer in the same run, on the same prepared table: PyMC-Marketing's
default ``MMM(dims=("geo",))`` (``mmm_accuracy.library_default``: geometric adstock,
logistic saturation, its own priors and scaling) with ``fit()``'s defaults, its per-geo
totals read from its own ``channel_contribution`` times its own target scale, scored the
same way (90% HDI of the draws' window totals).

Each (seed, model) appends one JSON line: coverage per geo and nationally, per channel,
the national intervals beside the truth, convergence and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "mmm"))

from geo_fit_time import fit_library, import_world  # noqa: E402
from geo_world import GeoWorld, geo_panel  # noqa: E402
from test_geo_recovery import Recovery, cell_intervals, recover, with_truth  # noqa: E402

from attribution_analysis.contracts.mmm import (  # noqa: E402
    FitMMMParams,
    MMMConfig,
    SamplerSettings,
)
from attribution_analysis.mmm.convergence import convergence_summary  # noqa: E402
from attribution_analysis.mmm.loaded import target_scale_of  # noqa: E402
from attribution_analysis.summaries import interval  # noqa: E402


def recover_library(world: GeoWorld, root: Path, seed: int) -> Recovery:
    """PyMC-Marketing's plain default geo fit on the table our fit models, lined up with the
    truth like ours (``test_geo_recovery.recover``)."""
    mmm, tree, seconds = fit_library(import_world(world, root), seed)
    # The library's own scale back to the outcome's units: one number, or one per geo.
    contribution = tree["posterior"].to_dataset()["channel_contribution"] * target_scale_of(
        mmm.model
    )
    totals = contribution.sum("date").stack(sample=("chain", "draw"))
    geo = with_truth(cell_intervals(totals), world)
    national_rows = []
    for channel in totals["channel"].values:
        summary = interval(totals.sel(channel=channel).sum("geo").values)
        national_rows.append(
            (str(channel), world.national_contribution[str(channel)], summary.mean, *summary.hdi_90)
        )
    national = pd.DataFrame(national_rows, columns=["channel", "truth", "mean", "low", "high"])
    summary = convergence_summary(tree)
    fit = {
        **summary,
        "draws_per_chain": int(tree["posterior"].sizes["draw"]),
        "wall_seconds": seconds,
    }
    return Recovery(geo, national, fit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--geos", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--models", default="ours", help="ours and/or library, comma-separated")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="an MMMConfig as JSON for our fit (e.g. a prior to compare with the default)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    config = MMMConfig.model_validate_json(args.config.read_text()) if args.config else MMMConfig()
    params = FitMMMParams(
        config=config,
        use_cache=False,
        retry=False,
        fallback_to_ridge=False,
        sampler=SamplerSettings(draws=args.draws, tune=args.draws, stop_at_gates=False),
    )
    for seed, model in [(s, m) for s in args.seeds for m in args.models.split(",")]:
        world = geo_panel(seed, args.geos, args.weeks)
        load_start = os.getloadavg()[0]
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            if model == "ours":
                rec = recover(world, Path(tmp) / "ws", seed, params)
            else:
                rec = recover_library(world, Path(tmp) / "ws", seed)
        seconds = time.perf_counter() - start
        geo = rec.geo.assign(
            inside=(rec.geo["low"] <= rec.geo["truth"]) & (rec.geo["truth"] <= rec.geo["high"])
        )
        national = rec.national.assign(
            inside=(rec.national["low"] <= rec.national["truth"])
            & (rec.national["truth"] <= rec.national["high"])
        )
        line = {
            "model": model,
            "config": str(args.config) if model == "ours" and args.config else "default",
            "seed": seed,
            "geos": args.geos,
            "weeks": args.weeks,
            "per_geo_coverage": float(geo["inside"].mean()),
            "per_geo_coverage_by_channel": geo.groupby("channel")["inside"].mean().to_dict(),
            # Halves by population: a scaling that treats small geos apart shows up here.
            "per_geo_coverage_by_size": geo.assign(
                half=np.where(
                    geo["geo"].map(world.population) <= world.population.median(),
                    "smaller",
                    "larger",
                )
            )
            .groupby("half")["inside"]
            .mean()
            .to_dict(),
            "misses_below": int(((~geo["inside"]) & (geo["high"] < geo["truth"])).sum()),
            "misses_above": int(((~geo["inside"]) & (geo["low"] > geo["truth"])).sum()),
            "national_coverage": float(national["inside"].mean()),
            "national": national.round(0).to_dict(orient="records"),
            "per_geo_coverage_at_1_5x_truth": rec.coverage(1.5)[0],
            "fit": rec.fit,
            "seconds": round(seconds, 1),
            "load_start_end": [load_start, os.getloadavg()[0]],
        }
        print(json.dumps(line, default=str), flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps(line, default=str) + "\n")


if __name__ == "__main__":
    main()
