"""Number formatting: significant figures and never scientific notation; probabilities from
N draws never read 100% or 0%; bounds and the sum check printed precisely."""

from __future__ import annotations

import json
import re
from typing import Any

from attribution_analysis.contracts.common import Interval
from attribution_analysis.report import fmt
from tests.report.edits import between, edit, faq_checked, report_body

SCIENTIFIC = re.compile(r"\d\.?\d*e[-+]\d+")
# A figure of a million or more printed in full ('123,456,789'): never in the summary.
FULL_MILLIONS = re.compile(r"\d{1,3}(?:,\d{3}){2,}|\d{7,}")


def test_formats_use_significant_figures_and_never_scientific_notation():
    assert fmt.num(1.68e-06) == "< 0.0001" and fmt.num(-3e-06) == "> -0.0001"
    assert fmt.num(0.0409) == "0.0409" and fmt.num(123456.7) == "123,457"
    assert fmt.pct(3.32e-06) == "< 0.001%" and fmt.pct(0.0033) == "0.33%"
    roas = Interval(mean=0.0409, hdi_90=(1.68e-06, 0.0828), hdi_95=(0.0, 0.1))
    assert fmt.interval(roas) == "0.0409 (90% HDI < 0.0001 to 0.0828)"
    share = Interval(mean=0.0747, hdi_90=(3.32e-06, 0.148), hdi_95=(0.0, 0.2))
    assert fmt.interval(share, as_pct=True) == "7.5% (90% HDI < 0.1% to 14.8%)"
    for value in (1e-12, 3.3e-7, 1.68e-06, 4.2e-5, 1e15):
        assert not SCIENTIFIC.search(fmt.num(value) + fmt.pct(value))
    assert fmt.rel_error(0.000123) == "0.012%"
    assert fmt.rel_error(1.6e-16) == "< 0.001%" and fmt.rel_error(0.0) == "0% (exact)"


def test_executive_rounding_uses_two_significant_figures_and_words_for_large_amounts():
    assert fmt.executive_amount(123_456_789) == "123 million"
    assert fmt.executive_amount(1_234_567) == "1.2 million"
    assert fmt.executive_amount(-2_345_678) == "-2.3 million"
    assert fmt.executive_amount(45_678) == "46 thousand"
    assert fmt.executive_amount(4_523.4) == "4,523"  # below ten thousand: the integer
    assert fmt.executive_amount(0.4372) == "0.44"
    assert fmt.executive_amount(1_575.2, signed=True) == "+1,575"
    lift = Interval(mean=1_234_567, hdi_90=(812_345, 1_645_678), hdi_95=(0, 2e6))
    assert fmt.executive_interval(lift) == "1.2 million (90% HDI 0.8 to 1.6 million)"
    mixed = Interval(mean=120_345, hdi_90=(-20_345, 260_000), hdi_95=(0, 1))
    assert fmt.executive_interval(mixed, True) == "+120 thousand (90% HDI -20 to +260 thousand)"
    assert fmt.executive_pct(0.3512) == "35%" and fmt.executive_pct(0.0042) == "0.42%"
    assert fmt.executive_pct(0.021, signed=True) == "+2.1%"
    share = Interval(mean=0.021, hdi_90=(0.004, 0.039), hdi_95=(0, 1))
    assert fmt.executive_pct_interval(share, True) == "+2.1% (90% HDI +0.4% to +3.9%)"
    assert fmt.executive_ratio(2.437) == "2.4" and fmt.executive_ratio(0.04372) == "0.044"
    roas = Interval(mean=2.437, hdi_90=(1.81, 3.14), hdi_95=(0, 4))
    assert fmt.executive_ratio_interval(roas) == "2.4 (90% HDI 1.8 to 3.1)"
    for value in (1e12, 987_654_321.0, 12_345_678.9):
        assert not FULL_MILLIONS.search(fmt.executive_amount(value)), value


def test_probabilities_from_draws_never_read_100_or_0_percent():
    assert fmt.probability(1.0, 500) == "> 99.8% (all 500 draws)"
    assert fmt.probability(0.0, 500) == "< 0.2% (none of the 500 draws)"
    assert fmt.probability(1.0, 4000) == "> 99.97% (all 4,000 draws)"
    assert fmt.probability(0.99996, 5000) == "> 99.99%"
    assert fmt.probability(0.9996, 5000) == "99.96%"
    assert fmt.probability(0.73, 500) == "73.0%"


def test_report_and_faq_print_probabilities_bounds_and_the_sum_check_precisely(demo):
    def budget(data: dict[str, Any]) -> None:
        data["draws"] = 500
        data["outcome"]["probability_better"] = 1.0
        for scenario in data["scenarios"]:
            scenario["probability_better"] = 0.0

    edit(demo, "budget_plans/recommended.json", budget)

    def contributions(data: dict[str, Any]) -> None:
        data["sum_check"]["relative_error"] = 0.000123
        data["channels"][0]["roas"]["hdi_90"][0] = 1.68e-06
        data["channels"][0]["share_of_media"]["hdi_90"][0] = 3.32e-06

    edit(demo, "mmm_channel_contributions.json", contributions)
    html = report_body(demo)
    finance = faq_checked(demo, "finance")
    cmo = faq_checked(demo, "cmo")
    assert "&gt; 99.8% (all 500 draws)" in html and "&lt; 0.2% (none of the 500 draws)" in html
    assert "> 99.8% (all 500 draws)" in finance and "< 0.2% (none of the 500 draws)" in finance
    assert "> 99.8% (all 500 draws)" in cmo
    # rules written by other steps as text may carry their own notation ('<= 1e-12')
    allocation = json.loads((demo / "analysis" / "allocation_summary.json").read_text())
    rules = [allocation["identifiability"]["rule"], allocation["bootstrap"]["rule"]]
    for text in (html, finance, cmo):
        # Only probabilities are meant: a share of weeks (PPC coverage) may well be 100.0%.
        said = [line for line in text.splitlines() if re.search("probab|better", line, re.I)]
        assert not [line for line in said if "100.0%" in line], said
        for rule in rules:
            text = text.replace(rule.replace(">", "&gt;").replace("<", "&lt;"), "")
            text = text.replace(rule, "")
        assert not SCIENTIFIC.search(text), SCIENTIFIC.search(text)
        assert "0.000332%" not in text
    assert "within a relative error of 0.012%" in html
    assert "within 0%" not in html
    # the decision and the summary: executive rounding, no diagnostics figures
    summary = between(html, "<header>", 'data-section="contributions"')
    assert not FULL_MILLIONS.search(summary), FULL_MILLIONS.search(summary)
    for diagnostic in ("R-hat", "rhat", "ESS", "divergen"):
        assert diagnostic not in summary, diagnostic
    # the navigation wraps instead of overflowing a narrow window
    style = (demo / "reports" / "mmm_executive_summary.html").read_text().split("</style>")[0]
    nav = re.search(r"nav\.toc \{[^}]*\}", style)
    assert nav and "flex-wrap: wrap" in nav.group()
