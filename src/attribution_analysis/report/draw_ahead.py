"""Draw workspaces' report charts into a chart store, in a process of its own.

    python -m attribution_analysis.report.draw_ahead --store DIR

The server keeps one running (``server/prefetch.py``), so that matplotlib's seconds are spent
outside the server's interpreter, where they would delay every step called meanwhile. It
imports first, then reads one workspace path per line of stdin and answers each with one line
on stdout: ``drew N``, ``stopped`` (SIGUSR1 arrived: it stops between two charts) or
``failed: MESSAGE``. End of input ends it. It draws exactly what a default report draws
(``report.step.draw_charts``), at a lower CPU priority than the server and its fits, and
writes nothing but the store's files (``report/chart_store.py``), each whole or not at all.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

NICENESS = 10  # below the server's inline steps and its fits: this work can wait
_stop_requested = False


def _request_stop(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def _keep_going() -> bool:
    return not _stop_requested


def main(argv: list[str] | None = None) -> int:
    global _stop_requested
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="the chart store's folder")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGUSR1, _request_stop)  # first: the server may send it at any time
    with contextlib.suppress(OSError, AttributeError):  # no nice() on this platform: as is
        os.nice(NICENESS)

    from attribution_analysis.report import chart_store, charts
    from attribution_analysis.report.step import draw_charts
    from attribution_analysis.workspace import Workspace

    chart_store.use(args.store)
    charts.warm()  # the backends, the font and the PNG writer, before there is work
    for line in sys.stdin:
        _stop_requested = False  # a stop sent between two requests concerns neither
        try:
            drawn = draw_charts(Workspace.open(Path(line.strip())), _keep_going)
            answer = "stopped" if _stop_requested else f"drew {drawn}"
        except Exception as exc:  # reported to the server, which logs it; the next one runs
            answer = "failed: " + f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]
        print(answer, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
