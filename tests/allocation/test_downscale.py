"""Intraday downscaling conserves each row's credit and follows delivery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.downscale import downscale_to_hours
from attribution_analysis.errors import DataValidationError

ALLOCATION = pd.DataFrame(
    {"date": ["2024-01-01", "2024-01-01"], "entity": ["a", "b"], "allocated": [90.0, 10.0]}
)


def test_hourly_parts_add_up_to_the_period_credit_in_proportion_to_delivery():
    profile = pd.DataFrame(
        {"entity": ["a", "a", "a", "b"], "hour": [8, 9, 20, 12], "impressions": [1, 2, 6, 5]}
    )
    hourly = downscale_to_hours(ALLOCATION, profile)
    totals = hourly.groupby("entity")["allocated"].sum()
    assert totals["a"] == pytest.approx(90.0) and totals["b"] == pytest.approx(10.0)
    a = hourly[hourly["entity"] == "a"].set_index("hour")["allocated"]
    assert np.allclose(a.loc[[8, 9, 20]].to_numpy(), [10.0, 20.0, 60.0])


def test_rows_with_credit_but_no_delivery_profile_are_refused_not_spread_evenly():
    profile = pd.DataFrame({"entity": ["a"], "hour": [8], "impressions": [1.0]})
    with pytest.raises(DataValidationError, match="no hourly delivery") as caught:
        downscale_to_hours(ALLOCATION, profile)
    assert list(caught.value.rows) == [1]


def test_negative_delivery_is_refused():
    profile = pd.DataFrame({"entity": ["a", "b"], "hour": [8, 9], "impressions": [1.0, -1.0]})
    with pytest.raises(DataValidationError, match="non-negative"):
        downscale_to_hours(ALLOCATION, profile)
