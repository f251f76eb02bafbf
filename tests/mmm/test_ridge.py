"""The Robyn-style ridge fallback: labelled, bootstrapped, and refused for geo panels."""

from __future__ import annotations

import json

import pytest

from attribution_analysis.api import (
    decompose_contributions,
    fit_mmm,
    simulate_workspace,
    validate_data,
    validate_model,
)
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.errors import ParameterError
from attribution_analysis.workspace import Workspace


def test_ridge_fallback_is_labelled_and_gives_bootstrap_intervals(tmp_path):
    simulate_workspace(tmp_path, SimulationParams(kind="mmm", seed=12, weeks=104, channels=3))
    ws = Workspace.open(tmp_path)
    validate_data(ws)
    result = fit_mmm(ws, FitMMMParams(method="ridge"))
    assert result.method == "ridge_bootstrap"
    assert any(f.code == "ridge_fallback" for f in result.findings)
    assert not any(f.code == "ridge_curve_family" for f in result.findings)  # Hill asked
    diagnostics = validate_model(ws)
    assert diagnostics.method == "ridge_bootstrap"
    assert [c.name for c in diagnostics.criteria] == ["ppc_coverage_90"]
    contributions = decompose_contributions(ws, override_reason="comparing with the fallback")
    truth = json.loads((tmp_path / "truth" / "parameters.json").read_text())["channels"]
    assert contributions.method == "ridge_bootstrap"
    for channel in contributions.channels:
        low, high = channel.total_contribution.hdi_90
        assert 0 <= low < high
        # ridge shrinks towards zero: same order of magnitude as the truth, not more
        assert (
            0.3
            < channel.total_contribution.mean / truth[channel.channel]["total_contribution"]
            < 1.5
        )


def test_ridge_refuses_geo_panels(tmp_path):
    simulate_workspace(
        tmp_path, SimulationParams(kind="mmm", seed=12, weeks=60, channels=2, geos=2)
    )
    ws = Workspace.open(tmp_path)
    validate_data(ws)
    with pytest.raises(ParameterError, match="national"):
        fit_mmm(ws, FitMMMParams(method="ridge"))


def test_ridge_says_it_ignores_another_curve_and_hands_over_its_own(tmp_path):
    """Asked for a logistic curve, the ridge model (always Hill on geometric adstock) says so,
    and the decomposition hands the allocation the Hill parameters it did tune (read here
    from the fit's file with xarray), instead of failing on logistic names it never stored."""
    import numpy as np
    import xarray as xr

    from attribution_analysis import layout
    from attribution_analysis.mmm import store

    simulate_workspace(tmp_path, SimulationParams(kind="mmm", seed=3, weeks=60, channels=2))
    ws = Workspace.open(tmp_path)
    validate_data(ws)
    result = fit_mmm(ws, FitMMMParams(method="ridge", config={"saturation": "logistic"}))
    (said,) = [f for f in result.findings if f.code == "ridge_curve_family"]
    assert "logistic saturation" in said.message
    validate_model(ws, backtest_periods=0, sensitivity_refit=False)
    decompose_contributions(ws, override_reason="the ridge model's transforms")
    transforms = json.loads((tmp_path / layout.TRANSFORMS.path).read_text())
    path = ws.resolve(store.read_manifest(ws)["result"]["model_path"])
    with xr.open_dataset(path, group="hyperparameters") as hyper:
        for channel, values in transforms.items():
            assert values["saturation"]["kind"] == "hill"
            expected = hyper.sel(channel=channel)
            np.testing.assert_allclose(values["alpha"], float(expected["adstock_alpha"]))
            np.testing.assert_allclose(
                values["saturation"]["slope"], float(expected["saturation_slope"])
            )
            np.testing.assert_allclose(
                values["saturation"]["kappa"], float(expected["saturation_kappa"])
            )
