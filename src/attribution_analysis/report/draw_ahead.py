"""Draw workspaces' report charts into a chart store, in a process of its own.

    python -P -m attribution_analysis.report.draw_ahead --store DIR

The server keeps one running (``server/prefetch.py``), so that matplotlib's seconds are spent
outside the server's interpreter, where they would delay every step called meanwhile. It
draws exactly what a default report draws (``report.step.draw_charts``), at a lower CPU
priority than the server and its fits, and writes nothing but the store's files
(``report/chart_store.py``), each whole or not at all.

Protocol, one line each way: after its imports it says ``ready``; then the server sends
``draw ID PATH`` and gets ``ID drew N``, ``ID stopped`` or ``ID failed: MESSAGE`` back.
``stop ID`` may come at any time: the drawing with that id stops before its next chart
(a stop for a drawing that ended, or has not been read yet, still applies to that id and no
other). End of input (the server ended, or was killed) stops the drawing before its next
chart and ends the process; a server gone (its parent changed) ends it at once. Answers go
out on a copy of the original stdout; the process's own stdout is its stderr, so that
nothing a library prints is read as one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import threading
import time
from pathlib import Path

NICENESS = 10  # below the server's inline steps and its fits: this work can wait


class Requests:
    """The server's lines on stdin, read from the file descriptor itself: a buffered reader
    could hold a ``stop`` line that ``select`` would then never report."""

    def __init__(self, fd: int = 0) -> None:
        self.fd, self.buffer, self.ended = fd, b"", False
        self.draws: list[tuple[str, str]] = []  # (id, path) waiting
        self.stopped: set[str] = set()

    def _take(self, chunk: bytes) -> None:
        if not chunk:
            self.ended = True
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            verb, _, rest = line.decode("utf-8", "replace").partition(" ")
            if verb == "draw":
                request_id, _, path = rest.partition(" ")
                self.draws.append((request_id, path))
            elif verb == "stop":
                self.stopped.add(rest.strip())

    def poll(self) -> None:
        """Read whatever has arrived, without waiting."""
        while not self.ended and select.select([self.fd], [], [], 0)[0]:
            self._take(os.read(self.fd, 65536))

    def next_draw(self) -> tuple[str, str] | None:
        """The next drawing asked for, waiting for one; None at end of input."""
        while not self.draws and not self.ended:
            self._take(os.read(self.fd, 65536))
        return self.draws.pop(0) if self.draws else None


def _exit_when_orphaned(parent: int, every: float = 0.5) -> None:
    """End the process as soon as the server that started it is gone, even mid-chart. End
    of input says so too, but only between two charts, and a chart can take tens of seconds
    at this priority beside a fit. Stopping mid-chart is safe: every stored chart is written
    whole or not at all."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="the chart store's folder")
    args = parser.parse_args(argv)
    watch = threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True)
    watch.start()
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with contextlib.suppress(OSError, AttributeError):  # no nice() on this platform: as is
        os.nice(NICENESS)

    from attribution_analysis.report import chart_store, charts
    from attribution_analysis.report.step import draw_charts
    from attribution_analysis.workspace import Workspace

    chart_store.use(args.store)
    charts.warm()  # the backends, the font and the PNG writer, before there is work
    print("ready", file=answers)
    requests = Requests()
    while (asked := requests.next_draw()) is not None:
        request_id, path = asked

        def keep_going(request_id: str = request_id) -> bool:
            requests.poll()  # a stop for this drawing, or the end of input: the server is gone
            return request_id not in requests.stopped and not requests.ended

        try:
            drawn = draw_charts(Workspace.open(Path(path)), keep_going)
            answer = "stopped" if not keep_going() else f"drew {drawn}"
        except Exception as exc:  # reported to the server, which logs it; the next one runs
            answer = "failed: " + f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]
        requests.stopped.discard(request_id)
        print(f"{request_id} {answer}", file=answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
