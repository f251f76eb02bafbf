"""The ROI prior (MMMConfig.roi_prior): its potential is the LogNormal log-density of each
channel's revenue per unit of spend, computed here independently with SciPy from the
model's contributions; a conversions outcome is refused before anything is written."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from attribution_analysis.api import fit_mmm
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig, RoiPrior
from attribution_analysis.errors import ParameterError
from attribution_analysis.mmm.fit import prepare
from attribution_analysis.mmm.roi_prior import POTENTIAL, add_roi_prior
from attribution_analysis.workspace import Workspace


def test_the_potential_is_the_lognormal_density_of_each_channels_roi(fitted):
    ws = Workspace.open(fitted)
    data, mmm, _ = prepare(ws, FitMMMParams())
    prior = RoiPrior(mu=0.3, sigma=0.7)
    add_roi_prior(mmm, "revenue", prior)
    model = mmm.model
    rng = np.random.default_rng(4)
    point = {
        name: value + rng.normal(0, 0.3, size=np.shape(value))
        for name, value in model.initial_point(random_seed=1).items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (contribution_at_values,) = model.replace_rvs_by_values(
            [model["channel_contribution"].values]
        )
        potential, contribution = model.compile_fn(
            [model[POTENTIAL], contribution_at_values],
            inputs=model.value_vars,
            on_unused_input="ignore",
        )(point)
    scale = float(model["target_scale"].get_value())
    roi = contribution.sum(axis=0) * scale / data.X[data.channels].sum().to_numpy()
    expected = stats.lognorm(s=prior.sigma, scale=np.exp(prior.mu)).logpdf(roi).sum()
    assert np.isfinite(expected)
    assert float(potential) == pytest.approx(expected, rel=1e-9)
    # NUTS needs its gradient (PyTensor has none for sums of PyMC's dims-aware tensors).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gradient = model.compile_dlogp()(point)
    assert np.all(np.isfinite(gradient))
    # Negative control: another prior gives another value.
    other = stats.lognorm(s=0.9, scale=np.exp(0.2)).logpdf(roi).sum()
    assert abs(other - expected) > 1e-3


def test_a_conversions_outcome_is_refused(fitted):
    before = (fitted / "analysis" / "mmm_fit.json").read_bytes()
    params = FitMMMParams(config=MMMConfig(roi_prior=RoiPrior()))
    with pytest.raises(ParameterError, match="needs a revenue outcome"):
        fit_mmm(Workspace.open(fitted), params)
    assert (fitted / "analysis" / "mmm_fit.json").read_bytes() == before


def test_auto_is_meridians_prior_on_revenue_and_none_on_conversions(fitted):
    from attribution_analysis.mmm.build import effective_spec, resolved_roi_prior

    config = MMMConfig()
    assert config.roi_prior == "auto"
    assert resolved_roi_prior(config, "revenue") == RoiPrior(mu=0.2, sigma=0.9)
    assert resolved_roi_prior(config, "conversions") is None
    assert resolved_roi_prior(MMMConfig(roi_prior=None), "revenue") is None
    # A model without an ROI prior keeps the key it had before the option existed.
    assert "roi_prior" not in effective_spec(config, "conversions")
    assert effective_spec(config, "revenue")["roi_prior"] == {"mu": 0.2, "sigma": 0.9}
    # The shared fit (conversions) carries no potential and says so.
    _, mmm, _ = prepare(Workspace.open(fitted), FitMMMParams())
    assert POTENTIAL not in mmm.model.named_vars
    manifest = (fitted / "analysis" / "mmm_fit.json").read_text()
    assert '"roi_prior_applied": null' in manifest


def test_a_manifest_from_before_the_option_reads_as_a_model_without_it():
    from attribution_analysis.contracts.mmm import recorded_fit_params

    old = FitMMMParams().model_dump(mode="json")
    del old["config"]["roi_prior"]
    assert recorded_fit_params(old).config.roi_prior is None
    new = FitMMMParams().model_dump(mode="json")
    assert recorded_fit_params(new).config.roi_prior == "auto"


def _scaled_world(spend_per_week: float, revenue_per_week: float):
    """A revenue panel stand-in (what ``_roi_prior_findings`` reads): two channels, 52 weeks."""
    import pandas as pd

    from attribution_analysis.mmm.panel import ModelData

    rng = np.random.default_rng(5)
    spend = rng.uniform(0.5, 1.5, (52, 2)) * spend_per_week / 2
    X = pd.DataFrame(spend, columns=["tv", "search"])
    y = pd.Series(rng.uniform(0.9, 1.1, 52) * revenue_per_week, name="revenue")
    return ModelData(X, y, ["tv", "search"], [], False, "revenue", None, {}, np.zeros(52, bool))


@pytest.mark.parametrize(
    ("spend", "revenue", "expected"),
    [
        (10_000.0, 100_000.0, None),  # a plausible panel: 10x revenue per unit of spend
        (10_000.0, 4_000.0, None),  # media can be most of a small business's revenue
        (0.5, 5_000.0, "95th-percentile return"),  # spend scaled to 0-1, as mmm_example
        (1_000_000.0, 100_000.0, "more than the whole outcome"),  # spend in cents
    ],
)
def test_a_prior_that_cannot_hold_the_datas_scale_is_named(spend, revenue, expected):
    from attribution_analysis.mmm.fit import _roi_prior_findings

    data = _scaled_world(spend, revenue)
    findings = _roi_prior_findings(FitMMMParams(), data)  # "auto": Meridian's on revenue
    if expected is None:
        assert findings == []
        return
    (finding,) = findings
    assert finding.code == "roi_prior_scale_conflict" and expected in finding.message
    assert "roi_prior null" in finding.message
    per_unit = data.y.sum() / data.X.to_numpy().sum()
    assert finding.value == pytest.approx(per_unit)
    # The quantiles the message states, from SciPy (an independent computation).
    roi = stats.lognorm(s=0.9, scale=np.exp(0.2))
    assert f"{roi.ppf(0.05):.2f} and {roi.ppf(0.95):.2f}" in finding.message
    if expected == "95th-percentile return":
        assert f"{roi.ppf(0.95) / per_unit:.2%}" in finding.message
    # Without the ROI prior there is nothing to clash with.
    assert _roi_prior_findings(FitMMMParams(config=MMMConfig(roi_prior=None)), data) == []
