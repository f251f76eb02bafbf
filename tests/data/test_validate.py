"""validate_data on simulated workspaces: checked against the simulators' ground truth."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.validation import ValidateDataParams
from attribution_analysis.errors import ParameterError
from attribution_analysis.registry import RunRegistry
from attribution_analysis.workspace import Workspace

SPEND_TOLERANCE = 0.01  # currency units: raw files carry cents


def _truth(root):
    return json.loads((root / "truth" / "parameters.json").read_text())


def _panel(root):
    return pd.read_csv(root / "analysis" / "prepared_panel.csv")


def test_simulated_panel_passes_with_the_true_window_and_channel_totals(simulated):
    root = simulated(kind="mmm", seed=11, weeks=104, channels=4)
    report = validate_data(Workspace.open(root))
    truth = _truth(root)
    assert report.grain == "weekly"
    assert report.window.n_periods == 104
    assert str(report.window.start) == truth["params"]["start"]
    assert [c.channel for c in report.channels] == sorted(truth["channels"])
    for channel in report.channels:
        assert channel.total_spend == pytest.approx(
            truth["channels"][channel.channel]["spend"], abs=SPEND_TOLERANCE
        )
        assert channel.confidence == "high"
    panel = _panel(root)
    raw = pd.read_csv(root / "raw" / "conversions.csv")
    np.testing.assert_allclose(panel["conversions"], raw["conversions"])
    assert report.imputations == []


def test_geo_panel_has_one_row_per_week_and_geo(simulated):
    root = simulated(kind="mmm", seed=3, weeks=60, channels=3, geos=3)
    report = validate_data(Workspace.open(root))
    panel = _panel(root)
    assert report.window.geos == ["geo_01", "geo_02", "geo_03"]
    assert len(panel) == 60 * 3
    truth = pd.read_csv(root / "truth" / "contributions.csv")
    by_geo = truth.groupby(["geo", "channel"])["spend"].sum()
    for channel in report.panel.channels:
        got = panel.groupby("geo")[f"spend_{channel}"].sum()
        np.testing.assert_allclose(
            got.to_numpy(), by_geo.xs(channel, level="channel").to_numpy(), atol=SPEND_TOLERANCE
        )


def test_campaign_files_build_a_campaign_panel_that_adds_up_to_the_channels(simulated):
    root = simulated(kind="mta", seed=5, weeks=80, channels=4)
    report = validate_data(Workspace.open(root))
    campaigns = pd.read_csv(root / "analysis" / "prepared_campaign_panel.csv")
    panel = _panel(root)
    delivered = pd.concat([pd.read_csv(p) for p in (root / "raw").glob("campaign_spend_*")])
    assert report.campaign_panel.n_campaigns == delivered["campaign"].nunique()
    for channel in report.panel.channels:
        per_week = campaigns[campaigns["channel"] == channel].groupby("date")["spend"].sum()
        np.testing.assert_allclose(
            per_week.reindex(panel["date"], fill_value=0).to_numpy(),
            panel[f"spend_{channel}"].to_numpy(),
            atol=SPEND_TOLERANCE,
        )


def test_short_gaps_are_imputed_between_neighbours_and_flagged(simulated):
    root = simulated(kind="mmm", seed=2, weeks=60, channels=2)
    path = root / "raw" / "campaign_spend_google_ads.csv"
    raw = pd.read_csv(path)
    dropped = ["2022-03-07", "2022-03-14", "2022-03-21"]
    gap = raw[(raw["channel"] == "paid_search") & raw["date"].isin(dropped)]
    raw.drop(gap.index).to_csv(path, index=False)
    report = validate_data(Workspace.open(root))
    panel = _panel(root)
    flagged = panel.loc[panel["imputed_spend_paid_search"], "date"].tolist()
    assert flagged == dropped
    raw_search = raw[raw["channel"] == "paid_search"].set_index("date")["spend"]
    before, after = raw_search["2022-02-28"], raw_search["2022-03-28"]  # raw neighbours
    expected = np.interp([1, 2, 3], [0, 4], [before, after])
    np.testing.assert_allclose(
        panel.loc[panel["date"].isin(dropped), "spend_paid_search"], expected
    )
    search = next(c for c in report.channels if c.channel == "paid_search")
    assert search.imputed_periods == 3 and search.confidence == "medium"  # 3 of 60 = 5%
    assert report.imputations[0].n_periods == 3
    assert any(w.code == "imputed_spend" and w.subject == "paid_search" for w in report.warnings)


def _daily_copy(root, days_per_week_kept: int = 7) -> None:
    """Rewrite every weekly file as daily rows (a week's value split evenly over 7 days)."""
    for path in (root / "raw").glob("*.csv"):
        frame = pd.read_csv(path)
        if path.name == "external_factors.csv":
            continue
        numeric = [
            c for c in ("spend", "impressions", "clicks", "conversions", "revenue") if c in frame
        ]
        parts = []
        for offset in range(days_per_week_kept):
            part = frame.copy()
            part["date"] = (pd.to_datetime(part["date"]) + pd.Timedelta(days=offset)).dt.strftime(
                "%Y-%m-%d"
            )
            part[numeric] = part[numeric] / 7.0
            parts.append(part)
        pd.concat(parts).sort_values("date").to_csv(path, index=False, float_format="%.6f")


def test_daily_data_under_two_years_is_aggregated_back_to_the_true_weeks(simulated):
    root = simulated(kind="mmm", seed=4, weeks=52, channels=2)
    weekly = _panel_after_validation(root)
    _daily_copy(root)
    report = validate_data(Workspace.open(root))
    assert report.grain == "weekly" and "< 730" in report.grain_reason
    daily = _panel(root)
    assert len(daily) == 52
    for column in ("conversions", "spend_paid_search", "spend_tv"):
        np.testing.assert_allclose(daily[column], weekly[column], rtol=1e-6)


def _panel_after_validation(root):
    validate_data(Workspace.open(root))
    return _panel(root)


def test_two_years_of_daily_data_is_modelled_daily(simulated):
    root = simulated(kind="mmm", seed=4, weeks=110, channels=2)
    _daily_copy(root)
    report = validate_data(Workspace.open(root))
    assert report.grain == "daily"
    assert report.window.n_periods == 110 * 7


def test_grain_rules(simulated):
    root = simulated(kind="mmm", seed=4, weeks=52, channels=2)
    _daily_copy(root)
    with pytest.raises(ParameterError, match="2 years"):
        validate_data(Workspace.open(root), ValidateDataParams(grain="daily"))


def test_collinear_channels_are_flagged_before_any_fit(simulated):
    root = simulated(kind="mmm", seed=8, weeks=80, channels=3)
    path = root / "raw" / "campaign_spend_google_ads.csv"
    frame = pd.read_csv(path)
    tv = pd.read_csv(root / "raw" / "campaign_spend_tv_agency.csv")
    frame.loc[frame["channel"] == "paid_search", "spend"] = 0.5 * tv["spend"].to_numpy()
    frame.to_csv(path, index=False)
    report = validate_data(Workspace.open(root))
    codes = {(w.code, w.subject) for w in report.warnings}
    assert ("high_spend_correlation", "paid_search / tv") in codes
    assert report.identification.vif["tv"] is None  # exactly collinear
    assert report.status == "passed_with_warnings"


def test_independent_channels_raise_no_identification_warning(simulated):
    root = simulated(kind="mmm", seed=8, weeks=156, channels=3)
    report = validate_data(Workspace.open(root))
    assert not [w for w in report.warnings if w.code in {"high_vif", "high_spend_correlation"}]
    assert report.identification.condition_number < 30


def test_controls_fourier_holidays_and_factors(simulated):
    root = simulated(kind="mmm", seed=1, weeks=104, channels=2)
    report = validate_data(Workspace.open(root), ValidateDataParams(country="US"))
    panel = _panel(root)
    for k in (1, 2):
        total = panel[f"fourier_yearly_sin_{k}"] ** 2 + panel[f"fourier_yearly_cos_{k}"] ** 2
        np.testing.assert_allclose(total, 1.0)
    christmas = panel.loc[panel["date"] == "2022-12-19", "holidays"].item()
    plain = panel.loc[panel["date"] == "2022-03-07", "holidays"].item()
    assert christmas >= 1 and plain == 0
    assert any("Christmas" in name for name in report.controls.holidays_in_window)
    raw = pd.read_csv(root / "raw" / "external_factors.csv")
    np.testing.assert_allclose(panel["ext_competitor_index"], raw["value"])
    with pytest.raises(ParameterError, match="holiday country"):
        validate_data(Workspace.open(root), ValidateDataParams(country="XX"))


def test_monthly_factors_are_carried_forward_onto_weeks(simulated):
    root = simulated(kind="mmm", seed=1, weeks=60, channels=2)
    months = pd.date_range("2021-12-01", periods=16, freq="MS")
    pd.DataFrame(
        {"date": months.strftime("%Y-%m-%d"), "factor_name": "cpi", "value": np.arange(16.0)}
    ).to_csv(root / "raw" / "external_factors.csv", index=False)
    validate_data(Workspace.open(root))
    panel = _panel(root).set_index("date")
    assert panel.loc["2022-01-03", "ext_cpi"] == 1.0  # 1 January's value, carried forward
    assert panel.loc["2022-01-31", "ext_cpi"] == 2.0  # the week holding 1 February
    assert panel.loc["2022-02-21", "ext_cpi"] == 2.0  # no value inside: carried forward


def test_user_window_trims_a_misaligned_channel(simulated):
    root = simulated(kind="mmm", seed=6, weeks=80, channels=2)
    path = root / "raw" / "campaign_spend_tv_agency.csv"
    frame = pd.read_csv(path)
    frame[frame["date"] >= "2022-03-07"].to_csv(path, index=False)
    report = validate_data(Workspace.open(root), ValidateDataParams(start="2022-03-07"))
    assert str(report.window.start) == "2022-03-07"
    assert report.window.n_periods == 80 - 9


def test_metadata_hashes_every_input_and_the_registry_records_the_run(simulated):
    root = simulated(kind="mmm", seed=9, weeks=60, channels=2)
    report = validate_data(Workspace.open(root))
    written = json.loads((root / "analysis" / "data_validation.json").read_text())
    hashes = written["metadata"]["input_hashes"]
    assert set(hashes) == {f"raw/{p.name}" for p in (root / "raw").glob("*.csv")}
    for rel, digest in hashes.items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest
    assert written["metadata"]["library_versions"]["pymc-marketing"].startswith("1.")
    assert written["metadata"]["data_range"]["n_periods"] == 60
    runs = RunRegistry(Workspace.open(root)).list_runs()
    assert runs[0]["status"] == "succeeded" and runs[0]["run_id"] == report.metadata.run_id
    assert "analysis/prepared_panel.csv" in runs[0]["outputs"]


def test_a_failed_run_is_recorded_with_its_error(simulated):
    root = simulated(kind="mmm", seed=9, weeks=60, channels=2)
    (root / "raw" / "conversions.csv").write_text("date,conversions\n")
    with pytest.raises(Exception, match="no data rows"):
        validate_data(Workspace.open(root))
    run = RunRegistry(Workspace.open(root)).list_runs()[0]
    assert run["status"] == "failed" and "no data rows" in run["error"]
