"""MMM -> MTA: each contribution draw re-split with the fitted shares."""

from __future__ import annotations

import numpy as np
import pytest

from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.problem import problem_from_arrays
from attribution_analysis.allocation.topdown import split_draws
from attribution_analysis.errors import ParameterError
from tests.allocation.conftest import draw_problem


def _two_channels():
    """Two independent drawn problems side by side: channels share no campaign."""
    a, b = draw_problem(11, n_groups=100), draw_problem(12, n_groups=80)
    pa, pb = a.problem, b.problem
    problem = problem_from_arrays(
        np.concatenate([pa.totals, pb.totals]),
        np.concatenate([pa.group, pb.group + pa.n_groups]),
        np.concatenate([pa.entity, pb.entity + pa.n_entities]),
        np.concatenate([pa.exposure, pb.exposure]),
        pa.n_entities + pb.n_entities,
    )
    channel = np.repeat(["tv", "search"], [pa.n_groups, pb.n_groups])
    return problem, channel


def test_every_draw_adds_up_to_its_channel_total_and_intervals_bracket_the_point():
    p, channel = _two_channels()
    fit = fit_em(p)
    rng = np.random.default_rng(0)
    draws = p.totals[None, :] * rng.gamma(30.0, 1 / 30.0, size=(400, p.n_groups))
    result = split_draws(p, fit.share, draws, channel)
    assert result.max_block_error < 1e-12
    tv_entities = np.unique(p.entity[np.isin(p.group, np.flatnonzero(channel == "tv"))])
    assert np.allclose(
        result.entity_draws[:, tv_entities].sum(axis=1),
        draws[:, channel == "tv"].sum(axis=1),
        rtol=1e-12,
    )
    point = np.bincount(p.entity, fit.allocated, p.n_entities)
    inside = (result.entity_lower <= point) & (point <= result.entity_upper)
    assert inside.mean() > 0.9
    assert np.all(result.lower <= result.upper)


def test_draws_with_the_wrong_shape_or_negative_values_are_refused():
    p = draw_problem(12, n_groups=50).problem
    share = fit_em(p).share
    with pytest.raises(ParameterError, match="draws"):
        split_draws(p, share, np.ones((10, p.n_groups + 1)))
    with pytest.raises(ParameterError, match="non-negative"):
        split_draws(p, share, -np.ones((10, p.n_groups)))
