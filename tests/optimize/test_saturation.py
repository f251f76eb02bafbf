"""Saturation flags on synthetic curves whose position on the curve is known in closed form.

One period, no carry-over, Hill saturation: outcome = beta * h with h = x^s / (x^s + k^s).
Then the saturation level is h and marginal over average ROAS is x h'(x) / h(x) = s (1 - h),
so each channel can be placed exactly where each rule should (or should not) fire.
"""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis.optimize.response import ResponseCurves
from attribution_analysis.optimize.step import saturation_findings, saturation_flags

# name: (slope, spend / kappa)
CHANNELS = {
    "far": (1.5, 20.0),  # h = 0.989, mROAS/ROAS = 0.017: both rules fire
    "steep": (4.0, (0.85 / 0.15) ** 0.25),  # h = 0.85, ratio = 0.6: only the curve rule
    "flat": (0.3, 1.0),  # h = 0.5, ratio = 0.15: only the marginal-ROAS rule
    "low": (1.0, 0.1),  # h = 0.09, ratio = 0.91: well below, not flagged
}


def _curves() -> tuple[ResponseCurves, np.ndarray]:
    draws, n = 5, len(CHANNELS)
    slope = np.array([s for s, _ in CHANNELS.values()])
    kappa = np.array([2.0, 0.5, 1.0, 3.0])
    spend = np.array([x for _, x in CHANNELS.values()]) * kappa
    curves = ResponseCurves(
        channels=list(CHANNELS),
        horizon=1,
        timeline_weight=np.ones((draws, 1, n, 1)),
        period_count=np.ones(1),
        beta=np.full((draws, 1, n), 7.0),
        saturation="hill",
        slope=np.broadcast_to(slope, (draws, 1, n)).copy(),
        kappa=np.broadcast_to(kappa, (draws, 1, n)).copy(),
        lam=None,
        input_per_spend=np.ones((1, n)),
        target_scale=np.array([1.0]),
    )
    return curves, spend


def test_saturation_flags_fire_where_the_closed_form_says():
    curves, spend = _curves()
    statuses = dict(zip(CHANNELS, saturation_flags(curves, spend), strict=True))
    for name, (slope, ratio_to_kappa) in CHANNELS.items():
        h = ratio_to_kappa**slope / (ratio_to_kappa**slope + 1)
        status = statuses[name]
        assert status.curve_fraction.mean == pytest.approx(h, rel=1e-9), name
        assert status.mroas_to_roas == pytest.approx(slope * (1 - h), rel=1e-6), name
        assert status.mroas_ratio_threshold == 0.3  # references/mmm_methodology.md
        assert status.curve_fraction_threshold == 0.8
    far, steep, flat, low = (statuses[n] for n in CHANNELS)
    assert far.saturated and "returns 2% of the average unit" in far.reason
    assert "threshold 30%" in far.reason and "sits at 99% of its ceiling" in far.reason
    assert "threshold 80%" in far.reason
    assert steep.saturated and "85% of its ceiling" in steep.reason
    assert "average unit" not in steep.reason
    assert flat.saturated and "returns 15% of the average unit" in flat.reason
    assert "ceiling" not in flat.reason
    assert not low.saturated and low.reason == ""

    findings = saturation_findings(list(CHANNELS), list(statuses.values()))
    assert [f.subject for f in findings] == ["far", "steep", "flat"]
    for finding in findings:
        assert finding.code == "saturated_channel" and finding.severity == "warning"
        assert finding.threshold == 0.3
        assert finding.value == pytest.approx(statuses[finding.subject].mroas_to_roas, abs=1e-4)
        assert statuses[finding.subject].reason in finding.message
