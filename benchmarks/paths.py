"""Time Markov-chain attribution on a million journeys, against ChannelAttribution.

    python benchmarks/paths.py [--journeys 1000000] [--seed 11] [--ca-cores 1] [--ca-nsim 2e6]
    make bench-paths   # installs the optional `bench` extra (channelattribution) first

The journeys come from the project's simulator (``simulate --kind journeys``), written as
``raw/journeys.csv`` into a temporary workspace. Prints, all from this one run:

* seconds to load and validate the CSV into flat arrays, and to merge identical paths;
* seconds for first- and third-order Markov removal effects (exact sparse solves), from the
  loaded journeys and from the merged paths;
* seconds for 200 bootstrap replicates (linear heuristic and first-order Markov);
* the same models fitted by the ``channelattribution`` package (PyPI, GPL-3: the optional
  ``bench`` extra, never imported by the project) on the same merged paths, twice: with its
  defaults (``nsim_start`` = 1e5 simulated walks: its fastest setting, the one timed against
  ours) and with ``--ca-nsim`` walks (default 2e6), whose Monte Carlo error is small enough
  for the agreement check;
* PASS / FAIL of the two targets: the largest per-channel difference of the credit shares
  <= 1 percentage point (against the ``--ca-nsim`` run), and ours from the merged paths at
  least as fast as channelattribution with its defaults on the same merged paths.

Measured (2 shared cores, 1M journeys): channelattribution's share gap to the exact solve
falls from about 0.5 pp (order 1) and 0.35 pp (order 3) at 1e5 walks to 0.23 and 0.12 pp at
2e6 (0.16-0.22 and 0.09-0.18 at 5e6), for 0.4-0.6 s instead of 0.15-0.6 s; 2e6 is the
default because more walks buy little agreement for twice the time.
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
CA_DEFAULT_NSIM = 1e5  # channelattribution's own default nsim_start
AGREEMENT_PP = 1.0  # target: per-channel share gap to channelattribution, percentage points


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


def channelattribution_fit(paths: pd.DataFrame, order: int, cores: int, nsim: float):
    quiet = io.StringIO()
    # The package prints a banner on import and progress while it runs: keep stdout ours.
    with contextlib.redirect_stdout(quiet):
        try:
            import ChannelAttribution as ca  # optional, GPL: benchmark only
        except ImportError:
            return None, None
        result, seconds = timed(
            ca.markov_model,
            paths,
            "path",
            "conversions",
            var_null="nulls",
            order=order,
            nsim_start=nsim,
            ncore=cores,
            verbose=False,
            flg_pro=False,
        )
    frame = result if isinstance(result, pd.DataFrame) else result["result"]
    return frame.set_index("channel_name")["total_conversions"], seconds


def share_gap(ours: pd.Series, theirs: pd.Series) -> tuple[float, pd.Series]:
    """Largest per-channel share difference (percentage points) and their shares."""
    share_ours = ours / ours.sum()
    share_ca = theirs.reindex(ours.index).fillna(0.0)
    share_ca = share_ca / share_ca.sum()
    return float((share_ours - share_ca).abs().max() * 100), share_ca


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--ca-cores", type=int, default=1)
    parser.add_argument(
        "--ca-nsim",
        type=float,
        default=2e6,
        help="channelattribution nsim_start for the agreement check (its default is 1e5)",
    )
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
        row = {
            "order": order,
            "states": fit_p.n_states,
            "ours from journeys s": round(t_journeys, 2),
            "ours from paths s": round(t_paths, 3),
        }
        default, t_default = channelattribution_fit(ca_paths, order, args.ca_cores, CA_DEFAULT_NSIM)
        precise, t_precise = channelattribution_fit(ca_paths, order, args.ca_cores, args.ca_nsim)
        if default is not None and precise is not None:
            gap_default, _ = share_gap(ours, default)
            gap, share_ca = share_gap(ours, precise)
            print(
                pd.DataFrame(
                    {"ours": ours / ours.sum(), f"channelattribution {args.ca_nsim:g}": share_ca}
                )
                .mul(100)
                .round(2)
                .rename_axis(f"order {order}, share %")
            )
            row.update(
                {
                    "CA defaults s": round(t_default, 2),
                    f"CA {args.ca_nsim:g} walks s": round(t_precise, 2),
                    "gap at defaults pp": round(gap_default, 3),
                    f"gap at {args.ca_nsim:g} pp": round(gap, 3),
                }
            )
        rows.append(row)
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
    if "CA defaults s" not in table:
        print(
            "channelattribution is not installed: `make bench-paths` (or `pip install -e "
            "'.[bench]'`) to compare"
        )
        return
    gap_column = f"gap at {args.ca_nsim:g} pp"
    print("targets (speed on the merged paths; end to end from the loaded journeys shown apart):")
    for order, row in table.iterrows():
        gap = row[gap_column]
        print(
            f"  order {order}: agreement {gap:.3f} pp <= {AGREEMENT_PP:g} pp "
            f"(channelattribution {args.ca_nsim:g} walks): {verdict(gap <= AGREEMENT_PP)}"
        )
        ours, theirs = row["ours from paths s"], row["CA defaults s"]
        end_to_end = row["ours from journeys s"]
        print(
            f"  order {order}: speed, ours {ours:.3f} s vs channelattribution {theirs:.2f} s "
            f"(its defaults), both from the {merged.n_units:,} merged paths: "
            f"{verdict(ours <= theirs)} (end to end from the {data.n_units:,} loaded journeys, "
            f"not part of the target: ours {end_to_end:.2f} s)"
        )


if __name__ == "__main__":
    main()
