"""Time Markov-chain attribution on a million journeys, against ChannelAttribution.

    python benchmarks/paths.py [--journeys 1000000] [--seed 11] [--ca-cores 1]

The journeys come from the project's simulator (``simulate --kind journeys``), written as
``raw/journeys.csv`` into a temporary workspace. Prints, all from this one run:

* seconds to load and validate the CSV into flat arrays, and to merge identical paths;
* seconds for first- and third-order Markov removal effects (exact sparse solves), from the
  loaded journeys and from the merged paths;
* seconds for 200 bootstrap replicates (linear heuristic and first-order Markov);
* the same models fitted by the ``channelattribution`` package (PyPI, GPL-3: an optional
  benchmark-only dependency, never imported by the project) on the same merged paths with its
  defaults (Monte Carlo walks), and the largest per-channel difference of the credit shares
  in percentage points (agreement target: <= 1 pp).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from attribution_analysis.paths import bootstrap
from attribution_analysis.paths.data import aggregate, path_strings
from attribution_analysis.paths.inputs import load_journeys
from attribution_analysis.paths.markov import chain_structure, fit_markov
from attribution_analysis.simulate.journeys import simulate_journeys
from attribution_analysis.workspace import Workspace, csv_bytes

TRACKED_SHARE = 0.8  # about 83% of simulated users leave at least one touch


def make_workspace(root: Path, journeys: int, seed: int) -> Workspace:
    rng = np.random.default_rng(seed)
    frame, _ = simulate_journeys(rng, int(journeys / TRACKED_SHARE), np.datetime64("2024-01-01"))
    ids = frame["journey_id"].unique()[:journeys]
    frame = frame[frame["journey_id"].isin(ids)]
    ws = Workspace.create(root)
    ws.commit({"raw/journeys.csv": csv_bytes(frame, float_format="%.2f")})
    return ws


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def channelattribution_fit(paths: pd.DataFrame, order: int, cores: int):
    try:
        import ChannelAttribution as ca  # optional, GPL: benchmark only
    except ImportError:
        return None, None
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        result, seconds = timed(
            ca.markov_model,
            paths,
            "path",
            "conversions",
            var_null="nulls",
            order=order,
            ncore=cores,
            verbose=False,
            flg_pro=False,
        )
    frame = result if isinstance(result, pd.DataFrame) else result["result"]
    return frame.set_index("channel_name")["total_conversions"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--ca-cores", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws, t_sim = timed(make_workspace, Path(tmp), args.journeys, args.seed)
        loaded, t_load = timed(load_journeys, ws)
    data = loaded.data
    (merged, inverse), t_merge = timed(aggregate, data)
    print(
        f"{data.n_units:,} journeys, {len(data.touch_channel):,} touches, "
        f"{merged.n_units:,} distinct paths, {len(data.channels)} channels "
        f"(simulated and written in {t_sim:.1f} s)"
    )
    print(f"load + validate journeys.csv: {t_load:.2f} s; merge identical paths: {t_merge:.2f} s")
    ca_paths = pd.DataFrame(
        {
            "path": path_strings(merged).to_numpy(),
            "conversions": merged.conversions,
            "nulls": merged.nulls,
        }
    )
    rows = []
    for order in (1, 3):
        fit_j, t_journeys = timed(fit_markov, data, order)
        fit_p, t_paths = timed(fit_markov, merged, order)
        ours = pd.Series(fit_p.conversions, index=data.channels)
        assert np.allclose(fit_j.conversions, fit_p.conversions)
        theirs, t_ca = channelattribution_fit(ca_paths, order, args.ca_cores)
        if theirs is None:
            gap = None
        else:
            share_ours = ours / ours.sum()
            share_ca = theirs.reindex(ours.index).fillna(0.0)
            share_ca = share_ca / share_ca.sum()
            gap = float((share_ours - share_ca).abs().max() * 100)
            print(
                pd.DataFrame({"ours": share_ours, "channelattribution": share_ca})
                .mul(100)
                .round(2)
                .rename_axis(f"order {order}, share %")
            )
        rows.append(
            {
                "order": order,
                "states": fit_p.n_states,
                "ours from journeys s": round(t_journeys, 2),
                "ours from paths s": round(t_paths, 2),
                "channelattribution s": None if t_ca is None else round(t_ca, 2),
                "max share gap pp": None if gap is None else round(gap, 3),
            }
        )
    share_fns = {
        "linear": bootstrap.linear_share_fn(
            bootstrap.heuristic_weights(data, inverse, merged.n_units, "linear")
        )
    }
    chain = chain_structure(merged, 1)
    _, t_boot = timed(bootstrap.bootstrap, merged, share_fns, chain, 200, 0)
    print(
        f"bootstrap, 200 replicates (linear + Markov order 1 with removal effects): {t_boot:.2f} s"
    )
    table = pd.DataFrame(rows).set_index("order")
    print(table.to_string())
    if table["channelattribution s"].isna().all():
        print("channelattribution is not installed: `pip install channelattribution` to compare")


if __name__ == "__main__":
    main()
