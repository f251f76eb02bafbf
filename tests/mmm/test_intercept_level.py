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
- new spend (what prediction sets) moves the channels' contributions but not the intercept;
- the model the sampler compiles (``sampled_model``) has the same log-density and gradient,
  and the level's adstock pass merged with the likelihood's (two convolutions fewer).
Negative controls: the level left unshifted changes the likelihood; the channel
contributions do move with the new spend (the data change took effect); spends that differ
are not merged; a model without the level is compiled as built.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytest
from pytensor.compile.mode import Mode
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.traversal import graph_inputs
from scipy import stats

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.importing import ImportDataParams
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig
from attribution_analysis.mmm.fit import prepare
from attribution_analysis.mmm.intercept import LEVEL, LEVEL_SPEND, sampled_model
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


# PyTensor's full rewrites (what nutpie's compile starts from), evaluated by Python: no
# Numba compile, a few seconds less per model.
UNCOMPILED = Mode(linker="py", optimizer="fast_run")


def _density(model, point) -> tuple[dict[str, np.ndarray], int]:
    """The log-density and its gradient by value variable at ``point`` (the order of a
    model's variables may differ after ``pm.do``), and the adstock convolutions left in
    that graph after PyTensor's rewrites."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logp = model.logp()
        outs = [logp, *pytensor.grad(logp, model.value_vars)]
        function = model.compile_fn(
            outs, inputs=model.value_vars, on_unused_input="ignore", mode=UNCOMPILED
        )
    logp_value, *grads = function(point)
    names = ["logp", *(v.name for v in model.value_vars)]
    values = dict(zip(names, map(np.asarray, [logp_value, *grads]), strict=True))
    nodes = function.f.maker.fgraph.apply_nodes
    return values, sum("Convolve1d" in str(node.op) for node in nodes)


def test_the_sampled_model_computes_the_curves_once_and_keeps_the_density(models, points):
    _, level, _ = models
    _, level_point = points
    view = sampled_model(level)
    assert view is not level
    read = {v.name for v in graph_inputs([view.logp()]) if isinstance(v, SharedVariable)}
    assert "channel_data" in read and LEVEL_SPEND not in read
    (density, convolutions), (view_density, view_convolutions) = (
        _density(level, level_point),
        _density(view, level_point),
    )
    assert view_density.keys() == density.keys()
    for name, value in density.items():
        np.testing.assert_allclose(view_density[name], value, rtol=1e-10, atol=1e-12)
    # The level's pass over the channels merged with the likelihood's: forward and backward
    # adstock of the level are gone (the convolutions counted are the compiled graph's).
    assert view_convolutions == convolutions - 2

    # Negative control: spends that differ (not a fit's own weeks) are left as two inputs.
    original = level[LEVEL_SPEND].get_value()
    level[LEVEL_SPEND].set_value(original * 2.0)
    try:
        assert sampled_model(level) is level
    finally:
        level[LEVEL_SPEND].set_value(original)


def test_a_model_without_the_level_is_sampled_as_built(models):
    plain, _, _ = models
    assert sampled_model(plain) is plain


def test_the_compile_cache_keeps_a_merged_and_an_unmerged_model_apart(models, monkeypatch):
    """The cache's logic, with nutpie's compile replaced by a stub that records the inputs
    of the model it was given (the compile itself is covered by the fits' tests)."""
    import nutpie

    from attribution_analysis.mmm.sampling import CompiledModels

    class Compiled:
        def __init__(self, model) -> None:
            self.shared_var_keys = {
                v: i
                for i, v in enumerate(graph_inputs([model.logp()]))
                if isinstance(v, SharedVariable)
            }
            self.data: dict | None = None

        def with_data(self, **data):
            self.data = data
            return self

    compiles: list[Compiled] = []
    monkeypatch.setattr(
        nutpie,
        "compile_pymc_model",
        lambda model, **_: compiles.append(Compiled(model)) or compiles[-1],
    )
    _, level, _ = models
    free = [v.name for v in level.free_RVs]
    cache = CompiledModels()
    first, reused = cache.get_or_compile("structure", level, free)
    assert not reused and LEVEL_SPEND not in {v.name for v in first.shared_var_keys}
    again, reused = cache.get_or_compile("structure", level, free)
    assert reused and len(compiles) == 1
    assert "channel_data" in again.data and LEVEL_SPEND not in again.data
    # Spends that differ are another structure: compiled apart, never fed to the merged one.
    original = level[LEVEL_SPEND].get_value()
    level[LEVEL_SPEND].set_value(original * 2.0)
    try:
        other, reused = cache.get_or_compile("structure", level, free)
    finally:
        level[LEVEL_SPEND].set_value(original)
    assert not reused and len(compiles) == 2
    assert LEVEL_SPEND in {v.name for v in other.shared_var_keys}
