"""Draw a workspace's report charts in the background once a step has changed their inputs.

A report's first call spends most of its time in matplotlib: about 4.5 s on the demo
workspace, seven charts each laid out and saved as SVG and PNG, of which 0.2 s is the rest
of the report. The charts are memoised per input in the process (``report/charts.py``), and
their inputs are final when the step that writes them ends, so the server draws them then:
in one daemon thread, while the agent reads that step's answer. ``generate_report`` then
finds them drawn. What is drawn is exactly what the report would draw, from the same inputs;
nothing is written.

It gives way: between two charts it stops while any inline step runs (``foreground``), and
goes on after; a newer request for the same workspace replaces the one being drawn (the
charts of a plan about to be replaced are not drawn). A step that arrives mid-chart shares
the interpreter with that one chart (up to about 2 s for the trace plots on the demo); a
report called at once waits for it, then draws the rest itself. A failure (a workspace
deleted or mid-commit, an output the report cannot read) is logged and dropped: the report
draws, or refuses, by itself. Started with the preload (``--no-preload`` leaves both out).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from attribution_analysis.server import preload

log = logging.getLogger(__name__)
# Steps whose outputs a chart shows (contributions, budget plan, diagnostics, allocation).
CHART_INPUT_STEPS = frozenset(
    {"decompose_contributions", "optimize_budget", "validate_model", "allocate"}
)
_pending: dict[Path, None] = {}  # workspaces to draw, oldest first (a dict: ordered, unique)
_changed = threading.Condition()
_busy = False
_foreground = 0  # inline steps running now
_thread: threading.Thread | None = None


def start() -> None:
    """Start the drawing thread (once per process)."""
    global _thread
    with _changed:
        if _thread is None:
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
        _changed.notify()


@contextlib.contextmanager
def foreground() -> Iterator[None]:
    """Around an inline step: the drawing stops at the next chart until it ends."""
    global _foreground
    with _changed:
        _foreground += 1
    try:
        yield
    finally:
        with _changed:
            _foreground -= 1
            _changed.notify_all()


def wait_idle(timeout: float) -> bool:
    """Whether every request was handled within ``timeout`` seconds (for tests)."""
    with _changed:
        return _changed.wait_for(lambda: not _pending and not _busy, timeout)


def _run() -> None:
    global _busy
    while True:
        with _changed:
            _changed.wait_for(lambda: bool(_pending) and _foreground == 0)
            folder = next(iter(_pending))
            del _pending[folder]
            _busy = True

        def keep_going(current: Path = folder) -> bool:
            return _foreground == 0 and current not in _pending

        try:
            preload.wait()  # never beside the start-up warm-up's imports
            drawn = _draw(folder, keep_going)
            log.info("drew %d report charts for %s ahead of the report", drawn, folder.name)
        except Exception:  # a prefetch must never take the server down
            log.warning("drawing the report charts of %s ahead failed", folder, exc_info=True)
        finally:
            with _changed:
                if _foreground and folder not in _pending:  # stopped for a step: go on after
                    _pending[folder] = None
                _busy = False
                _changed.notify_all()


def _draw(folder: Path, keep_going: Callable[[], bool]) -> int:
    from attribution_analysis.report.step import draw_charts
    from attribution_analysis.workspace import Workspace

    return draw_charts(Workspace.open(folder), keep_going)
