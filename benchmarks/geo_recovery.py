"""Per-geo and national recovery of the project's geo MMM on ``benchmarks/geo_world.py``.

    python benchmarks/geo_recovery.py [--seeds 1 2 3] [--geos 20] [--weeks 104]
        [--draws 1000] [--out results.jsonl]

The same path and settings as the slow test ``tests/mmm/test_geo_recovery.py`` (import with
the geo role -> validate -> fit -> validate_model -> decompose; 1,000 draws after 1,000
warm-up per chain, no retry, no ridge fallback), one seed at a time, so that seeds can be run
apart on a busy machine. Each seed appends one JSON line: coverage per geo and nationally,
per channel, the national intervals beside the truth, convergence and seconds.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "mmm"))

from geo_world import geo_panel  # noqa: E402
from test_geo_recovery import recover  # noqa: E402

from attribution_analysis.contracts.mmm import FitMMMParams, SamplerSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--geos", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    params = FitMMMParams(
        use_cache=False,
        retry=False,
        fallback_to_ridge=False,
        sampler=SamplerSettings(draws=args.draws, tune=args.draws, stop_at_gates=False),
    )
    for seed in args.seeds:
        world = geo_panel(seed, args.geos, args.weeks)
        load_start = os.getloadavg()[0]
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            rec = recover(world, Path(tmp) / "ws", seed, params)
        seconds = time.perf_counter() - start
        geo = rec.geo.assign(
            inside=(rec.geo["low"] <= rec.geo["truth"]) & (rec.geo["truth"] <= rec.geo["high"])
        )
        national = rec.national.assign(
            inside=(rec.national["low"] <= rec.national["truth"])
            & (rec.national["truth"] <= rec.national["high"])
        )
        line = {
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
