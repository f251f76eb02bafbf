"""The stored-fit reader (``mmm.stored``) against the model PyMC-Marketing builds: the same
scales, geo order and adstock, without importing PyMC to get them. (The curves themselves are
checked against the library's graph in ``test_optimize_fitted_model``.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.mmm.loaded import open_fit
from attribution_analysis.mmm.panel import load_model_data
from attribution_analysis.mmm.stored import StoredFit, open_stored_fit
from attribution_analysis.workspace import Workspace


def _model_value(model, name: str) -> np.ndarray:
    return np.asarray(model[name].get_value(), dtype=float)


def test_scales_equal_the_fitted_model(validated):
    """National fit: channel and target scales as PyMC-Marketing computed them."""
    ws = Workspace.open(validated)
    stored = open_stored_fit(ws)
    model = open_fit(ws).mmm.model
    np.testing.assert_allclose(stored.channel_scale()[0], _model_value(model, "channel_scale"))
    np.testing.assert_allclose(stored.target_scale(), _model_value(model, "target_scale"))
    assert stored.geos == ["national"]
    assert stored.input_hashes == open_fit(ws).input_hashes


def test_groups_read_as_xarray_reads_them(validated):
    """The direct reader returns what ``xarray.open_dataset`` decodes, group by group (dates
    included: the observed data's and the decomposition's), values, dtypes and labels."""
    import xarray as xr

    stored = open_stored_fit(Workspace.open(validated))
    for group in ("posterior", "sample_stats", "observed_data", "decomposition_v1"):
        ours = stored.group(group)
        with xr.open_dataset(stored.path, engine="h5netcdf", group=group) as reference:
            reference = reference.load()
        xr.testing.assert_equal(ours, reference)
        for name, values in ours.variables.items():
            assert values.dtype == reference[name].dtype, (group, name)


def test_arrays_equal_what_xarray_reads(validated):
    """``StoredFit.arrays`` (NumPy, for the optimizer) against ``xarray.open_dataset``: every
    variable's values, dtype and dims, every dimension's labels and length; a variable's
    channels taken by label in a new order equal xarray's ``sel``. Groups whose only encoded
    variable is a date axis are read without xarray (``_plain_arrays`` answers); the
    sampler's statistics (booleans stored as integers) still go through xarray."""
    import xarray as xr

    stored = open_stored_fit(Workspace.open(validated))
    for group in ("posterior", "sample_stats", "observed_data", "decomposition_v1"):
        if group in ("observed_data", "decomposition_v1"):  # date axes, read without xarray
            assert stored._plain_arrays(group, None) is not None, group
        ours = stored.arrays(group)
        with xr.open_dataset(stored.path, engine="h5netcdf", group=group) as reference:
            reference = reference.load()
        assert set(ours.values) == set(reference.data_vars)
        for name, values in ours.values.items():
            np.testing.assert_array_equal(values, reference[name].to_numpy())
            assert values.dtype == reference[name].dtype, (group, name)
            assert ours.dims[name] == reference[name].dims, (group, name)
        for dim, labels in ours.coords.items():
            np.testing.assert_array_equal(labels, reference[dim].to_numpy())
            assert labels.dtype == reference[dim].dtype, (group, dim)
        assert ours.sizes == dict(reference.sizes)
    posterior = stored.arrays("posterior")
    channels = list(reversed(posterior.coords["channel"].tolist()))
    with xr.open_dataset(stored.path, engine="h5netcdf", group="posterior") as reference:
        expected = reference["saturation_beta"].sel(channel=channels).to_numpy()
    np.testing.assert_array_equal(posterior.select("saturation_beta", channel=channels), expected)


def test_geo_scales_and_order_equal_the_built_model(simulated):
    """A geo panel with a channel dark in one geo: the scales PyMC-Marketing's geo model
    uses (per geo: ``build.GEO_SCALING``), as (geo, channel) in its geo order.
    Built, not fitted: the scales and labels are fixed at build time."""
    from pymc_marketing.serialization import serialization

    from attribution_analysis.mmm.build import build_mmm

    root = simulated(kind="mmm", seed=4, weeks=60, channels=2, geos=3)
    ws = Workspace.open(root)
    validate_data(ws)
    config = FitMMMParams().config
    data = load_model_data(
        ws, config.target, config.use_trend, config.use_holidays, config.use_external_factors
    )
    dark_geo = sorted(data.X["geo"].unique())[-1]
    data.X.loc[data.X["geo"] == dark_geo, data.channels[0]] = 0.0
    mmm = build_mmm(data, config)
    attrs = {"scaling": json.loads(json.dumps(serialization.serialize(mmm.scaling)))}
    manifest = {"result": {"model_path": "unused", "method": "bayesian_nuts"}}
    stored = StoredFit(data, FitMMMParams(), manifest, {}, Path("unused"), attrs)

    model = mmm.model
    assert stored.geos == [str(g) for g in model.coords["geo"]]
    channel_scale, target_scale = stored.channel_scale(), stored.target_scale()
    assert channel_scale.shape == (3, 2) and target_scale.shape == (3,)
    expected = np.broadcast_to(_model_value(model, "channel_scale"), channel_scale.shape)
    np.testing.assert_allclose(channel_scale, expected)
    expected = np.broadcast_to(_model_value(model, "target_scale"), target_scale.shape)
    np.testing.assert_allclose(target_scale, expected)


def test_a_non_geometric_adstock_goes_through_the_library():
    """A Weibull adstock read back from its serialised form gives the library's weights."""
    from pymc_marketing.mmm import WeibullPDFAdstock
    from pymc_marketing.serialization import serialization

    from attribution_analysis.optimize.posterior import _lag_weights
    from attribution_analysis.optimize.response import library_adstock_weights

    rng = np.random.default_rng(2)
    params = {"lam": rng.uniform(0.5, 3, (4, 1, 2)), "k": rng.uniform(0.5, 3, (4, 1, 2))}
    adstock = WeibullPDFAdstock(l_max=8)
    spec = json.loads(json.dumps(serialization.serialize(adstock)))
    np.testing.assert_allclose(
        _lag_weights(spec, params), library_adstock_weights(adstock, params), rtol=1e-12
    )
