"""Review fixes of the report and FAQ, on a copy of a demo-like workspace (the demo's data
through every step up to the budget; see conftest), each output edited to the case under test.

Prior flags worded per channel and per measure; probabilities from N draws never 100%;
sensible significant figures; one source for a channel's MMM total and a visible note when
the allocation's totals drift from it; the causal answer separates calibrated channels;
intervals (or the reason there are none) in the prior-sensitivity and productivity columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attribution_analysis.contracts.common import Interval
from attribution_analysis.contracts.report import DraftFaqParams, GenerateReportParams
from attribution_analysis.report import draft_faq, fmt, generate_report
from attribution_analysis.workspace import Workspace
from tests.report.faq_sources import faq_number_problems

SCIENTIFIC = re.compile(r"\d\.?\d*e[-+]\d+")


def _edit(root: Path, name: str, change: Any) -> None:
    path = root / "analysis" / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _report(root: Path) -> str:
    result = generate_report(Workspace.open(root), GenerateReportParams(figures=False))
    return (root / result.report).read_text().split("</style>", 1)[1]


def _faq(root: Path, audience: str) -> str:
    draft_faq(Workspace.open(root), DraftFaqParams(audience=audience))  # type: ignore[arg-type]
    markdown = (root / "reports" / f"faq_{audience}.md").read_text()
    records = json.loads((root / "reports" / f"faq_{audience}.sources.json").read_text())
    assert faq_number_problems(markdown, records["records"], root) == []
    return markdown


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


# ----- formatting -----------------------------------------------------------------------


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

    _edit(demo, "mmm_budget_optimization.json", budget)

    def contributions(data: dict[str, Any]) -> None:
        data["sum_check"]["relative_error"] = 0.000123
        data["channels"][0]["roas"]["hdi_90"][0] = 1.68e-06
        data["channels"][0]["share_of_media"]["hdi_90"][0] = 3.32e-06

    _edit(demo, "mmm_channel_contributions.json", contributions)
    html = _report(demo)
    finance = _faq(demo, "finance")
    cmo = _faq(demo, "cmo")
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
    # the navigation wraps instead of overflowing a narrow window
    style = (demo / "reports" / "mmm_executive_summary.html").read_text().split("</style>")[0]
    nav = re.search(r"nav\.toc \{[^}]*\}", style)
    assert nav and "flex-wrap: wrap" in nav.group()


# ----- prior flags ------------------------------------------------------------------------


def _roas(root: Path, channel: str) -> float:
    contributions = json.loads((root / "analysis" / "mmm_channel_contributions.json").read_text())
    return next(c["roas"]["mean"] for c in contributions["channels"] if c["channel"] == channel)


def _prior_rows(root: Path) -> Callable[[dict[str, Any]], None]:
    """Vague-prior rows whose informative ROAS is this fit's own (so its interval applies)."""
    paid, display = _roas(root, "paid_search"), _roas(root, "display")

    def change(data: dict[str, Any]) -> None:
        data["prior_comparison"] = _rows(paid, display)

    return change


def _rows(paid: float, display: float) -> list[dict[str, Any]]:
    return [
        {  # calibrated by a lift test in the demo; flagged by the overlap only
            "channel": "paid_search",
            "roas_informative": paid,
            "roas_vague": paid * 1.0422769,
            "relative_shift": 0.04227690847154408,
            "overlap": 0.37925,
            "prior_dominates": True,
        },
        {  # no lift test; flagged by the shift only
            "channel": "display",
            "roas_informative": display,
            "roas_vague": display * 0.508118,
            "relative_shift": -0.491881978070152,
            "overlap": 0.5715,
            "prior_dominates": True,
        },
        {
            "channel": "tv",
            "roas_informative": 0.5,  # not the decomposition's fit: no interval to borrow
            "roas_vague": 0.49,
            "relative_shift": -0.02,
            "overlap": 0.9,
            "prior_dominates": False,
        },
    ]


def test_prior_flags_name_the_measure_and_suit_the_advice_to_calibration(demo):
    lift = json.loads((demo / "analysis" / "incrementality_results.json").read_text())
    assert "paid_search" in {t["channel"] for t in lift} and "display" not in {
        t["channel"] for t in lift
    }
    _edit(demo, "mmm_diagnostics.json", _prior_rows(demo))
    html = _report(demo)
    paid = _between(html, '<li data-channel="paid_search">', "</li>")
    assert "flagged by the overlap" in paid and "+4.2%" in paid and "0.379" in paid
    assert "Even with its lift test, the prior still matters" in paid
    assert "a lift test there would pin it down" not in paid
    display = _between(html, '<li data-channel="display">', "</li>")
    assert "flagged by the shift" in display and "-49.2%" in display
    assert "a lift test there would pin it down" in display
    assert "display, paid_search: a lift test" not in html

    cmo = _faq(demo, "cmo")
    limits = _between(cmo, "### What does this not tell us?", "---")
    paid_line = next(line for line in limits.splitlines() if "**paid_search**" in line)
    assert "flagged by the overlap" in paid_line and "Even with its lift test" in paid_line
    display_line = next(line for line in limits.splitlines() if "**display**" in line)
    assert "flagged by the shift" in display_line and "pin it down" in display_line

    # uncalibrated fit: the same channel gets the lift-test suggestion
    fit = json.loads((demo / "analysis" / "mmm_fit.json").read_text())
    fit["params"]["calibrate"] = False
    (demo / "analysis" / "mmm_fit.json").write_text(json.dumps(fit))
    paid = _between(_report(demo), '<li data-channel="paid_search">', "</li>")
    assert "a lift test there would pin it down" in paid


def test_prior_sensitivity_shows_intervals_or_says_why_there_are_none(demo):
    _edit(demo, "mmm_diagnostics.json", _prior_rows(demo))
    html = _report(demo)
    table = _between(html, 'id="prior-comparison-table"', "</table>")
    assert "posterior mean only (the refit records no interval)" in table
    paid = _between(table, "<td>paid_search</td>", "</tr>")
    # The template prints the interval with one precision for mean and bounds, so the mean's
    # text is taken from the same formatter on the stored interval (for any posterior).
    contributions = json.loads((demo / "analysis" / "mmm_channel_contributions.json").read_text())
    roas = next(c["roas"] for c in contributions["channels"] if c["channel"] == "paid_search")
    own = fmt.interval(Interval.model_validate(roas)).split(" (90% HDI")[0]
    assert f"{own} (90% HDI" in paid  # the fit's own interval, from the contributions
    tv = _between(table, "<td>tv</td>", "</tr>")
    assert "(no interval: the contributions belong to another fit)" in tv
    campaigns = _between(html, 'class="campaign-table"', "</thead>")
    assert "point estimate (the method yields no interval" in campaigns
    ds = _faq(demo, "data_science")
    assert "ROAS, vague priors: posterior mean (no interval recorded)" in ds
    assert f"| {own} (90% HDI" in ds


# ----- channel totals ---------------------------------------------------------------------


DRIFT = 0.94  # the allocation's display total 6% below the decomposition's


def _display_total(root: Path) -> float:
    contributions = json.loads((root / "analysis" / "mmm_channel_contributions.json").read_text())
    return next(
        c["total_contribution"]["mean"]
        for c in contributions["channels"]
        if c["channel"] == "display"
    )


def _drift_display(root: Path) -> Callable[[dict[str, Any]], None]:
    drifted = _display_total(root) * DRIFT

    def change(data: dict[str, Any]) -> None:
        for block in data["block_totals"]:
            if block["block"] == "display":
                block["total"] = block["allocated"] = drifted

    return change


def _match_decomposition(root: Path) -> None:
    contributions = json.loads((root / "analysis" / "mmm_channel_contributions.json").read_text())
    means = {c["channel"]: c["total_contribution"]["mean"] for c in contributions["channels"]}

    def change(data: dict[str, Any]) -> None:
        for block in data["block_totals"]:
            block["total"] = block["allocated"] = means[block["block"]] * 1.004

    _edit(root, "allocation_summary.json", change)


def test_mmm_totals_come_from_the_decomposition_and_a_drift_is_shown(demo):
    _match_decomposition(demo)
    _edit(demo, "allocation_summary.json", _drift_display(demo))
    html = _report(demo)
    mmm = fmt.integer(_display_total(demo))
    drifted = fmt.integer(_display_total(demo) * DRIFT)
    note = _between(html, 'id="total-mismatch"', "</div>")
    assert "display" in note and drifted in note and mmm in note
    assert "social" not in note  # 0.4% apart: within the tolerance
    assert "campaign credit (adds up to the channel total used by the allocation)" in html
    assert "display: top" in html and f"(MMM contribution {mmm} (90% HDI" in html
    finance = _faq(demo, "finance")
    table = _between(finance, "| channel | MMM contribution", "\n\n")
    assert "campaign credit (adds up to the channel total used by the allocation)" in table
    display_row = next(line for line in table.splitlines() if line.startswith("| display |"))
    assert display_row.split("|")[2].strip() == mmm  # the decomposition's mean
    assert "**Check: display.**" in finance and drifted in finance
    marketing = _faq(demo, "marketing")
    assert f"**display** (MMM contribution {mmm}" in marketing and "Check: display" in marketing


def test_no_drift_note_when_the_allocation_matches_the_decomposition(demo):
    _match_decomposition(demo)
    html = _report(demo)
    assert 'id="total-mismatch"' not in html
    assert "Check:" not in _faq(demo, "finance")


# ----- causal answer ----------------------------------------------------------------------


def test_the_causal_answer_separates_calibrated_channels_from_the_model_alone(demo):
    cmo = _faq(demo, "cmo")
    answer = _between(cmo, "### Is this causal?", "### Can we trust")
    assert "The channel totals are:" not in answer
    assert "causal estimates under its assumptions" in answer
    calibrated = _between(answer, "Calibrated by a lift test", "Resting on the model alone")
    alone = _between(answer, "Resting on the model alone", "The split within")
    for channel in ("tv", "paid_search"):
        assert f"**{channel}**" in calibrated and f"**{channel}**" not in alone
    for channel in ("display", "social", "video"):
        assert f"**{channel}**" in alone and f"**{channel}**" not in calibrated

    fit = json.loads((demo / "analysis" / "mmm_fit.json").read_text())
    fit["params"]["calibrate"] = False
    (demo / "analysis" / "mmm_fit.json").write_text(json.dumps(fit))
    answer = _between(_faq(demo, "cmo"), "### Is this causal?", "### Can we trust")
    assert "Calibrated by a lift test" not in answer
    assert "this fit was not calibrated with them" in answer
    assert "**tv**" in _between(answer, "Resting on the model alone", "The split within")


def test_every_faq_of_the_demo_passes_the_strict_number_check(demo):
    _edit(demo, "mmm_diagnostics.json", _prior_rows(demo))
    _edit(demo, "allocation_summary.json", _drift_display(demo))
    for audience in ("cmo", "data_science", "finance", "marketing", "legal", "all"):
        _faq(demo, audience)


def test_productivity_drivers_are_shown_with_their_intervals(demo):
    summary = json.loads((demo / "analysis" / "allocation_summary.json").read_text())
    drivers = [c for c in summary["coefficients"] if c["name"] != "intercept"]
    assert all(c["std_error"] > 0 for c in drivers)
    channel_terms = [c for c in drivers if c["name"].startswith("channel[")]
    drivers = [c for c in drivers if c not in channel_terms]
    assert drivers and channel_terms
    html = _report(demo)
    table = _between(html, 'id="productivity-drivers"', "</table>")
    for c in channel_terms:  # scale terms of the campaign allocation, not drivers
        assert f"<td>{c['name']}</td>" not in table
    intro = html[html.index("What drives productivity") : html.index('id="productivity-drivers"')]
    for column, level in summary["reference_levels"].items():
        assert (f"{column} = {level}" in intro) == (column != "channel")
    faq = _faq(demo, "data_science")
    answer = _between(faq, "### What drives campaign productivity", "*Source:")
    for c in drivers:
        assert f"[{fmt.num(c['lower_90'])}, {fmt.num(c['upper_90'])}]" in answer
    assert "channel\\[" not in answer
    for c in drivers:
        row = _between(table, f"<td>{c['name']}</td>", "</tr>")
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
