"""Shared plumbing of the command-line adapters: one JSON shape, one error path.

Scripts print one JSON object on stdout with a ``status`` field ('ok' or 'error'), and exit
0 or 2. The same :class:`AttributionError` text reaches a human on stderr; a Python
traceback never does for input problems.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
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
        payload = action()
    except (AttributionError, ValidationError) as exc:
        error = error_payload(exc)
        emit({"status": "error", "error": error})
        sys.stderr.write(f"error: {error['message']}\n")
        return EXIT_INPUT_ERROR
    emit({"status": "ok", **payload})
    return 0
