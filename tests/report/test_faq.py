"""draft_faq: every number in the answers is a field of an output, names are escaped, the
financial-services mode adds its notices and the audit trail."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from attribution_analysis.api import draft_faq
from attribution_analysis.contracts.report import AUDIENCES, DraftFaqParams
from attribution_analysis.registry import RunRegistry
from attribution_analysis.workspace import Workspace
from tests.conftest import REPO
from tests.report.faq_sources import NUMBER, count_numbers, faq_number_problems


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


def test_missing_outputs_are_named_instead_of_numbers(pipeline):
    for name in ("allocation_summary.json", "mmm_channel_contributions.json"):
        (pipeline / "analysis" / name).unlink()
    result = draft_faq(Workspace.open(pipeline), DraftFaqParams(audience="cmo"))
    text = (pipeline / "reports" / "faq_cmo.md").read_text()
    assert "analysis/mmm_channel_contributions.json" in result.missing
    assert "*Not available yet:* `analysis/mmm_channel_contributions.json`" in text


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
