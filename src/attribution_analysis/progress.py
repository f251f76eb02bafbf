"""Progress reporting shared by steps: a callable (done, total, message), or None."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, float, str], None]


def report(progress: Progress | None, done: float, total: float, message: str) -> None:
    if progress is not None:
        progress(done, total, message)
