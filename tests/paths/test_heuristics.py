"""Rule-based credit on a journeys file small enough to check by hand."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from attribution_analysis.api import attribute_paths
from attribution_analysis.contracts.paths import AttributePathsParams
from tests.paths.helpers import workspace_with

# J1 converts (value 100): display day 0, social day 7, direct day 14 (rows out of order in
# the file: the loader orders by timestamp). J2 converts (value 50): one email touch.
# J3 does not convert: it gets no credit under any rule.
JOURNEYS = """journey_id,timestamp,channel,converted,conversion_value
J1,2024-01-15,direct,1,100
J1,2024-01-01,display,1,100
J1,2024-01-08T00:00:00,social,1,100
J2,2024-02-01T10:00:00,email,1,50
J3,2024-02-01,social,0,0
J3,2024-02-02,display,0,0
"""

EXPECTED = {
    "first_touch": {"display": 1, "email": 1},
    "last_touch": {"direct": 1, "email": 1},
    "last_non_direct": {"social": 1, "email": 1},
    "linear": {"display": 1 / 3, "social": 1 / 3, "direct": 1 / 3, "email": 1},
    # Half-life 7 days; ages 14, 7, 0 days -> weights 1/4, 1/2, 1 (sum 7/4) -> 1/7, 2/7, 4/7.
    "time_decay": {"display": 1 / 7, "social": 2 / 7, "direct": 4 / 7, "email": 1},
    # 40/20/40 over three touches; a single touch takes everything.
    "position_based": {"display": 0.4, "social": 0.2, "direct": 0.4, "email": 1},
}


@pytest.fixture
def report(tmp_path):
    ws = workspace_with(tmp_path, {"raw/journeys.csv": JOURNEYS})
    return attribute_paths(ws, AttributePathsParams(method="heuristics", half_life_days=7))


@pytest.mark.parametrize("rule", list(EXPECTED))
def test_each_rule_gives_the_hand_computed_credit(report, rule):
    method = next(m for m in report.methods if m.method == rule)
    got = {c.channel: c.conversions for c in method.credits if c.conversions}
    assert got == pytest.approx(EXPECTED[rule])
    # Value follows the same weights: J1's 100 and J2's 50.
    value = {c.channel: c.value for c in method.credits if c.value}
    assert value == pytest.approx(
        {ch: w * (50 if ch == "email" else 100) for ch, w in EXPECTED[rule].items()}
    )


def test_journey_counts_and_caveats_are_reported(report):
    assert report.input.n_journeys == 3 and report.input.total_conversions == 2
    assert report.input.has_timestamps and not report.input.has_campaigns
    assert any("correlational" in c for c in report.caveats)


def test_paths_without_timestamps_skip_time_decay_and_say_so(tmp_path):
    ws = workspace_with(tmp_path, {"raw/paths.csv": "path,conversions,nulls\na > b,1,1\n"})
    report = attribute_paths(ws, AttributePathsParams(method="heuristics"))
    assert "time_decay" not in {m.method for m in report.methods}
    assert any(f.code == "time_decay_skipped" for f in report.findings)


# Edge cases, worked by hand: K1 touches only direct-like channels (organic, then direct);
# K2 has exactly two touches; K3 a single one. All three convert.
EDGES = """journey_id,timestamp,channel,converted
K1,2024-03-01,organic,1
K1,2024-03-02,direct,1
K2,2024-03-01,email,1
K2,2024-03-03,social,1
K3,2024-03-05,display,1
"""


@pytest.fixture
def edges(tmp_path):
    ws = workspace_with(tmp_path, {"raw/journeys.csv": EDGES})
    # Uneven position shares: two touches still split evenly, one touch takes everything.
    params = AttributePathsParams(
        method="heuristics",
        direct_channels=["direct", "organic"],
        position_first=0.3,
        position_last=0.5,
    )
    report = attribute_paths(ws, params)
    return {
        m.method: {c.channel: c.conversions for c in m.credits if c.conversions}
        for m in report.methods
    }


def test_last_non_direct_keeps_the_last_touch_of_an_all_direct_journey(edges):
    # K1 has no non-direct touch, so its last touch (direct, not organic) keeps the credit.
    assert edges["last_non_direct"] == pytest.approx({"direct": 1, "social": 1, "display": 1})


def test_position_based_splits_two_touches_evenly_and_gives_one_touch_everything(edges):
    # K1 organic 0.5 + direct 0.5; K2 email 0.5 + social 0.5 (not 0.3 / 0.5); K3 display 1.
    assert edges["position_based"] == pytest.approx(
        {"organic": 0.5, "direct": 0.5, "email": 0.5, "social": 0.5, "display": 1}
    )


def test_metadata_gives_the_journeys_date_range(report, tmp_path):
    # First touch 2024-01-01 (J1), last 2024-02-02 (J3): 33 days.
    span = report.metadata.data_range
    assert (span.start, span.end) == (dt.date(2024, 1, 1), dt.date(2024, 2, 2))
    assert (span.grain, span.n_periods, span.geos) == ("daily", 33, [])
    saved = json.loads((tmp_path / "analysis" / "path_attribution.json").read_text())
    assert saved["metadata"]["data_range"]["start"] == "2024-01-01"
    assert saved["metadata"]["data_range"]["end"] == "2024-02-02"


def test_aggregated_paths_have_no_date_range(tmp_path):
    ws = workspace_with(tmp_path, {"raw/paths.csv": "path,conversions,nulls\na > b,1,1\n"})
    report = attribute_paths(ws, AttributePathsParams(method="heuristics"))
    assert report.metadata.data_range is None
