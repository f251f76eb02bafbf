"""Exposure is a choice: impressions (default), reach, clicks or spend; bad delivery is refused
naming the file, the column and the rows, with nothing written.

Uses the hand-built daily world of :mod:`tests.allocation.test_grain` (its raw rows are the
truth the weights are checked against).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from attribution_analysis.allocation.loaders import load_inputs
from attribution_analysis.api import allocate, validate_data
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.contracts.validation import ValidateDataParams
from attribution_analysis.errors import DataValidationError
from attribution_analysis.workspace import Workspace
from tests.allocation.test_grain import (  # noqa: F401 (the fixtures 'world', 'world_root')
    CONTRIBUTIONS,
    SOCIAL,
    World,
    analysis_bytes,
    per_period_gap,
    read_table,
    world_fixture,
    world_root_fixture,
)

PANEL = "analysis/prepared_campaign_panel.csv"
SOCIAL_ONLY = "analysis/social_contributions.csv"


@pytest.fixture
def social(world: World) -> World:
    """The world with contributions of the social channel only (the one reporting reach)."""
    frame = world.contributions[world.contributions["channel"] == SOCIAL]
    frame.to_csv(world.root / SOCIAL_ONLY, index=False, date_format="%Y-%m-%d")
    return World(world.root, world.delivery, frame, world.truth)


def _weights(root, params: AllocateParams) -> pd.DataFrame:
    """The (day, campaign) weights the loaders hand to the fit."""
    problem = load_inputs(Workspace.open(root), params).problem
    group = np.asarray(problem.group_labels)[problem.group]
    channel_date = pd.Series(group).str.split("|", expand=True)
    return pd.DataFrame(
        {
            "channel": channel_date[0],
            "date": pd.to_datetime(channel_date[1]),
            "campaign": np.asarray(problem.entity_labels)[problem.entity],
            "weight": problem.exposure,
        }
    )


def _raw(world: World, metric: str) -> pd.DataFrame:
    return world.delivery[["date", "channel", "campaign", metric]]


def test_reach_as_exposure_weighs_each_campaign_by_its_reach_that_day(social):
    report = allocate(
        Workspace.open(social.root),
        AllocateParams(contributions=SOCIAL_ONLY, exposure="reach", bootstrap=0),
    )
    assert report.omega.exposure_metric == "reach" and "reach" in report.omega.rule
    table = read_table(social.root)
    assert per_period_gap(table, social.contributions) < 1e-9
    merged = table.merge(_raw(social, "reach"), on=["date", "channel", "campaign"], how="left")
    np.testing.assert_allclose(merged["exposure"], merged["reach"], rtol=1e-12)
    # negative control: the default weights (impressions) differ from reach
    assert not np.allclose(
        merged["exposure"], table.merge(_raw(social, "impressions"))["impressions"]
    )


@pytest.mark.parametrize("metric", ["clicks", "spend"])
def test_clicks_or_spend_as_exposure_are_the_raw_daily_values(world, metric):
    weights = _weights(world.root, AllocateParams(contributions=CONTRIBUTIONS, exposure=metric))
    raw = _raw(world, metric)
    merged = weights.merge(raw, on=["date", "channel", "campaign"], how="left")
    assert len(merged) == int((raw[metric] > 0).sum())  # every delivering day, no other
    np.testing.assert_allclose(merged["weight"], merged[metric], rtol=1e-12)


def test_an_exposure_column_the_campaign_files_lack_is_refused_listing_the_choices(world):
    # Any numeric column of the campaign spend files may be named (issue 16); one that is
    # not there is refused at load time, naming the file and the column.
    error = _refused(
        world.root, AllocateParams(contributions=CONTRIBUTIONS, exposure="video_views")
    )
    assert error.column == "video_views" and error.file.startswith("raw/campaign_spend_")
    text = str(error)
    assert "exposure" in text and all(m in text for m in ("impressions", "reach", "clicks"))
    with pytest.raises(ValidationError):  # an empty name is still refused by the contract
        AllocateParams(exposure="")


def _refused(root, params: AllocateParams) -> DataValidationError:
    before = analysis_bytes(root)
    with pytest.raises(DataValidationError) as caught:
        allocate(Workspace.open(root), params)
    assert analysis_bytes(root) == before  # nothing half-written
    return caught.value


def _panel(root) -> pd.DataFrame:
    return pd.read_csv(root / PANEL, dtype={"date": str})


def test_reach_for_a_channel_that_does_not_report_it_is_refused_naming_its_rows(world):
    error = _refused(world.root, AllocateParams(contributions=CONTRIBUTIONS, exposure="reach"))
    assert (error.file, error.column, error.code) == (PANEL, "reach", "missing_value")
    panel = _panel(world.root)
    search_lines = set((panel.index[panel["channel"] == "search"] + 2).tolist())
    assert error.rows and set(error.rows) <= search_lines
    assert "search" in error.problem and "exposure" in error.fix


def test_reach_chosen_without_a_reach_column_is_refused(social):
    _panel(social.root).drop(columns="reach").to_csv(social.root / PANEL, index=False)
    error = _refused(social.root, AllocateParams(contributions=SOCIAL_ONLY, exposure="reach"))
    assert (error.file, error.column, error.code) == (PANEL, "reach", "missing_column")


def test_reach_above_impressions_is_refused_naming_the_row(social):
    panel = _panel(social.root)
    row = int(panel.index[panel["channel"] == SOCIAL][5])
    panel.loc[row, "reach"] = panel.loc[row, "impressions"] + 1
    panel.to_csv(social.root / PANEL, index=False)
    error = _refused(social.root, AllocateParams(contributions=SOCIAL_ONLY))
    assert (error.file, error.column, list(error.rows)) == (PANEL, "reach", [row + 2])
    assert panel.loc[row, "campaign"] in error.problem


def test_negative_clicks_are_refused_in_the_raw_file_and_in_the_panel(world):
    panel = _panel(world.root)
    panel.loc[3, "clicks"] = -4
    panel.to_csv(world.root / PANEL, index=False)
    error = _refused(world.root, AllocateParams(contributions=CONTRIBUTIONS))
    assert (error.file, error.column, list(error.rows)) == (PANEL, "clicks", [5])
    raw_path = world.root / "raw" / "campaign_spend_meta.csv"
    raw = pd.read_csv(raw_path, dtype={"date": str})
    raw.loc[7, "clicks"] = -1
    raw.to_csv(raw_path, index=False)
    before = analysis_bytes(world.root)
    with pytest.raises(DataValidationError) as caught:
        validate_data(Workspace.open(world.root), ValidateDataParams(country=None))
    assert (caught.value.file, caught.value.column) == ("raw/campaign_spend_meta.csv", "clicks")
    assert list(caught.value.rows) == [9]
    assert analysis_bytes(world.root) == before


def test_a_campaign_with_zero_exposure_all_window_is_refused_naming_its_rows(world):
    panel = _panel(world.root)
    idle = panel["campaign"] == "video_test"
    panel.loc[idle, ["impressions", "reach"]] = 0.0  # listed, spending, never delivering
    panel.to_csv(world.root / PANEL, index=False)
    error = _refused(world.root, AllocateParams(contributions=CONTRIBUTIONS))
    assert (error.file, error.column, error.code) == (PANEL, "impressions", "zero_exposure")
    assert sorted(error.rows) == sorted((panel.index[idle] + 2).tolist())
    assert "video_test" in error.problem


def test_the_exposure_step_sums_the_chosen_daily_metric_into_the_mmm_weeks(social):
    """build_effective_exposure shows what the allocation splits on: the chosen metric, on
    the MMM's weeks (Monday weeks here), through the given transforms."""
    import json

    from attribution_analysis.allocation.exposure import build_effective_exposure
    from attribution_analysis.api import effective_exposure
    from attribution_analysis.contracts.exposure import BuildExposureParams

    transforms = {SOCIAL: {"alpha": 0.4, "l_max": 3}, "search": {"alpha": 0.1, "l_max": 2}}
    (social.root / "analysis" / "t.json").write_text(json.dumps(transforms))
    report = effective_exposure(
        Workspace.open(social.root),
        BuildExposureParams(exposure="clicks", transforms_file="analysis/t.json"),
    )
    assert report.exposure == "clicks"
    table = pd.read_csv(social.root / report.table, parse_dates=["date"])
    monday = social.delivery["date"] - pd.to_timedelta(social.delivery["date"].dt.day_of_week, "D")
    by_week = (
        social.delivery.assign(date=monday, impressions=social.delivery["clicks"])
        .groupby(["date", "channel", "campaign"], as_index=False)["impressions"]
        .sum()
    )
    expected = build_effective_exposure(by_week, transforms)
    expected["date"] = pd.to_datetime(expected["date"])
    merged = table.merge(expected, on=["date", "channel", "campaign"], suffixes=("", "_hand"))
    assert len(merged) == len(table) == len(expected)
    np.testing.assert_allclose(merged["impressions"], merged["impressions_hand"], rtol=1e-12)
    np.testing.assert_allclose(
        merged["effective_exposure"], merged["effective_exposure_hand"], rtol=1e-9
    )
