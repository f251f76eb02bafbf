"""A portfolio of MMMs: ``fit_many`` on a LocalCluster against fitting one after another.

    python benchmarks/scale_portfolio.py [--members 8] [--workers 2] [--weeks 52]
        [--channels 2] [--draws 100] [--tune 100] [--cold]

The same portfolio is fitted twice, each time in a fresh Python process, on its own copy of
the member workspaces (so neither finds the other's fit in the fit cache). Both use this
machine's PyTensor/Numba disk caches as they are (a machine that has fitted before); with
``--cold`` each arm gets its own empty cache (a first run on a new machine: the compile then
dominates, about 20 s of CPU per compile on an idle machine):

- one after another: ``fit_mmm`` on each member in turn, in one process (the compiled model
  is reused from the second member on: the best a single process can do);
- portfolio: ``fit_many`` with a LocalCluster of ``--workers`` worker processes (each worker
  compiles the model once and reuses it for the members it fits).

Members: ``simulate_workspace`` MMM worlds of one structure (weeks x channels), data seeds
101, 102, ..., validated once before timing. Every fit is NUTS (nutpie) with a fixed number
of draws (``--draws``/``--tune`` per chain, 2 chains; no early stop, no retry, no ridge
fallback), so both arms do the same sampling work. Timed: wall seconds of each process,
imports and cluster start included, and each member's seconds and compile reuse. Prints
one JSON object with ``status``.

Measured 2026-12-03 on the 2-core development machine shared with other work (load average
15-20), the defaults above, warm caches: one after another 205 s (first member 131 s, the
other seven 7.6-11.9 s each, compile reused); portfolio on 2 workers 337 s (each worker's
first member 251-260 s, then 15-22 s each, compile reused): ratio 0.61. With no free core,
two workers pay the first-fit cost twice and split the same CPU, so a portfolio gains only
where each worker has cores of its own (a fit samples 2 chains on 2 threads): more cores, or
workers on other machines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FIRST_SEED = 101


def fit_settings(draws: int, tune: int) -> dict[str, Any]:
    """fit_mmm's parameters for every member, in both arms."""
    return {
        "sampler": {"draws": draws, "tune": tune, "chains": 2, "stop_at_gates": False},
        "retry": False,
        "fallback_to_ridge": False,
        "use_cache": False,
    }


def build_members(root: Path, members: int, weeks: int, channels: int) -> list[str]:
    from attribution_analysis.api import simulate_workspace, validate_data
    from attribution_analysis.contracts.simulation import SimulationParams
    from attribution_analysis.workspace import Workspace

    names = []
    for index in range(members):
        name = f"member_{index + 1:02d}"
        params = SimulationParams(
            kind="mmm", seed=FIRST_SEED + index, weeks=weeks, channels=channels
        )
        simulate_workspace(root / name, params)
        validate_data(Workspace.open(root / name))
        names.append(name)
    return names


# ----- the two arms, each run in a fresh process --------------------------------------------
def one_after_another(root: Path, names: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    from attribution_analysis.contracts.mmm import FitMMMParams
    from attribution_analysis.steps import execute, step
    from attribution_analysis.workspace import Workspace

    params = FitMMMParams.model_validate(settings)
    rows = []
    for name in names:
        start = time.perf_counter()
        answer = execute(step("fit_mmm"), Workspace.open(root / name), params)
        rows.append(
            {
                "workspace": name,
                "seconds": round(time.perf_counter() - start, 2),
                "compile_reused": answer["compile_reused"],
                "for_decisions": answer["for_decisions"],
            }
        )
    return {"members": rows}


def portfolio(root: Path, names: list[str], settings: dict[str, Any], workers: int):
    from attribution_analysis.contracts.portfolio import FitManyParams
    from attribution_analysis.steps import execute, step
    from attribution_analysis.workspace import Workspace

    params = FitManyParams.model_validate({**settings, "workspaces": names, "workers": workers})
    answer = execute(step("fit_many"), Workspace.open(root), params)
    rows = [
        {
            "workspace": m["workspace"],
            "status": m["status"],
            "seconds": m["seconds"],
            "compile_reused": m["compile_reused"],
            "for_decisions": m["for_decisions"],
            "worker": m["worker"],
            "error": (m["error"] or {}).get("message"),
        }
        for m in answer["members"]
    ]
    return {"members": rows, "workers": answer["workers"]}


def _arm(
    arm: str, root: Path, names: list[str], settings: dict[str, Any], workers: int, cold: bool
) -> dict[str, Any]:
    """Run one arm in a fresh process (``cold``: with empty compile caches): its result and
    the process's wall seconds."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cache = tempfile.mkdtemp(prefix=f"portfolio-{arm}-compile-") if cold else None
    if cache is not None:
        env.update({"PYTENSOR_FLAGS": f"base_compiledir={cache}", "NUMBA_CACHE_DIR": cache})
    request = json.dumps(
        {"arm": arm, "root": str(root), "names": names, "settings": settings, "workers": workers}
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--arm", request],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"{arm} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(seconds, 1)
    print(json.dumps({arm: result}), file=sys.stderr, flush=True)  # kept if a later arm fails
    return result


def _run_arm(request: dict[str, Any]) -> None:
    root, names, settings = Path(request["root"]), request["names"], request["settings"]
    if request["arm"] == "one_after_another":
        result = one_after_another(root, names, settings)
    else:
        result = portfolio(root, names, settings, request["workers"])
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--tune", type=int, default=100)
    parser.add_argument("--cold", action="store_true", help="empty compile caches per arm")
    parser.add_argument("--arm", help=argparse.SUPPRESS)  # internal: one arm, in its process
    args = parser.parse_args()
    if args.arm:
        _run_arm(json.loads(args.arm))
        return
    settings = fit_settings(args.draws, args.tune)
    with tempfile.TemporaryDirectory(prefix="portfolio-bench-") as tmp:
        base = Path(tmp) / "members"
        names = build_members(base, args.members, args.weeks, args.channels)
        roots = {arm: Path(tmp) / arm for arm in ("one_after_another", "portfolio")}
        for root in roots.values():
            shutil.copytree(base, root)
        results = {
            arm: _arm(arm, root, names, settings, args.workers, args.cold)
            for arm, root in roots.items()
        }
    sequential = results["one_after_another"]["process_seconds"]
    parallel = results["portfolio"]["process_seconds"]
    print(
        json.dumps(
            {
                "status": "ok",
                "data": f"{args.members} simulated MMM workspaces, {args.weeks} weeks x "
                f"{args.channels} channels, seeds {FIRST_SEED}..{FIRST_SEED + args.members - 1}",
                "fit": settings,
                "compile_caches": "empty per arm" if args.cold else "this machine's, as found",
                "cpu_count": os.cpu_count(),
                "load_average_at_end": os.getloadavg(),
                "one_after_another": results["one_after_another"],
                "portfolio": results["portfolio"],
                "speedup": round(sequential / parallel, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
