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

from attribution_analysis.errors import AttributionError, FrontEnd

EXIT_INPUT_ERROR = 2


def _field(loc: tuple[Any, ...], front_end: FrontEnd) -> str:
    """A parameter as its caller spells it: ``--total-budget`` on the command line,
    ``total_budget`` for a tool; nested fields keep their dotted path."""
    name = ".".join(str(p) for p in loc) or "value"
    if front_end in ("cli", "script") and loc and isinstance(loc[0], str):
        head, _, rest = name.partition(".")
        return f"--{head.replace('_', '-')}" + (f" ({rest})" if rest else "")
    return name


def error_payload(exc: BaseException, front_end: FrontEnd = "python") -> dict[str, Any]:
    if isinstance(exc, AttributionError):
        return exc.to_dict(front_end)
    if isinstance(exc, ValidationError):
        problems = [f"{_field(err['loc'], front_end)}: {err['msg']}" for err in exc.errors()]
        return {
            "code": "invalid_parameter",
            "message": "; ".join(problems),
            "problem": "; ".join(problems),
            "fix": "correct the parameter(s) named.",
            "file": None,
            "column": None,
            "rows": [],
            "n_rows": 0,
            "parameter": str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else None,
            "step": None,
        }
    raise exc


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def run_json(action: Callable[[], dict[str, Any]], front_end: FrontEnd = "script") -> int:
    """Run ``action``; print its payload with status 'ok', or the error with status 'error'."""
    try:
        # Libraries print chatter ("Sampling: [y]"); stdout is reserved for the JSON answer.
        with contextlib.redirect_stdout(sys.stderr):
            payload = action()
    except (AttributionError, ValidationError) as exc:
        error = error_payload(exc, front_end)
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
