"""Draw a workspace's report charts in the background once a step has changed their inputs.

A report's first call spends most of its time in matplotlib: about 4.5 s on the demo
workspace, seven charts each laid out and saved as SVG and PNG, of which 0.2 s is the rest
of the report. Their inputs are final when the step that writes them ends, so the server
draws them then, while the agent reads that step's answer, and ``generate_report`` finds them
drawn. What is drawn is exactly what the report would draw, from the same inputs.

Where: in one long-lived process of its own (``report/draw_ahead.py``, at a lower CPU
priority, its imports done once), which hands the charts over through a chart store
(``report/chart_store.py``, under the server root's ``.attribution/charts``): files keyed by
the charts' inputs and drawing code. Drawn in a thread of the server, each chart held the
interpreter for up to 2 s, and a step called meanwhile waited for it (measured through the
server on the demo: 1.1-1.9 s for steps that take 0.3-0.5 s).

A newer request for the workspace being drawn stops that drawing before its next chart (a
``stop`` line on the process's stdin, for that drawing's id) and starts again, finding the
charts whose inputs did not change in the store; requests for other workspaces queue, one
drawing at a time. A report called before its charts are all drawn stops their drawing and
draws the rest itself (``before``): two processes drawing the same charts on two cores made
it slower. A failure (a workspace deleted or mid-commit, an output the report cannot read,
the process gone, hung past ``ANSWER_SECONDS`` or saying something else than its protocol)
is logged and dropped, and the process is replaced: the report draws, or refuses, by
itself. Started with the preload (``--no-preload`` leaves both out).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from attribution_analysis.report import chart_store
from attribution_analysis.server import preload

log = logging.getLogger(__name__)
# Steps whose outputs a chart shows (contributions, budget plan, diagnostics, allocation).
CHART_INPUT_STEPS = frozenset(
    {"decompose_contributions", "optimize_budget", "validate_model", "allocate"}
)
CHART_DRAWING_STEPS = frozenset({"generate_report"})  # steps that draw the charts themselves
STORE = "charts"  # the chart store's folder in the server root's .attribution/
_pending: dict[Path, None] = {}  # workspaces to draw, oldest first (a dict: ordered, unique)
_changed = threading.Condition()
_busy = False
ANSWER_SECONDS = 300.0  # the longest a drawing may take before its process is replaced
_drawing: tuple[Path, str] | None = None  # the workspace being drawn and its request id
_drawer: _Drawer | None = None  # the drawing process (report/draw_ahead.py)
_store: Path | None = None
_stopped = False  # after stop(): nothing more is drawn
_thread: threading.Thread | None = None
_ids = itertools.count(1)


def start(store: Path) -> None:
    """Start the drawing thread (once per process); charts go to, and the server's reports
    read them from, ``store``."""
    global _thread, _store, _stopped
    if store.is_symlink():  # the server's own files stay inside its root (Workspace's rule)
        log.warning("%s is a symlink: no report charts are drawn ahead", store)
        return
    with _changed:
        if _thread is None:
            _store, _stopped = store, False
            chart_store.use(store)  # the server's own reports read what the process draws
            _thread = threading.Thread(target=_run, name="chart-prefetch", daemon=True)
            _thread.start()


def request(step_name: str, folder: Path) -> None:
    """Ask for ``folder``'s charts after ``step_name`` succeeded there (a no-op for other
    steps, or before ``start``)."""
    if _thread is None or step_name not in CHART_INPUT_STEPS:
        return
    with _changed:
        _pending.pop(folder, None)
        _pending[folder] = None
        if _drawing is not None and _drawing[0] == folder:
            _interrupt()  # its inputs changed: stop before the next chart, then start again
        _changed.notify()


def before(step_name: str, folder: Path) -> None:
    """Before ``step_name`` runs inline in ``folder``: for the report, stop drawing its charts
    (under way or asked for), since it is about to draw them itself and reads those already
    drawn from the store. Both at once would draw the same charts twice, which on two cores
    beside a job worker's imports made the report slower (``benchmarks/light_steps.py
    --chain``)."""
    if step_name not in CHART_DRAWING_STEPS:
        return
    with _changed:
        _pending.pop(folder, None)
        if _drawing is not None and _drawing[0] == folder:
            _interrupt()


def stop() -> None:
    """Stop drawing and end the drawing process (at the server's shutdown)."""
    global _stopped
    with _changed:
        _stopped = True
        _pending.clear()
        if _drawer is not None:
            _drawer.end()
        _changed.notify_all()


def wait_idle(timeout: float) -> bool:
    """Whether every request was handled within ``timeout`` seconds (for tests)."""
    with _changed:
        return _changed.wait_for(lambda: not _pending and not _busy, timeout)


def _interrupt() -> None:
    """Ask the drawing process to stop the drawing under way before its next chart (the
    caller holds ``_changed``, under which every line to the process is written)."""
    if _drawer is not None and _drawing is not None:
        _drawer.send(f"stop {_drawing[1]}")


def _command(store: Path) -> list[str]:
    """The drawing process (``report/draw_ahead.py``); ``-P``: the server's working folder,
    chosen by the MCP client, is not put on its import path."""
    return [
        sys.executable,
        "-P",
        "-m",
        "attribution_analysis.report.draw_ahead",
        "--store",
        str(store),
    ]


class _Drawer:
    """The drawing process and its answer stream, read with a deadline."""

    def __init__(self, store: Path) -> None:
        self.process = subprocess.Popen(
            _command(store),
            stdin=subprocess.PIPE,  # requests; end of input (also when the server dies) ends it
            stdout=subprocess.PIPE,  # answers; never the server's stdout (the transport)
        )
        self.buffer = b""

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, line: str) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(f"{line}\n".encode())
            self.process.stdin.flush()
        except (OSError, ValueError):  # it ended: the next read says so
            pass

    def answer(self, request_id: str, seconds: float) -> str | None:
        """The answer to ``request_id`` (after the ``ready`` line); None when the process
        ended, hung past ``seconds`` or wrote another line (it is then ended)."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + seconds
        while True:
            line, newline, rest = self.buffer.partition(b"\n")
            if newline:
                self.buffer = rest
                text = line.decode("utf-8", "replace")
                if text == "ready":
                    continue
                if text.startswith(f"{request_id} "):
                    return text.removeprefix(f"{request_id} ")
                log.warning("the chart-drawing process said %r; replacing it", text[:200])
                self.end()
                return None
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                log.warning("the chart-drawing process did not answer in %.0f s", seconds)
                self.end()
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk

    def end(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()


def _run() -> None:
    global _busy
    preload.wait()  # never beside the start-up warm-up's imports
    while True:
        _keep_drawer()
        with _changed:
            _changed.wait_for(lambda: bool(_pending) or _stopped)
            if _stopped:
                return
            folder = next(iter(_pending))
            del _pending[folder]
            _busy = True
        try:
            _draw(folder)
        except Exception:  # a prefetch must never take the server down
            log.warning("drawing the report charts of %s ahead failed", folder, exc_info=True)
        finally:
            with _changed:
                _busy = False
                _changed.notify_all()


def _keep_drawer() -> None:
    """A drawing process running, its imports under way or done, before there is work."""
    global _drawer
    with _changed:
        if _stopped or (_drawer is not None and _drawer.alive()):
            return
        assert _store is not None
        try:
            _drawer = _Drawer(_store)
        except OSError:
            log.warning("could not start the process that draws report charts", exc_info=True)
            _drawer = None


def _draw(folder: Path) -> None:
    global _drawing
    if "\n" in str(folder):  # one request per line (the server's workspace names have none)
        raise ValueError(f"a workspace path with a line break: {folder!r}")
    request_id = str(next(_ids))
    with _changed:
        drawer = _drawer
        if drawer is None or not drawer.alive():
            raise RuntimeError("the chart-drawing process is not running")
        _drawing = (folder, request_id)
        drawer.send(f"draw {request_id} {folder}")
    try:
        answer = drawer.answer(request_id, ANSWER_SECONDS)
    finally:
        with _changed:
            _drawing = None
    if answer is not None and answer.startswith("drew"):
        log.info("%s report charts for %s ahead of the report", answer, folder)
    elif answer == "stopped" or _stopped:  # a newer request or its report, or the shutdown
        log.info("stopped drawing the report charts of %s ahead", folder)
    elif answer is not None:
        log.warning("drawing the report charts of %s ahead %s", folder, answer)
    else:  # the process ended (its stderr is the server's log), hung, or broke the protocol
        drawer.end()
        log.warning(
            "drawing the report charts of %s ahead failed: the process ended (exit code %s)",
            folder,
            drawer.process.wait(),
        )
