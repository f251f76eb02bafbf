"""Output plumbing of the command-line front ends (the ``attribution`` CLI and the scripts):
one JSON shape, one error path, a progress bar on stderr.

Both print one JSON object on stdout with a ``status`` field ('ok' or 'error'), and exit 0
or 2. The same :class:`AttributionError` text reaches a human on stderr, worded for the
front end in use (``--total-budget`` on the command line, ``total_budget`` for an MCP tool);
a Python traceback never does for input problems. The MCP server words its errors here too.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from attribution_analysis.errors import AttributionError, FrontEnd, arg, render

EXIT_INPUT_ERROR = 2


def _field(loc: tuple[Any, ...], front_end: FrontEnd) -> str:
    """A parameter as its caller spells it: ``--total-budget`` on the command line,
    ``total_budget`` for a tool; nested fields keep their dotted path."""
    name = ".".join(str(p) for p in loc) or "this combination of parameters"
    if front_end in ("cli", "script") and loc and isinstance(loc[0], str):
        head, _, rest = name.partition(".")
        return render(arg(head), front_end) + (f" ({rest})" if rest else "")
    return name


def _shown_input(value: Any) -> str:
    """The refused value, when it is short enough to echo (never a whole table)."""
    text = repr(value)
    return f" {text}" if isinstance(value, (int, float, str)) and len(text) <= 40 else ""


def _did_you_mean(model: type[BaseModel] | None, err: Any, front_end: FrontEnd) -> str:
    """For a misspelled parameter, the closest real one (``wait_second`` -> ``wait_seconds``)."""
    loc = err["loc"]
    if model is None or err["type"] != "extra_forbidden" or len(loc) != 1:
        return ""
    close = difflib.get_close_matches(str(loc[0]), list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {_field(tuple(close), front_end)}?)" if close else ""


def _hint(model: type[BaseModel] | None, loc: tuple[Any, ...], front_end: FrontEnd) -> str:
    """What the parameter means, from its own description in the step's model: the fix
    says what to type in the caller's spelling, without restating the model by hand."""
    if model is None or not loc or not isinstance(loc[0], str):
        return ""
    info = model.model_fields.get(loc[0])
    if info is None or not info.description:
        return ""
    return f"{_field(loc[:1], front_end)} is {info.description[0].lower()}{info.description[1:]}"


def error_payload(
    exc: BaseException, front_end: FrontEnd = "python", model: type[BaseModel] | None = None
) -> dict[str, Any]:
    """``exc`` as the JSON error every front end shows, worded for ``front_end``; ``model``
    (the step's parameters) lets a refused parameter's fix quote the parameter's meaning."""
    if isinstance(exc, AttributionError):
        return exc.to_dict(front_end)
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        problems = [
            f"{_field(err['loc'], front_end)}{_shown_input(err.get('input'))} is refused: "
            f"{render(err['msg'].removeprefix('Value error, ').rstrip('.'), front_end)}"
            f"{_did_you_mean(model, err, front_end)}"
            for err in errors
        ]
        hints = [h for h in dict.fromkeys(_hint(model, e["loc"], front_end) for e in errors) if h]
        return {
            "code": "invalid_parameter",
            "message": "; ".join(problems) + (f". Fix: {' '.join(hints)}" if hints else ""),
            "problem": "; ".join(problems) + ".",
            "fix": " ".join(hints) or "correct the parameter(s) named.",
            "file": None,
            "column": None,
            "rows": [],
            "n_rows": 0,
            "parameter": str(errors[0]["loc"][0]) if errors[0]["loc"] else None,
            "step": None,
        }
    raise exc


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def run_json(
    action: Callable[[], dict[str, Any]],
    front_end: FrontEnd = "script",
    model: type[BaseModel] | None = None,
) -> int:
    """Run ``action``; print its payload with status 'ok', or the error with status 'error'."""
    try:
        # Libraries print chatter ("Sampling: [y]"); stdout is reserved for the JSON answer.
        with contextlib.redirect_stdout(sys.stderr):
            payload = action()
    except (AttributionError, ValidationError) as exc:
        error = error_payload(exc, front_end, model)
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
