"""draft_faq: every number in the answers is a field of an output, names are escaped, the
financial-services mode adds its notices and the audit trail; the budget answers name the plan
they quote, finance gets the break-even view (or why there is none), the CMO the plan's
robustness, and questions that do not apply are left out rather than answered with a command."""

from __future__ import annotations

import copy
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from attribution_analysis.api import draft_faq, optimize_budget
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.contracts.report import AUDIENCES, DraftFaqParams
from attribution_analysis.errors import ParameterError
from attribution_analysis.registry import RunRegistry
from attribution_analysis.report import fmt
from attribution_analysis.steps import STEPS
from attribution_analysis.workspace import Workspace
from tests.conftest import REPO
from tests.report.conftest import OVERRIDE
from tests.report.faq_sources import NUMBER, count_numbers, faq_number_problems

# What no FAQ may print: a placeholder for a missing output, or a command for the reader to
# run (a script, the CLI, a command-line option).
PLACEHOLDER = "Not available"
COMMAND = re.compile(
    r"python3? (?:scripts/|-m )|scripts/\w+\.py|(?<![\w-])--[a-z]"
    + r"|\battribution (?:"
    + "|".join(spec.name for spec in STEPS)
    + r")\b"
)
# A plan computed with a value per conversion (demo-like workspace: a conversions target), so
# that it has a break-even view; the value is arbitrary, the FAQ must quote whatever the plan
# computed from it.
VALUE_PER_CONVERSION = 40.0
MARGIN = 0.5
VERDICT_WORDS = {"loses_money": "loses money", "pays_back": "pays back", "uncertain": "uncertain"}


def _faq(pipeline: Path, audience: str) -> tuple[str, list[dict[str, Any]]]:
    markdown = (pipeline / "reports" / f"faq_{audience}.md").read_text()
    sources = json.loads((pipeline / "reports" / f"faq_{audience}.sources.json").read_text())
    assert sources["markdown"] == f"reports/faq_{audience}.md"
    return markdown, sources["records"]


def test_every_number_in_every_faq_is_the_value_of_its_recorded_field(pipeline):
    result = draft_faq(
        Workspace.open(pipeline), DraftFaqParams(audience="all", financial_services=True)
    )
    assert {f.audience for f in result.files} == {*AUDIENCES, "all"}
    checked = 0
    for file in result.files:
        assert file.questions >= 4
        markdown, records = _faq(pipeline, file.audience)
        assert file.sources == f"reports/faq_{file.audience}.sources.json"
        checked += count_numbers(markdown)
        assert faq_number_problems(markdown, records, pipeline) == [], file.markdown
    assert checked > 100  # the answers do quote numbers


def test_a_made_up_number_in_the_answers_is_found_out(pipeline):
    """Negative controls: a figure typed into the fixed text, a printed figure that is not
    its field's value, and a record that points at another field all fail; so does every one
    of a batch of random percentages (the old check, against any number anywhere in the
    outputs, let about a third of them through)."""
    draft_faq(Workspace.open(pipeline), DraftFaqParams(audience="cmo"))
    markdown, records = _faq(pipeline, "cmo")
    assert faq_number_problems(markdown, records, pipeline) == []

    typed = markdown.replace(
        "### Is this causal?\n", "### Is this causal?\n\nUp 12.3% on last year.\n"
    )
    assert any("12.3" in p for p in faq_number_problems(typed, records, pipeline))

    rng = random.Random(8)
    for _ in range(20):
        made_up = f"{rng.uniform(0, 100):.1f}%"
        text = markdown.replace("### Can we trust", f"Share {made_up}.\n\n### Can we trust", 1)
        assert faq_number_problems(text, records, pipeline) != [], made_up

    numeric = next(
        i for i, r in enumerate(records) if r["facts"][0]["relation"] not in ("text", "key")
    )
    first = NUMBER.search(records[numeric]["text"])
    assert first is not None
    old = first.group(1)
    bumped = old[:-1] + str((int(old[-1]) + 3) % 10)
    lying = copy.deepcopy(records)
    lying[numeric]["text"] = lying[numeric]["text"].replace(old, bumped, 1)
    shifted = markdown.replace(records[numeric]["text"], lying[numeric]["text"], 1)
    assert any("does not read" in p for p in faq_number_problems(shifted, lying, pipeline))

    wrong_field = copy.deepcopy(records)
    wrong_field[numeric]["facts"][0]["path"] = ["base", "total", "hdi_95", 1]
    assert faq_number_problems(markdown, wrong_field, pipeline) != []


def test_financial_services_mode_adds_notices_fee_basis_and_audit_trail(pipeline):
    ws = Workspace.open(pipeline)
    plain = draft_faq(ws, DraftFaqParams(audience="legal"))
    text = (pipeline / plain.files[0].markdown).read_text()
    assert "SEC Marketing Rule" not in text and "Audit trail" not in text
    draft_faq(ws, DraftFaqParams(audience="legal", financial_services=True, fee_basis="gross"))
    text = (pipeline / "reports" / "faq_legal.md").read_text()
    assert "SEC Marketing Rule" in text and "gross of fees" in text
    assert "## Audit trail" in text
    fit = json.loads((pipeline / "analysis" / "mmm_fit.json").read_text())
    for path, digest in fit["metadata"]["input_hashes"].items():
        assert f"`{path}`: `{digest}`" in text
    for run in RunRegistry(ws).list_runs(step="fit_mmm"):
        assert run["run_id"] in text


def test_campaign_names_with_html_are_escaped_in_markdown_and_html(pipeline, monkeypatch):
    # Every campaign quoted, so the hostile name is on the page whatever its fitted credit
    # rank (the FAQ quotes the top three of each channel).
    monkeypatch.setattr("attribution_analysis.report.faq.TOP_CAMPAIGNS", 10_000)
    draft_faq(Workspace.open(pipeline), DraftFaqParams(audience="marketing"))
    markdown = (pipeline / "reports" / "faq_marketing.md").read_text()
    html = (pipeline / "reports" / "faq_marketing.html").read_text()
    assert r"\<script>alert(1)\</script>" in markdown
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_questions_whose_outputs_are_missing_are_left_out_and_listed_in_the_answer(pipeline):
    for name in ("allocation_summary.json", "mmm_channel_contributions.json"):
        (pipeline / "analysis" / name).unlink()
    result = draft_faq(Workspace.open(pipeline), DraftFaqParams(audience="cmo"))
    text = (pipeline / "reports" / "faq_cmo.md").read_text()
    assert "analysis/mmm_channel_contributions.json" in result.missing
    assert "### What did media deliver" not in text and "### Is this causal?" not in text
    assert "### Can we trust the model?" in text  # answered from the diagnostics
    assert PLACEHOLDER not in text and not COMMAND.search(text)


def _plan(root: Path, name: str) -> dict[str, Any]:
    return json.loads((root / "analysis" / "budget_plans" / f"{name}.json").read_text())


def _faq_checked(root: Path, audience: str, **params: Any) -> dict[str, str]:
    """Every FAQ written for ``audience``, by audience, each number checked against its
    recorded field."""
    result = draft_faq(
        Workspace.open(root), DraftFaqParams.model_validate({"audience": audience, **params})
    )
    files = {}
    for file in result.files:
        markdown, records = _faq(root, file.audience)
        assert faq_number_problems(markdown, records, root) == [], file.markdown
        files[file.audience] = markdown
    return files


def _section(markdown: str, heading: str) -> str:
    start = markdown.index(heading)
    end = markdown.find("\n### ", start + len(heading))
    return markdown[start : end if end >= 0 else len(markdown)]


def test_finance_states_break_even_per_channel_or_says_why_it_cannot(demo):
    """A plan with a value per conversion: one table row per channel whose threshold,
    probabilities and verdict are the plan's fields (formatted here from the JSON, not read
    from the FAQ's records). The demo's default plan (conversions, no value): a plain
    reason naming the parameter that gives the view, and no table."""
    optimize_budget(
        Workspace.open(demo),
        OptimizeBudgetParams(
            plan_name="valued",
            value_per_conversion=VALUE_PER_CONVERSION,
            margin=MARGIN,
            robustness=False,
            draws=100,
            override_reason=OVERRIDE,
        ),
    )
    valued = _plan(demo, "valued")
    answer = _section(
        _faq_checked(demo, "finance", plan="valued")["finance"],
        "### Which channels pay back, and which lose money?",
    )
    assert "cannot be stated" not in answer
    views = [a for a in valued["allocations"] if a["break_even"] is not None]
    assert views, "a plan with a value per conversion has a break-even view"
    assert views[0]["break_even"]["basis"] in answer
    for a in views:
        view = a["break_even"]
        row = next(line for line in answer.splitlines() if line.startswith(f"| {a['channel']} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == fmt.num(view["threshold_roas"])
        assert cells[3] == fmt.probability(view["probability_below"], valued["draws"])
        assert cells[4] == fmt.probability(view["marginal_probability_below"], valued["draws"])
        assert VERDICT_WORDS[view["verdict"]] in cells[5]
        assert cells[1] == fmt.interval(_interval(view["roas_current"]))

    plain = _plan(demo, "recommended")
    assert plain["target"] == "conversions"
    assert all(a["break_even"] is None for a in plain["allocations"])
    answer = _section(
        _faq_checked(demo, "finance")["finance"],
        "### Which channels pay back, and which lose money?",
    )
    assert "Break-even cannot be stated for this plan" in answer
    assert "`value_per_conversion` parameter of `optimize_budget`" in answer
    assert "| break-even ROAS |" not in answer  # negative control: no table without a value


def test_a_revenue_plan_states_break_even_in_revenue_terms(demo):
    """The same view for a revenue target: the demo's plan relabelled as revenue with a
    break-even at 1/margin per channel (a stand-in for a revenue fit, which would cost a
    second NUTS run); the FAQ quotes each channel's fields and no conversion wording."""
    path = demo / "analysis" / "budget_plans" / "recommended.json"
    plan = json.loads(path.read_text())
    plan["target"], plan["outcome_unit"] = "revenue", "revenue per unit of spend"
    plan["break_even_note"] = ""
    for a, below in zip(plan["allocations"], (0.95, 0.04, 0.5, 0.5, 0.5), strict=False):
        roas = a["roas_current"]
        a["break_even"] = {
            "threshold_roas": 1 / 0.35,
            "basis": "revenue ROAS against 2.857 = 1 / (revenue x margin 0.35)",
            "roas_current": roas,
            "probability_below": below,
            "marginal_probability_below": min(1.0, below + 0.02),
            "verdict": "loses_money"
            if below >= 0.9
            else "pays_back"
            if below <= 0.1
            else "uncertain",
        }
    path.write_text(json.dumps(plan))
    answer = _section(
        _faq_checked(demo, "finance")["finance"],
        "### Which channels pay back, and which lose money?",
    )
    assert "value per conversion" not in answer and "cannot be stated" not in answer
    for a in plan["allocations"]:
        row = next(line for line in answer.splitlines() if line.startswith(f"| {a['channel']} |"))
        assert VERDICT_WORDS[a["break_even"]["verdict"]] in row
        assert fmt.num(a["break_even"]["threshold_roas"]) in row


def test_budget_answers_name_their_plan_and_quote_lift_in_both_terms(demo):
    plan = _plan(demo, "recommended")
    files = _faq_checked(demo, "all")
    for audience in ("cmo", "finance", "marketing"):
        assert "the budget plan **recommended**" in files[audience], audience
    finance = files["finance"]
    outcome = plan["outcome"]
    assert "of the media-driven outcome" in finance
    if outcome.get("lift_pct_of_total") is not None:
        assert "of the whole outcome" in finance
        assert fmt.interval(_interval(outcome["lift_pct_of_total"]), as_pct=True) in finance
    with pytest.raises(ParameterError, match="recommended"):
        draft_faq(Workspace.open(demo), DraftFaqParams(audience="cmo", plan="nosuchplan"))


def _interval(raw: dict[str, Any]) -> Any:
    from attribution_analysis.contracts.common import Interval

    return Interval.model_validate(raw)


def test_cmo_reads_the_plans_robustness_in_plain_words(demo):
    """Moves that flip, channels at their limits and money into prior-driven channels are
    named from the plan's own robustness and allocation fields."""
    plan = _plan(demo, "recommended")
    robustness = plan["robustness"]
    assert robustness is not None, "robustness is computed by default"
    answer = _section(_faq_checked(demo, "cmo")["cmo"], "### How robust is this plan?")
    assert robustness["summary"] in answer.replace("\\", "")  # md escapes removed
    identification = {a["channel"]: a["identification"] for a in plan["allocations"]}
    flips = next((line for line in answer.splitlines() if "**Moves that flip**" in line), "")
    holds = next((line for line in answer.splitlines() if "**Moves that hold**" in line), "")
    limits = next((line for line in answer.splitlines() if "**At their limits**" in line), "")
    undecided = next((line for line in answer.splitlines() if "do not pin down" in line), "")
    for c in robustness["channels"]:
        name = c["channel"]
        if c["direction"] == "hold":
            continue
        assert (name in flips) is (not c["robust"]), name
        assert (name in holds) is c["robust"], name
        assert (name in limits) is (c["at_limit"] is not None), name
        money_in = c["direction"] == "increase" and identification[name] in (
            "prior_driven",
            "not_separable",
        )
        assert (name in undecided) is money_in, name


def test_no_placeholder_or_command_on_a_workspace_without_campaigns_or_journeys(demo):
    """Every audience, financial-services notices included. Negative control: the same
    workspace with its allocation answers the campaign questions."""
    with_allocation = _faq_checked(demo, "all", financial_services=True)
    assert "### Which campaign works best?" in with_allocation["marketing"]
    assert "### Does the campaign split create or destroy outcome?" in with_allocation["finance"]
    for name in ("allocation_summary.json", "mta_allocation.csv"):
        (demo / "analysis" / name).unlink(missing_ok=True)
    assert not (demo / "analysis" / "path_attribution.json").exists()
    files = _faq_checked(demo, "all", financial_services=True)
    assert set(files) == {*AUDIENCES, "all"}
    for audience, markdown in files.items():
        assert PLACEHOLDER not in markdown, audience
        assert not COMMAND.search(markdown), (audience, COMMAND.search(markdown))
        for heading in re.findall(r"^### (.+)$", markdown, flags=re.M):
            assert "campaign" not in heading.lower() and "journey" not in heading.lower(), heading
        assert "user journeys" not in markdown


def test_the_scripts_print_ok_json_and_exit_2_on_a_missing_workspace(pipeline, tmp_path):
    for script, extra in (("generate_report.py", []), ("draft_faq.py", ["--audience", "finance"])):
        done = subprocess.run(
            [sys.executable, str(REPO / "scripts" / script), "--workspace", str(pipeline), *extra],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "ok"
        bad = subprocess.run(
            [sys.executable, str(REPO / "scripts" / script), "--workspace", str(tmp_path / "no")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert bad.returncode == 2
        assert json.loads(bad.stdout)["status"] == "error"
