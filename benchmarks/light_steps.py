"""Fresh-process wall time of every inline step, and of the refusals, on a fitted workspace.

    python benchmarks/light_steps.py --workspace DIR [--repeats 5] [--src SRC ...]

``DIR``: a fitted and validated workspace of the demo's world (``make demo`` writes one;
any ``fit_mmm`` + ``validate_model`` of ``demo.DEMO`` will do). Each case runs its step's
script (``scripts/<step>.py``, what an agent or a shell runs) in a new Python process on a
fresh copy of the workspace; the copy is made before the clock starts, so the figure is
interpreter start, imports and the step itself. The median of ``--repeats`` runs is shown.

``--server``: through the MCP server instead (the SDK's stdio client, what an agent meets),
one fresh server per repeat. The server imports the inline steps' libraries in the
background when it starts (``server/preload.py``); the calls start once its log says the
preload ended, or right after the handshake with ``--at-once`` (a call then waits for the
preload), and ``--no-preload`` starts the server without it. Each case is called twice,
each call on its own fresh copy of the workspace; "first" is a step's first call in that
server, "second" its next.

``--chain``: through the MCP server, the calls an agent makes after a fit, one after another
on one copy of the workspace (``CHAIN``: the decomposition, the budget plan, a step that draws
no chart, the report), with ``--pause`` seconds between calls (repeatable: 0 for calls at
once, 3 for an agent reading each answer). The first two ask the server to draw the report's
charts ahead (``server/prefetch.py``), so this times what that drawing costs the calls that
follow it, and what it saves the report.

``--src`` (repeatable) names source trees to compare in the same run, e.g. the code before
and after a change; runs of the trees alternate, so load on a shared machine falls on each
alike. Without it, the installed package is timed. Before timing, the workspace gets the
outputs the later steps read (contributions, allocation) from the first tree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO_KIND = ("--kind", "mta", "--seed", "20261126", "--weeks", "156", "--channels", "5")
WIDE_TABLE = "uploads/wide.csv"


@dataclass(frozen=True)
class Case:
    label: str
    step: str
    args: tuple[str, ...] = ()
    workspace: str = "fitted"  # "fitted", "raw" (simulated, not validated) or "new" (empty)
    expect_ok: bool = True


# What an agent calls after a fit (``--chain``); the first two are chart inputs.
CHAIN = ("decompose_contributions", "optimize_budget", "validate_data", "generate_report")

CASES = [
    Case("simulate_workspace (demo world)", "simulate_workspace", DEMO_KIND, workspace="new"),
    Case("import_data (dry run)", "import_data", ("--path", WIDE_TABLE)),
    Case("validate_data", "validate_data"),
    Case("decompose_contributions", "decompose_contributions"),
    Case("build_effective_exposure", "build_effective_exposure"),
    Case("downscale_intraday (no hourly file: refused)", "downscale_intraday", expect_ok=False),
    Case("optimize_budget", "optimize_budget"),
    Case("attribute_paths (no journeys: refused)", "attribute_paths", expect_ok=False),
    Case("generate_report", "generate_report"),
    Case("draft_faq", "draft_faq"),
    Case(
        "refusal: optimize_budget, unvalidated", "optimize_budget", workspace="raw", expect_ok=False
    ),
    Case(
        "refusal: optimize_budget, unknown channel in bounds",
        "optimize_budget",
        ("--bounds", '[{"channel": "no_such_channel", "max_spend": 1}]'),
        expect_ok=False,
    ),
    Case(
        "refusal: optimize_budget, horizon 0",
        "optimize_budget",
        ("--horizon-periods", "0"),
        expect_ok=False,
    ),
]


def environment(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def run_script(step: str, root: Path, args: tuple[str, ...], src: Path | None) -> tuple[float, int]:
    """(seconds, exit code) of one fresh process running the step's script."""
    argv = [sys.executable, str(REPO / "scripts" / f"{step}.py"), "--workspace", str(root), *args]
    start = time.perf_counter()
    done = subprocess.run(argv, env=environment(src), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 2):  # 2: a refusal, answered as JSON
        raise RuntimeError(f"{step} crashed:\n{done.stderr[-2000:]}")
    return seconds, done.returncode


def _python_seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def prepare(fitted: Path, scratch: Path, src: Path | None) -> dict[str, Path]:
    """The workspaces the cases start from (copied again for every run)."""
    base = scratch / "fitted"
    shutil.copytree(fitted, base)
    # Outputs the later steps read: contributions (exposure, report) and the campaign split.
    for step, args in (("decompose_contributions", ()), ("allocate", ("--source", "mta"))):
        _, code = run_script(step, base, args, src)
        if code != 0:
            raise RuntimeError(f"preparing the workspace: {step} was refused")
    _write_wide_table(base)
    raw = scratch / "raw"
    raw.mkdir()
    shutil.copytree(fitted / "raw", raw / "raw")
    return {"fitted": base, "raw": raw}


def _write_wide_table(root: Path) -> None:
    """A wide CSV (date, spend per channel, outcome) from the prepared panel, for the
    import dry run."""
    import pandas as pd

    panel = pd.read_csv(root / "analysis" / "prepared_panel.csv")
    spend = [c for c in panel.columns if c.startswith("spend_")]
    (root / "uploads").mkdir(exist_ok=True)
    panel[["date", *spend, "conversions"]].to_csv(root / WIDE_TABLE, index=False)


def time_case(case: Case, bases: dict[str, Path], src: Path | None, scratch: Path) -> float:
    run = Path(tempfile.mkdtemp(dir=scratch))
    root = run / "ws"
    if case.workspace == "new":
        root.mkdir()
    else:
        shutil.copytree(bases[case.workspace], root)
    seconds, code = run_script(case.step, root, case.args, src)
    if (code == 0) != case.expect_ok:
        raise RuntimeError(f"{case.label}: exit code {code}, expected ok={case.expect_ok}")
    shutil.rmtree(run)
    return seconds


def tool_arguments(case: Case, folder: str) -> dict[str, object]:
    """The case's CLI flags as the tool's arguments (JSON values parsed, flags snake_case)."""
    arguments: dict[str, object] = {"workspace": folder}
    for flag, value in zip(case.args[::2], case.args[1::2], strict=True):
        try:
            parsed: object = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        arguments[flag.removeprefix("--").replace("-", "_")] = parsed
    return arguments


async def _server_round(
    cases: list[Case], bases: dict[str, Path], scratch: Path, at_once: bool, no_preload: bool
) -> dict[tuple[str, int], float]:
    """One fresh server: every case called twice, each call on its own workspace copy."""

    root = Path(tempfile.mkdtemp(dir=scratch))
    for i, case in enumerate(cases):
        for call in (1, 2):
            folder = root / f"case{i}_{call}"
            if case.workspace == "new":
                folder.mkdir()
            else:
                shutil.copytree(bases[case.workspace], folder)
    seconds: dict[tuple[str, int], float] = {}
    async with _session(root, None, no_preload, wait=not (at_once or no_preload)) as session:
        for call in (1, 2):
            for i, case in enumerate(cases):
                arguments = tool_arguments(case, f"case{i}_{call}")
                start = time.perf_counter()
                result = await session.call_tool(case.step, arguments)
                seconds[(case.label, call)] = time.perf_counter() - start
                if result.is_error == case.expect_ok:
                    raise RuntimeError(f"{case.label}: is_error={result.is_error}")
    shutil.rmtree(root)
    return seconds


@contextlib.asynccontextmanager
async def _session(
    root: Path, src: Path | None, no_preload: bool, wait: bool
) -> AsyncIterator[Any]:
    """An MCP client session with a fresh server on ``root`` (the code of ``src``, else the
    installed package), its log in ``root/server.log``; ``wait``: until its preload ended."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    server = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "attribution_analysis.server",
            "--workspace-root",
            str(root),
            *(["--no-preload"] if no_preload else []),
        ],
        env={**environment(src), "PYTHONWARNINGS": "ignore"},
    )
    log = root / "server.log"
    with log.open("w") as errlog:
        async with stdio_client(server, errlog=errlog) as (read, write):
            session = ClientSession(read, write)
            async with session:
                await session.initialize()
                if wait:
                    await _preloaded(log)
                yield session


async def _preloaded(log: Path, limit: float = 300.0) -> None:
    """Wait until the server's log says its preload ended (it logs the line either way)."""
    import anyio

    deadline = time.monotonic() + limit
    while "preloaded" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no preload line in the server's log after {limit:.0f} s")
        await anyio.sleep(0.2)


def main_server(args: argparse.Namespace, cases: list[Case]) -> None:
    import anyio

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        bases = prepare(args.workspace.resolve(), scratch, None)
        times: dict[tuple[str, int], list[float]] = {}
        for repeat in range(args.repeats):
            done = anyio.run(_server_round, cases, bases, scratch, args.at_once, args.no_preload)
            for key, value in done.items():
                times.setdefault(key, []).append(value)
            print(f"server {repeat + 1} done", file=sys.stderr)
    print(
        f"through the MCP server (stdio{', --no-preload' if args.no_preload else ''}), "
        f"calls {'at once' if args.at_once or args.no_preload else 'after the preload'}; "
        f"median of {args.repeats} servers, seconds (min-max)"
    )
    print("case | first call | second call")
    for case in cases:
        row = [case.label]
        for call in (1, 2):
            values = times[(case.label, call)]
            row.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        print(" | ".join(row))


async def _chain_round(base: Path, scratch: Path, src: Path | None, pause: float) -> list[float]:
    """One fresh server (after its preload), ``CHAIN`` called on one copy of ``base``."""
    import anyio

    root = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(base, root / "ws")
    seconds: list[float] = []
    async with _session(root, src, False, wait=True) as session:
        for step in CHAIN:
            start = time.perf_counter()
            result = await session.call_tool(step, {"workspace": "ws"})
            seconds.append(time.perf_counter() - start)
            if result.is_error:
                raise RuntimeError(f"{step} failed: {result.content}")
            await anyio.sleep(pause)
    shutil.rmtree(root)
    return seconds


def main_chain(args: argparse.Namespace, trees: list[Path | None]) -> None:
    import anyio

    pauses = args.pause or [0.0, 3.0]
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        bases = prepare(args.workspace.resolve(), scratch, trees[0])
        times: dict[tuple[float, int], list[list[float]]] = {}
        for repeat in range(args.repeats):
            for pause in pauses:
                for t, src in enumerate(trees):
                    done = anyio.run(_chain_round, bases["fitted"], scratch, src, pause)
                    times.setdefault((pause, t), []).append(done)
                    print(f"run {repeat + 1}, pause {pause}, tree {t}: {done}", file=sys.stderr)
    names = [str(src) if src else "installed" for src in trees]
    print(f"through the MCP server, after the preload; median of {args.repeats} servers, seconds")
    print(" | ".join(["pause", "code", *CHAIN]))
    for (pause, t), runs in times.items():
        cells = []
        for i in range(len(CHAIN)):
            values = [run[i] for run in runs]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        print(" | ".join([f"{pause:g} s", names[t], *cells]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--src", type=Path, action="append", default=[])
    parser.add_argument("--only", action="append", default=[], help="cases whose label has it")
    parser.add_argument("--server", action="store_true", help="through the MCP server")
    parser.add_argument("--at-once", action="store_true", help="call right after start")
    parser.add_argument(
        "--no-preload", action="store_true", help="start the server with --no-preload"
    )
    parser.add_argument("--chain", action="store_true", help="the calls after a fit (CHAIN)")
    parser.add_argument("--pause", type=float, action="append", default=[], help="with --chain")
    args = parser.parse_args()
    trees: list[Path | None] = list(args.src) or [None]
    if args.chain:
        main_chain(args, trees)
        return
    cases = [c for c in CASES if not args.only or any(o in c.label for o in args.only)]
    if args.server:
        if args.src:
            parser.error("--src compares source trees in fresh processes; not with --server")
        main_server(args, cases)
        return
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        bases = prepare(args.workspace.resolve(), scratch, trees[0])
        times: dict[tuple[str, int], list[float]] = {}
        for repeat in range(args.repeats):
            for case in cases:
                for t, src in enumerate(trees):
                    seconds = time_case(case, bases, src, scratch)
                    times.setdefault((case.label, t), []).append(seconds)
                    print(
                        f"run {repeat + 1}, {case.label}, tree {t}: {seconds:.2f} s",
                        file=sys.stderr,
                    )
    names = [str(src) if src else "installed" for src in trees]
    print(f"median of {args.repeats} fresh processes, seconds (min-max)")
    # How busy the machine was: the same yardstick on a quiet machine takes about 0.45 s.
    yardstick = [_python_seconds("import pandas") for _ in range(args.repeats)]
    print(f"yardstick `python -c 'import pandas'`: {statistics.median(yardstick):.2f} s")
    print(" | ".join(["case", *names, *(["ratio"] if len(trees) == 2 else [])]))
    for case in cases:
        row = [case.label]
        medians = []
        for t in range(len(trees)):
            values = times[(case.label, t)]
            medians.append(statistics.median(values))
            row.append(f"{medians[-1]:.2f} ({min(values):.2f}-{max(values):.2f})")
        if len(trees) == 2:
            row.append(f"{medians[0] / medians[1]:.1f}x")
        print(" | ".join(row))


if __name__ == "__main__":
    main()
