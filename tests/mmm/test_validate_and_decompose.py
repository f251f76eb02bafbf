"""validate_model and decompose_contributions on a real fit, checked against the truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attribution_analysis.api import decompose_contributions, fit_mmm, validate_model
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.errors import MissingInputError, ModelRejectedError
from attribution_analysis.workspace import Workspace


def test_decomposition_needs_a_validated_model(fitted):
    with pytest.raises(MissingInputError, match="validated"):
        decompose_contributions(Workspace.open(fitted))


def test_validation_then_decomposition_are_consistent_for_any_posterior(fitted):
    """Identities and bounds that hold whatever the draws; recovery of the truth is the slow
    test below."""
    ws = Workspace.open(fitted)
    diagnostics = validate_model(ws, backtest_periods=13, sensitivity_refit=False)
    assert {c.name for c in diagnostics.criteria} == {
        "max_rhat",
        "min_ess_bulk",
        "ppc_coverage_90",
        "divergence_share",
    }
    assert diagnostics.passed is all(c.passed for c in diagnostics.criteria)
    assert 0 <= diagnostics.ppc["coverage_90"] <= 1
    assert 0 <= diagnostics.backtest["coverage_90"] <= 1
    assert np.isfinite(diagnostics.backtest["mape"])
    assert diagnostics.loo["elpd_loo"] is not None
    result = decompose_contributions(
        ws, override_reason=None if diagnostics.passed else "consistency test"
    )
    assert result.sum_check.passed
    shares = {c.channel: c.share_of_media.mean for c in result.channels}
    assert sum(shares.values()) == pytest.approx(1.0)
    for c in result.channels:
        low, high = c.total_contribution.hdi_90
        assert low <= high
        # more spend never lowers the outcome (Hill curves increase, for any parameters); S-
        # shaped curves may have a marginal return above the average one: no ordering.
        assert c.mroas.hdi_90[0] >= 0 and np.isfinite(c.mroas.hdi_90[1])
    weekly = (fitted / "analysis" / "mmm_weekly_contributions.csv").read_text().splitlines()
    assert len(weekly) == 1 + 104 * len(result.channels)
    written = json.loads((fitted / "analysis" / "mmm_channel_contributions.json").read_text())
    assert written["channels"][0]["total_contribution"]["hdi_95"]
    assert written["metadata"]["input_hashes"]
    # The draws file carries the same provenance, and its draws sum to the totals' draws'
    # mean within the thinning's error (500 of the fit's draws).
    import xarray as xr

    with xr.open_dataset(fitted / "analysis/model/channel_contribution_draws.nc") as draws:
        assert json.loads(draws.attrs["metadata"]) == written["metadata"]
        totals = draws["channel_contribution"].sum("date").mean("sample")
        for row in written["channels"]:
            mean = row["total_contribution"]["mean"]
            assert float(totals.sel(channel=row["channel"])) == pytest.approx(mean, rel=0.1)
        # The share precision the decomposition states, recomputed from the stored draws.
        per_draw = draws["channel_contribution"].sum("date").transpose("sample", "channel")
        shares = per_draw / per_draw.sum("channel")
        expected = abs(shares - shares.mean("sample")).mean("sample")
    (precision,) = [f for f in result.findings if f.code == "share_precision"]
    assert precision.value == pytest.approx(100 * float(expected.mean()), rel=0.15)
    # The least certain channel (500 stored draws against all of them: within 15% of it).
    assert float(expected.sel(channel=precision.subject)) >= 0.85 * float(expected.max())


@pytest.mark.slow
def test_validation_then_decomposition_recover_the_truth(fitted):
    ws = Workspace.open(fitted)
    diagnostics = validate_model(ws, backtest_periods=13, sensitivity_refit=False)
    assert diagnostics.ppc["coverage_90"] >= 0.9
    assert diagnostics.backtest["coverage_90"] >= 0.7  # 13 weeks: a coarse check
    assert diagnostics.backtest["mape"] < 0.1
    assert diagnostics.passed
    result = decompose_contributions(ws)
    truth = json.loads((fitted / "truth" / "parameters.json").read_text())["channels"]
    # Shares within 10 points of the truth on this small panel (test_recovery is stricter).
    for c in result.channels:
        share = c.share_of_media.mean
        assert abs(share - truth[c.channel]["share_of_media"]) < 0.10, (c.channel, share)
        low, high = c.total_contribution.hdi_90
        assert low < c.total_contribution.mean < high


def test_a_failing_model_is_refused_unless_overridden_and_the_override_is_recorded(fitted):
    ws = Workspace.open(fitted)
    fit_mmm(ws, FitMMMParams(quick="map"))
    diagnostics = validate_model(ws, backtest_periods=None, sensitivity_refit=False)
    assert not diagnostics.passed
    with pytest.raises(ModelRejectedError, match="override"):
        decompose_contributions(ws)
    result = decompose_contributions(ws, override_reason="exploring a MAP fit in a test")
    assert result.metadata.extra["override_reason"] == "exploring a MAP fit in a test"
    assert any(f.code == "override" for f in result.findings)
    assert np.isfinite(result.channels[0].roas.mean)


def test_the_contributions_fit_mmm_stored_are_those_of_the_rebuilt_model(validated, monkeypatch):
    """fit_mmm evaluates the contributions once and stores them with the posterior, so that
    the decomposition reads them without PyMC: every output equals the one evaluated from
    the rebuilt model (the route a posterior without the stored group takes), and each run
    took the route it should (the stored one never opens the model)."""
    from attribution_analysis import layout
    from attribution_analysis.mmm import decompose, store

    ws = Workspace.open(validated)
    outputs = [
        layout.WEEKLY_CONTRIBUTIONS.path,
        layout.CONTRIBUTION_DRAWS_CSV.path,
        layout.TRANSFORMS.path,
    ]
    opened = []

    def no_model(ws_):
        raise AssertionError("the stored route rebuilt the model")

    monkeypatch.setattr(decompose, "open_fit", no_model)
    stored = decompose_contributions(ws, override_reason="comparing two routes")
    stored_files = {p: (validated / p).read_bytes() for p in outputs}

    model_path = store.read_manifest(ws)["result"]["model_path"]
    tree = store.load_tree(ws, model_path)
    assert decompose.GROUP in tree.children
    (validated / model_path).write_bytes(store.tree_bytes(ws, tree.drop_nodes(decompose.GROUP)))
    from attribution_analysis.mmm.loaded import open_fit

    def counted(ws_):
        opened.append(1)
        return open_fit(ws_)

    monkeypatch.setattr(decompose, "open_fit", counted)
    evaluated = decompose_contributions(ws, override_reason="comparing two routes")
    assert opened == [1]

    def numbers(result):
        return result.model_dump(include={"channels", "base", "components", "sum_check"})

    assert numbers(stored) == numbers(evaluated)
    for path in outputs:
        assert stored_files[path] == (validated / path).read_bytes(), path
