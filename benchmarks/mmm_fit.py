"""Time to a trustworthy answer through the MCP server, next to PyMC-Marketing's default fit.

    python benchmarks/mmm_fit.py [--weeks 156] [--channels 4] [--seed 1] [--world NAME]

What a user of the server waits for, measured the way they meet it: a real MCP client (the
``mcp`` SDK's stdio client) starts the server, and ``fit_mmm`` is called with its defaults
(stop at the gates with a margin, the divergence retry) on two simulated workspaces of the
same structure (data seeds 101 and 102; with ``--world``, one of the independent worlds of
``benchmarks/worlds.py`` at seeds 1 and 2, imported through ``import_data`` as
``benchmarks/mmm_accuracy.py`` imports it: data this project's simulator did not write):

- first fit: the server's first job (a new worker process: imports, compile, sampling);
- second fit: the other workspace, same structure, same server (the warm worker reuses the
  compiled model).

The reference, in the same run, is PyMC-Marketing 1.3's default ``MMM.fit()`` (nutpie,
2 chains x 1,000 draws) on the model this project builds with PyMC-Marketing's own default
priors, in a fresh Python process. Both start from empty PyTensor/Numba compile caches
(each its own temporary directory): a first fit on a new machine.

``--validate-first SECONDS``: each fit is preceded by ``validate_data`` through the server, as
a user's must be, and a pause (an agent reading that answer); the server then starts the
job worker ahead of the fit, and that worker compiles the default fit's model meanwhile
(``mmm.fit.precompile``), so the pause decides how much of the compile the fit still waits
for. Without it the fit is the server's first call.

Timed per row: seconds from the tool call to its answer (ours) or of ``fit()`` alone and of
the whole process, imports included (library); min bulk ESS, max R-hat, divergences, draws
per chain, whether the gates pass. Then the ratios the issue sets targets for: first fit
<= 1.5x the library's fit, second fit <= 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from attribution_analysis.mmm.convergence import passes_gates

# PyMC-Marketing's own default priors for the curves this project re-specifies.
LIBRARY_PRIORS = {
    "adstock_alpha": {"dist": "Beta", "kwargs": {"alpha": 1.0, "beta": 3.0}},
    "saturation_kappa": {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}},
    "saturation_slope": {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}},
}
FIRST_FIT_RATIO_TARGET = 1.5
SECOND_FIT_SECONDS_TARGET = 15.0


def _compile_env(compiledir: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTENSOR_FLAGS": f"base_compiledir={compiledir}",
        "NUMBA_CACHE_DIR": compiledir,
        "PYTHONWARNINGS": "ignore",
    }


def library_fit(root: Path, seed: int) -> dict:
    """PyMC-Marketing's default ``fit()`` with its own priors (runs in a fresh process)."""
    from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig
    from attribution_analysis.mmm.convergence import convergence_summary
    from attribution_analysis.mmm.fit import prepare
    from attribution_analysis.workspace import Workspace

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    data, mmm, _ = prepare(
        Workspace.open(root), FitMMMParams(config=MMMConfig(priors=LIBRARY_PRIORS))
    )
    tree = mmm.fit(data.X, data.y, random_seed=seed, progressbar=False)
    summary = convergence_summary(tree)
    return {
        "fit_s": time.perf_counter() - start,
        "draws_per_chain": int(tree["posterior"].sizes["draw"]),
        **summary,
    }


def run_library(root: Path, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as compiledir:
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--library-worker", str(root), "--seed", str(seed)],
            capture_output=True,
            text=True,
            env=_compile_env(compiledir),
            check=True,
        )
        wall = time.perf_counter() - start
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "process_s": wall}


async def server_fits(
    root: Path,
    names: list[str],
    seed: int,
    sampler: dict | None = None,
    validate_first: float | None = None,
) -> list[dict]:
    """``fit_mmm`` through a stdio MCP server on each workspace in turn, defaults otherwise
    (``sampler``: settings that replace the default ones, e.g. a target acceptance).
    ``validate_first``: call ``validate_data`` on each workspace first, as a user must, and
    wait that many seconds (an agent reading the answer) before the timed ``fit_mmm``."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    rows = []
    with tempfile.TemporaryDirectory() as compiledir:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "attribution_analysis.server", "--workspace-root", str(root)],
            env=_compile_env(compiledir),
        )
        async with Client(params, read_timeout_seconds=1800) as client:
            for name in names:
                if validate_first is not None:
                    checked = await client.call_tool("validate_data", {"workspace": name})
                    if checked.is_error:
                        raise RuntimeError(f"validate_data on {name}: {checked.content}")
                    await asyncio.sleep(validate_first)
                start = time.perf_counter()
                answer = await client.call_tool(
                    "fit_mmm",
                    {
                        "workspace": name,
                        "seed": seed,
                        "use_cache": False,
                        "wait_seconds": 600,
                        **({"sampler": sampler} if sampler else {}),
                    },
                )
                job = answer.structured_content or {}
                while not answer.is_error and job.get("status") in {"running", "cancelling"}:
                    answer = await client.call_tool(
                        "get_job", {"job_id": job["job_id"], "wait_seconds": 600}
                    )
                    job = answer.structured_content or {}
                wall = time.perf_counter() - start
                if answer.is_error or job.get("status") != "succeeded":
                    raise RuntimeError(f"fit_mmm on {name} did not succeed: {answer.content}")
                rows.append({**job["result"], "call_s": wall})
    return rows


def _simulate(root: Path, name: str, data_seed: int, weeks: int, channels: int) -> None:
    from attribution_analysis.api import simulate_workspace, validate_data
    from attribution_analysis.contracts.simulation import SimulationParams
    from attribution_analysis.workspace import Workspace

    folder = root / name
    params = SimulationParams(kind="mmm", seed=data_seed, weeks=weeks, channels=channels)
    simulate_workspace(folder, params)
    validate_data(Workspace.open(folder))


def _line(label: str, seconds: float, summary: dict, draws: int, note: str = "") -> str:
    return (
        f"{label:38s} {seconds:7.1f} {summary['min_ess_bulk']:8.0f} {summary['max_rhat']:7.3f} "
        f"{summary['divergences']:4d} {draws:6d} "
        f"{'pass' if passes_gates(summary) else 'FAIL':>6s}  {note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--world", help="an independent world of benchmarks/worlds.py instead of the simulator"
    )
    parser.add_argument(
        "--target-accept", type=float, help="our fits' target acceptance (default: the step's)"
    )
    parser.add_argument(
        "--validate-first",
        type=float,
        metavar="SECONDS",
        help="call validate_data through the server before each fit (as a user must) and "
        "pause SECONDS before the timed fit_mmm",
    )
    parser.add_argument("--library-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.library_worker:
        print(json.dumps(library_fit(args.library_worker, args.seed)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        names = ["first", "second"]
        if args.world:
            from mmm_accuracy import import_world  # benchmarks/, this script's folder
            from worlds import make_world

            for name, data_seed in zip(names, (1, 2), strict=True):
                import_world(make_world(args.world, data_seed), root / name)
            shape = f"world {args.world} (seeds 1 and 2)"
        else:
            for name, data_seed in zip(names, (101, 102), strict=True):
                _simulate(root, name, data_seed, args.weeks, args.channels)
            shape = f"{args.weeks} weeks x {args.channels} channels, simulated data"
        library = run_library(root / names[0], args.seed)
        sampler = {"target_accept": args.target_accept} if args.target_accept else None
        first, second = asyncio.run(
            server_fits(root, names, args.seed, sampler, args.validate_first)
        )

    accept = f", our target acceptance {args.target_accept}" if args.target_accept else ""
    if args.validate_first is not None:
        accept += f", validate_data through the server first, then {args.validate_first:g} s"
    print(f"MMM time to the gates: {shape}{accept}")
    print(
        f"{'run':38s} {'secs':>7s} {'min ESS':>8s} {'R-hat':>7s} {'div':>4s} {'draws':>6s} "
        f"{'gates':>6s}"
    )
    print(
        _line(
            "pymc-marketing fit(), fresh process",
            library["fit_s"],
            library,
            library["draws_per_chain"],
            f"(process with imports {library['process_s']:.1f} s)",
        )
    )
    for label, row in (("server: first fit_mmm", first), ("server: second fit_mmm", second)):
        note = (
            f"sampling {row['sampling_seconds']:.1f} s, compile reused {row['compile_reused']}, "
            f"stopped at gates {row['stopped_at_gates']}"
            + (f", remedies: {'; '.join(row['remedies_tried'])}" if row["remedies_tried"] else "")
        )
        print(_line(label, row["call_s"], row["convergence"], row["draws_per_chain"], note))
    ratio = first["call_s"] / library["fit_s"]
    process_ratio = first["call_s"] / library["process_s"]
    print(
        f"first fit / library fit() = {ratio:.2f}x (target <= {FIRST_FIT_RATIO_TARGET}x; "
        f"against the library's whole process {process_ratio:.2f}x)"
    )
    print(
        f"second fit = {second['call_s']:.1f} s (target <= {SECOND_FIT_SECONDS_TARGET:.0f} s); "
        f"second / library fit() = {second['call_s'] / library['fit_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
