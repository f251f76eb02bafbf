"""The ``generate_report`` step: ``reports/mmm_executive_summary.html`` and its figures.

One self-contained HTML file: styles inline, charts as inline SVG drawn here with matplotlib,
no JavaScript and no network request (a Content-Security-Policy in the page forbids both, so
even an injected script would not run). It opens with the decision: one sentence built from
the fields of the budget plan shown (or, without a plan, the main finding of the
decomposition). Every number is a field of an output JSON; the summary rounds for an
executive, the tables keep full figures with their intervals. A section whose input does
not exist is left out (the step's answer says which step writes it); the page names no
command to run.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.common import Metadata
from attribution_analysis.contracts.report import (
    GenerateReportAnswer,
    GenerateReportParams,
    SectionReport,
)
from attribution_analysis.optimize.plans import plan_path
from attribution_analysis.progress import report
from attribution_analysis.report import trace, views
from attribution_analysis.report.inputs import (
    FIT,
    PRODUCERS,
    Loaded,
    ReportInputs,
    load_inputs,
    stale_outputs,
)
from attribution_analysis.workspace import Workspace

if TYPE_CHECKING:  # matplotlib is imported only when a chart is drawn (not by draft_faq)
    from attribution_analysis.report import charts

STEP = "generate_report"
OUTPUT = layout.REPORT.path
# Beside the report: every traced value it prints, in order, with its file and JSON path.
SOURCES = layout.REPORT_SOURCES.path
FIGURES = layout.FIGURES.path
DEFAULT_TITLE = "Marketing mix model: executive summary"

# (section id, heading, the inputs it needs, as ReportInputs attributes: the first one
# decides whether it is in the report)
SECTIONS: list[tuple[str, str, list[str]]] = [
    ("summary", "Executive summary", ["contributions", "diagnostics", "budget", "allocation"]),
    ("contributions", "Channel contributions", ["contributions"]),
    ("roas", "ROAS and marginal ROAS", ["contributions", "budget"]),
    ("budget", "Budget plan", ["budget"]),
    ("campaigns", "Campaign allocation within channels", ["allocation"]),
    ("paths", "User-level path attribution", ["paths"]),
    ("diagnostics", "Model diagnostics", ["diagnostics", "fit", "lift_tests"]),
    ("data", "Data", ["validation"]),
    ("methodology", "Methodology and limits", ["fit"]),
    ("metadata", "Metadata and provenance", []),
]
# Always in the report: they say in their own text what is missing.
ALWAYS = ("summary", "methodology", "metadata")


def _section(name: str, title: str, needs: list[Loaded[Any]]) -> SectionReport:
    """A section with input is rendered; one whose input exists but breaks its contract
    says so in the report; one without input is left out of the report (the answer's
    message says which step writes it, for the agent, not for the reader)."""
    used = [item.path for item in needs if item.ok]
    if not needs or name in ALWAYS:
        return SectionReport(name=name, title=title, status="rendered", inputs=used)
    primary = needs[0]
    if primary.ok:
        return SectionReport(name=name, title=title, status="rendered", inputs=used)
    if primary.status == "unreadable":
        message = (
            f"{primary.path} exists but does not match its contract ({primary.problem}); "
            f"rerun {PRODUCERS[primary.path]} with this version."
        )
        return SectionReport(
            name=name, title=title, status="unreadable", inputs=[], message=message
        )
    message = (
        f"Left out: {primary.path} does not exist yet. It is written by {PRODUCERS[primary.path]}."
    )
    return SectionReport(name=name, title=title, status="no_input", inputs=[], message=message)


def _chart_plan(
    inputs: ReportInputs, params: GenerateReportParams
) -> list[Callable[[], charts.Chart | None]]:
    """The report's charts, each as a call that draws it (memoised per input), in order."""
    from attribution_analysis.report import charts

    plan: list[Callable[[], charts.Chart | None]] = []
    if inputs.contributions.ok:
        contributions = inputs.contributions.value
        plan += [
            lambda: charts.waterfall(contributions),  # type: ignore[arg-type]
            lambda: charts.roas_intervals(contributions),  # type: ignore[arg-type]
        ]
    budget = inputs.budget.value if inputs.budget.ok else None
    if budget is not None:
        plan.append(lambda: charts.budget_shift(budget))
        if budget.curves:
            plan.append(lambda: charts.response_curves(budget))
    if inputs.allocation.ok and inputs.allocation.value.entities:  # type: ignore[union-attr]
        allocation = inputs.allocation.value
        plan.append(lambda: charts.campaigns(allocation, params.top_campaigns))  # type: ignore[arg-type]
    if inputs.diagnostics.ok:
        d = inputs.diagnostics.value
        target = inputs.contributions.value.target if inputs.contributions.ok else "outcome"  # type: ignore[union-attr]
        order = views.trace_order(inputs)
        plan += [
            lambda: charts.trace_plots(d, order, params.trace_parameters),  # type: ignore[arg-type]
            lambda: charts.ppc_coverage(d, target),  # type: ignore[arg-type]
        ]
    return plan


def _charts(inputs: ReportInputs, params: GenerateReportParams) -> dict[str, charts.Chart]:
    drawn = [draw() for draw in _chart_plan(inputs, params)]
    return {c.id: c for c in drawn if c is not None}


def draw_charts(ws: Workspace, keep_going: Callable[[], bool] = lambda: True) -> int:
    """Draw the charts a default report of ``ws`` shows, one by one while ``keep_going()``
    (memoised, and kept in the chart store when one is set, for the report itself:
    ``server/prefetch.py``); how many were drawn."""
    drawn = 0
    for draw in _chart_plan(load_inputs(ws), GenerateReportParams()):
        if not keep_going():
            break
        drawn += draw() is not None
    return drawn


FIT_FIELDS = {  # FitManifest attributes -> their JSON path in analysis/mmm_fit.json
    "method": ("result", "method"),
    "for_decisions": ("result", "for_decisions"),
    "wall_seconds": ("result", "wall_seconds"),
    "model_path": ("result", "model_path"),
    "saturation_choice": ("result", "saturation_choice"),
    "roi_prior_applied": ("result", "roi_prior_applied"),
}


def reader(traced: bool) -> Callable[[Loaded[Any]], Any]:
    """How the templates see an input's value: as is (the report), or with every field
    traced to its file and JSON path (the FAQ, which records the source of every number)."""
    if not traced:
        return lambda item: item.value if item.ok else None

    def view(item: Loaded[Any]) -> Any:
        if not item.ok:
            return None
        if item.path == FIT:
            return trace.Node(item.value, trace.Src(FIT), FIT_FIELDS)
        return trace.wrap(item.value, trace.Src(item.path))

    return view


def _constant(traced: bool, module: str, name: str) -> Any:
    if traced:
        return trace.const(module, name)
    return getattr(importlib.import_module(module), name)


def build_context(
    ws: Workspace, inputs: ReportInputs, top_campaigns: int, traced: bool = False
) -> dict[str, Any]:
    """What the report and FAQ templates read: the outputs (None when absent) and the facts
    selected from them (verdict, rankings, flags). ``traced``: every value carries its source
    field (see ``report.trace``)."""
    view = reader(traced)
    contributions = view(inputs.contributions)
    budget = view(inputs.budget)
    allocation = view(inputs.allocation)
    diagnostics = view(inputs.diagnostics)
    lift_tests = view(inputs.lift_tests)
    lift_used = views.lift_tests_used(inputs)
    calibrated = views.calibrated_channels(lift_tests, lift_used)
    limits = views.prior_limits(diagnostics)
    prior_rows = views.prior_rows(diagnostics, contributions, calibrated, limits)
    hashes = {
        path: trace.wrap(digest, trace.Src(path, (trace.SHA256,))) if traced else digest
        for path, digest in inputs.hashes.items()
    }
    channels = [c.channel for c in contributions.channels] if contributions else []
    plan_file = inputs.budget.path
    return {
        "inputs": inputs,
        "contributions": contributions,
        "diagnostics": diagnostics,
        "fit": view(inputs.fit),
        "validation": view(inputs.validation),
        "lift_tests": lift_tests,
        "allocation": allocation,
        "budget": budget,
        "paths": view(inputs.paths),
        "path_report": view(inputs.paths),
        "verdict": views.verdict(inputs, view),
        "by_share": views.rank(contributions.channels, "share_of_media") if contributions else None,
        "by_roas": views.rank(contributions.channels, "roas") if contributions else None,
        "by_mroas": views.rank(contributions.channels, "mroas") if contributions else None,
        "saturation": {a.channel: a.saturation for a in budget.allocations} if budget else {},
        "prior_dominated": [r.channel for r in prior_rows if r.flagged],
        "prior_rows": prior_rows,
        "prior_flags": [r for r in prior_rows if r.flagged],
        "prior_limits": limits,
        "calibrated": calibrated,
        "uncalibrated": [c for c in channels if c not in calibrated],
        "channel_totals": views.channel_totals(contributions, allocation),
        "productivity_drivers": views.productivity_drivers(allocation),
        "coefficient_gaps": views.coefficient_gaps(
            inputs.allocation.value if inputs.allocation.ok else None
        ),
        # The outcome the fee and likelihood wording depends on (None: no model output yet).
        "outcome": (contributions.target if contributions else None)
        or (inputs.fit.value.target if inputs.fit.ok else None),  # type: ignore[union-attr]
        "mmm_totals": {c.channel: c.total_contribution for c in contributions.channels}
        if contributions
        else {},
        "allocation_tolerance": _constant(
            traced, "attribution_analysis.report.views", "ALLOCATION_TOLERANCE"
        ),
        "top": views.top_entities(allocation, top_campaigns) if allocation else [],
        "warnings": views.warnings,
        "lift_used": lift_used,
        "lift_reading": views.lift_reading(inputs),
        "hashes": hashes,
        "stale": dict(stale_outputs(ws, inputs)),
        "no_interval_predates": views.NO_INTERVAL_PREDATES,
        "no_interval_unexplained": views.NO_INTERVAL_UNEXPLAINED,
        "steps": inputs.metadata_by_step(view),
        # the plan shown, by name; the others stored beside it (names traced to their file)
        "plan_name": _plan_name(ws, inputs.plan, traced),
        "plan_file": plan_file,
        "other_plans": [_plan_name(ws, name, traced) for name in inputs.other_plans],
        "decision": views.decision(budget),
        "variant_labels": views.VARIANT_LABELS,  # the FAQ names robustness variants with them
    }


def _plan_name(ws: Workspace, name: str, traced: bool) -> Any:
    """A plan's name, traced to the ``plan_name`` field of its file (a name may hold digits,
    which the number check then finds in that field); as plain text when the file does not
    state it (unreadable, or written before plans had names), so no source is claimed that
    the file does not hold."""
    if not traced:
        return name
    path = plan_path(name)
    try:
        stated = json.loads(ws.resolve(path).read_text(encoding="utf-8")).get("plan_name")
    except (OSError, ValueError, AttributeError):
        stated = None
    return trace.wrap(name, trace.Src(path, ("plan_name",))) if stated == name else name


def render_report(
    ws: Workspace, params: GenerateReportParams, run_id: str, recorder: trace.Recorder
) -> tuple[str, dict[str, charts.Chart], list[SectionReport], ReportInputs, Metadata]:
    """The HTML text, its charts, its sections, its inputs and the metadata it shows (pure:
    writes nothing). ``recorder`` collects every traced value printed, with its source
    field, as for the FAQ."""
    inputs = load_inputs(ws, params.plan)
    sections = [_section(n, t, [getattr(inputs, a) for a in needs]) for n, t, needs in SECTIONS]
    drawn = _charts(inputs, params)
    metadata = trace.page_metadata(STEP, run_id, inputs, params)
    template = views.environment(recorder).get_template("report.html.j2")
    html = template.render(
        title=params.title or DEFAULT_TITLE,
        params=params,
        sections={s.name: s for s in sections},
        # the sections in the page: a section without input is left out
        section_list=[s for s in sections if s.status != "no_input"],
        shown=[s.name for s in sections if s.status != "no_input"],
        charts=drawn,
        metadata=metadata,
        matplotlib_version=version("matplotlib"),
        jinja_version=version("jinja2"),
        **build_context(ws, inputs, params.top_campaigns, traced=True),
    )
    return html, drawn, sections, inputs, metadata


def compute(ctx: StepContext, params: GenerateReportParams) -> StepOutput:
    """The ``generate_report`` step: the HTML report, its sources and its figures, as bytes
    for the runner to commit (reads the workspace outputs, writes nothing)."""
    started = time.perf_counter()
    report(ctx.progress, 0, 3, "reading outputs and drawing charts")
    recorder = trace.Recorder()
    html, drawn, sections, inputs, metadata = render_report(ctx.ws, params, ctx.run_id, recorder)
    report(ctx.progress, 2, 3, "writing")
    body = html.encode("utf-8")
    files = {
        OUTPUT: body,
        # The same metadata the page shows, so the sources match the page they explain.
        SOURCES: trace.sources_json(
            page={"report": OUTPUT},
            params=params.model_dump(mode="json"),
            records=recorder.records,
            metadata=metadata,
        ),
    }
    figures: list[str] = []
    if params.figures:
        for chart in drawn.values():
            for suffix, data in (("png", chart.png), ("svg", chart.svg)):
                path = f"{FIGURES}/{chart.id}.{suffix}"
                files[path] = data
                figures.append(path)
    report(ctx.progress, 3, 3, "done")
    answer = GenerateReportAnswer(
        step=STEP,
        outputs=list(files),
        report=OUTPUT,
        sources=SOURCES,
        report_bytes=len(body),
        figures=figures,
        charts=list(drawn),
        sections=sections,
        plan=inputs.plan if inputs.budget.ok else None,
        other_plans=inputs.other_plans,
        input_hashes=inputs.hashes,
        render_seconds=round(time.perf_counter() - started, 3),
        run_id=ctx.run_id,
    )
    return StepOutput(answer, files, inputs.hashes)
