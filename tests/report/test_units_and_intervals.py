"""Units and intervals as the outputs record them: criteria in the unit of their rule, spend
labelled as input units (no output records a currency), productivity drivers with their
intervals, and a coefficient without an interval gets only the reason the summary supports."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest

from attribution_analysis.report import fmt
from tests.report.edits import (
    between,
    edit,
    faq_checked,
    faqs_checked,
    report_body,
    report_with_records,
)
from tests.report.faq_sources import report_number_problems


def _cells(table: str, name: str) -> list[str]:
    row = between(table, f"<td>{name}</td>", "</tr>")
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    return [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def test_criteria_are_shown_in_the_unit_of_their_rule(demo):
    diagnostics = json.loads((demo / "analysis" / "mmm_diagnostics.json").read_text())
    html, _ = report_with_records(demo)
    table = between(html, 'id="criteria-table"', "</table>")
    for criterion in diagnostics["criteria"]:
        _, rule, measured, threshold = _cells(table, criterion["name"])[:4]
        operator = re.search(r"<=|>=|<|>", rule).group()  # type: ignore[union-attr]
        shown_operator, shown_threshold = threshold.split(" ", 1)
        assert shown_operator == {"<=": "≤", ">=": "≥"}.get(operator, operator)
        scale = 100.0 if "%" in rule else 1.0
        for text, value in (
            (measured, criterion["value"]),
            (shown_threshold, criterion["threshold"]),
        ):
            assert text.endswith("%") == (scale == 100.0), (criterion["name"], text)
            number = float(text.rstrip("%").replace(",", ""))
            assert number == pytest.approx(value * scale, abs=0.051 * max(1.0, abs(number))), text
    coverage = next(c for c in diagnostics["criteria"] if c["name"] == "ppc_coverage_90")
    assert _cells(table, "ppc_coverage_90")[3].startswith("≥ 90")
    assert _cells(table, "ppc_coverage_90")[2] == f"{100 * coverage['value']:.1f}%"


def test_spend_is_labelled_as_input_units(demo):
    html, _ = report_with_records(demo)
    for table in ("contributions-table", "roas-table", "budget-table", "data-channels"):
        head = between(html, f'id="{table}"', "</thead>")
        assert "spend (input units)" in head, table
    finance = faqs_checked(demo, "finance")["finance"]
    assert "| channel | spend (input units) |" in finance


def test_productivity_drivers_are_shown_with_their_intervals(demo):
    summary = json.loads((demo / "analysis" / "allocation_summary.json").read_text())
    drivers = [c for c in summary["coefficients"] if c["name"] != "intercept"]
    assert all(c["std_error"] > 0 for c in drivers)
    channel_terms = [c for c in drivers if c["name"].startswith("channel[")]
    drivers = [c for c in drivers if c not in channel_terms]
    assert drivers and channel_terms
    html = report_body(demo)
    table = between(html, 'id="productivity-drivers"', "</table>")
    for c in channel_terms:  # scale terms of the campaign allocation, not drivers
        assert f"<td>{c['name']}</td>" not in table
    intro = html[html.index("What drives productivity") : html.index('id="productivity-drivers"')]
    for column, level in summary["reference_levels"].items():
        assert (f"{column} = {level}" in intro) == (column != "channel")
    faq = faq_checked(demo, "data_science")
    answer = between(faq, "### What drives campaign productivity", "*Source:")
    for c in drivers:
        assert f"[{fmt.num(c['lower_90'])}, {fmt.num(c['upper_90'])}]" in answer
    assert "channel\\[" not in answer
    for c in drivers:
        row = between(table, f"<td>{c['name']}</td>", "</tr>")
        assert fmt.num(c["estimate"]) in row
        assert f"{fmt.num(c['lower_90'])} to {fmt.num(c['upper_90'])}" in row
        expected = (
            "raises productivity"
            if c["lower_90"] > 0
            else "lowers productivity"
            if c["upper_90"] < 0
            else "direction not established"
        )
        assert expected in row


def _coefficients(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        for c in data["coefficients"]:
            change(c)

    return edit


def test_a_coefficient_without_interval_gets_only_the_reason_the_summary_supports(demo):
    def older(c: dict[str, Any]) -> None:  # written before the allocation computed intervals
        for key in ("std_error", "lower_90", "upper_90"):
            c.pop(key, None)

    edit(demo, "allocation_summary.json", _coefficients(older))
    html, records = report_with_records(demo)
    assert report_number_problems(html, records, demo) == []
    table = between(html, 'id="productivity-drivers"', "</table>")
    assert "predates coefficient intervals; rerun allocate" in table
    assert "too few groups" not in html
    science = faqs_checked(demo, "data_science")["data_science"]
    assert "predates coefficient intervals (rerun allocate" in science
    assert "too few groups" not in science

    def unexplained(c: dict[str, Any]) -> None:  # fields there, empty, no finding says why
        c.update(std_error=None, lower_90=None, upper_90=None)

    edit(demo, "allocation_summary.json", _coefficients(unexplained))
    html, _ = report_with_records(demo)
    table = between(html, 'id="productivity-drivers"', "</table>")
    assert "no interval recorded (the allocation summary does not say why)" in table
    assert "predates" not in table and "too few groups" not in html
