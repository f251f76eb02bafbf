"""A quick (MAP/ADVI) fit answers with channel numbers, labelled not for decisions.

The figures are checked against an independent computation from the fitted parameters: the
NumPy twins of the media curves (``transforms``, tested equal to PyMC-Marketing's on a grid)
applied to the spend, scaled as PyMC-Marketing scales it (each channel by its maximum, the
target by its maximum), never against the fit's own ``channel_contribution``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribution_analysis import transforms
from attribution_analysis.api import draft_faq, fit_mmm
from attribution_analysis.contracts.mmm import QUICK_LABEL, FitMMMParams
from attribution_analysis.contracts.report import DraftFaqParams
from attribution_analysis.mmm import store
from attribution_analysis.mmm.panel import load_model_data
from attribution_analysis.report import fmt
from attribution_analysis.workspace import Workspace
from tests.report.faq_sources import faq_number_problems

# The computation differs from PyMC-Marketing's only by floating-point order (PyTensor's
# sigmoid against SciPy's expit differ by about 5e-9 relative: tests/test_transforms.py).
RECOMPUTE_RTOL = 1e-6


def _independent_totals(
    root: Path, posterior: dict[str, np.ndarray], carry_over: bool = True
) -> dict[str, np.ndarray]:
    """Contribution of each channel over the window, per draw, in the target's units:
    beta * hill(adstock(spend / max spend)) * max target, from the stored parameters
    (``carry_over=False`` leaves the adstock out: the negative control's wrong model)."""
    config = FitMMMParams().config
    data = load_model_data(
        Workspace.open(root),
        None,
        config.use_trend,
        config.use_holidays,
        config.use_external_factors,
    )
    target_scale = float(np.abs(data.y.to_numpy(dtype=float)).max())
    totals = {}
    for c, channel in enumerate(data.channels):
        spend = data.X[channel].to_numpy(dtype=float)
        scaled = spend / np.abs(spend).max()
        per_draw = []
        for k in range(posterior["adstock_alpha"].shape[0]):
            alpha = posterior["adstock_alpha"][k, c] if carry_over else 0.0
            carried = transforms.geometric_adstock(scaled, alpha, config.l_max)
            curve = transforms.hill(
                carried, posterior["saturation_slope"][k, c], posterior["saturation_kappa"][k, c]
            )
            per_draw.append(posterior["saturation_beta"][k, c] * curve.sum() * target_scale)
        totals[channel] = np.array(per_draw)
    totals["__spend__"] = np.array([data.X[c].sum() for c in data.channels])
    return totals


def _parameters(root: Path, model_path: str) -> dict[str, np.ndarray]:
    tree = store.load_tree(Workspace.open(root), model_path)
    posterior = tree["posterior"].to_dataset()
    return {
        name: posterior[name].stack(sample=("chain", "draw")).transpose("sample", "channel").values
        for name in ("adstock_alpha", "saturation_slope", "saturation_kappa", "saturation_beta")
    }


def test_a_map_fit_answers_with_shares_and_roas_from_its_point_estimate(validated_with_lift_test):
    root = validated_with_lift_test
    answer = fit_mmm(Workspace.open(root), FitMMMParams(quick="map"))
    assert answer.for_decisions is False
    estimates = answer.quick_estimates
    assert estimates is not None
    assert estimates.label == QUICK_LABEL == "not for decisions"
    assert estimates.estimate == "map_point_estimate" and estimates.draws == 1
    assert "no interval" in estimates.basis
    finding = next(f for f in answer.findings if f.code == "quick_estimates")
    assert QUICK_LABEL in finding.message
    for row in estimates.channels:
        assert row.channel in finding.message
        assert row.share_of_media_hdi_90 is None and row.roas_hdi_90 is None  # MAP: no interval

    truth = _independent_totals(root, _parameters(root, answer.model_path))
    spend = dict(zip(answer.channels, truth.pop("__spend__"), strict=True))
    media = sum(float(v[0]) for v in truth.values())
    for row in estimates.channels:
        expected = float(truth[row.channel][0])
        assert row.spend == pytest.approx(spend[row.channel], rel=1e-12)
        assert row.contribution == pytest.approx(expected, rel=RECOMPUTE_RTOL)
        assert row.share_of_media == pytest.approx(expected / media, rel=RECOMPUTE_RTOL)
        assert row.roas == pytest.approx(expected / spend[row.channel], rel=RECOMPUTE_RTOL)
    assert sum(r.share_of_media for r in estimates.channels) == pytest.approx(1.0)

    # Negative controls: the check fails for the other channel's figure, and for the same
    # parameters without the carry-over, so it is not met by any plausible number.
    first, second = estimates.channels[0], estimates.channels[1]
    assert second.contribution != pytest.approx(float(truth[first.channel][0]), rel=0.01)
    no_carry_over = _independent_totals(
        root, _parameters(root, answer.model_path), carry_over=False
    )
    for row in estimates.channels:
        wrong = float(no_carry_over[row.channel][0])
        assert row.contribution != pytest.approx(wrong, rel=RECOMPUTE_RTOL * 100)

    # The manifest keeps them (what the report and FAQ read), and a cached refit of the
    # same model answers with the same figures without fitting again.
    manifest = json.loads((root / "analysis" / "mmm_fit.json").read_text())
    assert manifest["result"]["quick_estimates"] == estimates.model_dump(mode="json")
    again = fit_mmm(Workspace.open(root), FitMMMParams(quick="map"))
    assert again.cached and again.quick_estimates == estimates

    # Without a decomposition, the CMO's FAQ answers with them, labelled, each number
    # traced to its field of the manifest.
    draft_faq(Workspace.open(root), DraftFaqParams(audience="cmo"))
    markdown = (root / "reports" / "faq_cmo.md").read_text()
    records = json.loads((root / "reports" / "faq_cmo.sources.json").read_text())["records"]
    assert faq_number_problems(markdown, records, root) == []
    answer = markdown.split("### What did media deliver, and how sure are we?", 1)[1]
    answer = answer.split("\n### ", 1)[0]
    assert f"**{QUICK_LABEL}**" in answer
    for row in estimates.channels:
        assert f"{fmt.pct(row.share_of_media)} of media, ROAS {fmt.num(row.roas)}" in answer


def test_a_nuts_fit_carries_no_quick_figures(fitted):
    """Negative control: the figures are the quick path's only; a NUTS fit's come from
    decompose_contributions (the shared fit's manifest)."""
    manifest = json.loads((fitted / "analysis" / "mmm_fit.json").read_text())
    assert manifest["result"]["method"] == "bayesian_nuts"
    assert manifest["result"]["quick_estimates"] is None


@pytest.mark.slow
def test_an_advi_fit_gives_approximate_intervals_around_its_draws_mean(validated_with_lift_test):
    root = validated_with_lift_test
    answer = fit_mmm(Workspace.open(root), FitMMMParams(quick="advi"))
    estimates = answer.quick_estimates
    assert estimates is not None and estimates.estimate == "advi_approximation"
    assert estimates.draws > 100 and "approximate" in estimates.basis
    truth = _independent_totals(root, _parameters(root, answer.model_path))
    spend = dict(zip(answer.channels, truth.pop("__spend__"), strict=True))
    media = sum(truth.values())
    for row in estimates.channels:
        draws = truth[row.channel]
        assert row.contribution == pytest.approx(draws.mean(), rel=RECOMPUTE_RTOL)
        assert row.share_of_media == pytest.approx((draws / media).mean(), rel=RECOMPUTE_RTOL)
        assert row.roas == pytest.approx(draws.mean() / spend[row.channel], rel=RECOMPUTE_RTOL)
        low, high = row.roas_hdi_90
        assert low <= row.roas <= high and low < high
