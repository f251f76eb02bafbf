"""Import, once and ahead of the first call, what the inline steps load when they run.

Inline steps import their heavy libraries lazily, so that a refusal or another step in a
fresh process does not pay for them (``tests/test_light_steps.py``). A long-lived server
would otherwise pay them on its first call to each step: 1.5-2 s of a first
``optimize_budget`` that then takes 0.3 s, 5 s of a first ``generate_report``. The server
starts this in a daemon thread when it starts serving; the list is each inline step's
compute module and its declared ``StepSpec.preload``. Python's import system locks per
module, so a call that arrives while a module is being imported waits for that module only.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Iterable

from attribution_analysis.steps import STEPS, StepSpec

log = logging.getLogger(__name__)
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
            log.warning("preload of %s failed; the step will load it itself", target)
            continue
        seconds[target] = time.perf_counter() - start
    return seconds


def start(steps: Iterable[StepSpec] = STEPS) -> threading.Thread:
    """Warm up in a daemon thread (the server answers meanwhile); logs the total."""
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

    def run() -> None:
        begun = time.perf_counter()
        done = warm(steps)
        log.info("preloaded %d modules in %.1f s", len(done), time.perf_counter() - begun)

    thread = threading.Thread(target=run, name="attribution-preload", daemon=True)
    thread.start()
    return thread
