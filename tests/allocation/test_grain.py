"""The allocation runs at the grain of the contributions it splits.

The world here is written by hand, not by the MMM simulator: 120 days of daily campaign rows
(two channels, short flights and a late launch, a spend-only channel), channel contributions
that are exactly sum_k rate_k x delivery_k,t with named true rates, and a daily outcome so
the workspace validates. Daily over four months is far too short for a daily MMM (the MMM
panel stays weekly) but fine for an allocation.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.api import allocate, validate_data
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.contracts.validation import ValidateDataParams
from attribution_analysis.errors import DataValidationError, ParameterError
from attribution_analysis.workspace import Workspace
from tests.conftest import REPO

START = pd.Timestamp("2024-01-03")  # a Wednesday: the first and last weeks are partial
DAYS = 120
SOCIAL = "social"  # reports impressions, reach and clicks
SEARCH = "search"  # spend-only: reports spend and clicks, no impressions
# campaign: (channel, first day, last day, daily delivery level, true outcome per unit)
# Units: per impression for social, per currency unit of spend for search (its weight).
CAMPAIGNS = {
    "always_on": (SOCIAL, 0, 119, 40_000, 0.0010),
    "prospecting": (SOCIAL, 0, 119, 60_000, 0.0004),
    "retargeting": (SOCIAL, 0, 119, 15_000, 0.0030),
    "spring_promo": (SOCIAL, 30, 44, 80_000, 0.0020),  # short flight
    "video_test": (SOCIAL, 10, 24, 30_000, 0.0006),  # short flight
    "late_launch": (SOCIAL, 70, 119, 50_000, 0.0015),  # launched late
    "lookalike": (SOCIAL, 0, 89, 25_000, 0.0008),  # stopped early
    "brand_terms": (SEARCH, 0, 119, 300, 2.0),
    "generic_terms": (SEARCH, 0, 119, 500, 0.6),
}
SHARE_TOL = 0.03  # campaign share of channel credit; deterministic totals, pooled rates
CONTRIBUTIONS = "analysis/user_contributions.csv"
SCRIPT = REPO / "scripts" / "allocate.py"


@dataclass(frozen=True)
class World:
    root: Path
    delivery: pd.DataFrame  # date, channel, campaign, spend, impressions, reach, clicks
    contributions: pd.DataFrame  # date, channel, contribution (daily truth)
    truth: pd.DataFrame  # date, channel, campaign, credit (true daily pieces)


def _delivery(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for campaign, (channel, first, last, level, _) in CAMPAIGNS.items():
        days = np.arange(first, last + 1)
        weekly = 1 + 0.3 * np.sin(2 * np.pi * (days + rng.integers(7)) / 7)
        volume = np.round(level * weekly * rng.lognormal(0, 0.35, len(days)))
        if channel == SOCIAL:
            impressions = volume
            spend = np.round(impressions * rng.uniform(4, 9) / 1000, 2)
            reach = np.round(impressions * rng.uniform(0.3, 0.8, len(days)))
            clicks = np.round(impressions * rng.uniform(0.002, 0.02, len(days)))
        else:
            spend = volume
            impressions = reach = np.full(len(days), np.nan)
            clicks = np.round(spend * rng.uniform(0.5, 2.0, len(days)))
        rows.append(
            pd.DataFrame(
                {
                    "date": START + pd.to_timedelta(days, unit="D"),
                    "channel": channel,
                    "campaign": campaign,
                    "spend": spend,
                    "impressions": impressions,
                    "reach": reach,
                    "clicks": clicks,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _true_pieces(delivery: pd.DataFrame) -> pd.DataFrame:
    rate = delivery["campaign"].map({k: v[4] for k, v in CAMPAIGNS.items()})
    weight = delivery["impressions"].where(delivery["channel"] == SOCIAL, delivery["spend"])
    return delivery[["date", "channel", "campaign"]].assign(credit=rate * weight)


def write_world(root: Path, seed: int = 11) -> World:
    """Raw files of the hand-built world, validated; the true daily contributions."""
    raw = root / "raw"
    raw.mkdir(parents=True)
    delivery = _delivery(seed)
    social = delivery[delivery["channel"] == SOCIAL]
    search = delivery[delivery["channel"] == SEARCH].drop(columns=["impressions", "reach"])
    fmt = {"date_format": "%Y-%m-%d", "index": False}
    social.to_csv(raw / "campaign_spend_meta.csv", **fmt)
    search.to_csv(raw / "campaign_spend_google.csv", **fmt)
    truth = _true_pieces(delivery)
    contributions = truth.groupby(["date", "channel"], as_index=False)["credit"].sum()
    contributions = contributions.rename(columns={"credit": "contribution"})
    dates = pd.date_range(START, periods=DAYS, freq="D")
    media = contributions.groupby("date")["contribution"].sum().reindex(dates, fill_value=0.0)
    rng = np.random.default_rng(seed + 1)
    outcome = 400 + media.to_numpy() + rng.normal(0, 20, DAYS)
    pd.DataFrame({"date": dates, "conversions": np.round(outcome)}).to_csv(
        raw / "conversions.csv", **fmt
    )
    validate_data(Workspace.open(root), ValidateDataParams(country=None))
    contributions.to_csv(root / CONTRIBUTIONS, **fmt)
    return World(root, delivery, contributions, truth)


@pytest.fixture(scope="module", name="world_root")
def world_root_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_world(tmp_path_factory.mktemp("daily") / "ws").root


@pytest.fixture(name="world")
def world_fixture(world_root: Path, tmp_path: Path) -> World:
    """A private copy of the validated daily world (tests edit it)."""
    root = tmp_path / "ws"
    shutil.copytree(world_root, root)
    delivery = _delivery(11)
    truth = _true_pieces(delivery)
    contributions = pd.read_csv(root / CONTRIBUTIONS, parse_dates=["date"])
    return World(root, delivery, contributions, truth)


def analysis_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "analysis").rglob("*"))
        if p.is_file()
    }


def run_script(root: Path, *args: str) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--workspace", str(root), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def per_period_gap(table: pd.DataFrame, totals: pd.DataFrame) -> float:
    """Largest |sum of campaign pieces - channel total| / total over the periods."""
    credit = table.groupby(["channel", "date"])["allocated"].sum()
    expected = totals.set_index(["channel", "date"])["contribution"]
    credit = credit.reindex(expected.index)
    assert credit.notna().all(), "a period with a contribution got no campaign credit"
    return float(np.max(np.abs(credit - expected) / expected))


def shares(frame: pd.DataFrame, column: str) -> pd.Series:
    totals = frame.groupby(["channel", "campaign"])[column].sum()
    return totals / totals.groupby(level="channel").transform("sum")


def read_table(root: Path) -> pd.DataFrame:
    table = pd.read_csv(root / "analysis" / "mta_allocation.csv", parse_dates=["date"])
    return table.rename(columns={"entity": "campaign"})


def test_validation_keeps_daily_campaign_rows_while_the_mmm_panel_stays_weekly(world):
    """Four months of daily data: the MMM's two-year rule still makes its panel weekly (and
    refuses a daily MMM), but the campaign panel keeps the daily rows and their reach."""
    report = json.loads((world.root / "analysis" / "data_validation.json").read_text())
    assert report["grain"] == "weekly"
    campaigns = pd.read_csv(world.root / "analysis" / "prepared_campaign_panel.csv")
    assert campaigns["date"].nunique() == DAYS  # every day, the partial edge weeks included
    merged = campaigns.merge(
        world.delivery.assign(date=world.delivery["date"].dt.strftime("%Y-%m-%d")),
        on=["date", "channel", "campaign"],
        suffixes=("", "_raw"),
    )
    assert len(merged) == len(world.delivery)
    np.testing.assert_allclose(merged["reach"], merged["reach_raw"])
    with pytest.raises(ParameterError, match="730 days"):
        validate_data(Workspace.open(world.root), ValidateDataParams(grain="daily", country=None))


def test_daily_contributions_split_by_default_add_up_every_day_with_no_carryover(world):
    """Defaults only, through the script: daily contributions on a workspace whose MMM panel
    is weekly, no MMM fit, no transforms."""
    before = (world.root / CONTRIBUTIONS).read_bytes()
    code, answer = run_script(world.root, "--contributions", CONTRIBUTIONS)
    assert code == 0, answer
    assert answer["status"] == "ok" and answer["grain"] == "daily"
    assert answer["exposure_metric"] == "impressions" and answer["transforms_source"] is None
    assert answer["unallocated_groups"] == 0
    codes = {f["code"] for f in answer["findings"]}
    assert {"no_carryover", "spend_only_channel"} <= codes
    table = read_table(world.root)
    assert per_period_gap(table, world.contributions) < 1e-9
    # no carryover: the weight of a campaign on a day is its own delivery that day (hand
    # computation from the raw rows; spend for the spend-only channel)
    raw = _delivery_weights(world)
    merged = table.merge(raw, on=["date", "channel", "campaign"], how="left")
    np.testing.assert_allclose(merged["exposure"], merged["weight"], rtol=1e-12)
    summary = json.loads((world.root / "analysis" / "allocation_summary.json").read_text())
    assert summary["pooling"]["pooling"] == "channel"  # the default, reported
    assert (world.root / CONTRIBUTIONS).read_bytes() == before


def _delivery_weights(world: World) -> pd.DataFrame:
    return world.delivery.assign(
        weight=world.delivery["impressions"].where(
            world.delivery["channel"] == SOCIAL, world.delivery["spend"]
        )
    )


@pytest.mark.parametrize(
    "channels",
    [[SOCIAL], [SOCIAL, SEARCH]],
    ids=["one", "two"],
)
def test_the_default_split_recovers_the_true_campaign_shares(world, channels):
    """Totals that are exactly sum_k rate_k x delivery identify the rates: the default
    (pooled) split must find them, on one channel and on two channels whose rates are on
    different scales (per impression, per unit of spend)."""
    frame = world.contributions[world.contributions["channel"].isin(channels)]
    frame.to_csv(world.root / "analysis" / "some.csv", index=False, date_format="%Y-%m-%d")
    allocate(
        Workspace.open(world.root),
        AllocateParams(contributions="analysis/some.csv", bootstrap=0),
    )
    ours = shares(read_table(world.root), "allocated")
    truth = shares(world.truth, "credit").reindex(ours.index)
    naive = shares(_delivery_weights(world), "weight").reindex(ours.index)
    assert float(np.abs(ours - truth).max()) < SHARE_TOL, (ours - truth).round(4).to_dict()
    assert float(np.abs(naive - truth).max()) > 3 * SHARE_TOL  # the check can fail


def test_weekly_contributions_sum_the_daily_rows_into_their_weeks_partial_edges_included(world):
    weekly = world.contributions.assign(
        date=world.contributions["date"]
        - pd.to_timedelta(world.contributions["date"].dt.day_of_week, unit="D")
    )
    weekly = weekly.groupby(["date", "channel"], as_index=False)["contribution"].sum()
    weekly.to_csv(world.root / "analysis" / "weekly.csv", index=False, date_format="%Y-%m-%d")
    report = allocate(
        Workspace.open(world.root),
        AllocateParams(contributions="analysis/weekly.csv", bootstrap=0),
    )
    assert report.metadata.data_range.grain == "weekly"
    assert report.metadata.data_range.start.isoformat() == "2024-01-01"  # partial first week
    table = read_table(world.root)
    assert per_period_gap(table, weekly) < 1e-9
    week = world.delivery["date"] - pd.to_timedelta(world.delivery["date"].dt.day_of_week, "D")
    by_week = (
        world.delivery.assign(date=week, weight=world.delivery["impressions"])
        .groupby(["date", "channel", "campaign"], as_index=False)["weight"]
        .sum()
    )
    social = table[table["channel"] == SOCIAL].merge(by_week, on=["date", "channel", "campaign"])
    assert len(social) == len(table[table["channel"] == SOCIAL])
    np.testing.assert_allclose(social["exposure"], social["weight"], rtol=1e-12)


def _refused(root: Path, params: AllocateParams) -> DataValidationError:
    before = analysis_bytes(root)
    with pytest.raises(DataValidationError) as caught:
        allocate(Workspace.open(root), params)
    assert analysis_bytes(root) == before  # nothing half-written
    return caught.value


def test_daily_contributions_over_weekly_campaign_rows_are_refused_naming_the_file(world):
    weekly_rows = world.delivery.assign(
        date=world.delivery["date"]
        - pd.to_timedelta(world.delivery["date"].dt.day_of_week, unit="D")
    )
    panel = (
        weekly_rows.groupby(["date", "channel", "campaign"], as_index=False)[
            ["spend", "impressions", "clicks"]
        ]
        .sum(min_count=1)
        .assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d"))
    )
    panel.to_csv(world.root / "analysis" / "prepared_campaign_panel.csv", index=False)
    error = _refused(world.root, AllocateParams(contributions=CONTRIBUTIONS))
    assert error.code == "grain_mismatch"
    assert (error.file, error.column) == (CONTRIBUTIONS, "date") and error.rows
    assert "daily" in error.problem and "weekly" in error.problem
    assert "weekly contributions" in error.fix


def test_weeks_labelled_on_another_weekday_are_refused(world):
    """A weekly panel on Mondays and contribution weeks on Sundays do not line up."""
    monday = world.delivery["date"] - pd.to_timedelta(world.delivery["date"].dt.day_of_week, "D")
    panel = (
        world.delivery.assign(date=monday)
        .groupby(["date", "channel", "campaign"], as_index=False)[["spend", "impressions"]]
        .sum(min_count=1)
        .assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d"))
    )
    panel.to_csv(world.root / "analysis" / "prepared_campaign_panel.csv", index=False)
    sunday = world.contributions.assign(
        date=world.contributions["date"]
        - pd.to_timedelta((world.contributions["date"].dt.day_of_week + 1) % 7, unit="D")
    )
    sunday = sunday.groupby(["date", "channel"], as_index=False)["contribution"].sum()
    sunday.to_csv(world.root / "analysis" / "sunday.csv", index=False, date_format="%Y-%m-%d")
    error = _refused(world.root, AllocateParams(contributions="analysis/sunday.csv"))
    assert error.code == "grain_mismatch" and error.file == "analysis/sunday.csv"
    assert "Sunday" in error.problem and "Monday" in error.problem and error.column == "date"


def test_contributions_dated_outside_the_campaign_rows_are_refused_not_left_unallocated(world):
    late = world.contributions[world.contributions["channel"] == SOCIAL].tail(1)
    extra = late.assign(date=late["date"] + pd.Timedelta(days=30))
    frame = pd.concat([world.contributions, extra], ignore_index=True)
    frame.to_csv(world.root / CONTRIBUTIONS, index=False, date_format="%Y-%m-%d")
    error = _refused(world.root, AllocateParams(contributions=CONTRIBUTIONS))
    assert error.code == "misaligned_dates"
    assert (error.file, error.column) == (CONTRIBUTIONS, "date")
    assert list(error.rows) == [len(frame) + 1]  # the appended row, after the header


# The MMM's outputs as decompose_contributions writes them (its transforms in the allocation
# contract's form); the numbers are stated, not fitted: the test is about periods, not fits.
MMM_TRANSFORMS = {
    SOCIAL: {"alpha": 0.5, "l_max": 4, "saturation": {"kind": "hill", "slope": 1.5, "kappa": 0.6}},
    SEARCH: {"alpha": 0.2, "l_max": 2, "saturation": None},
}


def test_the_mmm_path_sums_daily_campaign_rows_into_the_mmm_weeks_before_its_adstock(world):
    """The demo's MMM -> campaign path with daily platform exports: weekly MMM contributions
    (draws and means), the MMM's transforms; the daily campaign rows are summed into the
    MMM's weeks (the partial week before its window included, as carryover) and only then
    adstocked and saturated."""
    from attribution_analysis.allocation.exposure import build_effective_exposure

    root = world.root
    window = json.loads((root / "analysis" / "data_validation.json").read_text())["window"]
    week_of = lambda d: d - pd.to_timedelta(d.dt.day_of_week, unit="D")  # noqa: E731
    weekly = world.contributions.assign(date=week_of(world.contributions["date"]))
    weekly = weekly.groupby(["date", "channel"], as_index=False)["contribution"].sum()
    weekly = weekly[weekly["date"].between(window["start"], window["end"])]
    rng = np.random.default_rng(3)
    draws = pd.concat(
        [
            weekly.assign(draw=d, contribution=weekly["contribution"] * rng.gamma(50, 1 / 50))
            for d in range(20)
        ]
    )
    fmt = {"index": False, "date_format": "%Y-%m-%d"}
    draws.to_csv(root / "analysis" / "mmm_contribution_draws.csv", **fmt)
    means = draws.groupby(["date", "channel"], as_index=False)["contribution"].mean()
    means.to_csv(root / "analysis" / "mmm_weekly_contributions.csv", **fmt)
    (root / "analysis" / "mmm_transforms.json").write_text(json.dumps(MMM_TRANSFORMS))

    report = allocate(Workspace.open(root), AllocateParams(bootstrap=0))
    assert report.omega.transforms_source == "analysis/mmm_transforms.json"
    assert report.metadata.data_range.grain == "weekly"
    assert not any(f.code == "no_carryover" for f in report.findings)
    table = read_table(root)
    assert per_period_gap(table, means) < 1e-9
    # independent aggregation: pandas week sums of the raw daily rows (spend for search)
    raw = world.delivery.assign(
        date=week_of(world.delivery["date"]),
        impressions=world.delivery["impressions"].fillna(world.delivery["spend"]),
    )
    by_week = raw.groupby(["date", "channel", "campaign"], as_index=False)["impressions"].sum()
    expected = build_effective_exposure(by_week, MMM_TRANSFORMS)
    expected["date"] = pd.to_datetime(expected["date"])
    merged = table.merge(expected, on=["date", "channel", "campaign"], how="left")
    np.testing.assert_allclose(merged["exposure"], merged["effective_exposure"], rtol=1e-9)
    first = pd.Timestamp(window["start"])
    assert first > world.delivery["date"].min()  # the partial first week is outside ...
    assert (merged["date"] == first).any()  # ... yet carries over into the first MMM week
    carried = expected[(expected["date"] == first - pd.Timedelta(days=7))]
    assert carried["impressions"].sum() > 0
