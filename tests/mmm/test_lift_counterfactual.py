"""Lift tests read through the model's own counterfactual (mmm/calibration.py).

The likelihood term compares each observed lift with the model's lift for that test: the
channel's contribution with the panel's spend minus the same with the channel dark in the
test's window (and geo). Ground truth here is an independent route through PyMC-Marketing's
own forward pass: the compiled ``channel_contribution`` evaluated at the same parameter
draws twice, once on the panel's spend and once after ``set_value`` of the spend with the
test's cells zeroed (built from the test's dates, not from the code's window helper). A wrong
window, channel, geo or scale fails it; the negative control checks that the comparison can
tell a one-week shift of the window apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.mmm.calibration import COUNTERFACTUAL_LIKELIHOOD, LIFT_FILE
from attribution_analysis.mmm.fit import prepare
from attribution_analysis.workspace import Workspace


def _model_and_tests(root: Path):
    ws = Workspace.open(root)
    validate_data(ws)
    _, mmm, _ = prepare(ws, FitMMMParams(calibrate=True))
    return mmm.model, json.loads((root / LIFT_FILE).read_text())


def _lifts_both_ways(model, tests, shift_weeks: int = 0):
    """(the likelihood's lift per test, the forward pass's lift per test) at 5 prior draws."""
    import pymc as pm
    import pytensor
    from pytensor.graph.replace import graph_replace

    observed = model[COUNTERFACTUAL_LIKELIHOOD]
    mu = observed.owner.inputs[2]  # (rng, size, mu, sigma) of the normal term
    names = [rv.name for rv in model.free_RVs]
    rvs = [model[n] for n in names]
    fresh = [rv.type() for rv in rvs]
    to_fresh = dict(zip(rvs, fresh, strict=True))
    likelihood_lift = pytensor.function(
        fresh, graph_replace(mu, to_fresh, strict=False), on_unused_input="ignore"
    )
    contribution = pytensor.function(
        fresh,
        graph_replace(model["channel_contribution"].values, to_fresh, strict=False),
        on_unused_input="ignore",
    )
    spend = model["channel_data"]
    factual = spend.get_value().copy()
    dims = list(model.named_vars_to_dims["channel_data"])
    dates = pd.to_datetime(list(model.coords["date"]))
    scale = np.asarray(model["target_scale"].get_value())
    prior = pm.sample_prior_predictive(5, model=model, random_seed=3)["prior"].to_dataset()
    ours, forward = [], []
    for draw in range(5):
        values = [prior[n].values[0, draw] for n in names]
        ours.append(likelihood_lift(*values))
        with_spend = contribution(*values)
        lifts = []
        for test in tests:
            start = pd.Timestamp(test["start"]) + pd.Timedelta(weeks=shift_weeks)
            end = pd.Timestamp(test["end"]) + pd.Timedelta(weeks=shift_weeks)
            dark = factual.copy()
            cell = [slice(None)] * len(dims)
            cell[dims.index("date")] = np.flatnonzero((dates >= start) & (dates <= end))
            cell[dims.index("channel")] = list(model.coords["channel"]).index(test["channel"])
            if "geo" in dims:
                cell[dims.index("geo")] = list(model.coords["geo"]).index(test["geo"])
            dark[tuple(cell)] = 0.0
            spend.set_value(dark)
            without = contribution(*values)
            spend.set_value(factual)
            # The outcome's scale: one number, or one per geo on (date, geo, channel).
            per_geo = scale[None, :, None] if "geo" in dims else scale
            lifts.append(((with_spend - without) * per_geo).sum())
        forward.append(lifts)
    return np.array(ours), np.array(forward)


def test_the_likelihood_reads_a_national_test_as_the_models_own_counterfactual(simulated):
    root = simulated(kind="mmm", seed=4, weeks=60, channels=3, lift_tests=2)
    model, tests = _model_and_tests(root)
    assert "lift_measurements" not in model.named_vars  # no steady-state term for these
    ours, forward = _lifts_both_ways(model, tests)
    assert np.all(forward > 0)
    np.testing.assert_allclose(ours, forward, rtol=1e-9)
    # Negative control: the same comparison, the window one week later, must disagree.
    _, shifted = _lifts_both_ways(model, tests, shift_weeks=1)
    assert not np.allclose(ours, shifted, rtol=1e-3)


def test_a_geo_test_goes_dark_in_its_own_geo_only(simulated):
    root = simulated(kind="mmm", seed=5, weeks=60, channels=2, geos=3, lift_tests=2)
    model, tests = _model_and_tests(root)
    assert {t["geo"] for t in tests} <= set(model.coords["geo"])
    ours, forward = _lifts_both_ways(model, tests)
    np.testing.assert_allclose(ours, forward, rtol=1e-9)


def test_a_test_on_spend_the_panel_lacks_keeps_the_steady_state_reading(simulated):
    """A test whose window holds no spend of its channel in the panel (its spend given) has
    no counterfactual in the data: PyMC-Marketing's steady-state term reads it instead."""
    root = simulated(kind="mmm", seed=4, weeks=60, channels=3, lift_tests=2)
    ws = Workspace.open(root)
    validate_data(ws)
    tests = json.loads((root / LIFT_FILE).read_text())
    spend = pd.read_csv(root / "analysis" / "prepared_panel.csv")
    channel = tests[0]["channel"]
    idle = spend.loc[spend[f"spend_{channel}"] == 0, "date"]
    if idle.empty:
        pytest.skip("the simulated channel spends every week")
    day = str(pd.Timestamp(idle.iloc[0]).date())
    tests[0].update(start=day, end=day, spend=1000.0, lift=100.0, ci_lower=50.0, ci_upper=150.0)
    (root / LIFT_FILE).write_text(json.dumps(tests))
    model, _ = _model_and_tests(root)
    assert "lift_measurements" in model.named_vars
    assert model[COUNTERFACTUAL_LIKELIHOOD].owner.inputs[2].type.shape == (1,)


def test_the_steady_state_reading_sends_every_test_to_the_librarys_term(simulated):
    """``lift_reading="steady_state"``: every test, spend in the panel or not, goes to
    PyMC-Marketing's ``add_lift_test_measurements`` and none to the counterfactual; the
    reading is part of the fit key, so a fit made under one is never reused for the other
    (negative control: the default reading's key is the one recorded before the option)."""
    from attribution_analysis.mmm.build import fit_settings

    root = simulated(kind="mmm", seed=4, weeks=60, channels=3, lift_tests=2)
    ws = Workspace.open(root)
    validate_data(ws)
    params = FitMMMParams(calibrate=True, lift_reading="steady_state")
    _, mmm, hashes = prepare(ws, params)
    assert COUNTERFACTUAL_LIKELIHOOD not in mmm.model.named_vars
    term = mmm.model["lift_measurements"]
    assert np.shape(mmm.model.rvs_to_values[term].data) == (2,)  # both tests, one term
    default = fit_settings(FitMMMParams(calibrate=True), hashes)
    assert fit_settings(params, hashes) != default
    assert default["lift_reading"] == "model_counterfactual_v1"


def test_the_vague_prior_refit_keeps_the_lift_tests(simulated):
    """The identification verdict compares the fit with a refit under vague priors; lift
    tests are data, so the refit must carry them (else a channel a test pinned down reads as
    prior-driven). Negative control: a fit without tests gives a refit without the term."""
    from attribution_analysis.mmm import sensitivity
    from attribution_analysis.mmm.calibration import read_lift_tests
    from attribution_analysis.mmm.loaded import FittedModel

    root = simulated(kind="mmm", seed=4, weeks=60, channels=3, lift_tests=2)
    ws = Workspace.open(root)
    validate_data(ws)
    params = FitMMMParams(calibrate=True)
    data, mmm, hashes = prepare(ws, params)
    tests = read_lift_tests(ws)[0]
    built = []
    for lift_tests in (tests, []):
        fitted = FittedModel(mmm, data, None, params, {}, hashes, lift_tests)
        # The model compare_with_vague_priors samples (and mmm/refits.py compiles ahead).
        built.append(set(sensitivity.vague_model(fitted).model.named_vars))
    assert COUNTERFACTUAL_LIKELIHOOD in built[0]
    assert COUNTERFACTUAL_LIKELIHOOD not in built[1]


def test_two_tests_of_one_channel_each_get_their_own_counterfactual(simulated):
    """Tests on different channels share one counterfactual (channels do not interact); two
    on the same channel must not: each is read with only its own weeks dark."""
    root = simulated(kind="mmm", seed=4, weeks=60, channels=3, lift_tests=2)
    tests = json.loads((root / LIFT_FILE).read_text())
    again = dict(tests[0])
    again["start"] = str((pd.Timestamp(tests[0]["start"]) - pd.Timedelta(weeks=2)).date())
    again["end"] = str((pd.Timestamp(tests[0]["end"]) - pd.Timedelta(weeks=2)).date())
    (root / LIFT_FILE).write_text(json.dumps([*tests, again]))
    model, tests = _model_and_tests(root)
    ours, forward = _lifts_both_ways(model, tests)
    np.testing.assert_allclose(ours, forward, rtol=1e-9)
