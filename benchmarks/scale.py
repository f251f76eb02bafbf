"""Scaling benchmark (issue #21): allocation EM and journey counts on Dask, out of core.

    python benchmarks/scale.py [--rows 200000000] [--compare-rows 10000000]
                               [--journeys 50000000] [--workdir /tmp/scale-bench]
                               [--out benchmarks/results/scale.json] [--skip ...]

Needs the ``[scale]`` extra (dask, distributed, pyarrow). Sections:

* ``compare``: allocation EM at ``--compare-rows`` (default 10M) rows, the in-memory engine
  (``em.fit_em``, free rates) against the Dask engine on a LocalCluster with 1 and with 2
  workers reading the Parquet partitions on every pass: seconds, EM passes, peak memory, and
  the largest difference of the rates and entity credits to the in-memory fit.
* ``out_of_core``: allocation EM at ``--rows`` (the issue asks 200M under 4 GB) on a
  LocalCluster of 2 workers with a memory limit each, out of core: seconds, passes, peak
  memory of the whole cluster.
* ``journeys``: ``--journeys`` touch-level journeys in weekly Parquet partitions (journeys
  cross partitions) counted into a path table on Dask (shuffle by journey, groupby-sum of
  paths): seconds, peak memory, distinct paths.
* ``portfolio``: fit_many's section lives in benchmarks/scale_portfolio.py (its own script);
  this one runs it with ``--portfolio`` and adds its JSON under "portfolio".

Tables are generated in chunks with pyarrow (never whole in memory) under ``--workdir`` and
kept there between runs (a second run with the same sizes reuses them). Every measurement
runs in a fresh child process; peak memory is the largest sum, over the child and every
process it started (the Dask workers and nannies), of the resident set sizes sampled every
0.2 s with psutil, plus the child's own ru_maxrss. Results go to ``--out`` as JSON and are
printed as a table.

The allocation world: ``ENTITIES`` entities with log-normal true rates (sd 0.5), groups of
20-80 entities (each group whole in one partition, 2.5M rows a file), Gamma(2, 1) exposures,
Poisson totals around sum rate x exposure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ENTITIES = 20_011  # prime: entity j of group g is (offset_g + j * step_g) mod ENTITIES
ROWS_PER_FILE = 2_500_000
GROUP_SIZE = (20, 80)
TOL = 1e-8
WORKER_MEMORY = "1.5GiB"  # per worker in the out-of-core run: 2 workers + client < 4 GB
CHANNELS = ["display", "email", "search", "social", "video", "affiliate", "tv", "radio"]
JOURNEYS_PER_FILE = 1_000_000


# ----- data ---------------------------------------------------------------------------------
def allocation_table(folder: Path, rows: int, seed: int = 21) -> tuple[Path, Path]:
    """Write the long table (one Parquet file per ~2.5M rows, groups whole in a file) and the
    totals; reuse them when a previous run wrote the same size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pairs, totals_file = folder / "pairs", folder / "totals.parquet"
    done = folder / "done.json"
    if done.is_file() and json.loads(done.read_text()).get("rows") == rows:
        return pairs, totals_file
    pairs.mkdir(parents=True, exist_ok=True)
    for old in pairs.glob("*.parquet"):
        old.unlink()
    rate = np.exp(np.random.default_rng(seed).normal(0.0, 0.5, ENTITIES))
    written, next_group, number = 0, 0, 0
    totals_writer = None
    while written < rows:
        rng = np.random.default_rng([seed, number])
        target = min(ROWS_PER_FILE, rows - written)
        sizes = rng.integers(GROUP_SIZE[0], GROUP_SIZE[1] + 1, size=target // 20 + 1)
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), target) + 1]
        sizes[-1] -= int(sizes.sum()) - target
        sizes = sizes[sizes > 0]
        n_groups = len(sizes)
        local = np.repeat(np.arange(n_groups), sizes)
        position = np.arange(target) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        offset = rng.integers(0, ENTITIES, size=n_groups)
        step = rng.integers(1, ENTITIES, size=n_groups)
        entity = ((offset[local] + position * step[local]) % ENTITIES).astype(np.int32)
        exposure = rng.gamma(2.0, 1.0, size=target)
        mean = np.bincount(local, rate[entity] * exposure, n_groups)
        group = (next_group + local).astype(np.int64)
        table = pa.table({"group": group, "entity": entity, "exposure": exposure})
        pq.write_table(table, pairs / f"part-{number:05d}.parquet", row_group_size=500_000)
        totals = pa.table(
            {
                "group": np.arange(next_group, next_group + n_groups, dtype=np.int64),
                "total": rng.poisson(mean).astype(float),
            }
        )
        if totals_writer is None:
            totals_writer = pq.ParquetWriter(totals_file, totals.schema)
        totals_writer.write_table(totals)
        written += target
        next_group += n_groups
        number += 1
    if totals_writer is not None:
        totals_writer.close()
    done.write_text(json.dumps({"rows": rows}))
    return pairs, totals_file


def journey_table(folder: Path, journeys: int, seed: int = 31) -> Path:
    """Touch-level journeys (1-6 touches over up to 3 weeks, 4% converting) written by the
    ISO week of the touch, so journeys cross partitions as exports do; chunks of 1M journeys."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = folder / "journeys"
    done = folder / "journeys_done.json"
    if done.is_file() and json.loads(done.read_text()).get("journeys") == journeys:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.parquet"):
        old.unlink()
    start = np.datetime64("2026-01-05T00:00:00", "s")
    made, chunk = 0, 0
    while made < journeys:
        rng = np.random.default_rng([seed, chunk])
        n = min(JOURNEYS_PER_FILE, journeys - made)
        length = rng.integers(1, 7, size=n)
        journey = np.repeat(np.arange(made, made + n), length)
        first = rng.integers(0, 52 * 7 * 86_400, size=n)
        offsets = rng.integers(0, 21 * 86_400, size=len(journey))
        times = start + (first[journey - made] + offsets).astype("timedelta64[s]")
        channel = np.array(CHANNELS)[rng.integers(0, len(CHANNELS), size=len(journey))]
        converted = (rng.random(n) < 0.04).astype(np.int8)[journey - made]
        week = ((times - start).astype("timedelta64[D]").astype(np.int64) // 7).astype(np.int64)
        for w in np.unique(week):
            keep = week == w
            table = pa.table(
                {
                    "journey_id": np.char.add("u", journey[keep].astype(str)),
                    "timestamp": times[keep],
                    "channel": channel[keep],
                    "converted": converted[keep],
                }
            )
            pq.write_table(table, out / f"chunk-{chunk:04d}-week-{w:03d}.parquet")
        made += n
        chunk += 1
    done.write_text(json.dumps({"journeys": journeys}))
    return out


# ----- measurements (each in a child process) ----------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_memory_engine(pairs: str, totals: str) -> dict[str, Any]:
    import pandas as pd

    from attribution_analysis.allocation.em import fit_em
    from attribution_analysis.allocation.problem import build_problem

    started = time.perf_counter()
    frame = pd.read_parquet(pairs)
    problem = build_problem(pd.read_parquet(totals), frame)
    del frame
    loaded = time.perf_counter() - started
    fit = fit_em(problem, family="poisson", pooling="none", tol=TOL)
    credit = np.bincount(problem.entity, fit.allocated, problem.n_entities)
    return {
        "engine": "memory",
        "seconds_total": time.perf_counter() - started,
        "seconds_load": loaded,
        "seconds_em": fit.seconds,
        "passes": fit.iterations,
        "converged": fit.converged,
        "mass_error": fit.mass_error,
        "entities": [int(x) for x in problem.entity_labels],  # int labels, maybe as text
        "rate": [float(x) for x in fit.rate],
        "credit": [float(x) for x in credit],
    }


def run_dask_engine(pairs: str, totals: str, workers: int, memory_limit: str | None):
    from attribution_analysis.allocation.distributed import fit_em_dask
    from attribution_analysis.cluster import dask_client

    started = time.perf_counter()
    with dask_client(
        None, n_workers=workers, threads_per_worker=1, memory_limit=memory_limit
    ) as client:
        ready = time.perf_counter() - started
        fit = fit_em_dask(pairs, totals, client, family="poisson", tol=TOL)
    return {
        "engine": f"dask, {workers} worker(s)",
        "seconds_total": time.perf_counter() - started,
        "seconds_cluster_start": ready,
        "seconds_em": fit.seconds,
        "passes": fit.iterations,
        "setup_passes": fit.setup_passes + 1,  # + the final allocation pass
        "converged": fit.converged,
        "mass_error": fit.mass_error,
        "rows": fit.n_rows,
        "partitions": len(fit.files),
        "entities": [int(x) for x in fit.entity_labels],
        "rate": [float(x) for x in fit.rate],
        "credit": [float(x) for x in fit.entity_credit],
    }


def run_journeys(folder: str, workers: int, memory_limit: str | None) -> dict[str, Any]:
    """Count on Dask (``workers`` > 0), or in pandas in this process (``workers`` = 0)."""
    from attribution_analysis.cluster import dask_client
    from attribution_analysis.paths.distributed import count_paths

    started = time.perf_counter()
    if workers == 0:
        counted = count_paths(folder, threshold=1, engine="memory")
    else:
        with dask_client(
            None, n_workers=workers, threads_per_worker=1, memory_limit=memory_limit
        ) as client:
            counted = count_paths(folder, client=client, threshold=1, engine="dask")
    return {
        "engine": f"dask, {workers} worker(s)" if workers else "memory (pandas)",
        "seconds_total": time.perf_counter() - started,
        "touches": counted.n_touches,
        "journeys": counted.n_journeys,
        "paths": len(counted.table),
        "partitions": len(counted.files),
        "conversions": float(counted.table["conversions"].sum()),
    }


def child(spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec.pop("kind")
    result = {
        "memory": run_memory_engine,
        "dask": run_dask_engine,
        "journeys": run_journeys,
    }[kind](**spec)
    result["child_ru_maxrss_mb"] = _peak_rss_mb()
    return result


def measure(spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run ``spec`` in a fresh process; sample the RSS of it and its descendants."""
    import psutil

    process = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = 0.0
    cpu: dict[int, float] = {}  # last CPU seconds seen per process of the tree
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(process.pid)
        while not stop.is_set():
            try:
                family = [parent, *parent.children(recursive=True)]
                total = 0
                for p in family:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                        times = p.cpu_times()
                        cpu[p.pid] = times.user + times.system
                peak = max(peak, total / 2**20)
            except psutil.Error:
                return
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate(timeout=timeout)
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{spec} failed with exit code {process.returncode}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb_all_processes"] = peak
    # CPU seconds of the whole tree (to the last 0.2 s sample): on a shared machine the wall
    # time depends on the neighbours' load, the CPU time much less.
    result["cpu_seconds_all_processes"] = sum(cpu.values())
    return result


def _difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Largest differences of rates (on the rates' scale) and credits (relative to the
    total) between two fits of the same table."""
    order_a = np.argsort(np.array(a["entities"]))
    order_b = np.argsort(np.array(b["entities"]))
    assert np.array_equal(np.sort(a["entities"]), np.sort(b["entities"]))
    ra = np.array(a["rate"], dtype=float)[order_a]
    rb = np.array(b["rate"], dtype=float)[order_b]
    ca, cb = np.array(a["credit"])[order_a], np.array(b["credit"])[order_b]
    both = np.isfinite(ra) & np.isfinite(rb)
    return {
        "max_rate_diff_over_max_rate": float(np.max(np.abs(ra - rb)[both]) / np.max(rb[both])),
        "max_rate_rel_diff_rates_above_1e-6": float(
            np.max((np.abs(ra - rb) / rb)[both & (rb > 1e-6)])
        ),
        "max_credit_diff_over_total": float(np.max(np.abs(ca - cb)) / cb.sum()),
    }


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("entities", "rate", "credit")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000_000)
    parser.add_argument("--compare-rows", type=int, default=10_000_000)
    parser.add_argument("--journeys", type=int, default=50_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/scale-bench"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["compare", "out_of_core", "journeys"]
    )
    parser.add_argument(
        "--journeys-in-memory",
        action="store_true",
        help="also count the journeys in pandas in one process (the in-memory peer)",
    )
    parser.add_argument("--portfolio", action="store_true", help="run scale_portfolio.py too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "tol": TOL}
    if "compare" not in args.skip:
        pairs, totals = allocation_table(
            args.workdir / f"alloc-{args.compare_rows}", args.compare_rows
        )
        base = {"pairs": str(pairs), "totals": str(totals)}
        memory = measure({"kind": "memory", **base})
        runs = [_strip(memory)]
        results["compare"] = {"rows": args.compare_rows, "runs": runs}
        _save(args.out, results)
        for workers in (1, 2):
            fit = measure({"kind": "dask", "workers": workers, "memory_limit": None, **base})
            runs.append({**_strip(fit), **_difference(fit, memory)})
            _save(args.out, results)
    if "out_of_core" not in args.skip:
        pairs, totals = allocation_table(args.workdir / f"alloc-{args.rows}", args.rows)
        spec = {"pairs": str(pairs), "totals": str(totals)}
        fit = measure({"kind": "dask", "workers": 2, "memory_limit": WORKER_MEMORY, **spec})
        results["out_of_core"] = {
            "rows": args.rows,
            "worker_memory_limit": WORKER_MEMORY,
            **_strip(fit),
        }
        _save(args.out, results)
    if "journeys" not in args.skip:
        folder = journey_table(args.workdir / f"journeys-{args.journeys}", args.journeys)
        counted = measure(
            {"kind": "journeys", "folder": str(folder), "workers": 2, "memory_limit": WORKER_MEMORY}
        )
        results["journeys"] = {"journeys_generated": args.journeys, **counted}
        _save(args.out, results)
        if args.journeys_in_memory:
            pandas_count = measure(
                {"kind": "journeys", "folder": str(folder), "workers": 0, "memory_limit": None}
            )
            results["journeys_in_memory"] = {"journeys_generated": args.journeys, **pandas_count}
            _save(args.out, results)
    if args.portfolio:
        # fit_many's section: its own script (benchmarks/scale_portfolio.py) and JSON.
        script = Path(__file__).with_name("scale_portfolio.py")
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        results["portfolio"] = {"exit_code": done.returncode, "output_tail": done.stdout[-4000:]}
        _save(args.out, results)
    _print(results)


def _save(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))


def _print(results: dict[str, Any]) -> None:
    rows = []
    if "compare" in results:
        for run in results["compare"]["runs"]:
            rows.append((f"EM {results['compare']['rows']:,} rows", run))
    if "out_of_core" in results:
        rows.append(
            (f"EM {results['out_of_core']['rows']:,} rows, out of core", results["out_of_core"])
        )
    for key in ("journeys", "journeys_in_memory"):
        if key in results:
            rows.append((f"journeys {results[key]['journeys']:,}", results[key]))
    print(
        f"{'case':<36} {'engine':<20} {'seconds':>9} {'CPU s':>8} {'passes':>7} "
        f"{'peak MB':>9} {'max diff':>10}"
    )
    for label, run in rows:
        diff = run.get("max_credit_diff_over_total")
        print(
            f"{label:<36} {run['engine']:<20} {run['seconds_total']:>9.1f} "
            f"{run.get('cpu_seconds_all_processes', float('nan')):>8.1f} "
            f"{run.get('passes', ''):>7} {run['peak_rss_mb_all_processes']:>9.0f} "
            f"{'' if diff is None else f'{diff:.1e}':>10}"
        )


if __name__ == "__main__":
    main()
