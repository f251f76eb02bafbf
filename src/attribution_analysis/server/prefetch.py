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

A newer request for the workspace being drawn stops that drawing between two charts (SIGUSR1)
and starts again, finding the charts whose inputs did not change in the store; requests for
other workspaces queue, one drawing at a time. A report called before its charts are all
drawn stops their drawing and draws the rest itself (``before``): two processes drawing the
same charts on two cores made it slower. A failure (a workspace deleted or mid-commit, an
output the report cannot read, the process gone) is logged and dropped: the report draws, or
refuses, by itself. Started with the preload (``--no-preload`` leaves both out).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading
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
_drawing: Path | None = None  # the workspace being drawn
_process: subprocess.Popen[str] | None = None  # the drawing process (report/draw_ahead.py)
_store: Path | None = None
_stopped = False  # after stop(): nothing more is drawn
_thread: threading.Thread | None = None


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
        if _drawing == folder:
            _interrupt()  # its inputs changed: stop between two charts, then start again
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
        if _drawing == folder:
            _interrupt()


def stop() -> None:
    """Stop drawing and end the drawing process (at the server's shutdown)."""
    global _stopped
    with _changed:
        _stopped = True
        _pending.clear()
        if _process is not None:
            with contextlib.suppress(OSError):
                _process.terminate()
        _changed.notify_all()


def wait_idle(timeout: float) -> bool:
    """Whether every request was handled within ``timeout`` seconds (for tests)."""
    with _changed:
        return _changed.wait_for(lambda: not _pending and not _busy, timeout)


def _interrupt() -> None:
    """Ask the drawing process to stop between two charts (caller holds ``_changed``)."""
    if _process is not None and _process.poll() is None:
        with contextlib.suppress(OSError):
            _process.send_signal(signal.SIGUSR1)


def _command(store: Path) -> list[str]:
    """The drawing process (``report/draw_ahead.py``)."""
    return [sys.executable, "-m", "attribution_analysis.report.draw_ahead", "--store", str(store)]


def _run() -> None:
    global _busy
    preload.wait()  # never beside the start-up warm-up's imports
    while True:
        _keep_process()
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


def _keep_process() -> None:
    """A drawing process running, its imports under way or done, before there is work."""
    global _process
    with _changed:
        if _stopped or (_process is not None and _process.poll() is None):
            return
        assert _store is not None
        try:
            _process = subprocess.Popen(
                _command(_store),
                stdin=subprocess.PIPE,  # one workspace per line; end of input ends it
                stdout=subprocess.PIPE,  # never the server's stdout: that is the transport
                text=True,
                bufsize=1,
            )
        except OSError:
            log.warning("could not start the process that draws report charts", exc_info=True)
            _process = None


def _draw(folder: Path) -> None:
    global _drawing
    with _changed:
        process = _process
        if process is None or process.poll() is not None:
            raise RuntimeError("the chart-drawing process is not running")
        _drawing = folder
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(f"{folder}\n")
        process.stdin.flush()
        answer = process.stdout.readline().strip()  # one line per request
    finally:
        with _changed:
            _drawing = None
    if answer.startswith("drew"):
        log.info("%s report charts for %s ahead of the report", answer, folder)
    elif answer == "stopped" or _stopped:  # a newer request or its report, or the shutdown
        log.info("stopped drawing the report charts of %s ahead", folder)
    elif answer.startswith("failed"):
        log.warning("drawing the report charts of %s ahead %s", folder, answer)
    else:  # no answer: the process ended (its stderr is the server's log)
        log.warning(
            "drawing the report charts of %s ahead failed: the process ended (exit code %s)",
            folder,
            process.wait(),
        )
