"""The ``draft_faq`` step: hard questions per audience, answered with this analysis's numbers.

The answers are Jinja templates shipped with the package (``templates/faq/*.md.j2``); the code
only selects which outputs fill them. No text is generated. A question whose output is missing,
or that does not apply (campaign questions without an allocation, journey questions without
path attribution), is left out: the answer's ``missing`` tells the agent which outputs are
absent, and no answer tells the reader to run anything. The budget answers quote one named
plan (``plan``, default ``recommended``) and say which. Each audience gets
``reports/faq_<audience>.md``, an HTML rendering of the same Markdown (raw HTML disabled, so
names stay text), and ``reports/faq_<audience>.sources.json``: every traced value printed, in
order, with the file and JSON path it was read from (``report.trace``).
"""

from __future__ import annotations

import json
from typing import Any

from markdown_it import MarkdownIt
from pydantic import ValidationError

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.mmm import QuickEstimates
from attribution_analysis.contracts.report import (
    AUDIENCES,
    AudienceChoice,
    DraftFaqAnswer,
    DraftFaqParams,
    FaqFile,
)
from attribution_analysis.progress import report
from attribution_analysis.registry import RunRegistry
from attribution_analysis.report import trace, views
from attribution_analysis.report.inputs import FIT, ReportInputs, load_inputs
from attribution_analysis.report.step import build_context
from attribution_analysis.workspace import Workspace

BREAK_EVEN_RULES = "attribution_analysis.optimize.break_even"

STEP = "draft_faq"
TITLES = {
    "cmo": "CMO and marketing leadership",
    "data_science": "Data science and analytics",
    "finance": "Finance and controlling",
    "marketing": "Marketing and media teams",
    "legal": "Legal, compliance and privacy",
    "all": "All audiences",
}
# Campaigns per channel quoted in the marketing answers.
TOP_CAMPAIGNS = 3
AUDIT_RUNS = 50


def faq_paths(audience: AudienceChoice) -> tuple[str, str]:
    return (
        layout.FAQ_MARKDOWN.path_for(audience=audience),
        layout.FAQ_HTML.path_for(audience=audience),
    )


def sources_path(audience: AudienceChoice) -> str:
    """Beside the FAQ: every traced value it prints, in order, with its file and JSON path."""
    return layout.FAQ_SOURCES.path_for(audience=audience)


def traced_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Registry rows whose fields are traced to (run id, field) in the run registry."""
    return [
        {
            key: trace.wrap(value, trace.Src(trace.REGISTRY, (str(run["run_id"]), key)))
            for key, value in run.items()
        }
        for run in runs
    ]


def quick_figures(ws: Workspace, inputs: ReportInputs) -> Any:
    """A quick fit's first-look figures (``result.quick_estimates`` of the fit manifest),
    traced, when no decomposition exists to answer with: the CMO then reads them labelled not
    for decisions. None otherwise (no fit, a NUTS or ridge fit, or a decomposition)."""
    if not inputs.fit.ok or inputs.contributions.ok:
        return None
    try:
        raw = json.loads(ws.resolve(FIT).read_text(encoding="utf-8"))
        found = raw["result"].get("quick_estimates")
        estimates = None if found is None else QuickEstimates.model_validate(found)
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return None  # the manifest was read once already; an odd one has no figures to show
    if estimates is None:
        return None
    return trace.wrap(estimates, trace.Src(FIT, ("result", "quick_estimates")))


def markdown_to_html(markdown: str) -> str:
    """CommonMark with tables; raw HTML in the source is shown as text, never passed through."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)


def compute(ctx: StepContext, params: DraftFaqParams) -> StepOutput:
    """The ``draft_faq`` step: the Markdown, HTML and sources of each audience asked, as bytes
    for the runner to commit (reads the outputs and the run registry, writes nothing)."""
    ws, progress = ctx.ws, ctx.progress
    report(progress, 0, 2, "reading outputs")
    inputs = load_inputs(ws, params.plan)
    runs = RunRegistry(ws).list_runs(limit=AUDIT_RUNS) if params.financial_services else []
    context = build_context(ws, inputs, TOP_CAMPAIGNS, traced=True)
    # The verdict rules of the break-even view, quoted with their source like any number.
    context["loses_money_at"] = trace.const(BREAK_EVEN_RULES, "LOSES_MONEY_PROBABILITY")
    context["pays_back_at"] = trace.const(BREAK_EVEN_RULES, "PAYS_BACK_PROBABILITY")
    context["quick"] = quick_figures(ws, inputs)
    metadata = trace.page_metadata(STEP, ctx.run_id, inputs, params)
    recorder = trace.Recorder()
    env = views.environment(recorder)
    markdown_template = env.get_template("faq.md.j2")
    html_template = env.get_template("faq.html.j2")
    wanted: list[AudienceChoice] = (
        [*AUDIENCES, "all"] if params.audience == "all" else [params.audience]
    )
    files: dict[str, bytes] = {}
    written = []
    for audience in wanted:
        sections = list(AUDIENCES) if audience == "all" else [audience]
        recorder.records = []
        markdown = views.tidy_markdown(
            markdown_template.render(
                audience=audience,
                sections=sections,
                titles=TITLES,
                params=params,
                runs=traced_runs(runs),
                **context,
            )
        )
        html = html_template.render(
            title=f"Questions and answers: {TITLES[audience]}",
            body=markdown_to_html(markdown),
        )
        md_path, html_path = faq_paths(audience)
        files[md_path] = markdown.encode("utf-8")
        files[html_path] = html.encode("utf-8")
        # The fee basis is a statement of the caller, not a field of any output: the
        # sources say so, so an auditor can tell where the wording came from.
        files[sources_path(audience)] = trace.sources_json(
            page={"markdown": md_path},
            params={
                "financial_services": params.financial_services,
                "fee_basis": params.fee_basis,
                "fee_basis_source": "the fee_basis parameter of draft_faq",
                "plan": params.plan,
            },
            records=recorder.records,
            metadata=metadata,
        )
        questions = sum(1 for line in markdown.splitlines() if line.startswith("### "))
        written.append(
            FaqFile(
                audience=audience,
                markdown=md_path,
                html=html_path,
                sources=sources_path(audience),
                questions=questions,
            )
        )
    report(progress, 2, 2, "done")
    answer = DraftFaqAnswer(
        step=STEP,
        outputs=list(files),
        files=written,
        sources=inputs.present,
        missing=inputs.missing,
        plan=inputs.plan if inputs.budget.ok else None,
        financial_services=params.financial_services,
        fee_basis=params.fee_basis,
        run_id=ctx.run_id,
    )
    return StepOutput(answer, files, inputs.hashes)
