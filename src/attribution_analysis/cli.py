"""The ``attribution`` command: a thin adapter over the step functions."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from attribution_analysis import __version__
from attribution_analysis.adapters import EXIT_INPUT_ERROR, error_payload
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.contracts.validation import ValidateDataParams
from attribution_analysis.errors import AttributionError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Bayesian MMM and EM / Bayesian allocation, step by step.",
)
schemas_app = typer.Typer(no_args_is_help=True, help="JSON Schemas of the contracts.")
app.add_typer(schemas_app, name="schemas")
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


def _run_step(name: str, workspace: Path, build: Callable[[], dict]) -> None:
    """Validate the parameters ``build`` returns into the step's contract, run the step as
    every other adapter does (``steps.STEPS``), print its JSON payload."""
    from attribution_analysis.steps import execute, step
    from attribution_analysis.workspace import Workspace

    spec = step(name)
    try:
        params = spec.params.model_validate(build())
        ws = Workspace.open(workspace)
        spec.check(ws, params)
        payload = execute(spec, ws, params)
    except (AttributionError, ValidationError) as exc:
        raise _fail(exc) from None
    out.print_json(json.dumps(payload, default=str))


@app.command()
def version() -> None:
    """Print the package version."""
    out.print(__version__)


@app.command()
def simulate(
    kind: Annotated[str, typer.Option(help="mmm | mta | hcp-brick | journeys")] = "mmm",
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to create.")] = Path("workspace"),
    seed: int = 7,
    weeks: int = 156,
    channels: int = 5,
    geos: int = 0,
    lift_tests: int = 0,
    collinear_pairs: int = 0,
    n_hcps: int = 400,
    n_bricks: int = 80,
    hcp_family: str = "poisson",
    n_users: Annotated[int, typer.Option(help="journeys: simulated users.")] = 50_000,
    overwrite: Annotated[bool, typer.Option(help="Replace raw/ and truth/ if present.")] = False,
) -> None:
    """Write a simulated workspace (raw files + truth/) with a fixed seed."""
    from attribution_analysis.simulate import simulate_workspace

    try:
        params = SimulationParams(
            kind=kind,
            seed=seed,
            weeks=weeks,
            channels=channels,
            geos=geos,
            lift_tests=lift_tests,
            collinear_pairs=collinear_pairs,
            n_hcps=n_hcps,
            n_bricks=n_bricks,
            hcp_family=hcp_family,
            n_users=n_users,
        )
        files = simulate_workspace(out_dir, params, overwrite=overwrite)
    except (AttributionError, ValidationError) as exc:
        raise _fail(exc) from None
    out.print(f"simulated {kind} workspace (seed {seed}) in [bold]{out_dir}[/]: {len(files)} files")


@app.command()
def validate(
    workspace: WorkspaceOption,
    grain: Annotated[str, typer.Option(help="auto | weekly | daily")] = "auto",
    country: Annotated[str, typer.Option(help="Holiday calendar (ISO code); '' for none.")] = "US",
    start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    max_gap: Annotated[int, typer.Option(help="Longest gap (periods) imputed.")] = 4,
) -> None:
    """Validate raw/ and write analysis/prepared_panel.csv + analysis/data_validation.json."""
    from attribution_analysis.data.validate import validate_data
    from attribution_analysis.workspace import Workspace

    try:
        params = ValidateDataParams(
            grain=grain,
            country=country or None,
            start=start.date() if start else None,
            end=end.date() if end else None,
            max_gap_periods=max_gap,
        )
        report = validate_data(Workspace.open(workspace), params)
    except (AttributionError, ValidationError) as exc:
        raise _fail(exc) from None
    _print_validation(report, workspace)


def _print_validation(report, workspace: Path) -> None:
    window = report.window
    out.print(
        f"[bold green]{report.status}[/]: {window.n_periods} {report.grain} periods, "
        f"{window.start} to {window.end}" + (f", geos {window.geos}" if window.geos else "")
    )
    table = Table("channel", "spend", "active", "imputed", "confidence")
    for ch in report.channels:
        table.add_row(
            ch.channel,
            f"{ch.total_spend:,.0f}",
            f"{ch.active_share:.0%}",
            str(ch.imputed_periods),
            ch.confidence,
        )
    out.print(table)
    for finding in report.warnings:
        out.print(f"[yellow]warning[/] {finding.code}: {finding.message}", highlight=False)
    out.print(f"report: {workspace / 'analysis' / 'data_validation.json'}")


@app.command()
def allocate(
    workspace: WorkspaceOption,
    method: Annotated[str, typer.Option(help="em | bayes")] = "em",
    family: Annotated[str, typer.Option(help="poisson (units) | gamma (currency)")] = "poisson",
    covariates: Annotated[str, typer.Option(help="comma-separated covariate specs")] = "",
    ridge: Annotated[float, typer.Option(help="ridge penalty of the GLM M-step")] = 0.1,
    source: Annotated[str, typer.Option(help="auto | hcp-brick | mta")] = "auto",
    omega_source: Annotated[
        str,
        typer.Option(help="mta weight ω: exposure | path_credit (run attribute-paths first)"),
    ] = "exposure",
) -> None:
    """Split group totals (brick sales, or MMM channel contributions) across entities."""
    _run_step(
        "allocate",
        workspace,
        lambda: {
            "source": source,
            "method": method,
            "family": family,
            "ridge": ridge,
            "covariates": [c for c in covariates.split(",") if c.strip()],
            "omega_source": omega_source,
        },
    )


@app.command()
def optimize(
    workspace: WorkspaceOption,
    total_budget: Annotated[
        float | None, typer.Option(help="Total over the whole horizon (not per week).")
    ] = None,
    horizon_weeks: Annotated[int, typer.Option(help="Planning horizon in periods.")] = 13,
    constraints: Annotated[Path | None, typer.Option(help="Bounds CSV or JSON.")] = None,
    max_change: Annotated[str, typer.Option(help="±share per channel, or 'none'.")] = "0.3",
    allow_extrapolation: Annotated[
        bool, typer.Option(help="Lift the cap at the highest spend per period in the data.")
    ] = False,
    objective: Annotated[str, typer.Option(help="mean | cvar")] = "mean",
    scenario: Annotated[
        list[str] | None, typer.Option(help="shift:A:B:0.2 | total:+0.1 | plan:A=100,B=50")
    ] = None,
    override_reason: Annotated[str | None, typer.Option(help="Use a failed model.")] = None,
) -> None:
    """Recommend a budget mix with its expected lift, scenarios and mROAS curves."""
    from attribution_analysis.optimize.inputs import (
        params_from_flags,
        parse_max_change,
        parse_scenario,
        read_bounds,
    )

    # Validated here first so that a refused value is reported under its flag.
    _run_step(
        "optimize_budget",
        workspace,
        lambda: params_from_flags(
            {
                "total_budget": total_budget,
                "horizon_periods": horizon_weeks,
                "bounds": read_bounds(constraints) if constraints else [],
                "max_change": parse_max_change(max_change),
                "allow_extrapolation": allow_extrapolation,
                "objective": objective,
                "scenarios": [parse_scenario(s) for s in scenario or []],
                "override_reason": override_reason,
            }
        ).model_dump(),
    )


@app.command("attribute-paths")
def attribute_paths(
    workspace: WorkspaceOption,
    method: Annotated[str, typer.Option(help="heuristics | markov | shapley | all")] = "all",
    order: Annotated[int, typer.Option(help="Markov order k (1-4).")] = 1,
    source: Annotated[str, typer.Option(help="auto | journeys | paths")] = "auto",
    reconcile: Annotated[bool, typer.Option(help="Compare with the MMM if present.")] = True,
) -> None:
    """Credit conversions to channels from user journeys (heuristics, Markov, Shapley)."""
    _run_step(
        "attribute_paths",
        workspace,
        lambda: {"method": method, "order": order, "source": source, "reconcile": reconcile},
    )


@app.command("report")
def report_command(
    workspace: WorkspaceOption,
    top_campaigns: Annotated[int, typer.Option(help="Campaigns shown per channel.")] = 5,
    figures: Annotated[bool, typer.Option(help="Write PNG/SVG copies for slides.")] = True,
    financial_services: Annotated[
        bool, typer.Option(help="Add SEC Marketing Rule notices.")
    ] = False,
    fee_basis: Annotated[str, typer.Option(help="gross | net_of_fees | not_stated")] = "not_stated",
) -> None:
    """Write reports/mmm_executive_summary.html (self-contained, offline) and its figures."""
    _run_step(
        "generate_report",
        workspace,
        lambda: {
            "top_campaigns": top_campaigns,
            "figures": figures,
            "financial_services": financial_services,
            "fee_basis": fee_basis,
        },
    )


@app.command("faq")
def faq_command(
    workspace: WorkspaceOption,
    audience: Annotated[
        str, typer.Option(help="cmo | data_science | finance | marketing | legal | all")
    ] = "all",
    financial_services: Annotated[
        bool, typer.Option(help="Add SEC Marketing Rule notices.")
    ] = False,
    fee_basis: Annotated[str, typer.Option(help="gross | net_of_fees | not_stated")] = "not_stated",
) -> None:
    """Draft reports/faq_<audience>.md and .html with this analysis's numbers filled in."""
    _run_step(
        "draft_faq",
        workspace,
        lambda: {
            "audience": audience,
            "financial_services": financial_services,
            "fee_basis": fee_basis,
        },
    )


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
) -> None:
    """Build the bundled demo workspace from the simulator and run the pipeline on it."""
    from attribution_analysis.demo import run_demo

    try:
        run_demo(workspace, out)
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
