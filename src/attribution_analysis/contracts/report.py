"""Contracts of the reporting steps: ``generate_report`` (the HTML executive summary and its
figures) and ``draft_faq`` (per-audience answers with this analysis's numbers filled in).

Neither step computes a statistic: every number they print is read from an output JSON of
an earlier step, with its interval, and each section names the files it came from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from attribution_analysis.contracts.budget import PlanName
from attribution_analysis.contracts.common import StepAnswer, StrictModel

Audience = Literal["cmo", "data_science", "finance", "marketing", "legal"]
AudienceChoice = Literal["cmo", "data_science", "finance", "marketing", "legal", "all"]
AUDIENCES: tuple[Audience, ...] = ("cmo", "data_science", "finance", "marketing", "legal")
FeeBasis = Literal["gross", "net_of_fees", "not_stated"]
SectionStatus = Literal["rendered", "no_input", "unreadable"]


class GenerateReportParams(StrictModel):
    """Parameters of the ``generate_report`` step."""

    title: str | None = Field(
        default=None,
        max_length=200,
        description="Report title; default 'Marketing mix model: executive summary'.",
    )
    plan: PlanName = Field(
        default="recommended",
        description="The budget plan the report shows (analysis/budget_plans/{plan}.json); "
        "the report names it and lists the other plans. A name with no plan is refused, "
        "naming the plans that exist; 'recommended' on a workspace without any plan gives "
        "a report without a recommendation.",
    )
    top_campaigns: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Campaigns shown per channel in the campaign-allocation section, by credit.",
    )
    trace_parameters: int = Field(
        default=12,
        ge=1,
        le=60,
        description="Most parameters drawn as trace plots; those flagged by the "
        "prior-sensitivity check first, so the doubtful ones are never the ones left out "
        "(the convergence table covers every parameter).",
    )
    figures: bool = Field(
        default=True,
        description="Also write PNG and SVG copies of the main charts to reports/figures/ "
        "(for slides).",
    )
    financial_services: bool = Field(
        default=False,
        description="Add the financial-services notices: SEC Marketing Rule wording, gross vs "
        "net-of-fees statement, compliance review before external distribution, audit trail.",
    )
    fee_basis: FeeBasis = Field(
        default="not_stated",
        description="financial_services: whether revenue figures are gross or net of fees; "
        "'not_stated' prints a notice that the user has not said (ask them).",
    )


class DraftFaqParams(StrictModel):
    """Parameters of the ``draft_faq`` step."""

    audience: AudienceChoice = Field(
        default="all",
        description="Who reads the answers: cmo, data_science, finance, marketing, legal, or "
        "'all' (one file per audience plus faq_all with every section).",
    )
    financial_services: bool = Field(
        default=False,
        description="Add SEC Marketing Rule disclaimers, gross vs net-of-fees wording and the "
        "audit-trail summary (input hashes, run ids from the run registry).",
    )
    fee_basis: FeeBasis = Field(
        default="not_stated",
        description="financial_services: whether revenue figures are gross or net of fees; "
        "'not_stated' makes the answers say the basis must be confirmed before use.",
    )
    plan: PlanName = Field(
        default="recommended",
        description="The budget plan the budget answers quote (analysis/budget_plans/{plan}.json); "
        "each answer names it. A name with no plan is refused, naming the plans that exist.",
    )


class SectionReport(StrictModel):
    """What one report section was built from, or why it is empty."""

    name: str = Field(description="Section id, e.g. 'contributions', 'budget'.")
    title: str = Field(description="Section heading as printed.")
    status: SectionStatus = Field(
        description="'rendered'; 'no_input' (the step that writes its input has not run: "
        "the section is left out of the report); 'unreadable' (the input exists but does "
        "not match its contract: the section says so)."
    )
    inputs: list[str] = Field(description="Workspace-relative files the section read.")
    message: str = Field(default="", description="Why the section is empty, in plain words.")


class GenerateReportResult(StrictModel):
    """What ``generate_report`` wrote."""

    report: str = Field(description="Workspace-relative path of the HTML report.")
    sources: str = Field(
        description="Workspace-relative path of the JSON that names, for every value the "
        "report prints (in order), the output file and JSON path it was read from."
    )
    report_bytes: int = Field(ge=0, description="Size of the HTML file.")
    figures: list[str] = Field(description="Workspace-relative paths of the PNG/SVG copies.")
    charts: list[str] = Field(description="Ids of the charts inlined in the report.")
    sections: list[SectionReport] = Field(description="Every section and its inputs.")
    plan: str | None = Field(
        description="The budget plan the report shows; null when the workspace has none "
        "(the report then opens with the main finding instead of a recommendation)."
    )
    other_plans: list[str] = Field(
        description="The other plans stored in the workspace, listed by name in the report."
    )
    input_hashes: dict[str, str] = Field(
        description="sha256 of every output file the report read, keyed by path."
    )
    render_seconds: float = Field(description="Seconds spent reading, drawing and writing.")
    run_id: str = Field(description="Run id in the workspace run registry.")


class FaqFile(StrictModel):
    audience: AudienceChoice = Field(description="Audience of the file.")
    markdown: str = Field(description="Workspace-relative path of the Markdown file.")
    html: str = Field(description="Workspace-relative path of the HTML file.")
    sources: str = Field(
        description="Workspace-relative path of the JSON that names, for every value the "
        "Markdown prints (in order), the output file and JSON path it was read from."
    )
    questions: int = Field(ge=0, description="Questions answered in the file.")


class DraftFaqResult(StrictModel):
    """What ``draft_faq`` wrote."""

    files: list[FaqFile] = Field(description="One Markdown + HTML pair per audience written.")
    sources: list[str] = Field(description="Output files whose numbers were filled in.")
    missing: list[str] = Field(
        description="Outputs not found; the questions that need them are left out of the FAQ "
        "(run the step that writes one to add its questions)."
    )
    plan: str | None = Field(
        default=None,
        description="The budget plan the budget answers quote; null when the workspace has "
        "none (the budget questions are then left out).",
    )
    financial_services: bool = Field(description="Whether the financial-services notices are in.")
    fee_basis: FeeBasis = Field(
        description="Gross or net-of-fees basis the answers state, as given in the call (no "
        "input file records it); also written to each faq_<audience>.sources.json."
    )
    run_id: str = Field(description="Run id in the workspace run registry.")


class GenerateReportAnswer(StepAnswer, GenerateReportResult):
    """What ``generate_report`` answers (MCP tool, CLI, scripts): where the report is, which
    sections had input (or why not), its figures. The HTML itself is a resource."""


class DraftFaqAnswer(StepAnswer, DraftFaqResult):
    """What ``draft_faq`` answers: the files per audience, the outputs whose numbers were
    filled in and those missing (answers that need them say so)."""
