"""Spend-only channels: impressions are optional in raw/campaign_spend_*.csv; a channel
without them is modelled on spend, reported, and never given zero impressions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.exposure import exposure_basis
from attribution_analysis.api import validate_data
from attribution_analysis.errors import DataValidationError
from attribution_analysis.workspace import Workspace

WEEKS = 60


def _workspace(tmp_path, spend: pd.DataFrame) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    raw = ws.root / "raw"
    raw.mkdir(exist_ok=True)
    spend.to_csv(raw / "campaign_spend_all.csv", index=False)
    dates = sorted(spend["date"].unique())
    rng = np.random.default_rng(3)
    pd.DataFrame({"date": dates, "revenue": rng.uniform(900, 1100, len(dates))}).to_csv(
        raw / "conversions.csv", index=False
    )
    return ws


def _spend(impressions: dict[str, object], campaigns: int = 1) -> pd.DataFrame:
    """Weekly rows for channels tv and search; ``impressions[channel]`` is 'drop' (no
    column), 'empty' (empty cells) or a number scale."""
    rng = np.random.default_rng(5)
    dates = [d.strftime("%Y-%m-%d") for d in pd.date_range("2023-01-02", periods=WEEKS, freq="7D")]
    rows = []
    for channel in ("tv", "search"):
        for k in range(campaigns):
            for date in dates:
                spend = round(float(rng.uniform(100, 1000)), 2)
                how = impressions[channel]
                shown = "" if how in ("empty", "drop") else round(spend * float(how), 0)
                rows.append(
                    {
                        "date": date,
                        "channel": channel,
                        "campaign": f"{channel}_{k}",
                        "spend": spend,
                        "impressions": shown,
                    }
                )
    frame = pd.DataFrame(rows)
    if all(v == "drop" for v in impressions.values()):
        frame = frame.drop(columns="impressions")
    return frame


def test_no_impressions_column_is_a_spend_only_panel(tmp_path):
    ws = _workspace(tmp_path, _spend({"tv": "drop", "search": "drop"}))
    report = validate_data(ws)
    notes = {f.subject: f for f in report.notes if f.code == "spend_only_channel"}
    assert set(notes) == {"tv", "search"}
    assert "split by spend" in notes["tv"].message
    assert all(c.total_impressions is None for c in report.channels)
    assert all(c.total_spend > 0 for c in report.channels)


def test_empty_cells_mark_one_channel_spend_only_and_stay_unknown(tmp_path):
    ws = _workspace(tmp_path, _spend({"tv": "empty", "search": 50}, campaigns=2))
    report = validate_data(ws)
    assert [f.subject for f in report.notes if f.code == "spend_only_channel"] == ["tv"]
    by_channel = {c.channel: c for c in report.channels}
    assert by_channel["tv"].total_impressions is None
    assert by_channel["search"].total_impressions > 0
    panel = pd.read_csv(ws.root / "analysis" / "prepared_campaign_panel.csv")
    tv = panel[panel["channel"] == "tv"]
    assert tv["impressions"].isna().all()  # not zeros
    assert panel.loc[panel["channel"] == "search", "impressions"].notna().all()
    prepared = pd.read_csv(ws.root / "analysis" / "prepared_panel.csv")
    assert prepared["impressions_tv"].isna().all()
    assert (prepared["impressions_search"] > 0).all()


def test_a_channel_with_some_empty_impressions_is_refused(tmp_path):
    spend = _spend({"tv": 20, "search": 50})
    spend["impressions"] = spend["impressions"].astype(object)
    tv_rows = spend.index[spend["channel"] == "tv"][[3, 9]]
    spend.loc[tv_rows, "impressions"] = ""
    ws = _workspace(tmp_path, spend)
    with pytest.raises(DataValidationError) as caught:
        validate_data(ws)
    error = caught.value
    assert error.column == "impressions" and error.code == "missing_value"
    assert list(error.rows) == [int(r) + 2 for r in tv_rows]
    assert "spend alone" in error.fix
    assert not (ws.root / "analysis" / "data_validation.json").exists()


def test_exposure_basis_uses_spend_only_for_channels_without_impressions():
    panel = pd.DataFrame(
        {
            "date": ["2024-01-01"] * 4,
            "channel": ["tv", "tv", "search", "search"],
            "campaign": ["a", "b", "c", "d"],
            "spend": [10.0, 30.0, 5.0, 5.0],
            "impressions": [np.nan, np.nan, 100.0, 300.0],
        }
    )
    basis, channels = exposure_basis(panel)
    assert channels == ["tv"]
    assert basis.loc[basis["channel"] == "tv", "impressions"].tolist() == [10.0, 30.0]
    assert basis.loc[basis["channel"] == "search", "impressions"].tolist() == [100.0, 300.0]
    assert panel["impressions"].isna().sum() == 2  # the input is left as it was
    same, none = exposure_basis(panel.fillna(1.0))
    assert none == [] and same["impressions"].notna().all()
