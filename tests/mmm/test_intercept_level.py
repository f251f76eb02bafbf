"""The level parametrisation (``mmm/intercept.py``) is a change of variables, not a new model.

Checked against the model PyMC-Marketing builds itself (``intercept_sampled_as='intercept'``)
at a random parameter point, mapped by hand: level = intercept + mean over weeks (and over
geos where one intercept serves them all) of the summed channel contributions, computed here
from the plain model's own deterministic. Three models: national (simulated, conversions);
a geo panel with a revenue outcome (a Meridian-layout table, so the ROI prior's potential
goes through the rewrite too), its intercept per geo; the same panel with one intercept
prior for every geo.
- the likelihood is the same to rounding, and the whole log-density differs by exactly the
  intercept prior's density moved from the intercept to the level (SciPy's);
- the derived intercept is the plain model's intercept;
- new spend (what prediction sets) moves the channels' contributions but not the intercept.
Negative controls: the level left unshifted changes the likelihood; the channel
contributions do move with the new spend (the data change took effect).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.importing import ImportDataParams
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig
from attribution_analysis.mmm.fit import prepare
from attribution_analysis.mmm.intercept import LEVEL
from attribution_analysis.mmm.roi_prior import POTENTIAL
from attribution_analysis.steps import execute, step
from attribution_analysis.workspace import Workspace
from tests.data import wide_tables

INTERCEPT = "intercept_contribution"


def _evaluate(model, outs, point):
    """The given variables (graphs of random variables) at ``point`` (value variables)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_values = model.replace_rvs_by_values([out.values for out in outs])
        function = model.compile_fn(on_values, inputs=model.value_vars, on_unused_input="ignore")
    return [np.asarray(v) for v in function(point)]


def _loglik(model, point) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(model.compile_logp(vars=model.observed_RVs)(point))


ONE_INTERCEPT = {"intercept": {"dist": "Normal", "kwargs": {"mu": 0.0, "sigma": 2.0}}}


@pytest.fixture(scope="module")
def revenue_geo_panel(tmp_path_factory) -> Workspace:
    """A Meridian-layout geo table (not the project's simulator), its outcome revenue."""
    ws = Workspace.create(tmp_path_factory.mktemp("meridian") / "ws")
    content = wide_tables.meridian_geo()
    roles = execute(step("import_data"), ws, ImportDataParams(content=content))["roles"]
    roles["target_kind"] = "revenue"
    params = ImportDataParams(content=content, dry_run=False, roles=roles, country=None)
    execute(step("import_data"), ws, params)
    validate_data(ws)
    return ws


@pytest.fixture(scope="module", params=["national", "geo", "geo_one_intercept"])
def models(request, fitted_root, revenue_geo_panel):
    if request.param == "national":
        ws, priors = Workspace.open(fitted_root), {}
    else:
        ws = revenue_geo_panel
        priors = ONE_INTERCEPT if request.param == "geo_one_intercept" else {}
    plain_config = MMMConfig(intercept_sampled_as="intercept", priors=priors)
    _, plain, _ = prepare(ws, FitMMMParams(config=plain_config))
    _, level, _ = prepare(ws, FitMMMParams(config=MMMConfig(priors=priors)))
    if request.param != "national":
        # The ROI prior's potential is in both, and kept by the rewrite.
        assert POTENTIAL in {p.name for p in plain.model.potentials}
        assert POTENTIAL in {p.name for p in level.model.potentials}
    return plain.model, level.model, level.model_config["intercept"]


@pytest.fixture(scope="module")
def points(models):
    plain, _, _ = models
    rng = np.random.default_rng(11)
    point = {
        name: value + rng.normal(0, 0.3, size=np.shape(value))
        for name, value in plain.initial_point(random_seed=3).items()
    }
    (contribution,) = _evaluate(plain, [plain["channel_contribution"]], point)
    dims = list(plain.named_vars_to_dims["channel_contribution"])
    kept = list(plain.named_vars_to_dims.get(INTERCEPT) or ())
    summed = contribution.sum(axis=dims.index("channel"))
    dims.remove("channel")
    media_mean = summed.mean(axis=tuple(i for i, d in enumerate(dims) if d not in kept))
    assert np.shape(media_mean) == np.shape(point[INTERCEPT])
    level_point = {k: v for k, v in point.items() if k != INTERCEPT}
    level_point[LEVEL] = point[INTERCEPT] + media_mean
    return point, level_point


def test_only_the_intercepts_prior_moves_to_the_level(models, points):
    plain, level, prior = models
    point, level_point = points
    assert INTERCEPT in {v.name for v in plain.free_RVs}
    assert INTERCEPT in {v.name for v in level.deterministics}
    assert LEVEL in {v.name for v in level.free_RVs}

    np.testing.assert_allclose(_loglik(level, level_point), _loglik(plain, point), rtol=1e-10)
    # The whole density: the same but for the intercept's prior, now stated on the level.
    assert prior.distribution == "Normal"
    mu, sigma = prior.parameters.get("mu", 0.0), prior.parameters["sigma"]
    moved = np.sum(
        stats.norm(mu, sigma).logpdf(level_point[LEVEL])
        - stats.norm(mu, sigma).logpdf(point[INTERCEPT])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        difference = level.compile_logp()(level_point) - plain.compile_logp()(point)
    np.testing.assert_allclose(difference, moved, rtol=1e-8, atol=1e-8)
    (derived,) = _evaluate(level, [level[INTERCEPT]], level_point)
    np.testing.assert_allclose(derived, point[INTERCEPT], rtol=1e-10)

    # Negative control: the level taken as the intercept itself is another likelihood.
    unshifted = {**level_point, LEVEL: point[INTERCEPT]}
    assert abs(_loglik(level, unshifted) - _loglik(plain, point)) > 1.0


def test_new_spend_moves_the_channels_but_not_the_intercept(models, points):
    _, level, _ = models
    _, level_point = points
    spend = level["channel_data"]
    original = spend.get_value()
    before = _evaluate(level, [level[INTERCEPT], level["channel_contribution"]], level_point)
    spend.set_value(original * 2.0)
    try:
        after = _evaluate(level, [level[INTERCEPT], level["channel_contribution"]], level_point)
    finally:
        spend.set_value(original)
    np.testing.assert_allclose(after[0], before[0], rtol=1e-12)
    # Negative control: the new spend did reach the model.
    assert not np.allclose(after[1], before[1])
