"""Read every output the report and the FAQ draw on, each through its own contract.

Each file is optional here: a missing file is a section left out of the report (the step's
answer says which step writes it); a file that no longer matches its contract (written by
another version, edited by hand) is a section that says so, instead of a traceback or, worse,
a half-filled chart. Of the budget plans, one is read: the one asked for by name
(``load_inputs(ws, plan=...)``, see ``select_plan``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from attribution_analysis import layout
from attribution_analysis.contracts.allocation import AllocationReport
from attribution_analysis.contracts.budget import BudgetOptimization
from attribution_analysis.contracts.common import Metadata
from attribution_analysis.contracts.inputs import IncrementalityResult
from attribution_analysis.contracts.mmm import (
    FitMMMParams,
    RoiPrior,
    SaturationChoice,
    recorded_fit_params,
)
from attribution_analysis.contracts.outputs import ChannelContributions, MMMDiagnostics
from attribution_analysis.contracts.paths import PathAttributionReport
from attribution_analysis.contracts.validation import DataValidationReport
from attribution_analysis.errors import AttributionError, ParameterError, arg
from attribution_analysis.optimize.plans import DEFAULT_PLAN, plan_names, plan_path
from attribution_analysis.workspace import Workspace

VALIDATION = layout.DATA_VALIDATION.path
FIT = layout.FIT.path
DIAGNOSTICS = layout.DIAGNOSTICS.path
CONTRIBUTIONS = layout.CONTRIBUTIONS.path
WEEKLY = layout.WEEKLY_CONTRIBUTIONS.path
LIFT_TESTS = layout.LIFT_TESTS.path
ALLOCATION = layout.ALLOCATION_SUMMARY.path
ALLOCATION_CSV = layout.ALLOCATION.path
# The budget plans: one file per name; the report and the FAQ read one (DEFAULT_PLAN unless
# asked for another, see ``select_plan``).
BUDGET_PLANS = layout.BUDGET_PLAN.path
PATHS = layout.PATH_ATTRIBUTION.path
# Every output the report and the FAQ read (each optional: a missing one is a section left
# out of the report, and an FAQ answer that says the step has not run).
READS = (VALIDATION, FIT, DIAGNOSTICS, CONTRIBUTIONS, LIFT_TESTS, ALLOCATION, BUDGET_PLANS, PATHS)


def producer(path: str) -> str:
    """Who writes ``path``, as an empty section words it: the step (by name, since the
    reader may use any front end: MCP tool, CLI or script), or the user for an input."""
    entry = layout.declared(path)
    if entry is None:
        return "an earlier step"
    if entry.producer == layout.USER:
        what = entry.description.rstrip(".")
        return f"you or another skill ({what[:1].lower()}{what[1:]}, as {entry.path})"
    return f"the `{entry.producer}` step"


class _Producers(dict[str, str]):
    """Which step writes each input (from the layout catalogue), for any concrete path of a
    family too ('analysis/budget_plans/cautious.json')."""

    def __missing__(self, path: str) -> str:
        return producer(path)


PRODUCERS = _Producers({path: producer(path) for path in READS})

# Files a step writes in the same commit as its output JSON: a later step that read one of
# them was computed from that output, and is out of date whenever that output is.
WRITTEN_WITH = {
    entry.path: CONTRIBUTIONS
    for entry in layout.written_by(layout.CONTRIBUTIONS.producer)
    if entry.path != CONTRIBUTIONS
}

MAX_PROBLEM_CHARS = 300


@dataclass
class Loaded[T]:
    """One input: its value when readable, else why not."""

    path: str
    value: T | None = None
    status: str = "missing"  # 'ok', 'missing' or 'unreadable'
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class FitManifest:
    """The parts of analysis/mmm_fit.json the report shows (its own fields are validated)."""

    metadata: Metadata
    params: FitMMMParams
    method: str
    for_decisions: bool
    target: str | None
    controls: list[str]
    wall_seconds: float | None
    model_path: str | None
    saturation_choice: SaturationChoice | None = None
    roi_prior_applied: RoiPrior | None = None


@dataclass
class ReportInputs:
    validation: Loaded[DataValidationReport]
    fit: Loaded[FitManifest]
    diagnostics: Loaded[MMMDiagnostics]
    contributions: Loaded[ChannelContributions]
    lift_tests: Loaded[list[IncrementalityResult]]
    allocation: Loaded[AllocationReport]
    budget: Loaded[BudgetOptimization]  # the plan asked for (``plan``)
    paths: Loaded[PathAttributionReport]
    hashes: dict[str, str] = field(default_factory=dict)
    plan: str = DEFAULT_PLAN  # the name of the plan shown
    plans: list[str] = field(default_factory=list)  # every plan stored, alphabetical

    @property
    def other_plans(self) -> list[str]:
        """The stored plans not shown, by name (the report lists them)."""
        return [name for name in self.plans if name != self.plan]

    def all(self) -> list[Loaded[Any]]:
        return [
            self.validation,
            self.fit,
            self.diagnostics,
            self.contributions,
            self.lift_tests,
            self.allocation,
            self.budget,
            self.paths,
        ]

    @property
    def present(self) -> list[str]:
        return [item.path for item in self.all() if item.ok]

    @property
    def missing(self) -> list[str]:
        return [item.path for item in self.all() if not item.ok]

    def metadata_by_step(self, view: Callable[[Loaded[Any]], Any] | None = None) -> dict[str, Any]:
        """Provenance of each step whose output was read, in pipeline order (``view``: how
        to read an input's value; the FAQ's traces every field)."""
        found: dict[str, Any] = {}
        for item in (
            self.validation,
            self.fit,
            self.diagnostics,
            self.contributions,
            self.allocation,
            self.budget,
        ):
            if item.ok:
                meta = (view(item) if view else item.value).metadata  # type: ignore[union-attr]
                found.setdefault(meta.step, meta)
        return found


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        text = f"{exc.error_count()} field(s) do not match the contract, first at {where}: "
        text += first["msg"]
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_PROBLEM_CHARS]


def _read_json(ws: Workspace, relative: str) -> tuple[Any, str | None, str]:
    """(parsed JSON or None, sha256 or None, status)."""
    path = ws.resolve(relative)
    if not path.is_file():
        return None, None, "missing"
    return json.loads(path.read_text(encoding="utf-8")), ws.sha256(path), "ok"


def _load_model[M: BaseModel](ws: Workspace, relative: str, model: type[M]) -> tuple[Loaded, str]:
    item: Loaded[M] = Loaded(relative)
    digest = ""
    try:
        raw, sha, item.status = _read_json(ws, relative)
        digest = sha or ""
        if raw is not None:
            item.value = model.model_validate(raw)
    except (ValidationError, ValueError, OSError) as exc:
        item.status, item.problem, item.value = "unreadable", _problem(exc), None
    return item, digest


def _load_fit(ws: Workspace) -> tuple[Loaded[FitManifest], str]:
    item: Loaded[FitManifest] = Loaded(FIT)
    digest = ""
    try:
        raw, sha, item.status = _read_json(ws, FIT)
        digest = sha or ""
        if raw is not None:
            result = raw.get("result", {})
            item.value = FitManifest(
                metadata=Metadata.model_validate(raw["metadata"]),
                params=recorded_fit_params(raw["params"]),
                method=str(result["method"]),
                for_decisions=bool(result.get("for_decisions", False)),
                target=raw.get("target"),
                controls=[str(c) for c in raw.get("controls", [])],
                wall_seconds=result.get("wall_seconds"),
                model_path=result.get("model_path"),
                roi_prior_applied=(
                    RoiPrior.model_validate(result["roi_prior_applied"])
                    if result.get("roi_prior_applied")
                    else None
                ),
                saturation_choice=(
                    SaturationChoice.model_validate(result["saturation_choice"])
                    if result.get("saturation_choice")
                    else None
                ),
            )
    except (ValidationError, ValueError, KeyError, TypeError, OSError) as exc:
        item.status, item.problem, item.value = "unreadable", _problem(exc), None
    return item, digest


def _load_lift_tests(ws: Workspace) -> tuple[Loaded[list[IncrementalityResult]], str]:
    item: Loaded[list[IncrementalityResult]] = Loaded(LIFT_TESTS)
    digest = ""
    try:
        raw, sha, item.status = _read_json(ws, LIFT_TESTS)
        digest = sha or ""
        if raw is not None:
            item.value = TypeAdapter(list[IncrementalityResult]).validate_python(raw)
    except (ValidationError, ValueError, OSError) as exc:
        item.status, item.problem, item.value = "unreadable", _problem(exc), None
    return item, digest


def select_plan(ws: Workspace, plan: str = DEFAULT_PLAN) -> tuple[str, list[str]]:
    """(path of the plan called ``plan``, names of every stored plan).

    The default plan may be absent while no plan exists at all (the report then states the
    main finding instead of a recommendation); any other name must be a stored plan, and
    so must the default once some plan exists: showing no plan while plans exist, or
    another plan than the one asked for, would mislead. Raises a ParameterError naming the
    plans that exist."""
    path = plan_path(plan)
    names = plan_names(ws)
    if plan in names or (not names and plan == DEFAULT_PLAN):
        return path, names
    there = (
        f"this workspace holds {', '.join(repr(n) for n in names)}"
        if names
        else "this workspace holds no budget plan yet"
    )
    fix = (
        f"pass one of them as {arg('plan')}"
        if names
        else f"leave {arg('plan')} at '{DEFAULT_PLAN}' (the report then states the main "
        "finding without a plan), or compute the plan first"
    )
    raise ParameterError(f"no budget plan called '{plan}': {there}.", fix=fix, parameter="plan")


def load_inputs(ws: Workspace, plan: str = DEFAULT_PLAN) -> ReportInputs:
    """Every output the report and the FAQ read, with the budget plan called ``plan``
    (a ParameterError naming the stored plans when there is none by that name; see
    ``select_plan``)."""
    plan_file, plans = select_plan(ws, plan)
    hashes: dict[str, str] = {}

    def keep[T](pair: tuple[Loaded[T], str]) -> Loaded[T]:
        item, digest = pair
        if digest:
            hashes[item.path] = digest
        return item

    inputs = ReportInputs(
        validation=keep(_load_model(ws, VALIDATION, DataValidationReport)),
        fit=keep(_load_fit(ws)),
        diagnostics=keep(_load_model(ws, DIAGNOSTICS, MMMDiagnostics)),
        contributions=keep(_load_model(ws, CONTRIBUTIONS, ChannelContributions)),
        lift_tests=keep(_load_lift_tests(ws)),
        allocation=keep(_load_model(ws, ALLOCATION, AllocationReport)),
        budget=keep(_load_model(ws, plan_file, BudgetOptimization)),
        paths=keep(_load_model(ws, PATHS, PathAttributionReport)),
        plan=plan,
        plans=plans,
    )
    inputs.hashes = hashes
    return inputs


def stale_outputs(ws: Workspace, inputs: ReportInputs) -> list[tuple[str, str]]:
    """Outputs computed from inputs that have changed since (a rerun left them behind).

    Every output records the sha256 of each file it read (the model steps also that of
    analysis/mmm_fit.json, the fit they used); a file that now hashes differently means the
    output belongs to an earlier analysis, and putting it next to the current one would mix
    two analyses in one report. An output read from another output that is itself out of
    date is out of date too (the allocation of a decomposition of an earlier fit). Returns
    (output, reason) pairs, in pipeline order.
    """
    current: dict[str, str | None] = {}

    def digest(relative: str) -> str | None:
        if relative not in current:
            try:
                path = ws.resolve(relative)
                current[relative] = ws.sha256(path) if path.is_file() else None
            except (AttributionError, OSError):
                current[relative] = None
        return current[relative]

    reasons: dict[str, str] = {}
    read: dict[str, list[str]] = {}
    for item in inputs.all():
        meta = getattr(item.value, "metadata", None) if item.ok else None
        if not isinstance(meta, Metadata):
            continue
        read[item.path] = list(meta.input_hashes)
        refit = False
        changed = []
        for relative, recorded in meta.input_hashes.items():
            now = digest(relative)
            if now is None:
                changed.append(f"{relative} (no longer present)")
            elif now != recorded:
                if relative == FIT:
                    refit = True
                else:
                    changed.append(relative)
        parts = []
        if refit:
            parts.append(f"it was computed from an earlier model fit ({FIT} changed since)")
        if changed:
            parts.append("its inputs changed since it was written: " + ", ".join(changed))
        if parts:
            reasons[item.path] = "; ".join(parts)
    # Out of date through an upstream output: repeat until nothing new (the chain is short).
    grew = True
    while grew:
        grew = False
        for output, files in read.items():
            if output in reasons:
                continue
            for relative in files:
                upstream = WRITTEN_WITH.get(relative, relative)
                if upstream != output and upstream in reasons:
                    via = "" if upstream == relative else f" (through {relative})"
                    reasons[output] = f"it was computed from {upstream}{via}, which is out of date"
                    grew = True
                    break
    return [(item.path, reasons[item.path]) for item in inputs.all() if item.path in reasons]
