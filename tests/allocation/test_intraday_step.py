"""The downscale_intraday step on a real allocation: hourly parts add up to each row's credit,
and a campaign without a delivery profile is refused naming the file."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.api import allocate, downscale_intraday, validate_data
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.contracts.intraday import DownscaleParams
from attribution_analysis.errors import DataValidationError
from attribution_analysis.workspace import Workspace


@pytest.fixture(scope="module")
def allocated_once(simulated_root, tmp_path_factory):
    """Validated and allocated once for the module (the allocation is the slow part)."""
    root = tmp_path_factory.mktemp("intraday") / "ws"
    shutil.copytree(simulated_root(kind="mta", seed=3, weeks=52, channels=2), root)
    ws = Workspace.open(root)
    validate_data(ws)
    allocate(ws, AllocateParams(source="mta"))
    return root


@pytest.fixture
def allocated(allocated_once, tmp_path):
    """A private copy, safe to modify."""
    return shutil.copytree(allocated_once, tmp_path / "ws")


def _profile(campaigns, rng) -> pd.DataFrame:
    rows = [
        {"campaign": c, "hour": h, "impressions": float(rng.integers(0, 1000))}
        for c in campaigns
        for h in range(24)
    ]
    return pd.DataFrame(rows)


def test_hourly_parts_add_up_to_each_row(allocated):
    rng = np.random.default_rng(0)
    allocation = pd.read_csv(allocated / "analysis" / "mta_allocation.csv")
    profile = _profile(sorted(allocation["entity"].unique()), rng)
    profile.to_csv(allocated / "raw" / "hourly_delivery.csv", index=False)
    report = downscale_intraday(Workspace.open(allocated), DownscaleParams())
    hourly = pd.read_csv(allocated / report.table)
    sums = hourly.groupby(["group", "entity"])["allocated"].sum()
    expected = allocation.set_index(["group", "entity"])["allocated"].loc[sums.index]
    # The CSV keeps 12 significant digits; the in-memory split is exact (max_relative_error).
    np.testing.assert_allclose(sums.to_numpy(), expected.to_numpy(), rtol=1e-9)
    assert report.max_relative_error < 1e-12
    # Within a row, hours follow the profile's shares.
    first = hourly[hourly["entity"] == hourly["entity"].iloc[0]]
    row = first[first["group"] == first["group"].iloc[0]]
    weights = profile[profile["campaign"] == row["entity"].iloc[0]].set_index("hour")["impressions"]
    shares = (weights / weights.sum()).loc[row["hour"]].to_numpy()
    np.testing.assert_allclose(row["allocated"].to_numpy() / row["allocated"].sum(), shares)


def test_missing_profile_is_refused_and_nothing_written(allocated):
    rng = np.random.default_rng(1)
    allocation = pd.read_csv(allocated / "analysis" / "mta_allocation.csv")
    campaigns = sorted(allocation["entity"].unique())
    _profile(campaigns[1:], rng).to_csv(allocated / "raw" / "hourly_delivery.csv", index=False)
    with pytest.raises(DataValidationError, match="no hourly delivery") as caught:
        downscale_intraday(Workspace.open(allocated), DownscaleParams())
    assert caught.value.file == "analysis/mta_allocation.csv"
    assert not (allocated / "analysis" / "mta_allocation_hourly.csv").exists()


def test_the_answer_repeats_the_summary_without_its_metadata(allocated):
    from attribution_analysis.contracts.intraday import DownscaleAnswer, DownscaleReport
    from attribution_analysis.steps import execute, step

    allocation = pd.read_csv(allocated / "analysis" / "mta_allocation.csv")
    profile = _profile(sorted(allocation["entity"].unique()), np.random.default_rng(2))
    profile.to_csv(allocated / "raw" / "hourly_delivery.csv", index=False)
    answer = DownscaleAnswer.model_validate(
        execute(step("downscale_intraday"), Workspace.open(allocated), DownscaleParams())
    )
    summary = DownscaleReport.model_validate_json(
        (allocated / "analysis" / "intraday_summary.json").read_text()
    )
    assert answer.outputs == [summary.table, "analysis/intraday_summary.json"]
    assert answer.model_dump(exclude={"step", "outputs", "findings"}) == summary.model_dump(
        exclude={"metadata"}
    )
