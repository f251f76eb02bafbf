"""Typed errors a user can act on.

Every error raised for bad input carries *where* (file, column, rows) and *what to do*
(``fix``). Adapters turn them into exit code 2 (CLI) or a tool error (MCP) with the same
text; none of them should ever surface as a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

MAX_ROWS_SHOWN = 5

# Who is reading the error. Domain code words a parameter or a step once, as a marker
# (``arg('override_reason')``, ``step_ref('validate_model')``); each front end renders the
# marker its own way: an MCP caller is told the tool argument, a CLI caller the flag.
FrontEnd = Literal["mcp", "cli", "script", "python"]
_MARKER = re.compile(r"\[\[(arg|step):([a-z_]+)\]\]")


def arg(name: str) -> str:
    """A step parameter named in an error or fix, rendered per front end."""
    return f"[[arg:{name}]]"


def step_ref(name: str) -> str:
    """'Run this step' in an error or fix, rendered per front end."""
    return f"[[step:{name}]]"


def _render_marker(kind: str, name: str, front_end: FrontEnd) -> str:
    if kind == "arg":
        return f"--{name.replace('_', '-')}" if front_end in ("cli", "script") else f"`{name}`"
    if front_end == "mcp":
        return f"the `{name}` tool"
    if front_end == "cli":
        return f"`attribution {name} --workspace DIR`"
    if front_end == "script":
        return f"`python scripts/{name}.py --workspace DIR`"
    return f"the `{name}` step"


def render(text: str, front_end: FrontEnd = "python") -> str:
    """``text`` with its argument and step markers worded for ``front_end``."""
    return _MARKER.sub(lambda m: _render_marker(m.group(1), m.group(2), front_end), text)


@dataclass(eq=False)
class AttributionError(Exception):
    """Base class: a problem the user (or agent) can fix by changing the input or the call."""

    problem: str
    fix: str = ""
    file: str | None = None
    column: str | None = None
    rows: Sequence[int] = field(default_factory=tuple)
    code: str = "invalid_input"
    parameter: str | None = None  # the step parameter at fault, when one is
    step: str | None = None  # the step that refused (set by the step runner)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.render("python")

    def render(self, front_end: FrontEnd) -> str:
        """The whole message (where, what, fix) in ``front_end``'s words."""
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
        return render(text, front_end)

    def __str__(self) -> str:
        return self.message

    def to_dict(self, front_end: FrontEnd = "python") -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.render(front_end),
            "problem": render(self.problem, front_end),
            "fix": render(self.fix, front_end),
            "file": self.file,
            "column": self.column,
            "rows": list(self.rows)[:MAX_ROWS_SHOWN],
            "n_rows": len(self.rows),
            "parameter": self.parameter,
            "step": self.step,
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

    def __init__(self, problem: str, fix: str = "", parameter: str | None = None) -> None:
        super().__init__(problem=problem, fix=fix, code="invalid_parameter", parameter=parameter)


class ModelRejectedError(AttributionError):
    """The fitted model failed its checks; using it needs an explicit, recorded override."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem=problem, fix=fix, code="model_rejected")
