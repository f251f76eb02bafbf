"""A geo panel is scaled within each geo (``build.GEO_SCALING``), so that the curve priors,
stated on scaled values, mean the same thing in a small geo as in a large one.

Checked on the model PyMC-Marketing builds (built, not fitted: the scales are fixed at
build time) against maxima computed here with pandas from the model's input table, on a
panel where one geo is a tenth of the others and one (geo, channel) cell never spent. The
negative control: under a panel-wide maximum the small geo's largest outcome would sit at
about a tenth of the scale, and the check that every geo peaks at 1 would fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pytensor.graph.rewriting.utils import rewrite_graph

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.mmm.build import build_mmm
from attribution_analysis.mmm.panel import load_model_data
from attribution_analysis.workspace import Workspace

SMALL = 0.1  # the small geo's size against the others


def _panel(simulated):
    root = simulated(kind="mmm", seed=4, weeks=60, channels=2, geos=3)
    ws = Workspace.open(root)
    validate_data(ws)
    config = FitMMMParams().config
    data = load_model_data(
        ws, config.target, config.use_trend, config.use_holidays, config.use_external_factors
    )
    geos = sorted(data.X["geo"].astype(str).unique())
    small, dark = geos[0], geos[-1]
    in_small = (data.X["geo"].astype(str) == small).to_numpy()
    data.X.loc[in_small, data.channels] *= SMALL
    data.y.loc[in_small] *= SMALL
    data.X.loc[data.X["geo"].astype(str) == dark, data.channels[0]] = 0.0
    return data, config, small, dark


def test_outcome_and_spend_are_scaled_by_their_maximum_within_each_geo(simulated):
    data, config, small, _ = _panel(simulated)
    mmm = build_mmm(data, config)
    model = mmm.model
    geos = [str(g) for g in model.coords["geo"]]
    channels = list(model.coords["channel"])

    frame = data.X.assign(geo=data.X["geo"].astype(str), outcome=data.y.to_numpy())
    expected_target = frame.groupby("geo")["outcome"].max().reindex(geos).to_numpy()
    expected_channel = frame.groupby("geo")[channels].max().reindex(geos).to_numpy()
    target_scale = np.asarray(model["target_scale"].get_value(), dtype=float)
    channel_scale = np.asarray(model["channel_scale"].get_value(), dtype=float)
    assert model.named_vars_to_dims["target_scale"] == ("geo",)
    np.testing.assert_allclose(target_scale, expected_target)
    np.testing.assert_allclose(channel_scale, expected_channel)

    # What the priors see: each geo's largest outcome and spend at 1, the small geo included.
    # (The library's own scaled outcome, as the likelihood observes it: date x geo.)
    scaled = rewrite_graph(mmm.target_data_scaled.values, include=("lower_xtensor",)).eval()
    assert scaled.shape == (len(data.y) // len(geos), len(geos))
    np.testing.assert_allclose(scaled.max(axis=0), 1.0)
    # Negative control: one panel-wide maximum would leave the small geo near SMALL.
    panel_wide = frame.loc[frame["geo"] == small, "outcome"].max() / frame["outcome"].max()
    assert panel_wide < 2 * SMALL


def test_a_cell_never_spent_on_gives_zeros_and_a_finite_model(simulated):
    """Its maximum is 0: the model must see zeros there (not 0/0) and stay finite."""
    data, config, _, dark = _panel(simulated)
    model = build_mmm(data, config).model
    geos = [str(g) for g in model.coords["geo"]]
    channel_scale = np.asarray(model["channel_scale"].get_value(), dtype=float)
    assert channel_scale[geos.index(dark), 0] == 0.0

    point = model.initial_point()
    logp = model.compile_logp()(point)
    assert np.isfinite(logp)
    dims = model.named_vars_to_dims["channel_contribution"]
    assert dims == ("date", "geo", "channel")
    evaluate = model.compile_fn(
        model["channel_contribution"], inputs=model.value_vars, on_unused_input="ignore"
    )
    drawn = evaluate(point)
    drawn = pd.DataFrame(np.asarray(drawn).sum(axis=0), index=geos)
    assert np.isfinite(drawn.to_numpy()).all()
    assert drawn.loc[dark].iloc[0] == 0.0
    assert (drawn.drop(index=dark).to_numpy() > 0).all()
