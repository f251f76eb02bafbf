"""An honest verdict per channel (#15 item 3): the verdict rules against constructed draws,
and the verdict carried from validate_model into the decomposition and the report."""

from __future__ import annotations

import json

import numpy as np

from attribution_analysis.api import decompose_contributions, generate_report
from attribution_analysis.contracts.report import GenerateReportParams
from attribution_analysis.mmm.identification import TRADE_OFF_LIMIT, channel_verdicts
from attribution_analysis.workspace import Workspace


def _row(channel: str, shift: float, overlap: float, dominates: bool) -> dict:
    return {
        "channel": channel,
        "relative_shift": shift,
        "overlap": overlap,
        "prior_dominates": dominates,
    }


def _independent(n: int = 2000, k: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 10.0, size=(n, k))


def test_independent_totals_with_a_stable_roas_are_data_driven():
    comparison = [_row(c, 0.03, 0.9, False) for c in "abc"]
    verdicts = channel_verdicts(list("abc"), _independent(), comparison, [], refit_made=True)
    assert [v.verdict for v in verdicts] == ["data_driven"] * 3


def test_a_channel_whose_roas_moves_under_vague_priors_is_prior_driven():
    comparison = [_row("a", 0.03, 0.9, False), _row("b", 0.6, 0.3, True), _row("c", 0, 1, False)]
    verdicts = channel_verdicts(list("abc"), _independent(), comparison, [], refit_made=True)
    assert [v.verdict for v in verdicts] == ["data_driven", "prior_driven", "data_driven"]
    assert "+60%" in verdicts[1].reason and "lift test" in verdicts[1].reason


def test_totals_that_trade_off_are_not_separable_and_the_pair_is_named():
    rng = np.random.default_rng(1)
    total = rng.normal(300.0, 5.0, 2000)  # the sum is pinned by the data ...
    a = rng.normal(150.0, 40.0, 2000)  # ... the split between a and b is not
    draws = np.column_stack([a, total - a, rng.normal(80.0, 8.0, 2000)])
    corr = np.corrcoef(draws, rowvar=False)[0, 1]
    assert corr < TRADE_OFF_LIMIT  # the constructed case is what it claims to be
    comparison = [_row(c, 0.01, 0.95, False) for c in "abc"]
    verdicts = channel_verdicts(list("abc"), draws, comparison, [], refit_made=True)
    assert [v.verdict for v in verdicts] == ["not_separable", "not_separable", "data_driven"]
    assert verdicts[0].trades_off_with == ["b"] and verdicts[1].trades_off_with == ["a"]


def test_without_a_refit_the_verdict_is_unchecked_and_names_flagged_parameters():
    sensitivity = [
        {"parameter": "saturation_kappa[a]", "diagnosis": "potential prior-data conflict"},
        {"parameter": "saturation_kappa[b]", "diagnosis": "-"},
        {"parameter": "organic_saturation_kappa[a]", "diagnosis": "potential prior-data conflict"},
    ]
    verdicts = channel_verdicts(["a", "b"], _independent(k=2), [], sensitivity, refit_made=False)
    assert [v.verdict for v in verdicts] == ["unchecked", "unchecked"]
    assert "saturation_kappa[a]" in verdicts[0].reason
    assert "organic_" not in verdicts[0].reason and "power-scaling" not in verdicts[1].reason


def test_a_prior_driven_channel_is_labelled_in_the_decomposition_and_the_report(validated):
    """validate_model's verdict (here set as a sensitivity refit would, since the shared fit
    is validated without one) travels into the decomposition and the report."""
    path = validated / "analysis" / "mmm_diagnostics.json"
    diagnostics = json.loads(path.read_text())
    channels = [row["channel"] for row in diagnostics["identification"]]
    assert channels and {r["verdict"] for r in diagnostics["identification"]} == {"unchecked"}
    flagged = channels[0]
    diagnostics["identification"][0] = {
        "channel": flagged,
        "verdict": "prior_driven",
        "reason": "with vague priors its mean ROAS moves by +45% ...",
        "trades_off_with": [],
    }
    path.write_text(json.dumps(diagnostics))
    ws = Workspace.open(validated)
    override = None if diagnostics["passed"] else "identification test"
    result = decompose_contributions(ws, override_reason=override)
    labels = {c.channel: c.identification for c in result.channels}
    assert labels[flagged] == "prior_driven"
    assert {labels[c] for c in channels[1:]} == {"unchecked"}  # negative control
    assert [f.subject for f in result.findings if f.code == "channel_prior_driven"] == [flagged]
    generate_report(ws, GenerateReportParams(figures=False))
    html = (validated / "reports" / "mmm_executive_summary.html").read_text()
    assert f'data-identification="prior_driven"><td>{flagged}</td>' in html
    assert 'id="identification-summary"' in html and "not decided by the data" in html
    # Negative control: only the flagged channel is named as undecided; the unchecked ones
    # carry their own label and no warning.
    summary = html.split('id="identification-summary"')[1].split("</li>")[0]
    assert f"<strong>{flagged}</strong>" in summary
    assert not any(f"<strong>{c}</strong>" in summary for c in channels[1:])
    for channel in channels[1:]:
        assert f'data-identification="unchecked"><td>{channel}</td>' in html


def test_the_optimizer_warns_when_money_moves_into_a_channel_the_data_did_not_decide(validated):
    from attribution_analysis.api import optimize_budget
    from attribution_analysis.contracts.budget import OptimizeBudgetParams

    path = validated / "analysis" / "mmm_diagnostics.json"
    diagnostics = json.loads(path.read_text())
    channels = [row["channel"] for row in diagnostics["identification"]]
    prior_driven = set(channels[:-1])
    for row in diagnostics["identification"]:
        row["verdict"] = "prior_driven" if row["channel"] in prior_driven else "data_driven"
    path.write_text(json.dumps(diagnostics))
    override = None if diagnostics["passed"] else "identification test"
    result = optimize_budget(
        Workspace.open(validated), OptimizeBudgetParams(override_reason=override)
    )
    grown = {a.channel for a in result.allocations if a.recommended_spend > 1.01 * a.current_spend}
    assert grown, "the plan moves no money: the check below would pass vacuously"
    flagged = {f.subject for f in result.findings if f.code == "budget_into_prior_driven"}
    assert flagged == grown & prior_driven  # the data-driven channel is never flagged
    assert {a.channel: a.identification for a in result.allocations} == {
        c: "prior_driven" if c in prior_driven else "data_driven" for c in channels
    }
