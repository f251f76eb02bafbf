"""What a compute function gets and returns (ground floor: the domain modules import it,
and the step runner, one layer up, calls them with it).

A compute function reads what it needs from the workspace through :class:`StepContext` and
returns :class:`StepOutput`: its answer and the files it wants written, as bytes. It never
writes; :func:`attribution_analysis.runner.run_step` commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attribution_analysis.contracts.common import StepAnswer
from attribution_analysis.errors import AttributionError
from attribution_analysis.progress import Progress
from attribution_analysis.workspace import Workspace


class ReadOnlyWorkspace:
    """The workspace as a compute function sees it: everything but writing. A compute
    function that tried to commit, take the writer lock or recover would bypass the
    runner's one commit; it fails at once instead, in every test that runs the step."""

    _FORBIDDEN = frozenset({"commit", "writer", "recover"})

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def __getattr__(self, name: str) -> Any:
        if name in self._FORBIDDEN:
            raise RuntimeError(
                f"a compute function must not call Workspace.{name}: return the files in "
                "its StepOutput and the runner commits them."
            )
        return getattr(self._ws, name)

    def __repr__(self) -> str:
        return f"ReadOnlyWorkspace({self._ws.root})"


@dataclass(frozen=True)
class StepContext:
    """What a compute function gets besides its parameters."""

    ws: Workspace  # read from it; write nothing (return files instead)
    run_id: str  # goes into every output's metadata
    progress: Progress | None = None


@dataclass
class StepOutput:
    """What a compute function returns."""

    answer: StepAnswer
    files: dict[str, bytes] = field(default_factory=dict)  # committed together, atomically
    input_hashes: dict[str, str] = field(default_factory=dict)  # recorded in the registry
    # Committed files may record a refusal (e.g. failed diagnostics) that is then raised.
    refusal: AttributionError | None = None
    # Files to delete in the same commit (e.g. an earlier simulated world's inputs).
    removes: list[str] = field(default_factory=list)
