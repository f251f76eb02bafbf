"""Time the EM allocation engine on a large synthetic HCP-brick-like problem.

    python benchmarks/allocation.py [--rows 10000000] [--rounds 5]

The problem is drawn from the engine's own model (as the hcp-brick simulator does, at scale):
groups of ~10 entities drawn at random from a pool of rows/50 entities (so each entity is in
~50 groups), exposures ~ Gamma(2, 1), rates ~ LogNormal(0, 0.5), totals y ~ Poisson(mu).

Prints, all from this one run on this machine:

* seconds and EM passes to relative tolerance 1e-8, free Poisson rates, with and without
  SQUAREM (passes saved by acceleration);
* seconds per EM pass against a memory-bandwidth reference (one plain numpy pass reading the
  same three long arrays once: exposure float64, group and entity codes int32) and against
  one iteration of a straightforward pandas groupby implementation of the same EM, timed in
  interleaved rounds so that a shared machine's load hits all three alike.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.problem import problem_from_arrays

ROWS_PER_GROUP = 10
GROUPS_PER_ENTITY = 50
TOL = 1e-8


def make_problem(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_groups = rows // ROWS_PER_GROUP
    n_entities = max(rows // GROUPS_PER_ENTITY, 2)
    group = np.repeat(np.arange(n_groups, dtype=np.int32), ROWS_PER_GROUP)
    entity = rng.integers(0, n_entities, size=len(group), dtype=np.int32)
    # Drop repeated (group, entity) draws: the engine takes one row per pair.
    key = group.astype(np.int64) * n_entities + entity
    keep = np.ones(len(key), dtype=bool)
    order = np.argsort(key, kind="stable")
    keep[order[1:][np.diff(key[order]) == 0]] = False
    group, entity = group[keep], entity[keep]
    exposure = rng.gamma(2.0, 1.0, size=len(group))
    rate = rng.lognormal(0.0, 0.5, size=n_entities)
    mean = np.bincount(group, rate[entity] * exposure, n_groups)
    totals = rng.poisson(mean).astype(float)
    return problem_from_arrays(totals, group, entity, exposure, n_entities)


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def pandas_iteration(frame: pd.DataFrame, exposure: pd.Series, rate: pd.Series) -> pd.Series:
    """One EM iteration written the textbook pandas way (map + groupby)."""
    frame["lw"] = frame["e"].map(rate) * frame["w"]
    mean = frame.groupby("g")["lw"].transform("sum")
    frame["z"] = frame["y"] * frame["lw"] / mean
    return frame.groupby("e")["z"].sum() / exposure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    args = parser.parse_args()

    start = time.perf_counter()
    problem = make_problem(args.rows)
    print(
        f"problem: {problem.n_rows:,} rows, {problem.n_groups:,} groups, "
        f"{problem.n_entities:,} entities (drawn in {time.perf_counter() - start:.1f} s)"
    )
    start = time.perf_counter()
    _ = problem.matrix
    print(f"sparse matrix built in {time.perf_counter() - start:.2f} s")

    fits = {}
    for label, accelerate in (("SQUAREM", True), ("plain EM", False)):
        start = time.perf_counter()
        fit = fit_em(problem, tol=TOL, max_iter=100_000, accelerate=accelerate)
        fits[label] = fit
        print(
            f"{label:9s}: {time.perf_counter() - start:7.1f} s in all, {fit.iterations:6d} EM "
            f"passes ({fit.seconds:.1f} s), converged {fit.converged}, monotone {fit.monotone}, "
            f"mass error {fit.mass_error:.1e}, loglik {fit.loglik:.6f}"
        )

    # Per-pass cost against two references, measured in interleaved rounds so that all three
    # see the same machine load (this machine is shared): a plain numpy pass reading the same
    # three long arrays once, and one iteration of the textbook pandas implementation.
    frame = pd.DataFrame({"g": problem.group, "e": problem.entity, "w": problem.exposure})
    frame["y"] = problem.totals[problem.group]
    exposure = frame.groupby("e")["w"].sum()
    rate = pd.Series(1.0, index=exposure.index)
    megabytes = (problem.exposure.nbytes + problem.group.nbytes + problem.entity.nbytes) / 1e6
    rows = []
    for _ in range(args.rounds):
        reference = best_of(
            lambda: (problem.exposure.sum(), problem.group.sum(), problem.entity.sum())
        )
        passes = fit_em(problem, tol=1e-300, max_iter=30, accelerate=False)
        engine = passes.seconds / passes.iterations
        start = time.perf_counter()
        rate = pandas_iteration(frame, exposure, rate)
        rows.append((reference, engine, time.perf_counter() - start))
    table = pd.DataFrame(rows, columns=["reference", "engine", "pandas"])
    table["engine/reference"] = table["engine"] / table["reference"]
    table["pandas/engine"] = table["pandas"] / table["engine"]
    plain, fast = fits["plain EM"], fits["SQUAREM"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print()
    print(f"{'figure (median over interleaved rounds)':56s} {'value':>10s}")
    print(
        f"{'bandwidth reference: numpy pass over ' + f'{megabytes:.0f} MB':56s} "
        f"{table['reference'].median() * 1e3:8.1f} ms"
    )
    print(
        f"{'EM pass (2 sparse products + group/entity updates)':56s} "
        f"{table['engine'].median() * 1e3:8.1f} ms"
    )
    print(f"{'  EM pass / bandwidth reference':56s} {table['engine/reference'].median():9.2f}x")
    print(f"{'pandas groupby EM iteration':56s} {table['pandas'].median():9.2f} s")
    print(f"{'  pandas iteration / EM pass':56s} {table['pandas/engine'].median():9.1f}x")
    print(
        f"{'EM passes to tol 1e-8: plain / SQUAREM':56s} "
        f"{plain.iterations:>5d} / {fast.iterations:<4d}"
    )
    print(f"{'  passes saved by SQUAREM':56s} {plain.iterations / fast.iterations:9.1f}x")
    print(f"{'  iteration time saved by SQUAREM':56s} {plain.seconds / fast.seconds:9.1f}x")
    print(
        f"{'max |share difference| plain vs SQUAREM':56s} "
        f"{np.max(np.abs(plain.share - fast.share)):10.1e}"
    )
    print(f"{'peak resident memory':56s} {peak:8.2f} GB")


if __name__ == "__main__":
    main()
