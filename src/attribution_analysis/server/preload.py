"""Import, once and ahead of the first call, what the inline steps load when they run.

Inline steps import their heavy libraries lazily, so that a refusal or another step in a
fresh process does not pay for them (``tests/test_light_steps.py``). A long-lived server
would otherwise pay them on its first call to each step: 1.5-2 s of a first
``optimize_budget`` that then takes 0.3 s, 5 s of a first ``generate_report``. The server
starts this in a daemon thread when it starts serving; the list is each inline step's
compute module and its declared ``StepSpec.preload``. An inline call that arrives before it
ends waits for it (``wait``), so the two never import or compile side by side.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Iterable

from attribution_analysis.steps import STEPS, StepSpec

log = logging.getLogger(__name__)
# Set when no warm-up is running (none started, or it ended).
_finished = threading.Event()
_finished.set()
# A warm-up takes seconds; past this, a step runs anyway rather than wait on a stuck import.
MAX_WAIT_SECONDS = 120.0
# Libraries that log routine notices at INFO when imported (PyTensor's config parser, ArviZ's
# backend discovery): the server's log shows INFO, and they would fill it at every start.
CHATTY_LOGGERS = ("pytensor", "arviz", "arviz_base", "arviz_stats", "arviz_plots")


def targets(steps: Iterable[StepSpec] = STEPS) -> list[str]:
    """What to load, in step order, each once: the inline steps' compute modules and their
    declared preloads ("module" or "module:function")."""
    seen: dict[str, None] = {"attribution_analysis.runner": None}  # every step runs through it
    for spec in steps:
        if spec.background:
            continue  # a job runs in its own process: the server's imports do not reach it
        seen.setdefault(spec.compute.partition(":")[0], None)
        for entry in spec.preload:
            seen.setdefault(entry, None)
    return list(seen)


def warm(steps: Iterable[StepSpec] = STEPS) -> dict[str, float]:
    """Load every target; seconds per target. A target that fails is logged and skipped:
    the step it serves imports it again when it runs and reports the error there."""
    seconds: dict[str, float] = {}
    for target in targets(steps):
        module, _, function = target.partition(":")
        start = time.perf_counter()
        try:
            loaded = importlib.import_module(module)
            if function:
                getattr(loaded, function)()
        except Exception:  # a warm-up must never take the server down
            log.warning("preload of %s failed; the step will load it itself", target, exc_info=True)
            continue
        seconds[target] = time.perf_counter() - start
    return seconds


def start(steps: Iterable[StepSpec] = STEPS) -> threading.Thread:
    """Warm up in a daemon thread (the server answers meanwhile); logs the total. Until it
    ends, ``wait`` holds the inline steps back: imports of one package from two threads can
    fail on this Python (python/cpython#83065), and PyTensor's compilation is not
    thread-safe, so a step never runs beside the warm-up."""
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    _finished.clear()

    def run() -> None:
        begun = time.perf_counter()
        try:
            done = warm(steps)
            log.info("preloaded %d modules in %.1f s", len(done), time.perf_counter() - begun)
        finally:
            _finished.set()

    thread = threading.Thread(target=run, name="attribution-preload", daemon=True)
    thread.start()
    return thread


def wait(timeout: float = MAX_WAIT_SECONDS) -> None:
    """Return once no warm-up is running (at once when none was started)."""
    _finished.wait(timeout)
