"""fit_mmm: a real NUTS fit, the cache, compiled-model reuse, calibration, bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.api import fit_mmm, simulate_workspace, validate_data
from attribution_analysis.contracts.mmm import FitMMMParams, SamplerSettings
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.errors import (
    DataValidationError,
    MissingInputError,
    ParameterError,
    WorkspaceError,
)
from attribution_analysis.mmm.loaded import open_fit
from attribution_analysis.mmm.sampling import COMPILED
from attribution_analysis.numerics import LLVM_OPT_LEVEL
from attribution_analysis.transforms import geometric_adstock, hill
from attribution_analysis.workspace import Workspace
from tests.mmm.conftest import FITTED

FAST = SamplerSettings(draws=300, tune=300)  # plumbing tests: not for the gates


def test_default_fit_is_stored_with_its_convergence_recomputed_from_the_draws(fitted):
    """For any posterior: the stored convergence summary is ArviZ's on the stored draws, and
    'for decisions' is exactly the gates' verdict on it."""
    manifest = json.loads((fitted / "analysis" / "mmm_fit.json").read_text())
    result = manifest["result"]
    assert result["method"] == "bayesian_nuts"
    assert (fitted / result["model_path"]).exists()
    from arviz_stats import ess, rhat

    posterior = open_fit(Workspace.open(fitted)).tree["posterior"].to_dataset()
    free = posterior[[n for n in posterior.data_vars if "date" not in posterior[n].dims]]
    conv = result["convergence"]
    assert conv["max_rhat"] == pytest.approx(float(rhat(free).to_array().max()), rel=1e-9)
    assert conv["min_ess_bulk"] == pytest.approx(
        float(ess(free, method="bulk").to_array().min()), rel=1e-9
    )
    gates = (
        conv["max_rhat"] < 1.05
        and conv["min_ess_bulk"] > 400
        and conv["divergences"] <= 0.001 * conv["draws"]
    )
    assert result["for_decisions"] is gates
    # The draws actually kept are recorded; a fit that stopped early stopped at the margin.
    assert result["draws_per_chain"] == posterior.sizes["draw"]
    assert conv["draws"] == posterior.sizes["draw"] * posterior.sizes["chain"]
    if result["stopped_at_gates"]:
        margin = FITTED.sampler.ess_margin
        assert result["draws_per_chain"] < FITTED.sampler.draws
        assert result["draws_per_chain"] % FITTED.sampler.check_every == 0
        assert conv["min_ess_bulk"] >= 400 * margin and conv["max_rhat"] < 1.05
    assert manifest["metadata"]["seed"] == FITTED.seed
    assert manifest["metadata"]["sampler"]["backend"] == "nutpie"
    assert manifest["metadata"]["extra"]["numba_fastmath"] is False
    expected_level = os.environ.get("NUMBA_OPT", str(LLVM_OPT_LEVEL))  # the user's, if set
    assert str(manifest["metadata"]["extra"]["llvm_opt_level"]) == expected_level


@pytest.mark.slow
def test_default_fit_passes_the_convergence_gates(fitted):
    result = json.loads((fitted / "analysis" / "mmm_fit.json").read_text())["result"]
    assert result["for_decisions"]
    assert result["convergence"]["max_rhat"] < 1.05
    assert result["convergence"]["min_ess_bulk"] > 400


@pytest.mark.parametrize(
    ("summary", "divergences_only"),
    [
        # ESS at three times the gate, R-hat fine, 22 divergences in 12,000 draws (issue 15).
        ({"max_rhat": 1.01, "min_ess_bulk": 1200.0, "divergences": 22, "draws": 12000}, True),
        # The same divergences with ESS short of the gate: more draws are needed too.
        ({"max_rhat": 1.01, "min_ess_bulk": 350.0, "divergences": 22, "draws": 12000}, False),
        ({"max_rhat": 1.08, "min_ess_bulk": 1200.0, "divergences": 22, "draws": 12000}, False),
        # Negative control: a fit that passes every gate fails on nothing.
        ({"max_rhat": 1.01, "min_ess_bulk": 1200.0, "divergences": 12, "draws": 12000}, False),
    ],
)
def test_only_a_failure_on_divergences_alone_keeps_the_draws(summary, divergences_only):
    from attribution_analysis.mmm.convergence import fails_on_divergences_only

    assert fails_on_divergences_only(summary) is divergences_only
    settings = SamplerSettings()
    retry = settings.for_retry(divergences_only=fails_on_divergences_only(summary))
    assert retry.target_accept == 0.99 > settings.target_accept
    if divergences_only:
        assert (retry.draws, retry.tune) == (settings.draws, settings.tune)
    else:
        assert (retry.draws, retry.tune) == (2 * settings.draws, 2 * settings.tune)
    # A second smaller step still halves the rejection rate, and stays below 1.
    assert SamplerSettings(target_accept=0.99).for_retry(True).target_accept == 0.995


def test_asking_for_the_same_fit_twice_costs_nothing(fitted):
    again = fit_mmm(Workspace.open(fitted), FITTED)
    # No sampling at all (a wall-clock bound would flake on a loaded machine).
    assert again.cached and again.sampling_seconds is None
    # Asked a third time, the manifest is left byte for byte: a rewrite (new run id) would
    # mark the diagnostics and everything computed from this model out of date.
    manifest = fitted / "analysis" / "mmm_fit.json"
    before = manifest.read_bytes()
    assert fit_mmm(Workspace.open(fitted), FITTED).cached
    assert manifest.read_bytes() == before


def test_the_model_is_the_simulators_data_generating_process(fitted):
    """With the true parameters, the library's channel contribution equals the DGP's."""
    fit = open_fit(Workspace.open(fitted))
    truth = json.loads((fitted / "truth" / "parameters.json").read_text())["channels"]
    model = fit.mmm.model
    import pymc as pm

    point = {}
    for name in ("adstock_alpha", "saturation_slope", "saturation_kappa", "saturation_beta"):
        point[name] = np.array(
            [
                truth[c][
                    {
                        "adstock_alpha": "adstock_alpha",
                        "saturation_slope": "hill_slope",
                        "saturation_kappa": "hill_kappa",
                        "saturation_beta": "beta",
                    }[name]
                ]
                for c in fit.data.channels
            ]
        )
    target_scale = float(model["target_scale"].get_value())
    point["saturation_beta"] = point["saturation_beta"] / target_scale
    posterior = fit.tree["posterior"].to_dataset().isel(chain=[0], draw=[0]).copy()
    for name, values in point.items():
        posterior[name] = posterior[name].copy(data=values.reshape(1, 1, -1))
    values = pm.compute_deterministics(
        posterior[[v.name for v in model.free_RVs]],
        model=model,
        var_names=["channel_contribution"],
        progressbar=False,
    )["channel_contribution"]
    library = values.isel(chain=0, draw=0).values * target_scale
    for c, channel in enumerate(fit.data.channels):
        spend = fit.data.X[channel].to_numpy()
        t = truth[channel]
        expected = t["beta"] * hill(
            geometric_adstock(spend / spend.max(), t["adstock_alpha"], t["l_max"]),
            t["hill_slope"],
            t["hill_kappa"],
        )
        np.testing.assert_allclose(library[:, c], expected, rtol=1e-6)


def test_a_compiled_model_reused_on_new_data_samples_the_new_posterior(simulated_root, tmp_path):
    roots = []
    for seed in (41, 42):
        root = tmp_path / f"ws{seed}"
        simulate_workspace(root, SimulationParams(kind="mmm", seed=seed, weeks=80, channels=2))
        validate_data(Workspace.open(root))
        roots.append(root)
    COMPILED.clear()
    params = FitMMMParams(sampler=FAST, retry=False, fallback_to_ridge=False)
    first = fit_mmm(Workspace.open(roots[0]), params)
    reused = fit_mmm(Workspace.open(roots[1]), params)
    assert not first.compile_reused and reused.compile_reused
    COMPILED.clear()
    fresh = fit_mmm(Workspace.open(roots[1]), params.model_copy(update={"use_cache": False}))
    assert not fresh.compile_reused

    def beta(root):
        tree = open_fit(Workspace.open(root)).tree
        return tree["posterior"]["saturation_beta"].to_dataset()["saturation_beta"]

    a, b = beta(roots[0]), beta(roots[1])
    b_fresh = open_fit(Workspace.open(roots[1])).tree  # the fresh fit replaced the manifest
    b_fresh = b_fresh["posterior"]["saturation_beta"].to_dataset()["saturation_beta"]
    # Reused and fresh compiles of the same data and seed give the same draws, bit for bit
    # (numerics.py: fastmath off), whatever the posterior...
    np.testing.assert_array_equal(b.values, b_fresh.values)
    # ...and differ from the first data set's posterior (the data really was swapped in).
    assert not np.allclose(a.mean(("chain", "draw")), b.mean(("chain", "draw")), rtol=0.05)


@pytest.mark.slow  # how far the posterior moves is a statistical property of the fit
def test_calibration_pulls_the_tested_channel_towards_the_lift_test(fitted):
    ws = Workspace.open(fitted)
    tests = json.loads((fitted / "analysis" / "incrementality_results.json").read_text())
    channel = tests[0]["channel"]
    fit = open_fit(ws)
    from attribution_analysis.mmm.posterior_contributions import contribution_draws

    def in_window(fit_):
        draws = contribution_draws(fit_)["channel"].sel(channel=channel)
        dates = pd.to_datetime(draws["date"].values)
        mask = (dates >= pd.Timestamp(tests[0]["start"])) & (dates <= pd.Timestamp(tests[0]["end"]))
        return float(draws.isel(date=np.flatnonzero(mask)).sum("date").mean())

    before = in_window(fit)
    # A test claiming three times the uncalibrated estimate, with a tight interval.
    claimed = 3 * before
    tests = [{**tests[0], "lift": claimed, "ci_lower": 0.95 * claimed, "ci_upper": 1.05 * claimed}]
    (fitted / "analysis" / "incrementality_results.json").write_text(json.dumps(tests))
    fit_mmm(ws, FitMMMParams(calibrate=True, sampler=FAST, retry=False, fallback_to_ridge=False))
    after = in_window(open_fit(ws))
    assert after > 1.5 * before, (before, after, claimed)


def test_fitting_before_validation_is_refused(tmp_path):
    simulate_workspace(tmp_path, SimulationParams(kind="mmm", weeks=60, channels=2))
    with pytest.raises(MissingInputError, match="validate"):
        fit_mmm(Workspace.open(tmp_path), FitMMMParams(sampler=FAST))
    assert not (tmp_path / "analysis" / "mmm_fit.json").exists()


def test_raw_data_changed_after_validation_is_refused(fitted):
    path = fitted / "raw" / "conversions.csv"
    path.write_text(path.read_text().replace("\n2", "\n2", 1) + "\n")
    with pytest.raises(WorkspaceError, match="changed"):
        fit_mmm(Workspace.open(fitted), FitMMMParams(sampler=FAST))


def test_too_few_periods_for_the_parameters_is_refused(tmp_path):
    simulate_workspace(tmp_path, SimulationParams(kind="mmm", weeks=24, channels=5))
    validate_data(Workspace.open(tmp_path))
    with pytest.raises(ParameterError, match="too few periods"):
        fit_mmm(Workspace.open(tmp_path), FitMMMParams(sampler=FAST))


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda t: {**t, "channel": "radio"}, "unknown_channel"),
        (lambda t: {**t, "ci_lower": t["ci_upper"] + 1}, "bad_lift_test"),
    ],
)
def test_bad_lift_tests_are_refused_and_nothing_is_written(fitted, edit, code):
    path = fitted / "analysis" / "incrementality_results.json"
    tests = json.loads(path.read_text())
    path.write_text(json.dumps([edit(tests[0])]))
    before = (fitted / "analysis" / "mmm_fit.json").read_bytes()
    with pytest.raises(DataValidationError) as caught:
        fit_mmm(Workspace.open(fitted), FitMMMParams(calibrate=True, sampler=FAST))
    assert caught.value.code == code
    assert (fitted / "analysis" / "mmm_fit.json").read_bytes() == before
