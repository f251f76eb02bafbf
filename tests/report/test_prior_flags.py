"""Prior-sensitivity flags: the rule is quoted from mmm_diagnostics.json, each flag names
its channel and measure, the advice suits the channel's calibration, intervals are shown (or
why there are none), and the causal answer separates calibrated channels from the model
alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from attribution_analysis.contracts.common import Interval
from attribution_analysis.report import fmt
from tests.report.edits import (
    between,
    edit,
    faq_checked,
    faqs_checked,
    prior_rows,
    report_body,
    report_with_records,
)
from tests.report.faq_sources import report_number_problems


def _prior_rule(shift: float | None, overlap: float | None) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["prior_comparison"] = [
            {  # inside the recorded shift limit, below the recorded overlap limit
                "channel": "display",
                "roas_informative": 0.1,
                "roas_vague": 0.125,
                "relative_shift": 0.25,
                "overlap": 0.35,
                "prior_dominates": True,
            }
        ]
        if shift is None:
            data.pop("prior_comparison_rule", None)
        else:
            data["prior_comparison_rule"] = {"shift_limit": shift, "overlap_limit": overlap}

    return change


def test_the_prior_flag_rule_is_quoted_from_the_diagnostics_file(demo):
    written = json.loads((demo / "analysis" / "mmm_diagnostics.json").read_text())
    assert set(written["prior_comparison_rule"]) == {"shift_limit", "overlap_limit"}
    edit(demo, "mmm_diagnostics.json", _prior_rule(0.3, 0.4))
    html, records = report_with_records(demo)
    assert report_number_problems(html, records, demo) == []
    assert "mean ROAS shift beyond 30.0% or posterior overlap below 0.400" in html
    display = between(html, '<li data-channel="display">', "</li>")
    assert "flagged by the overlap" in display  # 25% < 30%: not by the shift
    sources = {
        tuple(f["path"])
        for r in records
        for f in r["facts"]
        if f["file"] == "analysis/mmm_diagnostics.json"
    }
    assert ("prior_comparison_rule", "shift_limit") in sources
    science = faqs_checked(demo, "data_science")["data_science"]
    assert "moves by more than 30.0% or its two posteriors overlap less than 0.400" in science
    assert "flagged by the overlap" in science

    edit(demo, "mmm_diagnostics.json", _prior_rule(None, None))  # written before the field
    html, records = report_with_records(demo)
    assert report_number_problems(html, records, demo) == []
    assert "The flag rule is not recorded in this diagnostics file" in html
    assert "flagged by validate_model" in between(html, '<li data-channel="display">', "</li>")
    science = faqs_checked(demo, "data_science")["data_science"]
    assert "are not recorded in this diagnostics file" in science
    assert "A channel is flagged when" not in science


def test_prior_flags_name_the_measure_and_suit_the_advice_to_calibration(demo):
    lift = json.loads((demo / "analysis" / "incrementality_results.json").read_text())
    assert "paid_search" in {t["channel"] for t in lift} and "display" not in {
        t["channel"] for t in lift
    }
    edit(demo, "mmm_diagnostics.json", prior_rows(demo))
    html = report_body(demo)
    paid = between(html, '<li data-channel="paid_search">', "</li>")
    assert "flagged by the overlap" in paid and "+4.2%" in paid and "0.379" in paid
    assert "Even with its lift test, the prior still matters" in paid
    assert "a lift test there would pin it down" not in paid
    display = between(html, '<li data-channel="display">', "</li>")
    assert "flagged by the shift" in display and "-49.2%" in display
    assert "a lift test there would pin it down" in display
    assert "display, paid_search: a lift test" not in html

    cmo = faq_checked(demo, "cmo")
    limits = between(cmo, "### What does this not tell us?", "---")
    paid_line = next(line for line in limits.splitlines() if "**paid_search**" in line)
    assert "flagged by the overlap" in paid_line and "Even with its lift test" in paid_line
    display_line = next(line for line in limits.splitlines() if "**display**" in line)
    assert "flagged by the shift" in display_line and "pin it down" in display_line

    # uncalibrated fit: the same channel gets the lift-test suggestion
    fit = json.loads((demo / "analysis" / "mmm_fit.json").read_text())
    fit["params"]["calibrate"] = False
    (demo / "analysis" / "mmm_fit.json").write_text(json.dumps(fit))
    paid = between(report_body(demo), '<li data-channel="paid_search">', "</li>")
    assert "a lift test there would pin it down" in paid


def test_prior_sensitivity_shows_intervals_or_says_why_there_are_none(demo):
    edit(demo, "mmm_diagnostics.json", prior_rows(demo))
    html = report_body(demo)
    table = between(html, 'id="prior-comparison-table"', "</table>")
    assert "posterior mean only (the refit records no interval)" in table
    paid = between(table, "<td>paid_search</td>", "</tr>")
    # The template prints the interval with one precision for mean and bounds, so the mean's
    # text is taken from the same formatter on the stored interval (for any posterior).
    contributions = json.loads((demo / "analysis" / "mmm_channel_contributions.json").read_text())
    roas = next(c["roas"] for c in contributions["channels"] if c["channel"] == "paid_search")
    own = fmt.interval(Interval.model_validate(roas)).split(" (90% HDI")[0]
    assert f"{own} (90% HDI" in paid  # the fit's own interval, from the contributions
    tv = between(table, "<td>tv</td>", "</tr>")
    assert "(no interval: the contributions belong to another fit)" in tv
    campaigns = between(html, 'class="campaign-table"', "</thead>")
    assert "point estimate (the method yields no interval" in campaigns
    ds = faq_checked(demo, "data_science")
    assert "ROAS, vague priors: posterior mean (no interval recorded)" in ds
    assert f"| {own} (90% HDI" in ds


def test_the_causal_answer_separates_calibrated_channels_from_the_model_alone(demo):
    cmo = faq_checked(demo, "cmo")
    answer = between(cmo, "### Is this causal?", "### Can we trust")
    assert "The channel totals are:" not in answer
    assert "causal estimates under its assumptions" in answer
    calibrated = between(answer, "Calibrated by a lift test", "Resting on the model alone")
    alone = between(answer, "Resting on the model alone", "The split within")
    for channel in ("tv", "paid_search"):
        assert f"**{channel}**" in calibrated and f"**{channel}**" not in alone
    for channel in ("display", "social", "video"):
        assert f"**{channel}**" in alone and f"**{channel}**" not in calibrated

    fit = json.loads((demo / "analysis" / "mmm_fit.json").read_text())
    fit["params"]["calibrate"] = False
    (demo / "analysis" / "mmm_fit.json").write_text(json.dumps(fit))
    answer = between(faq_checked(demo, "cmo"), "### Is this causal?", "### Can we trust")
    assert "Calibrated by a lift test" not in answer
    assert "this fit was not calibrated with them" in answer
    assert "**tv**" in between(answer, "Resting on the model alone", "The split within")
