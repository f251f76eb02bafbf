"""Shared plumbing of the command-line adapters: one JSON shape, one error path.

Scripts print one JSON object on stdout with a ``status`` field ('ok' or 'error'), and exit
0 or 2. The same :class:`AttributionError` text reaches a human on stderr; a Python
traceback never does for input problems.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import ValidationError

from attribution_analysis.errors import AttributionError

EXIT_INPUT_ERROR = 2


def error_payload(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, AttributionError):
        return exc.to_dict()
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        ]
        return {
            "code": "invalid_parameter",
            "message": "; ".join(problems),
            "problem": "; ".join(problems),
            "fix": "correct the parameter(s) named.",
            "file": None,
            "column": None,
            "rows": [],
            "n_rows": 0,
        }
    raise exc


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def run_json(action: Callable[[], dict[str, Any]]) -> int:
    """Run ``action``; print its payload with status 'ok', or the error with status 'error'."""
    try:
        # Libraries print chatter ("Sampling: [y]"); stdout is reserved for the JSON answer.
        with contextlib.redirect_stdout(sys.stderr):
            payload = action()
    except (AttributionError, ValidationError) as exc:
        error = error_payload(exc)
        emit({"status": "error", "error": error})
        sys.stderr.write(f"error: {error['message']}\n")
        return EXIT_INPUT_ERROR
    emit({"status": "ok", **payload})
    return 0


@contextlib.contextmanager
def rich_progress(label: str) -> Iterator[Callable[[float, float, str], None]]:
    """A progress callback drawing a rich bar on stderr (stdout stays clean JSON)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[message]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=1.0, message="")

        def update(done: float, total: float, message: str) -> None:
            bar.update(task, completed=done, total=max(total, 1e-9), message=message)

        yield update
