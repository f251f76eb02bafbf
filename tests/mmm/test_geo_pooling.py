"""A geo panel's media parameters are partially pooled across geos (``priors.GEO_POOLING``):
curve shape shared per channel, effect size per (geo, channel) around a channel mean.

Checked on the model PyMC-Marketing builds (built, not fitted) by the dims of its free
variables, and the effect's prior against the hierarchy it stands for: each channel's geo
log-effects Normal(mu, sigma^2) around the channel mean with sigma^2 ~ InverseGamma(2,
width^2) integrated out, the integral computed numerically here (an independent
implementation of what ``priors.GeoEffectPrior`` writes in closed form). Negative controls:
another spread prior gives another density, a national model has no geo dims, and a prior
the user gives with dims ("geo", "channel") is not pooled.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from pytensor.graph.replace import graph_replace
from scipy import integrate, stats

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.errors import ParameterError
from attribution_analysis.mmm.build import build_mmm
from attribution_analysis.mmm.intercept import LEVEL
from attribution_analysis.mmm.panel import load_model_data
from attribution_analysis.mmm.priors import GEO_SPREAD_SHAPE, geo_effect_prior
from attribution_analysis.mmm.sensitivity import vague_config
from attribution_analysis.workspace import Workspace

SHAPE = ("adstock_alpha", "saturation_kappa", "saturation_slope")


def _data(simulated, geos: int):
    root = simulated(kind="mmm", seed=4, weeks=60, channels=2, geos=geos)
    ws = Workspace.open(root)
    validate_data(ws)
    config = FitMMMParams().config
    return load_model_data(
        ws, config.target, config.use_trend, config.use_holidays, config.use_external_factors
    ), config


def _dims(model) -> dict[str, tuple[str, ...]]:
    """Dims of the sampled and derived variables (the effect size is derived from its raw
    log effects)."""
    return {
        rv.name: tuple(model.named_vars_to_dims.get(rv.name, ()))
        for rv in [*model.free_RVs, *model.deterministics]
    }


def test_geo_model_shares_curve_shape_and_pools_effect_size(simulated):
    data, config = _data(simulated, geos=6)
    model = build_mmm(data, config).model
    dims = _dims(model)
    for name in SHAPE:
        assert dims[name] == ("channel",), name
    assert dims["saturation_beta"] == ("geo", "channel")
    # No spread is sampled: the geo log-effects (channel, geo) around a channel mean.
    free = {rv.name for rv in model.free_RVs}
    assert "saturation_beta" not in free
    assert {"saturation_beta_raw", "saturation_beta_raw_mu"} <= free
    assert not any("sigma" in name and "saturation" in name for name in free)
    assert dims["saturation_beta_raw"] == ("channel", "geo")
    assert dims["saturation_beta_raw_mu"] == ("channel",)
    # Per-geo baselines stay per geo: pooling is for the media, not the geo's own level.
    # (The sampler moves each geo's mean level; the intercept is derived from it per geo.)
    assert dims[LEVEL] == ("geo",)
    assert tuple(model.named_vars_to_dims["intercept_contribution"]) == ("geo",)
    assert dims["y_sigma"] == ("geo",)
    # The effect is exp of the raw log effects, transposed to (geo, channel).
    raw = np.random.default_rng(0).normal(-0.5, 0.4, (2, 6))
    effect = graph_replace(model["saturation_beta"], {model["saturation_beta_raw"]: raw})
    beta = effect.eval()
    np.testing.assert_allclose(beta, np.exp(raw).T, rtol=1e-12)


def _hierarchical_log_density(z: np.ndarray, mu: float, width: float, shape: float) -> float:
    """log p(z | mu) for z_g ~ Normal(mu, s2) iid, s2 ~ InverseGamma(shape, width^2),
    s2 integrated out numerically."""
    scale = width**2
    s2_density = stats.invgamma(shape, scale=scale).pdf

    # On log s2, where the integrand is smooth; shift by the peak to keep it finite.
    def log_integrand(t: float) -> float:
        s2 = np.exp(t)
        return stats.norm(mu, np.sqrt(s2)).logpdf(z).sum() + np.log(s2_density(s2)) + t

    grid = np.linspace(-12, 6, 4001)
    peak = max(log_integrand(t) for t in grid[::40])
    value, _ = integrate.quad(lambda t: np.exp(log_integrand(t) - peak), -12, 6, limit=400)
    return float(np.log(value) + peak)


@pytest.mark.parametrize("width", [1.0, 2.0])
def test_geo_effect_prior_is_the_hierarchy_with_the_spread_integrated_out(simulated, width):
    data, config = _data(simulated, geos=5)
    priors = {"saturation_beta": geo_effect_prior(width)}
    model = build_mmm(data, config.model_copy(update={"priors": priors})).model
    logp = model.compile_logp(vars=[model["saturation_beta_raw"]], sum=False)
    rng = np.random.default_rng(3)
    mu = np.array([-0.5, 0.3])
    z = mu[:, None] + rng.normal(0, 0.6, (2, 5))
    z[1, 2] += 2.5  # an outlying geo
    point = {**model.initial_point(), "saturation_beta_raw": z, "saturation_beta_raw_mu": mu}
    (ours,) = logp(point)
    expected = [_hierarchical_log_density(z[c], mu[c], width, GEO_SPREAD_SHAPE) for c in (0, 1)]
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    # Negative control: another spread prior (same mean of sigma^2) is another density.
    other = [_hierarchical_log_density(z[c], mu[c], width * np.sqrt(2), 3.0) for c in (0, 1)]
    assert np.abs(np.asarray(ours) - other).max() > 0.05


def test_geo_effect_prior_on_a_national_model_is_refused(simulated):
    data, config = _data(simulated, geos=0)
    with pytest.raises(ParameterError, match="geo"):
        build_mmm(
            data, config.model_copy(update={"priors": {"saturation_beta": geo_effect_prior()}})
        )


def test_national_model_is_not_pooled(simulated):
    data, config = _data(simulated, geos=0)
    assert not data.geo
    model = build_mmm(data, config).model
    national = _dims(model)
    assert national["saturation_beta"] == ("channel",)
    assert "saturation_beta_raw_mu" not in national
    assert "saturation_beta" in {rv.name for rv in model.free_RVs}  # sampled as it is


def test_prior_given_with_geo_dims_is_not_pooled(simulated):
    data, config = _data(simulated, geos=3)
    per_geo = {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}, "dims": ["geo", "channel"]}
    unpooled = config.model_copy(
        update={"priors": {"saturation_beta": per_geo, "saturation_kappa": {**per_geo}}}
    )
    model = build_mmm(data, unpooled).model
    dims = _dims(model)
    assert dims["saturation_beta"] == ("geo", "channel")
    assert dims["saturation_kappa"] == ("geo", "channel")
    assert "saturation_beta_raw_mu" not in dims
    assert "saturation_beta" in {rv.name for rv in model.free_RVs}
    assert dims["saturation_slope"] == ("channel",)  # not given: still shared


def test_vague_refit_of_a_geo_model_keeps_the_pooling_with_wider_hyperpriors(simulated):
    data, config = _data(simulated, geos=3)
    model = build_mmm(data, vague_config(config, geo=True)).model
    dims = _dims(model)
    assert dims["saturation_beta"] == ("geo", "channel")
    assert dims["saturation_beta_raw"] == ("channel", "geo")
    for name in SHAPE:
        assert dims[name] == ("channel",), name
    assert "roi_prior" not in model.named_vars
    # Wider: the hyperprior on each channel's mean log effect has twice the default's sd.
    mu = np.asarray(pm.draw(model["saturation_beta_raw_mu"], draws=4000, random_seed=2))
    np.testing.assert_allclose(mu.std(), 2.0, rtol=0.1)


def test_geo_effect_prior_is_refused_for_other_parameters(simulated):
    data, config = _data(simulated, geos=3)
    wrong = config.model_copy(update={"priors": {"adstock_alpha": geo_effect_prior()}})
    with pytest.raises(ParameterError, match="geo effect size"):
        build_mmm(data, wrong)


def test_a_given_geo_effect_prior_leaves_organic_series_their_default(simulated):
    import dataclasses

    data, config = _data(simulated, geos=3)
    channel = data.channels[0]
    X = data.X.assign(organic_visits=data.X[channel] / data.X[channel].max())
    data = dataclasses.replace(data, X=X, organic=["organic_visits"])
    given = config.model_copy(update={"priors": {"saturation_beta": geo_effect_prior(0.5)}})
    model = build_mmm(data, given).model
    free = {rv.name for rv in model.free_RVs}
    assert {"saturation_beta_raw", "organic_saturation_beta"} <= free
    assert tuple(model.named_vars_to_dims["organic_saturation_beta"]) != ("geo", "channel")
