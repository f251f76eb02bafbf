"""The ``attribution`` command: one subcommand per step, generated from the step table.

``attribution <step> --workspace DIR [options]`` runs a step of ``steps.STEPS`` under its own
name (``attribution validate_data``, ``attribution fit_mmm``, ...), with one option per
parameter (``frontends.options``) and the JSON answer on stdout, exactly as
``scripts/<step>.py`` and the MCP tool of the same name. The other commands (``version``,
``runs``, ``serve``, ``demo``, ``schemas``) are not steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from attribution_analysis import __version__
from attribution_analysis.errors import AttributionError
from attribution_analysis.frontends.commands import add_step_commands
from attribution_analysis.frontends.output import EXIT_INPUT_ERROR, error_payload

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Bayesian MMM and EM / Bayesian allocation, step by step: `attribution <step> "
    "--workspace DIR` runs a step (the same name as its script and MCP tool).",
)
schemas_app = typer.Typer(no_args_is_help=True, help="JSON Schemas of the contracts.")
app.add_typer(schemas_app, name="schemas")
add_step_commands(app, "cli")  # first, in pipeline order: `attribution <step>`
out = Console()
err = Console(stderr=True)

WorkspaceOption = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")]


def _fail(exc: AttributionError | ValidationError) -> typer.Exit:
    err.print(
        f"[bold red]error:[/] {error_payload(exc, 'cli')['message']}",
        highlight=False,
        soft_wrap=True,
    )
    return typer.Exit(EXIT_INPUT_ERROR)


@app.command()
def version() -> None:
    """Print the package version."""
    out.print(__version__)


@app.command()
def runs(workspace: WorkspaceOption, step: str | None = None, limit: int = 20) -> None:
    """List the step runs recorded in the workspace's run registry (the audit trail)."""
    from attribution_analysis.registry import RunRegistry
    from attribution_analysis.workspace import Workspace

    try:
        records = RunRegistry(Workspace.open(workspace)).list_runs(step, limit)
    except AttributionError as exc:
        raise _fail(exc) from None
    out.print_json(json.dumps(records, default=str))


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
def serve(ctx: typer.Context) -> None:
    """Run the MCP server, the same as `attribution-mcp`: every option is passed on to it
    (`attribution serve --help` lists them: limits, --host, --auth-token, idle sessions), so
    the two commands cannot drift apart."""
    from attribution_analysis.server import main

    raise typer.Exit(main(list(ctx.args)))


@app.command()
def demo(
    workspace: Annotated[Path, typer.Option("--workspace", "-w")] = Path("demo_workspace"),
    geo: Annotated[
        bool,
        typer.Option(
            "--geo",
            help="The geo demo: a 6-geo regional panel calibrated with two geo lift tests, per-geo "
            "contributions beside the simulated truth and a budget per geo x channel once the "
            "model passes its gates (it now stops at the divergence gate: see the README).",
        ),
    ] = False,
) -> None:
    """Build the bundled demo workspace from the simulator and run the pipeline on it."""
    from attribution_analysis.demo import run_demo, run_geo_demo

    try:
        (run_geo_demo if geo else run_demo)(workspace, out)
    except (AttributionError, ValidationError) as exc:
        raise _fail(exc) from None


@schemas_app.command("export")
def schemas_export(directory: Path = Path("schemas")) -> None:
    """Write every contract's JSON Schema to DIRECTORY."""
    from attribution_analysis.schemas import export_schemas

    written = export_schemas(directory)
    out.print(f"wrote {len(written)} schemas to {directory}")


@schemas_app.command("check")
def schemas_check(directory: Path = Path("schemas")) -> None:
    """Fail (exit 1) when DIRECTORY's schemas differ from the models."""
    from attribution_analysis.schemas import schema_drift

    problems = schema_drift(directory)
    for problem in problems:
        err.print(problem)
    if problems:
        err.print("run `attribution schemas export` to regenerate them.")
        raise typer.Exit(1)
    out.print("schemas are up to date")
