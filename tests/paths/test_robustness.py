"""Inputs that used to crash, blow up memory or pass silently: long paths, many channels,
case variants, arrow separators, and the bootstrap intervals every share now carries."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from attribution_analysis.api import attribute_paths
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.errors import AttributionError
from attribution_analysis.paths import bootstrap
from attribution_analysis.paths.data import aggregate, build, path_strings
from attribution_analysis.paths.summary import paths_answer
from tests.paths.helpers import workspace_with


def test_merging_compares_paths_of_every_length_without_padding():
    # 3 channels; one 3,000-touch journey beside 50,000 two-touch ones. Padding to the
    # longest path would be 50,000 x 3,000 int64 = 1.2 GB; bucketing by length needs ~1 MB.
    rng = np.random.default_rng(0)
    lengths = np.full(50_000, 2)
    lengths[:3] = [3000, 3000, 45]  # two identical long journeys, one long-key journey
    units = np.repeat(np.arange(len(lengths)), lengths)
    channel = rng.integers(0, 3, len(units))
    channel[3000:6000] = channel[:3000]
    data = build(["a", "b", "c"], units, channel, np.ones(50_000), np.zeros(50_000), None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    merged, inverse = aggregate(data)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200
    # 9 distinct two-touch paths + 1 long path shared by two journeys + the 45-touch one.
    assert merged.n_units == 11
    assert inverse[0] == inverse[1] != inverse[2]
    assert merged.conversions[inverse[0]] == 2
    strings = path_strings(data).to_numpy()
    assert (path_strings(merged).to_numpy()[inverse] == strings).all()


def _many_channels(n: int) -> str:
    rows = [f"ch{i},{1 + i % 3},{5 + i % 4}" for i in range(n)]
    rows.append("ch0 > ch64,3,1")
    return "path,conversions,nulls\n" + "\n".join(rows) + "\n"


def test_more_than_62_channels_run_markov_and_heuristics_and_refuse_only_shapley(tmp_path):
    ws = workspace_with(tmp_path / "all", {"raw/paths.csv": _many_channels(65)})
    report = attribute_paths(ws, AttributePathsParams(bootstrap_replicates=20))
    assert {m.method for m in report.methods} >= {"markov_order_1", "linear", "last_touch"}
    assert report.shapley is None
    skipped = [f for f in report.findings if f.code == "shapley_skipped"]
    assert skipped and "at most 62 channels" in skipped[0].message
    ws = workspace_with(tmp_path / "shap", {"raw/paths.csv": _many_channels(65)})
    with pytest.raises(AttributionError) as info:
        attribute_paths(ws, AttributePathsParams(method="shapley"))
    assert info.value.code == "too_many_channels" and info.value.file == "raw/paths.csv"
    assert "--method markov" in info.value.render("cli")
    assert "`method` markov" in info.value.render("mcp")


def test_case_variants_and_arrow_separators_are_flagged(tmp_path):
    ws = workspace_with(
        tmp_path / "j",
        {
            "raw/journeys.csv": "journey_id,timestamp,channel,converted\n"
            "u1,2024-01-01,Search,1\nu2,2024-01-01,search,0\nu3,2024-01-02,email,1\n"
        },
    )
    report = attribute_paths(ws, AttributePathsParams(bootstrap_replicates=0))
    case = [f for f in report.findings if f.code == "channel_case_variants"]
    assert case and case[0].subject == "Search / search" and case[0].severity == "warning"
    ws = workspace_with(
        tmp_path / "p",
        {"raw/paths.csv": "path,conversions,nulls\nsearch -> email,1,2\nemail,1,1\n"},
    )
    report = attribute_paths(ws, AttributePathsParams(bootstrap_replicates=0))
    arrow = [f for f in report.findings if f.code == "arrow_separator"]
    assert arrow and "'search -> email', row 2" in arrow[0].message
    assert "search -" in report.input.channels  # what the split made of it, now said


def test_extreme_path_lengths_are_flagged(tmp_path):
    long_path = " > ".join(["a", "b"] * 60)  # 120 touches
    ws = workspace_with(
        tmp_path, {"raw/paths.csv": f"path,conversions,nulls\na > b,5,5\n{long_path},1,0\n"}
    )
    report = attribute_paths(ws, AttributePathsParams(bootstrap_replicates=0))
    found = [f for f in report.findings if f.code == "extreme_path_length"]
    assert found and found[0].value == 120 and "1 journey(s)/path(s)" in found[0].message
    assert report.input.max_path_length == 120


def test_a_channel_on_no_converting_path_has_zero_removal_effect_and_is_named(tmp_path):
    # c only precedes null: removing it cannot change P(conversion). Removal effects are
    # never negative (sending states to null only removes routes to conversion).
    ws = workspace_with(
        tmp_path, {"raw/paths.csv": "path,conversions,nulls\na > b,3,2\nb,1,4\nc,0,5\na > c,0,3\n"}
    )
    report = attribute_paths(ws, AttributePathsParams(method="markov", bootstrap_replicates=50))
    effects = {r.channel: r for r in report.markov.removal_effects}
    assert effects["c"].removal_effect == pytest.approx(0.0, abs=1e-12)
    assert all(r.removal_effect >= -1e-12 for r in effects.values())
    found = [f for f in report.findings if f.code == "zero_removal_effect"]
    assert found and found[0].subject == "c"
    assert not [f for f in report.findings if f.code == "negative_removal_effect"]


def test_bootstrap_interval_of_a_fifty_fifty_split_matches_the_binomial(tmp_path):
    # Two one-channel paths with 50 conversions each and no nulls: a replicate's share of a
    # is Binomial(100, 0.5) / 100, whose 5th-95th percentiles are 0.42 and 0.58.
    ws = workspace_with(tmp_path, {"raw/paths.csv": "path,conversions,nulls\na,50,0\nb,50,0\n"})
    report = attribute_paths(
        ws, AttributePathsParams(method="heuristics", bootstrap_replicates=2000)
    )
    for method in report.methods:
        a = method.credits[0]
        assert a.share == pytest.approx(0.5)
        assert a.share_lower_90 == pytest.approx(0.42, abs=0.011)
        assert a.share_upper_90 == pytest.approx(0.58, abs=0.011)
    assert report.bootstrap.replicates == 2000 and report.bootstrap.level == 0.9


def test_every_share_and_removal_effect_carries_an_interval(tmp_path):
    paths = (
        "path,conversions,nulls\nsearch,30,270\nsocial > search,40,160\nsocial,5,300\n"
        "email > search,20,80\nemail,10,90\nsocial > email > search,8,12\n"
    )
    ws = workspace_with(tmp_path, {"raw/paths.csv": paths})
    report = attribute_paths(ws, AttributePathsParams(bootstrap_replicates=100))
    for method in report.methods:
        for c in method.credits:
            assert c.share_lower_90 <= c.share + 1e-9 and c.share <= c.share_upper_90 + 1e-9
            assert c.share_upper_90 > c.share_lower_90
    for r in report.markov.removal_effects:
        assert r.removal_effect_lower_90 <= r.removal_effect <= r.removal_effect_upper_90
    payload = paths_answer(report).model_dump(mode="json")
    assert set(payload["shares_interval_90"]) == {m.method for m in report.methods}
    assert set(payload["removal_effects_interval_90"]) == {"email", "search", "social"}


def test_replicate_counts_keep_the_total_and_only_observed_outcomes():
    units = np.array([0, 1, 1])
    data = build(
        ["a", "b"], units, np.array([0, 0, 1]), np.array([3.0, 0.0]), np.array([0.0, 7.0]), None
    )
    merged, _ = aggregate(data)
    for conv, nulls in bootstrap.resample_chunks(merged, 50, seed=1):
        assert np.all(conv.sum(axis=1) + nulls.sum(axis=1) == 10)
        assert np.all(nulls[:, merged.nulls == 0] == 0) and np.all(
            conv[:, merged.conversions == 0] == 0
        )
