"""The budget and path-attribution sections, rendered from the real outputs of those steps."""

from __future__ import annotations

import json
import math
import re
import shutil

from attribution_analysis.api import (
    attribute_paths,
    draft_faq,
    generate_report,
    optimize_budget,
    simulate_workspace,
)
from attribution_analysis.contracts.budget import (
    OptimizeBudgetParams,
    ShiftScenario,
    TotalChangeScenario,
)
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.contracts.report import DraftFaqParams, GenerateReportParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.report import fmt
from attribution_analysis.workspace import Workspace
from tests.report.conftest import OVERRIDE
from tests.report.faq_sources import faq_number_problems, report_number_problems


def test_budget_and_path_sections_render_from_their_outputs(pipeline, tmp_path):
    ws = Workspace.open(pipeline)
    budget = optimize_budget(
        ws,
        OptimizeBudgetParams(
            draws=100,
            max_change=0.5,
            override_reason=OVERRIDE,
            scenarios=[
                ShiftScenario(from_channel="tv", to_channel="social", fraction=0.2),
                # a 90% cut cannot respect the -50% per-channel limit: reported, not fatal
                TotalChangeScenario(change=-0.9),
            ],
        ),
    )
    assert [s.kind for s in budget.infeasible_scenarios] == ["total_change"]
    # Path attribution needs user journeys: simulate them in their own workspace, then bring
    # the output over (the report flags it as computed from inputs this workspace lacks).
    journeys = tmp_path / "journeys"
    simulate_workspace(journeys, SimulationParams(kind="journeys", seed=3))
    attribute_paths(Workspace.open(journeys), AttributePathsParams(method="heuristics"))
    shutil.copy(journeys / "analysis" / "path_attribution.json", pipeline / "analysis")

    result = generate_report(ws, GenerateReportParams(figures=False))
    html = (pipeline / result.report).read_text()
    sections = {s.name: s.status for s in result.sections}
    assert sections["budget"] == "rendered" and sections["paths"] == "rendered"
    assert {"budget_reallocation", "response_curves"} <= set(result.charts)
    assert 'id="path-shares"' in html and 'id="budget-table"' in html
    assert 'id="infeasible-scenarios"' in html
    lift = budget.outcome.lift
    assert fmt.bounds(lift) in html  # the report's own formatter: one precision for all three
    assert "Out of date: analysis/path_attribution.json" in html
    records = json.loads((pipeline / result.sources).read_text())["records"]
    assert report_number_problems(html, records, pipeline) == []

    faq = draft_faq(ws, DraftFaqParams(audience="all"))
    for file in faq.files:
        markdown = (pipeline / file.markdown).read_text()
        records = json.loads((pipeline / file.sources).read_text())["records"]
        assert faq_number_problems(markdown, records, pipeline) == [], file.markdown
    # a probability from N draws never reads 100% or 0%
    finance = (pipeline / "reports" / "faq_finance.md").read_text()
    body = html.split("</style>", 1)[1]
    for text in (body, finance):
        # Only probabilities are meant: a share of weeks (PPC coverage) may well be 100.0%.
        said = [line for line in text.splitlines() if re.search("probab|better", line, re.I)]
        assert not [line for line in said if "100.0%" in line], said
        assert not re.search(r"better[^\n]*: 0(\.0)?%", text)
    p = budget.outcome.probability_better
    if p >= 1:
        # all N draws better: known only to 1/N, printed as its floor at one decimal
        edge = math.floor((100 - 100 / budget.draws) * 10 + 1e-9) / 10
        assert f"> {edge:.1f}% (all {budget.draws} draws)" in finance
        assert f"&gt; {edge:.1f}% (all {budget.draws} draws)" in body
    assert "probability the recommendation does better" in finance
    assert "could not be planned" in finance
