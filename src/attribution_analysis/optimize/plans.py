"""Named budget plans: one file per plan under ``analysis/budget_plans/`` (``layout.BUDGET_PLAN``).

``optimize_budget`` stores each plan under its ``plan_name``; the report and the FAQ read
one of them (``DEFAULT_PLAN`` unless asked for another). This module only reads: it imports
the contracts and the workspace, nothing numerical, so any step may use it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pydantic import ValidationError

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.budget import (
    PLAN_NAME_PATTERN,
    BudgetOptimization,
    BudgetPlansAnswer,
    ListBudgetPlansParams,
    PlanListing,
)
from attribution_analysis.contracts.common import Finding
from attribution_analysis.errors import ParameterError, WorkspaceError, arg, render, step_ref
from attribution_analysis.workspace import Workspace

DEFAULT_PLAN = "recommended"


def plan_path(name: str) -> str:
    """The workspace-relative path of the plan called ``name``."""
    if not re.fullmatch(PLAN_NAME_PATTERN, name):
        raise ParameterError(
            f"'{name}' is not a plan name.",
            fix="use lowercase letters, digits, '_' and '-' (1-60 characters), e.g. "
            f"'{DEFAULT_PLAN}' or 'tv_cut_20'.",
            parameter="plan_name",
        )
    return layout.BUDGET_PLAN.path_for(name=name)


def _plans_folder(ws: Workspace) -> Path:
    return ws.resolve(layout.BUDGET_PLAN.path_for(name="x")).parent


def plan_names(ws: Workspace) -> list[str]:
    """Names of the plans stored in ``ws`` (alphabetical; no file is parsed)."""
    folder = _plans_folder(ws)
    if not folder.is_dir():
        return []
    return sorted(
        path.stem
        for path in folder.glob("*.json")
        if re.fullmatch(PLAN_NAME_PATTERN, path.stem) and path.is_file()
    )


def read_plan(ws: Workspace, name: str = DEFAULT_PLAN) -> BudgetOptimization:
    """The plan called ``name``, or a WorkspaceError naming the plans that exist."""
    relative = plan_path(name)
    path = ws.resolve(relative)
    if not path.exists():
        names = plan_names(ws)
        there = (
            f"the workspace holds {', '.join(repr(n) for n in names)}"
            if names
            else "the workspace holds no budget plan yet"
        )
        raise WorkspaceError(
            f"no budget plan called '{name}': {there}.",
            fix=f"pick one of the plans listed, or run {step_ref('optimize_budget')} with "
            f"{arg('plan_name')} '{name}'.",
            file=relative,
        )
    try:
        return BudgetOptimization.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise WorkspaceError(
            f"the budget plan '{name}' does not follow the current format "
            f"({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}).",
            fix=f"run {step_ref('optimize_budget')} with {arg('plan_name')} '{name}' again.",
            file=relative,
        ) from exc


def listed_names(ws: Workspace) -> list[str]:
    """Names of the stored plans, newest first (as ``list_plans`` orders them)."""
    return [listing.name for listing in list_plans(ws)]


def replaced_finding(name: str, path: str) -> Finding:
    """The note that a plan of the same name was replaced (say so: nothing is overwritten
    silently)."""
    return Finding(
        code="plan_replaced",
        severity="info",
        subject=name,
        message=render(
            f"this plan replaces the earlier plan '{name}' ({path}). To keep both, run "
            f"{step_ref('optimize_budget')} again with another {arg('plan_name')}."
        ),
    )


def list_plans(ws: Workspace) -> list[PlanListing]:
    """Every stored plan with when it was written, its budget and objective; newest first.

    A file that no longer parses is listed from what can be read of it rather than hidden,
    so a user sees that it exists (its objective then says so)."""
    found: list[tuple[int, PlanListing]] = []
    for name in plan_names(ws):
        relative = layout.BUDGET_PLAN.path_for(name=name)
        # Timestamps have whole seconds; the file's time orders plans written within one.
        modified = ws.resolve(relative).stat().st_mtime_ns
        try:
            plan = read_plan(ws, name)
        except WorkspaceError:
            when = dt.datetime.fromtimestamp(modified / 1e9, dt.UTC)
            listing = PlanListing(
                name=name,
                created=when.isoformat(timespec="seconds"),
                total_budget=0.0,
                objective="unreadable: run optimize_budget again under this name",
                path=relative,
            )
        else:
            listing = PlanListing(
                name=name,
                created=plan.metadata.timestamp,
                total_budget=plan.total_budget,
                objective=plan.optimizer.objective,
                path=relative,
            )
        found.append((modified, listing))
    found.sort(key=lambda pair: (pair[1].created, pair[0], pair[1].name), reverse=True)
    return [listing for _, listing in found]


def compute(ctx: StepContext, params: ListBudgetPlansParams) -> StepOutput:
    """The list_budget_plans step: the stored plans, newest first; writes nothing."""
    return StepOutput(
        BudgetPlansAnswer(
            step="list_budget_plans",
            outputs=[],
            plans=list_plans(ctx.ws),
            default_plan=DEFAULT_PLAN,
        )
    )
