"""Reconciliation with the MMM: shares side by side, flags, and the calibrated campaign split."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from attribution_analysis import layout
from attribution_analysis.api import attribute_paths, simulate_workspace
from attribution_analysis.contracts.common import Interval
from attribution_analysis.contracts.outputs import (
    BaseContribution,
    ChannelContribution,
    ChannelContributions,
    SumCheck,
)
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.provenance import build_metadata
from attribution_analysis.workspace import Workspace, json_bytes

# MMM view (made up, as an MMM would report it): tv is untracked media, paid_search holds
# branded and generic search, and display's interval is tight around a small share.
MMM = {
    "tv": (400.0, 0.40, (0.30, 0.50)),
    "paid_search": (300.0, 0.30, (0.22, 0.38)),
    "social": (200.0, 0.20, (0.15, 0.25)),
    "display": (100.0, 0.10, (0.08, 0.12)),
}


def _interval(mean: float, low: float, high: float) -> Interval:
    return Interval(mean=mean, hdi_90=(low, high), hdi_95=(low, high))


def _mmm_file() -> bytes:
    channels = [
        ChannelContribution(
            channel=name,
            total_contribution=_interval(total, total * 0.8, total * 1.2),
            share_of_media=_interval(share, *hdi),
            roas=_interval(1.0, 0.8, 1.2),
            mroas=_interval(0.5, 0.4, 0.6),
            spend=total,
        )
        for name, (total, share, hdi) in MMM.items()
    ]
    report = ChannelContributions(
        metadata=build_metadata(step="decompose_contributions", input_hashes={}),
        target="conversions",
        method="bayesian_nuts",
        channels=channels,
        base=BaseContribution(total=_interval(1000.0, 900.0, 1100.0)),
        sum_check=SumCheck(relative_error=0.0, passed=True),
    )
    return json_bytes(report.model_dump(mode="json"))


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory):
    root = tmp_path_factory.mktemp("reconcile")
    simulate_workspace(root, SimulationParams(kind="journeys", seed=8, n_users=20_000))
    ws = Workspace.open(root)
    ws.commit({"analysis/mmm_channel_contributions.json": _mmm_file()})
    params = AttributePathsParams(channel_map={"branded_search": "paid_search"})
    return attribute_paths(ws, params), root


def test_path_shares_sit_beside_the_mmm_shares_over_the_channels_both_know(reconciled):
    report, _ = reconciled
    rec = report.reconciliation
    assert [r.channel for r in rec.channels] == ["paid_search", "social", "display"]
    assert rec.mmm_channels_not_in_paths == ["tv"]
    assert set(rec.path_channels_not_in_mmm) == {"direct", "email", "video"}
    search = rec.channels[0]
    assert search.path_channels == ["branded_search", "paid_search"]
    # MMM shares renormalised over the matched channels: 0.3 / 0.6 = 0.5.
    assert search.mmm_share == pytest.approx(0.5)
    assert search.mmm_share_lower_90 == pytest.approx(0.22 / 0.6)
    for method in ("markov_order_1", "shapley", "last_touch"):
        assert sum(r.path_shares[method] for r in rec.channels) == pytest.approx(1.0)


def test_shares_outside_the_mmm_interval_are_flagged(reconciled):
    report, _ = reconciled
    for row in report.reconciliation.channels:
        outside = {
            m
            for m, s in row.path_shares.items()
            if not row.mmm_share_lower_90 <= s <= row.mmm_share_upper_90
        }
        assert set(row.disagreeing_methods) == outside
    flagged = [f for f in report.findings if f.code == "path_mmm_disagreement"]
    assert {f.subject for f in flagged} == {
        r.channel for r in report.reconciliation.channels if r.disagreeing_methods
    }


def test_the_calibrated_split_keeps_mmm_totals_and_records_its_omega_source(reconciled):
    report, root = reconciled
    split = report.reconciliation.calibrated_split
    omega = layout.PATH_CAMPAIGN_OMEGA.path
    assert split.file == omega and omega in report.outputs
    assert "path_credit" in split.omega_source
    table = pd.read_csv(root / omega)
    totals = table.groupby("mmm_channel")["calibrated_contribution"].sum()
    assert totals.to_dict() == pytest.approx({"paid_search": 300, "social": 200, "display": 100})
    assert table.groupby("mmm_channel")["omega"].sum().to_numpy() == pytest.approx(1.0)
    assert (table["calibrated_lower_90"] <= table["calibrated_contribution"]).all()
    assert set(table["omega_source"]) == {"path_credit:markov"}
    # Branded and generic search campaigns both share the MMM's paid_search total.
    assert set(table.loc[table["mmm_channel"] == "paid_search", "channel"]) == {
        "branded_search",
        "paid_search",
    }
    saved = json.loads((root / "analysis" / "path_attribution.json").read_text())
    assert saved["reconciliation"]["calibrated_split"]["n_campaigns"] == len(table)


def test_journeys_outside_the_mmm_window_are_a_warning(tmp_path):
    import datetime as dt

    from attribution_analysis.contracts.common import DataRange

    report = ChannelContributions.model_validate_json(_mmm_file())
    early = DataRange(
        start=dt.date(2019, 1, 7), end=dt.date(2020, 12, 28), grain="weekly", n_periods=104
    )
    report.metadata.data_range = early
    ws = Workspace.create(tmp_path)
    (tmp_path / "raw" / "journeys.csv").write_text(
        "journey_id,timestamp,channel,converted\nu1,2024-03-01,social,1\nu2,2024-03-02,display,0\n"
    )
    ws.commit(
        {"analysis/mmm_channel_contributions.json": json_bytes(report.model_dump(mode="json"))}
    )
    out = attribute_paths(ws, AttributePathsParams(bootstrap_replicates=0))
    assert out.reconciliation.dates_overlap is False
    assert out.reconciliation.mmm_shares_renormalised  # tv and paid_search have no journeys
    found = [f for f in out.findings if f.code == "dates_do_not_overlap"]
    assert found and "2024-03-01 to 2024-03-02" in found[0].message
    assert "2019-01-07 to 2020-12-28" in found[0].message
    # The last weekly period (starting 2020-12-28) covers up to 2021-01-03: overlap then.
    (tmp_path / "raw" / "journeys.csv").write_text(
        "journey_id,timestamp,channel,converted\nu1,2021-01-03,social,1\nu2,2021-01-03,display,0\n"
    )
    assert attribute_paths(
        ws, AttributePathsParams(bootstrap_replicates=0)
    ).reconciliation.dates_overlap
