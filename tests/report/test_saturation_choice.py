"""A fit made with saturation='auto' says so in the report: which family, why, both families'
media totals, every number traced to analysis/mmm_fit.json; the warning about the family gap
appears only when the manifest records the choice as uncertain."""

from __future__ import annotations

from typing import Any

from tests.report.edits import between, edit, report_with_records
from tests.report.faq_sources import report_number_problems


def _choice(decided_by: str, uncertain: bool) -> dict[str, Any]:
    def candidate(family: str, elpd: float, total: float) -> dict[str, Any]:
        return {
            "saturation": family,
            "elpd_loo": elpd,
            "elpd_se": 9.5,
            "p_loo": 14.2,
            "max_pareto_k": 0.41,
            "stacking_weight": 0.5,
            "passes_gates": True,
            "media_total_mean": total,
            "media_total_hdi_90": [0.8 * total, 1.2 * total],
            "fit_key": "0" * 16,
            "model_path": f"analysis/models/{family}.nc",
        }

    return {
        "chosen": "hill",
        "decided_by": decided_by,
        "elpd_difference": -1.37,
        "difference_se": 2.11,
        "rule": "the rule",
        "media_total_gap": 0.43,
        "family_uncertain": uncertain,
        "candidates": [
            candidate("hill", -812.4, 48_213.0),
            candidate("logistic", -811.03, 27_481.0),
        ],
    }


def _with_choice(choice: dict[str, Any]):
    def change(data: dict[str, Any]) -> None:
        data["result"]["saturation_choice"] = choice

    return change


def test_the_report_names_the_kept_family_and_both_media_totals(demo):
    edit(demo, "mmm_fit.json", _with_choice(_choice("undecided_default", uncertain=True)))
    html, records = report_with_records(demo)
    assert report_number_problems(html, records, demo) == []
    item = between(html, '<li id="saturation-choice">', "</li>")
    assert "could not tell them apart" in item and "default hill curve was kept" in item
    assert "48,213" in item and "27,481" in item
    assert "43.0% apart" in item
    traced = {
        tuple(f["path"])
        for r in records
        for f in r["facts"]
        if f["file"] == "analysis/mmm_fit.json"
    }
    assert ("result", "saturation_choice", "elpd_difference") in traced
    assert ("result", "saturation_choice", "candidates", 1, "media_total_mean") in traced


def test_no_gap_warning_when_the_choice_is_not_uncertain_and_no_item_without_auto(demo):
    edit(demo, "mmm_fit.json", _with_choice(_choice("loo", uncertain=False)))
    html, records = report_with_records(demo)
    assert report_number_problems(html, records, demo) == []
    item = between(html, '<li id="saturation-choice">', "</li>")
    assert "predicts held-out weeks better" in item
    assert "apart" not in item

    edit(demo, "mmm_fit.json", lambda data: data["result"].pop("saturation_choice"))
    html, _ = report_with_records(demo)
    assert 'id="saturation-choice"' not in html


def test_an_roi_prior_is_named_with_its_traced_parameters(demo):
    def change(data: dict[str, Any]) -> None:
        data["result"]["roi_prior_applied"] = {"mu": 0.2, "sigma": 0.9}

    edit(demo, "mmm_fit.json", change)
    html, records = report_with_records(demo)
    assert report_number_problems(html, records, demo) == []
    item = between(html, '<li id="roi-prior">', "</li>")
    assert "log-scale mean 0.2" in item and "standard deviation 0.9" in item
    edit(demo, "mmm_fit.json", lambda data: data["result"].pop("roi_prior_applied"))
    html, _ = report_with_records(demo)
    assert 'id="roi-prior"' not in html
