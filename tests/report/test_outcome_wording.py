"""Fee and likelihood wording follows the outcome (revenue or conversions) and never credits
the input data; no rendered FAQ runs two sentences together, whatever the fee basis."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from attribution_analysis.api import draft_faq
from attribution_analysis.contracts.report import DraftFaqParams, FeeBasis
from attribution_analysis.workspace import Workspace
from tests.report.edits import between, edit, faqs_checked, report_with_records
from tests.report.faq_sources import report_number_problems


def _to_revenue(data: dict[str, Any]) -> None:
    data["target"] = "revenue"


@pytest.mark.parametrize("basis", ["gross", "net_of_fees", "not_stated"])
def test_no_rendered_faq_runs_two_sentences_together(demo, basis: FeeBasis):
    for financial in (True, False):
        for audience, markdown in faqs_checked(
            demo, financial_services=financial, fee_basis=basis
        ).items():
            prose = re.sub(r"`[^`]*`", "", markdown)  # code spans: file names, ids
            glued = re.search(r".{0,30}[.!?][A-Z].{0,30}", prose)
            assert glued is None, (audience, glued.group() if glued else "")


def test_fee_wording_follows_the_outcome_and_never_credits_the_input_data(demo):
    contributions = json.loads((demo / "analysis" / "mmm_channel_contributions.json").read_text())
    assert contributions["target"] == "conversions"
    result = draft_faq(
        Workspace.open(demo),
        DraftFaqParams(audience="all", financial_services=True, fee_basis="net_of_fees"),
    )
    assert result.fee_basis == "net_of_fees"
    sources = json.loads((demo / "reports" / "faq_finance.sources.json").read_text())
    assert sources["params"]["fee_basis"] == "net_of_fees"
    html, _ = report_with_records(demo, financial_services=True, fee_basis="net_of_fees")
    report_sources = json.loads(
        (demo / "reports" / "mmm_executive_summary.sources.json").read_text()
    )
    assert report_sources["params"]["fee_basis"] == "net_of_fees"
    everything = (demo / "reports" / "faq_all.md").read_text()
    for text in (html, everything):
        assert "as provided in the input data" not in text
        assert "fees do not apply to conversion counts" in text
        assert "Revenue figures" not in text
    finance = (demo / "reports" / "faq_finance.md").read_text()
    split = between(finance, "The campaign split uses", "\n")
    assert "not whole counts" in split and "currency" not in split

    edit(demo, "mmm_channel_contributions.json", _to_revenue)
    html, records = report_with_records(demo, financial_services=True, fee_basis="net_of_fees")
    assert report_number_problems(html, records, demo) == []
    files = faqs_checked(demo, financial_services=True, fee_basis="net_of_fees")
    for text in (html, files["all"]):
        assert "Revenue figures are" in text and "net of fees" in text
        assert "conversion counts" not in text and "as provided in the input data" not in text
    split = between(files["finance"], "The campaign split uses", "\n")
    assert "currency amounts" in split
