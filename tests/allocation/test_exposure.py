"""Effective exposure: adstock and saturation per channel, against the simulator's truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.exposure import (
    build_effective_exposure,
    channel_transform,
    transforms_from_json,
)
from attribution_analysis.contracts.allocation import ChannelTransform
from attribution_analysis.errors import DataValidationError, ParameterError


def _panel_and_transforms(root):
    panel = pd.read_csv(root / "analysis" / "prepared_campaign_panel.csv")
    transforms = transforms_from_json(root / "truth" / "parameters.json", "truth/parameters.json")
    return panel, transforms


def test_adstocked_impressions_match_the_simulators_truth(validated_mta):
    root = validated_mta(seed=3, weeks=60, channels=3)
    panel, transforms = _panel_and_transforms(root)
    effective = build_effective_exposure(panel, transforms)
    truth = pd.read_csv(root / "truth" / "campaign_split.csv")
    merged = truth.merge(effective, on=["date", "channel", "campaign"], how="left")
    assert merged["adstocked"].notna().all()
    assert np.allclose(merged["adstocked"], merged["adstocked_impressions"], rtol=1e-9, atol=1e-6)


def test_channel_total_saturation_keeps_adstocked_shares_and_saturates_the_total(validated_mta):
    root = validated_mta(seed=3, weeks=60, channels=3)
    panel, transforms = _panel_and_transforms(root)
    effective = build_effective_exposure(panel, transforms, "channel_total")
    for channel, rows in effective.groupby("channel"):
        params = json.loads((root / "truth" / "parameters.json").read_text())["channels"][channel]
        by_week = rows.groupby("date")[["adstocked", "effective_exposure", "impressions"]].sum()
        x = by_week["adstocked"] / by_week["impressions"].max()
        slope, kappa = params["hill_slope"], params["hill_kappa"]
        expected = x**slope / (x**slope + kappa**slope)  # Hill, written out independently
        assert np.allclose(by_week["effective_exposure"], expected, atol=1e-12)
        positive = rows[rows["adstocked"] > 0]
        total_a = positive.groupby("date")["adstocked"].transform("sum")
        total_e = positive.groupby("date")["effective_exposure"].transform("sum")
        share_a = positive["adstocked"] / total_a
        share_e = positive["effective_exposure"] / total_e
        assert np.allclose(share_a[total_e > 0], share_e[total_e > 0], atol=1e-12)


def test_campaign_saturation_bends_each_campaign_on_its_own():
    panel = pd.DataFrame(
        {
            "date": ["2024-01-01", "2024-01-01", "2024-01-08"],
            "channel": ["tv", "tv", "tv"],
            "campaign": ["a", "b", "a"],
            "impressions": [100.0, 300.0, 200.0],
        }
    )
    spec = {"alpha": 0.0, "l_max": 1, "saturation": {"kind": "logistic", "lam": 2.0}}
    out = build_effective_exposure(panel, {"tv": spec}, "campaign").set_index(["date", "campaign"])
    scale = 400.0  # the channel's largest weekly impressions
    assert out.loc[("2024-01-01", "b"), "effective_exposure"] == pytest.approx(
        np.tanh(2.0 * 300.0 / scale / 2.0)
    )
    # Absent rows are weeks without impressions.
    assert out.loc[("2024-01-08", "b"), "impressions"] == 0.0


def test_adstock_carries_a_campaign_into_weeks_it_did_not_deliver():
    panel = pd.DataFrame(
        {
            "date": ["2024-01-01", "2024-01-08"],
            "channel": ["tv", "tv"],
            "campaign": ["a", "b"],
            "impressions": [100.0, 100.0],
        }
    )
    out = build_effective_exposure(panel, {"tv": {"alpha": 0.5, "l_max": 2}})
    week2 = out[out["date"] == "2024-01-08"].set_index("campaign")["adstocked"]
    # weights 1/1.5 and 0.5/1.5 (normalised), zero before the first week
    assert week2["a"] == pytest.approx(100.0 * 0.5 / 1.5)
    assert week2["b"] == pytest.approx(100.0 / 1.5)


def test_the_simulators_flat_keys_and_our_contract_read_the_same():
    flat = channel_transform(
        {"adstock_alpha": 0.3, "l_max": 8, "hill_slope": 2.0, "hill_kappa": 0.5, "beta": 9}, "tv"
    )
    ours = ChannelTransform.model_validate(
        {"alpha": 0.3, "l_max": 8, "saturation": {"kind": "hill", "slope": 2.0, "kappa": 0.5}}
    )
    assert flat == ours


def test_a_channel_without_parameters_is_refused():
    panel = pd.DataFrame(
        {"date": ["2024-01-01"], "channel": ["radio"], "campaign": ["a"], "impressions": [1.0]}
    )
    with pytest.raises(ParameterError, match="radio"):
        build_effective_exposure(panel, {"tv": {"alpha": 0.1, "l_max": 2}})
    with pytest.raises(ParameterError, match="incomplete"):
        channel_transform({"l_max": 2}, "radio")


# ----- a transforms JSON written by hand (#19) ------------------------------------------------
GOOD = {"alpha": 0.3, "l_max": 4, "saturation": {"kind": "hill", "slope": 2.0, "kappa": 0.5}}


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({**GOOD, "alpha": "0.3"}, "tv.alpha"),  # text, not a number
        ({**GOOD, "l_max": True}, "tv.l_max"),  # a boolean
        ({**GOOD, "l_max": 4.5}, "tv.l_max"),  # not a whole number of periods
        ({**GOOD, "alpha": float("nan")}, "tv.alpha"),  # NaN (Python's json writes it)
        ({**GOOD, "saturation": {"kind": "hill", "slope": 2.0, "kappa": float("inf")}}, "kappa"),
        ({**GOOD, "saturation": "hill"}, "tv.saturation"),
        ({"adstock_alpha": 0.3, "l_max": 4, "hill_slope": "2", "hill_kappa": 0.5}, "hill_slope"),
        ({**GOOD, "alpha": 1.5}, "alpha"),  # out of range: the contract's own check
        ({"l_max": 4}, "alpha"),  # missing
        ([0.3, 4], "tv"),  # not an object
    ],
)
def test_a_malformed_transforms_file_names_the_file_and_the_field(tmp_path, entry, field):
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps({"tv": entry}))  # allow_nan: NaN and Infinity as JSON extensions
    with pytest.raises(DataValidationError) as caught:
        transforms_from_json(path, "analysis/transforms.json")
    assert caught.value.file == "analysis/transforms.json"
    assert field in caught.value.problem
    assert "Traceback" not in caught.value.message


@pytest.mark.parametrize("payload", ["[]", "{}", '{"channels": 3}', "{not json"])
def test_a_transforms_file_without_channel_entries_is_refused(tmp_path, payload):
    path = tmp_path / "transforms.json"
    path.write_text(payload)
    with pytest.raises(DataValidationError) as caught:
        transforms_from_json(path, "analysis/transforms.json")
    assert caught.value.file == "analysis/transforms.json"
    assert caught.value.code == "malformed_json"


def test_a_channel_missing_from_the_transforms_file_is_refused_naming_the_file(validated_mta):
    from attribution_analysis.api import allocate
    from attribution_analysis.contracts.allocation import AllocateParams
    from attribution_analysis.workspace import Workspace

    root = validated_mta(seed=3, weeks=40, channels=2)
    channels = json.loads((root / "truth" / "parameters.json").read_text())["channels"]
    first = sorted(channels)[0]
    (root / "analysis" / "t.json").write_text(json.dumps({first: channels[first]}))
    with pytest.raises(DataValidationError) as caught:
        allocate(
            Workspace.open(root), AllocateParams(transforms_file="analysis/t.json", bootstrap=0)
        )
    assert caught.value.file == "analysis/t.json"
    assert caught.value.code == "missing_channel"
    assert sorted(channels)[1] in caught.value.problem


def test_the_step_answers_the_top_campaigns_of_each_channel(validated_mta):
    from attribution_analysis.api import effective_exposure
    from attribution_analysis.contracts.exposure import BuildExposureParams, ExposureAnswer
    from attribution_analysis.steps import execute, step
    from attribution_analysis.workspace import Workspace

    root = validated_mta(seed=3, weeks=40, channels=2)
    ws = Workspace.open(root)
    answer = ExposureAnswer.model_validate(
        execute(step("build_effective_exposure"), ws, BuildExposureParams())
    )
    report = effective_exposure(ws, BuildExposureParams())
    assert answer.transforms_source == report.transforms_source == "truth/parameters.json"
    assert [f.code for f in answer.findings] == ["transforms_from_truth"]
    for summary, channel in zip(answer.channels, report.channels, strict=True):
        assert summary.campaigns == len(channel.campaigns)
        best = max(channel.campaigns, key=lambda c: c.share_of_channel)
        assert summary.top_campaigns[0].campaign == best.campaign
        assert len(summary.top_campaigns) == min(3, len(channel.campaigns))
