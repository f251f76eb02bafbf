"""A geo panel's media parameters are partially pooled across geos (``priors.GEO_POOLING``):
curve shape shared per channel, effect size per (geo, channel) around a channel mean.

Checked on the model PyMC-Marketing builds (built, not fitted) by the dims of its free
variables and by drawing the effect size from the prior: geo values of one channel must
share a centre (their log-spread within a channel is the channel's sigma, not the spread
of independent draws). Negative controls: a national model has no geo dims, and a prior the
user gives with dims ("geo", "channel") is not pooled.
"""

from __future__ import annotations

import numpy as np
import pymc as pm

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.mmm.build import build_mmm
from attribution_analysis.mmm.intercept import LEVEL
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
    """Dims of the sampled and derived variables (the effect size is derived: non-centred)."""
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
    # Sampled non-centred: a standard-normal offset per (geo, channel), the effect derived.
    free = {rv.name for rv in model.free_RVs}
    assert "saturation_beta" not in free and "saturation_beta_raw_offset" in free
    assert dims["saturation_beta_raw_mu"] == ("channel",)
    assert dims["saturation_beta_raw_sigma"] == ("channel",)
    # Per-geo baselines stay per geo: pooling is for the media, not the geo's own level.
    # (The sampler moves each geo's mean level; the intercept is derived from it per geo.)
    assert dims[LEVEL] == ("geo",)
    assert tuple(model.named_vars_to_dims["intercept_contribution"]) == ("geo",)
    assert dims["y_sigma"] == ("geo",)

    # From the prior: geo effects of one channel centre on that channel's mu, spread by its
    # sigma. Given mu and sigma, log beta's geo deviations standardised by sigma are N(0, 1).
    draws = pm.draw(
        [
            model["saturation_beta"],
            model["saturation_beta_raw_mu"],
            model["saturation_beta_raw_sigma"],
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
    assert dims["saturation_beta_raw_sigma"] == ("channel",)
    for name in SHAPE:
        assert dims[name] == ("channel",), name
    assert "roi_prior" not in model.named_vars
    # Wider: the hyperprior on each channel's mean log effect has twice the default's sd.
    mu = np.asarray(pm.draw(model["saturation_beta_raw_mu"], draws=4000, random_seed=2))
    np.testing.assert_allclose(mu.std(), 2.0, rtol=0.1)
