"""A channel's MMM total has one source (the decomposition), and a visible note says so when
the allocation's totals drift from it."""

from __future__ import annotations

from attribution_analysis.report import fmt
from tests.report.edits import (
    DRIFT,
    between,
    display_total,
    drift_display,
    edit,
    faq_checked,
    match_decomposition,
    report_body,
)


def test_mmm_totals_come_from_the_decomposition_and_a_drift_is_shown(demo):
    match_decomposition(demo)
    edit(demo, "allocation_summary.json", drift_display(demo))
    html = report_body(demo)
    mmm = fmt.integer(display_total(demo))
    drifted = fmt.integer(display_total(demo) * DRIFT)
    note = between(html, 'id="total-mismatch"', "</div>")
    assert "display" in note and drifted in note and mmm in note
    assert "social" not in note  # 0.4% apart: within the tolerance
    assert "campaign credit (adds up to the channel total used by the allocation)" in html
    assert "display: top" in html and f"(MMM contribution {mmm} (90% HDI" in html
    finance = faq_checked(demo, "finance")
    table = between(finance, "| channel | MMM contribution", "\n\n")
    assert "campaign credit (adds up to the channel total used by the allocation)" in table
    display_row = next(line for line in table.splitlines() if line.startswith("| display |"))
    assert display_row.split("|")[2].strip() == mmm  # the decomposition's mean
    assert "**Check: display.**" in finance and drifted in finance
    marketing = faq_checked(demo, "marketing")
    assert f"**display** (MMM contribution {mmm}" in marketing and "Check: display" in marketing


def test_no_drift_note_when_the_allocation_matches_the_decomposition(demo):
    match_decomposition(demo)
    html = report_body(demo)
    assert 'id="total-mismatch"' not in html
    assert "Check:" not in faq_checked(demo, "finance")
