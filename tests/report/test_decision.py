"""The report opens with the decision: one sentence built from the fields of the budget plan
shown (or, without a plan, the main finding), rounded for an executive; the plan shown is
the one asked for, by name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from attribution_analysis.api import generate_report, optimize_budget
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.contracts.report import GenerateReportParams
from attribution_analysis.errors import ParameterError
from attribution_analysis.report import step
from attribution_analysis.report.inputs import load_inputs
from attribution_analysis.workspace import Workspace
from tests.report.conftest import OVERRIDE
from tests.report.decision_checks import check_sentence, decision_text
from tests.report.edits import decided, direction, edit_plan, read_plan
from tests.report.faq_sources import report_number_problems, visible_text


@pytest.fixture
def no_charts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports without their charts: the decision and the tables are text, and drawing the
    charts is most of a report's time (the chart tests draw them)."""
    monkeypatch.setattr(step, "_charts", lambda inputs, params: {})


def rendered(root: Path, **params: Any) -> tuple[str, list[dict[str, Any]]]:
    result = generate_report(
        Workspace.open(root), GenerateReportParams.model_validate({"figures": False, **params})
    )
    html = (root / result.report).read_text()
    return html, json.loads((root / result.sources).read_text())["records"]


def test_two_named_plans_the_report_shows_the_one_asked_for(demo, no_charts):
    edit_plan(demo, decided())
    optimize_budget(
        Workspace.open(demo),
        OptimizeBudgetParams(
            plan_name="cautious",
            objective="cvar",
            robustness=False,
            draws=100,
            override_reason=OVERRIDE,
        ),
    )
    edit_plan(demo, decided(), "cautious")
    plans = {name: read_plan(demo, name) for name in ("recommended", "cautious")}
    assert plans["recommended"]["outcome"]["lift"] != plans["cautious"]["outcome"]["lift"]
    for shown, other in (("recommended", "cautious"), ("cautious", "recommended")):
        html, records = rendered(demo, plan=shown)
        text = decision_text(html)
        check_sentence(text, plans[shown])
        # negative control: the other plan's sentence check fails on this page
        with pytest.raises(AssertionError):
            check_sentence(text, plans[other])
        assert f'data-plan="{shown}"' in html
        choice = visible_text(re.search(r'<p id="plan-choice">.*?</p>', html, re.S).group())
        assert f"Other plans stored in this workspace: {other}" in choice
        files = {f["file"] for r in records for f in r["facts"]}
        assert f"analysis/budget_plans/{shown}.json" in files
        assert f"analysis/budget_plans/{other}.json" not in {
            f["file"] for r in records for f in r["facts"] if f["path"] != ["plan_name"]
        }
        assert report_number_problems(html, records, demo) == []


def test_an_unknown_plan_is_refused_naming_the_plans_that_exist(demo, tmp_path):
    with pytest.raises(ParameterError) as refused:
        load_inputs(Workspace.open(demo), "nosuchplan")
    assert "'recommended'" in str(refused.value) and refused.value.parameter == "plan"
    # without any plan, the default gives a report without a recommendation; another
    # name is refused all the same
    (demo / "analysis" / "budget_plans" / "recommended.json").unlink()
    inputs = load_inputs(Workspace.open(demo))
    assert inputs.budget.status == "missing" and inputs.plans == []
    with pytest.raises(ParameterError, match="no budget plan yet"):
        load_inputs(Workspace.open(demo), "cautious")


def test_the_sentence_names_fragile_moves_limits_prior_driven_money_and_losses(demo, no_charts):
    plan = read_plan(demo)
    moved = [a for a in plan["allocations"] if direction(a) == "increase"]
    fragile, undecided = moved[-1]["channel"], moved[0]["channel"]

    def prior_driven(data: dict[str, Any]) -> None:
        for a in data["allocations"]:
            if a["channel"] == undecided:
                a["identification"] = "prior_driven"

    edit_plan(demo, decided(fragile))
    edit_plan(demo, prior_driven)
    plan = read_plan(demo)
    html, records = rendered(demo)
    text = decision_text(html)
    check_sentence(text, plan)
    assert f"{fragile} is fragile: it increases here but not under a risk-averse objective" in (
        text
    )
    cautions = re.sub(
        r"\s+",
        " ",
        visible_text(re.search(r'<p id="decision-cautions".*?</p>', html, re.S).group()),
    ).replace(" ,", ",")
    assert f"moves money into {undecided}, whose effect the data do not pin down" in cautions
    at_limit = [a["channel"] for a in plan["allocations"] if a["bound_active"]]
    for channel in at_limit:
        assert channel in cautions.split("spend limit")[0]
    losing = [
        a["channel"] for a in plan["allocations"] if a["break_even"]["verdict"] == "loses_money"
    ]
    assert losing and f"At current spend, {losing[0]} loses money" in cautions
    # the tables: one row per channel, with the robustness and the finance wording
    for a in plan["allocations"]:
        row = re.search(rf'<tr data-channel="{a["channel"]}" data-robust="(yes|no)">', html)
        assert row and (row.group(1) == "no") == (a["channel"] == fragile)
        verdict = a["break_even"]["verdict"]
        cell = re.search(
            rf'<tr data-channel="{a["channel"]}" data-verdict="{verdict}">.*?</tr>', html, re.S
        )
        wording = {
            "loses_money": "loses money at current spend",
            "pays_back": "pays back",
            "uncertain": "uncertain",
        }[verdict]
        assert cell and wording in cell.group()
    assert report_number_problems(html, records, demo) == []

    # a plan without break-even says why instead (a conversions target without a value)
    note = "The outcome is conversions: no value per conversion was given."

    def no_break_even(data: dict[str, Any]) -> None:
        for a in data["allocations"]:
            a["break_even"] = None
        data["break_even_note"] = note

    edit_plan(demo, no_break_even)
    html, _ = rendered(demo)
    assert 'id="break-even-table"' not in html and note in html
    assert "loses money" not in decision_text(html)
