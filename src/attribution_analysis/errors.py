"""Typed errors a user can act on.

Every error raised for bad input carries *where* (file, column, rows) and *what to do*
(``fix``). Adapters turn them into exit code 2 (CLI) or a tool error (MCP) with the same
text; none of them should ever surface as a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_ROWS_SHOWN = 5


@dataclass(eq=False)
class AttributionError(Exception):
    """Base class: a problem the user (or agent) can fix by changing the input or the call."""

    problem: str
    fix: str = ""
    file: str | None = None
    column: str | None = None
    rows: Sequence[int] = field(default_factory=tuple)
    code: str = "invalid_input"

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.column:
            where.append(f"column '{self.column}'")
        if self.rows:
            shown = ", ".join(str(r) for r in list(self.rows)[:MAX_ROWS_SHOWN])
            more = len(self.rows) - MAX_ROWS_SHOWN
            suffix = f" and {more} more" if more > 0 else ""
            label = "row" if len(self.rows) == 1 else "rows"
            where.append(f"{label} {shown}{suffix}")
        text = (", ".join(where) + ": " if where else "") + self.problem
        if self.fix:
            text += f" Fix: {self.fix}"
        return text

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "problem": self.problem,
            "fix": self.fix,
            "file": self.file,
            "column": self.column,
            "rows": list(self.rows)[:MAX_ROWS_SHOWN],
            "n_rows": len(self.rows),
        }


class DataValidationError(AttributionError):
    """An input table breaks its contract (columns, types, values, dates, alignment)."""


class MissingInputError(AttributionError):
    """A required input file is absent."""

    def __init__(self, problem: str, fix: str = "", file: str | None = None) -> None:
        super().__init__(problem=problem, fix=fix, file=file, code="missing_input")


class WorkspaceError(AttributionError):
    """A path escapes the workspace, or the workspace itself is unusable."""

    def __init__(self, problem: str, fix: str = "", file: str | None = None) -> None:
        super().__init__(problem=problem, fix=fix, file=file, code="workspace")


class WorkspaceBusyError(AttributionError):
    """Another step holds the workspace's writer lock."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem=problem, fix=fix, code="workspace_busy")


class ParameterError(AttributionError):
    """A step was called with parameters that cannot work for this data."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem=problem, fix=fix, code="invalid_parameter")


class ModelRejectedError(AttributionError):
    """The fitted model failed its checks; using it needs an explicit, recorded override."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem=problem, fix=fix, code="model_rejected")
