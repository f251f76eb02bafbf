"""The one step runner: registry, writer lock, staging and commit for every step.

A step's compute function (``StepSpec.compute``) reads what it needs from the workspace and
returns its answer and the files it wants written, as bytes; it never writes. The runner
records the run (``registry.track``: writer lock, recovery of an interrupted commit, status
and input hashes), commits the files all-or-nothing, and checks the answer against the
step's declared answer model, so the CLI, the scripts and the MCP tools cannot differ in
what a step does, writes or returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from attribution_analysis.compute import ReadOnlyWorkspace, StepContext
from attribution_analysis.contracts.common import StepAnswer
from attribution_analysis.errors import AttributionError
from attribution_analysis.progress import Progress
from attribution_analysis.workspace import Workspace

if TYPE_CHECKING:
    from attribution_analysis.steps import StepSpec


def run_step(
    spec: StepSpec, ws: Workspace, params: BaseModel, progress: Progress | None = None
) -> StepAnswer:
    """Run ``spec`` on ``ws``: check inputs, compute, commit, validate the answer."""
    from attribution_analysis.registry import RunRegistry

    try:
        spec.check(ws, params)
        if spec.query:
            return _query(spec, ws, params, progress)
        with RunRegistry(ws).track(spec.name, params.model_dump(mode="json")) as run:
            context = StepContext(ReadOnlyWorkspace(ws), run.run_id, progress)  # type: ignore[arg-type]
            output = spec.compute_function()(context, params)
            run.input_hashes = dict(output.input_hashes)
            if output.files or output.removes:
                ws.commit(output.files, output.removes)
            run.outputs = list(output.files)
            if output.refusal is not None:
                raise output.refusal
    except AttributionError as exc:
        exc.step = exc.step or spec.name
        raise
    return answer_of(spec, output.answer)


def _query(
    spec: StepSpec, ws: Workspace, params: BaseModel, progress: Progress | None
) -> StepAnswer:
    """A query (a listing) only reads: it takes no writer lock, so it answers while a long
    fit holds the lock, and it leaves no run record."""
    context = StepContext(ReadOnlyWorkspace(ws), "query", progress)  # type: ignore[arg-type]
    output = spec.compute_function()(context, params)
    if output.files or output.removes:
        raise TypeError(f"{spec.name} is a query but returned files to write")
    if output.refusal is not None:
        raise output.refusal
    return answer_of(spec, output.answer)


def answer_of(spec: StepSpec, answer: Any) -> StepAnswer:
    """The answer as the step's declared model (a programming error, not a user's, when a
    compute function returns another shape)."""
    if not isinstance(answer, spec.answer):
        raise TypeError(f"{spec.name} answered {type(answer).__name__}, not {spec.answer.__name__}")
    return answer
