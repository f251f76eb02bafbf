"""A geo panel's media parameters are partially pooled across geos (``priors.GEO_POOLING``):
curve shape shared per channel, effect size per (geo, channel) around a channel mean.

Checked on the model PyMC-Marketing builds (built, not fitted) by the dims of its free
variables and by drawing the effect size from the prior: geo values of one channel must
share a centre (their log-spread within a channel is the channel's sigma, not the spread
of independent draws). Negative controls: a national model has no geo dims, and a prior the
user gives with dims ("geo", "channel") is not pooled.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pymc as pm

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.mmm.build import build_mmm
from attribution_analysis.mmm.panel import load_model_data
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
    return {rv.name: tuple(model.named_vars_to_dims.get(rv.name, ())) for rv in model.free_RVs}


def test_geo_model_shares_curve_shape_and_pools_effect_size(simulated):
    data, config = _data(simulated, geos=6)
    model = build_mmm(data, config).model
    dims = _dims(model)
    for name in SHAPE:
        assert dims[name] == ("channel",), name
    assert dims["saturation_beta"] == ("geo", "channel")
    assert dims["saturation_beta_mu"] == ("channel",)
    assert dims["saturation_beta_sigma"] == ("channel",)
    # Per-geo baselines stay per geo: pooling is for the media, not the geo's own level.
    assert dims["intercept_contribution"] == ("geo",)
    assert dims["y_sigma"] == ("geo",)

    # From the prior: geo effects of one channel centre on that channel's mu, spread by its
    # sigma. Given mu and sigma, log beta's geo deviations standardised by sigma are N(0, 1).
    draws = pm.draw(
        [
            model["saturation_beta"],
            model["saturation_beta_mu"],
            model["saturation_beta_sigma"],
        ],
        draws=400,
        random_seed=1,
    )
    beta, mu, sigma = (np.asarray(d) for d in draws)  # (400, G, C), (400, C), (400, C)
    assert beta.shape[1:] == (6, 2)
    z = (np.log(beta) - mu[:, None, :]) / sigma[:, None, :]
    np.testing.assert_allclose(z.mean(), 0.0, atol=0.05)
    np.testing.assert_allclose(z.std(), 1.0, atol=0.05)


def test_national_model_is_not_pooled(simulated):
    data, config = _data(simulated, geos=0)
    assert not data.geo
    national = _dims(build_mmm(data, config).model)
    assert national["saturation_beta"] == ("channel",)
    assert "saturation_beta_mu" not in national


def test_prior_given_with_geo_dims_is_not_pooled(simulated):
    data, config = _data(simulated, geos=3)
    per_geo = {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}, "dims": ["geo", "channel"]}
    unpooled = config.model_copy(
        update={"priors": {"saturation_beta": per_geo, "saturation_kappa": {**per_geo}}}
    )
    dims = _dims(build_mmm(data, unpooled).model)
    assert dims["saturation_beta"] == ("geo", "channel")
    assert dims["saturation_kappa"] == ("geo", "channel")
    assert "saturation_beta_mu" not in dims
    assert dims["saturation_slope"] == ("channel",)  # not given: still shared


def test_vague_refit_of_a_geo_model_keeps_the_pooling_with_wider_hyperpriors(simulated):
    data, config = _data(simulated, geos=3)
    model = build_mmm(data, vague_config(config, geo=True)).model
    dims = _dims(model)
    assert dims["saturation_beta"] == ("geo", "channel")
    assert dims["saturation_beta_sigma"] == ("channel",)
    for name in SHAPE:
        assert dims[name] == ("channel",), name
    assert "roi_prior" not in model.named_vars
    # Wider: the hyperprior on each channel's mean log effect has twice the default's sd.
    mu = np.asarray(pm.draw(model["saturation_beta_mu"], draws=4000, random_seed=2))
    np.testing.assert_allclose(mu.std(), 2.0, rtol=0.1)


def test_non_centred_form_is_the_same_prior_on_the_effect(simulated):
    """The refit after a funnel's divergences samples the same model: the effect size drawn
    in the non-centred form has the centred form's distribution (two-sample KS per
    (geo, channel) on pooled draws). Negative control: the vague refit's wider hyperpriors
    (the same form) are told apart by the same test."""
    from scipy.stats import ks_2samp

    data, config = _data(simulated, geos=3)
    centred = build_mmm(data, config).model
    non_centred = build_mmm(data, config, geo_centred=False).model
    dims = _dims(non_centred)
    assert "saturation_beta" not in dims  # a deterministic of the offset, not sampled itself
    assert dims["saturation_beta_raw_offset"] == ("geo", "channel")
    assert dims["saturation_beta_raw_sigma"] == ("channel",)
    for name in SHAPE:
        assert dims[name] == ("channel",), name

    def log_effect(model, seed: int) -> np.ndarray:
        return np.log(np.asarray(pm.draw(model["saturation_beta"], draws=3000, random_seed=seed)))

    same = ks_2samp(log_effect(centred, 3).ravel(), log_effect(non_centred, 4).ravel())
    assert same.pvalue > 0.01, same
    wider = build_mmm(data, vague_config(config, geo=True)).model
    differs = ks_2samp(log_effect(centred, 3).ravel(), log_effect(wider, 5).ravel())
    assert differs.pvalue < 1e-6, differs


def test_vague_refit_keeps_the_fits_form(simulated):
    data, config = _data(simulated, geos=3)
    dims = _dims(build_mmm(data, vague_config(config, geo=True, geo_centred=False)).model)
    assert "saturation_beta_raw_offset" in dims
    assert "saturation_beta_raw_offset" not in _dims(
        build_mmm(data, vague_config(config, geo=True)).model
    )


def test_only_a_pooled_geo_fit_that_diverged_is_refitted_non_centred(simulated):
    from attribution_analysis.mmm.fit import _funnel_suspected

    geo, _ = _data(simulated, geos=3)
    national = dataclasses.replace(geo, geo=False)  # only the flag is read
    params = FitMMMParams()
    diverged = {"divergences": 13, "draws": 12_000}  # the gate allows 12 in 12,000
    assert _funnel_suspected(geo, params, diverged)
    assert not _funnel_suspected(geo, params, {"divergences": 12, "draws": 12_000})
    assert not _funnel_suspected(national, params, diverged)
    given = {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}, "dims": ["geo", "channel"]}
    own = params.model_copy(
        update={"config": params.config.model_copy(update={"priors": {"saturation_beta": given}})}
    )
    assert not _funnel_suspected(geo, own, diverged)
