"""One command per step, generated from the step table: the ``attribution <step>``
subcommands and the ``scripts/<step>.py`` scripts are the same command.

A command takes ``--workspace DIR`` and one option per field of the step's parameters model
(``frontends.options``), validates them with the model, runs the step as every front end
does (``steps.execute``) with a progress bar on stderr, and prints the JSON answer
``{"status": "ok", ...}`` on stdout, or ``{"status": "error", "error": {...}}`` with exit
code 2, its wording for the command line (``--total-budget``, ``attribution fit_mmm`` or
``python scripts/fit_mmm.py``).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from attribution_analysis.errors import FrontEnd
from attribution_analysis.frontends.options import parameters, parse_params
from attribution_analysis.frontends.output import rich_progress, run_json
from attribution_analysis.steps import STEPS, StepSpec, execute, step

WORKSPACE_HELP = "Workspace folder (holds raw/, analysis/ and reports/)."
WORKSPACE_CREATED_HELP = "Workspace folder to write (created when missing)."


def _run(
    spec: StepSpec, workspace: str, typed: dict[str, Any], front_end: FrontEnd
) -> dict[str, Any]:
    from attribution_analysis.workspace import Workspace

    # The parameters first: a refused value is reported even when the folder is wrong too.
    params = parse_params(spec.params, typed)
    if spec.creates_workspace:
        ws = Workspace.create(workspace)
    else:
        ws = Workspace.open(workspace)
        spec.check(ws, params)
    with rich_progress(spec.name) as progress:
        return execute(spec, ws, params, progress, front_end)


def step_function(spec: StepSpec, front_end: FrontEnd = "cli") -> Callable[..., None]:
    """The function typer makes the command of ``spec`` from: ``--workspace`` and one
    keyword parameter per field of the parameters model (its signature is generated)."""

    def command(workspace: str, **typed: Any) -> None:
        code = run_json(lambda: _run(spec, workspace, typed, front_end), front_end, spec.params)
        if code:
            raise typer.Exit(code)

    help_text = WORKSPACE_CREATED_HELP if spec.creates_workspace else WORKSPACE_HELP
    workspace = inspect.Parameter(
        "workspace",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[str, typer.Option("--workspace", "-w", help=help_text, metavar="DIR")],
    )
    fields = parameters(spec.params)
    if any(p.name == "workspace" for p in fields):
        raise RuntimeError(f"{spec.name}: a parameter named 'workspace' would hide --workspace")
    command.__signature__ = inspect.Signature([workspace, *fields])  # type: ignore[attr-defined]
    command.__name__ = spec.name
    command.__doc__ = spec.summary
    return command


def add_step_commands(app: typer.Typer, front_end: FrontEnd = "cli") -> None:
    """One command per step of ``steps.STEPS`` on ``app``, named as the step."""
    for spec in STEPS:
        app.command(spec.name, help=spec.summary, short_help=spec.title + ".")(
            step_function(spec, front_end)
        )


def run_script(name: str, argv: list[str] | None = None) -> int:
    """``scripts/<name>.py``: run step ``name`` from the command line; the exit code."""
    spec = step(name)
    app = typer.Typer(add_completion=False)
    app.command(spec.name, help=spec.summary)(step_function(spec, "script"))
    command = typer.main.get_command(app)
    try:
        command.main(
            args=sys.argv[1:] if argv is None else argv,
            prog_name=f"python scripts/{name}.py",
            standalone_mode=True,
        )
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
