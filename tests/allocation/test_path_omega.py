"""Allocation with path credit as ω (omega_source='path_credit'): a hand-checked split,
a simulated workspace end to end, and the refusals of missing or stale path files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attribution_analysis.allocation.path_omega import PATH_REPORT
from attribution_analysis.allocation.step import ALLOCATION_PATH, SUMMARY_PATH
from attribution_analysis.api import allocate, attribute_paths
from attribution_analysis.cli import app
from attribution_analysis.contracts.allocation import AllocateParams, AllocationReport
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.errors import MissingInputError, ParameterError, WorkspaceError
from attribution_analysis.paths.campaign_credit import CREDIT_PATH
from attribution_analysis.workspace import Workspace
from tests.conftest import REPO

MASS_TOL = 1e-9
WEEKS = ["2024-01-01", "2024-01-08", "2024-01-15"]
# Impressions per week: s2 outweighs s1 three to one, so a split by exposure (25/75) is
# easy to tell from the split by path credit below.
IMPRESSIONS = {
    ("search", "s1"): [100, 100, 100],
    ("search", "s2"): [300, 300, 300],
    ("social", "f1"): [50, 50, 0],
    ("social", "f2"): [200, 200, 200],
}
CONTRIBUTIONS = {"search": [100.0, 60.0, 80.0], "social": [50.0, 90.0, 30.0]}
# Conversion day = day of the journey's last touch; linear credit splits each conversion
# equally over its touches.
JOURNEYS = """journey_id,timestamp,channel,campaign,converted
j1,2024-01-02,search,s1,1
j1,2024-01-03,social,f1,1
j2,2024-01-04,search,s2,1
j3,2024-01-05,search,s1,1
j3,2024-01-06,search,s2,1
j4,2024-01-09,social,f2,1
j4,2024-01-10,search,s1,1
j5,2024-01-11,social,f1,1
j5,2024-01-12,social,f2,1
j6,2024-01-02,social,f2,0
j7,2024-01-06,search,s2,1
j7,2024-01-09,search,s1,1
"""
# Worked by hand from JOURNEYS (linear credit by conversion week):
#   week 1 (converted 01-01..01-07): j1 s1 .5 f1 .5; j2 s2 1; j3 s1 .5 s2 .5
#       -> search s1 1.0, s2 1.5 (40% / 60%); social f1 .5, f2 0 (100% / 0%)
#   week 2 (01-08..01-14): j4 f2 .5 s1 .5; j5 f1 .5 f2 .5; j7 s2 .5 s1 .5 (it converts on
#       01-09, so the 01-06 touch counts in week 2) -> search s1 1.0, s2 .5 (2/3, 1/3);
#       social f1 .5, f2 1.0 (1/3, 2/3)
#   week 3: no journeys -> fallback: each live campaign's total credit (s1 2, s2 2, f1 1,
#       f2 1) per period; f1 has no impressions in week 3, so social goes to f2 alone.
EXPECTED = {
    ("search", WEEKS[0], "s1"): 100 * 0.4,
    ("search", WEEKS[0], "s2"): 100 * 0.6,
    ("search", WEEKS[1], "s1"): 60 * 2 / 3,
    ("search", WEEKS[1], "s2"): 60 / 3,
    ("search", WEEKS[2], "s1"): 80 / 2,
    ("search", WEEKS[2], "s2"): 80 / 2,
    ("social", WEEKS[0], "f1"): 50.0,
    ("social", WEEKS[1], "f1"): 90 / 3,
    ("social", WEEKS[1], "f2"): 90 * 2 / 3,
    ("social", WEEKS[2], "f2"): 30.0,
}
TRANSFORMS = {"search": {"alpha": 0.0, "l_max": 1}, "social": {"alpha": 0.0, "l_max": 1}}
PATHS = AttributePathsParams(
    method="heuristics", calibration_method="linear", bootstrap_replicates=0, reconcile=False
)
# covariates=['channel']: one rate per channel, so productivity is uniform within a channel
# and the split is the path credit's proportions exactly.
UNIFORM = AllocateParams(
    source="mta",
    omega_source="path_credit",
    covariates=["channel"],
    contributions="analysis/contributions.csv",
    transforms=TRANSFORMS,
    bootstrap=0,
)


def _hand_workspace(root) -> Workspace:
    ws = Workspace.create(root)
    panel = pd.DataFrame(
        [
            {"date": week, "channel": ch, "campaign": c, "spend": n / 10, "impressions": n}
            for (ch, c), values in IMPRESSIONS.items()
            for week, n in zip(WEEKS, values, strict=True)
        ]
    )
    panel.to_csv(root / "analysis" / "prepared_campaign_panel.csv", index=False)
    contributions = pd.DataFrame(
        [
            {"date": week, "channel": ch, "contribution": value}
            for ch, values in CONTRIBUTIONS.items()
            for week, value in zip(WEEKS, values, strict=True)
        ]
    )
    contributions.to_csv(root / "analysis" / "contributions.csv", index=False)
    (root / "raw" / "journeys.csv").write_text(JOURNEYS)
    return ws


def _allocated(root) -> dict[tuple[str, str, str], float]:
    table = pd.read_csv(root / ALLOCATION_PATH, dtype={"entity": str, "date": str})
    return {
        (r.channel, r.date, r.entity): r.allocated for r in table.itertuples() if r.allocated > 0
    }


def test_uniform_productivity_splits_each_week_by_its_path_credit(tmp_path):
    ws = _hand_workspace(tmp_path)
    attribute_paths(ws, PATHS)
    report = allocate(ws, UNIFORM)
    assert _allocated(tmp_path) == pytest.approx(EXPECTED, rel=1e-9)
    omega = report.omega
    assert omega.source == "path_credit:linear" and omega.method == "linear"
    assert (omega.groups_dated, omega.groups_fallback, omega.groups_without_credit) == (4, 2, 0)
    # Totals: 300 (dated weeks) + 110 (week 3) of 410.
    assert omega.total_share_fallback == pytest.approx(110 / 410)
    assert report.mass_conservation_max_rel_error < MASS_TOL
    # The same workspace split by exposure gives week 1's search 25 / 75, not 40 / 60.
    allocate(ws, UNIFORM.model_copy(update={"omega_source": "exposure"}))
    by_exposure = _allocated(tmp_path)
    assert by_exposure[("search", WEEKS[0], "s1")] == pytest.approx(25.0)


def test_fallback_weights_are_mean_credit_per_period_on_the_dated_scale(tmp_path):
    # The scale matters once rates differ between cells: a fallback cell's ω must be
    # comparable with a dated cell's. Journeys run 01-02..01-12 (11 days), periods are 7 days:
    # mean credit per period = total credit x 7 / 11 (totals: s1 2, s2 2, f2 1).
    ws = _hand_workspace(tmp_path)
    attribute_paths(ws, PATHS)
    allocate(ws, UNIFORM)
    table = pd.read_csv(tmp_path / ALLOCATION_PATH, dtype={"entity": str, "date": str})
    omega = {(r.date, r.entity): r.exposure for r in table.itertuples() if r.exposure > 0}
    assert omega[(WEEKS[2], "s1")] == pytest.approx(2 * 7 / 11)
    assert omega[(WEEKS[2], "s2")] == pytest.approx(2 * 7 / 11)
    assert omega[(WEEKS[2], "f2")] == pytest.approx(1 * 7 / 11)
    assert omega[(WEEKS[0], "s1")] == pytest.approx(1.0)  # dated: week 1's own credit
    assert omega[(WEEKS[1], "f2")] == pytest.approx(1.0)


# Conversions on the first and last days of the weeks, one with a time-zone offset: 23:30 on
# Sunday 01-07 in New York is Monday 04:30 UTC, but the user converted on Sunday (week 1).
BOUNDARY_JOURNEYS = """journey_id,timestamp,channel,campaign,converted
b1,2024-01-07T23:30:00-05:00,search,s1,1
b2,2024-01-08T00:00:00,search,s2,1
b3,2024-01-14T23:59:00,search,s2,1
b4,2024-01-15T00:00:00,search,s1,1
b5,2024-01-02T10:00:00,social,f1,1
b6,2024-01-09T10:00:00,social,f2,1
b7,2024-01-16T10:00:00,social,f2,1
"""


def test_conversions_fall_in_the_week_of_their_local_day(tmp_path):
    ws = _hand_workspace(tmp_path)
    (tmp_path / "raw" / "journeys.csv").write_text(BOUNDARY_JOURNEYS)
    attribute_paths(ws, PATHS)
    report = allocate(ws, UNIFORM)
    assert report.omega.groups_fallback == 0  # every week has its own conversions
    # Each search week has one converting campaign, which takes the whole week.
    assert _allocated(tmp_path) == pytest.approx(
        {
            ("search", WEEKS[0], "s1"): 100.0,
            ("search", WEEKS[1], "s2"): 60.0,
            ("search", WEEKS[2], "s1"): 80.0,
            ("social", WEEKS[0], "f1"): 50.0,
            ("social", WEEKS[1], "f2"): 90.0,
            ("social", WEEKS[2], "f2"): 30.0,
        },
        rel=1e-9,
    )


def test_the_summary_records_the_omega_source_and_the_path_report_hash(tmp_path):
    ws = _hand_workspace(tmp_path)
    attribute_paths(ws, PATHS)
    allocate(ws, UNIFORM)
    summary = AllocationReport.model_validate_json((tmp_path / SUMMARY_PATH).read_text())
    path_hash = ws.sha256(tmp_path / PATH_REPORT)
    assert summary.omega.path_attribution_sha256 == path_hash
    assert summary.metadata.input_hashes[PATH_REPORT] == path_hash
    assert summary.metadata.input_hashes[CREDIT_PATH] == ws.sha256(tmp_path / CREDIT_PATH)
    assert summary.metadata.extra["omega_source"] == "path_credit:linear"
    assert summary.metadata.extra["path_attribution_sha256"] == path_hash
    assert any(f.code == "omega_from_path_credit" for f in summary.findings)


def test_without_the_path_report_the_error_says_to_run_attribute_paths(tmp_path):
    ws = _hand_workspace(tmp_path)
    with pytest.raises(MissingInputError, match="attribute_paths") as caught:
        allocate(ws, UNIFORM)
    assert caught.value.file == PATH_REPORT
    assert not (tmp_path / ALLOCATION_PATH).exists()


def test_the_pre_job_check_refuses_a_missing_path_report(tmp_path):
    # The MCP server and the CLI run this check before starting the allocation job.
    from attribution_analysis.steps import step

    ws = _hand_workspace(tmp_path)
    with pytest.raises(MissingInputError, match="attribute_paths"):
        step("allocate").check(ws, UNIFORM)
    attribute_paths(ws, PATHS)
    step("allocate").check(ws, UNIFORM)


def test_changed_journeys_make_the_path_credit_stale(tmp_path):
    ws = _hand_workspace(tmp_path)
    attribute_paths(ws, PATHS)
    with (tmp_path / "raw" / "journeys.csv").open("a") as handle:
        handle.write("j8,2024-01-13,search,s2,1\n")
    with pytest.raises(WorkspaceError, match="stale") as caught:
        allocate(ws, UNIFORM)
    assert "attribute_paths" in caught.value.fix
    assert not (tmp_path / ALLOCATION_PATH).exists()


def test_an_edited_credit_file_is_refused_as_stale(tmp_path):
    ws = _hand_workspace(tmp_path)
    attribute_paths(ws, PATHS)
    credit = tmp_path / CREDIT_PATH
    credit.write_text(credit.read_text().replace(",1\n", ",5\n", 1))
    with pytest.raises(WorkspaceError, match="sha256") as caught:
        allocate(ws, UNIFORM)
    assert caught.value.file == CREDIT_PATH


def test_journeys_without_campaigns_give_no_path_omega(tmp_path):
    ws = _hand_workspace(tmp_path)
    text = "\n".join(
        ",".join(p for i, p in enumerate(line.split(",")) if i != 3)
        for line in JOURNEYS.splitlines()
    )
    (tmp_path / "raw" / "journeys.csv").write_text(text + "\n")
    attribute_paths(ws, PATHS)
    with pytest.raises(MissingInputError, match="no campaign credit"):
        allocate(ws, UNIFORM)


def test_path_omega_is_refused_for_hcp_brick(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    with pytest.raises(ParameterError, match="omega_source"):
        allocate(Workspace.open(root), AllocateParams(omega_source="path_credit", bootstrap=0))


# ----- a simulated mta workspace with journeys over its own campaigns ------------------------
def _journeys_for(root, seed: int, weeks: slice) -> pd.DataFrame:
    """Journeys over the workspace's own campaigns (the journeys simulator has its own
    channels and campaigns, so it cannot share them): in each week of ``weeks``, users touch
    1-3 campaigns live that week and convert with a probability that grows with touches."""
    panel = pd.read_csv(root / "analysis" / "prepared_campaign_panel.csv", dtype={"date": str})
    live = panel[panel["impressions"] > 0]
    dates = sorted(live["date"].unique())[weeks]
    rng = np.random.default_rng(seed)
    rows = []
    for w, week in enumerate(dates):
        options = live[live["date"] == week][["channel", "campaign"]].to_numpy()
        for u in range(60):
            touches = options[rng.integers(0, len(options), rng.integers(1, 4))]
            converted = int(rng.random() < 0.1 + 0.15 * len(touches))
            start = pd.Timestamp(week) + pd.Timedelta(hours=int(rng.integers(0, 100)))
            for k, (channel, campaign) in enumerate(touches):
                stamp = start + pd.Timedelta(hours=12 * k)
                rows.append((f"w{w}u{u}", stamp.isoformat(), channel, campaign, converted))
    return pd.DataFrame(
        rows, columns=["journey_id", "timestamp", "channel", "campaign", "converted"]
    )


def test_path_omega_on_a_simulated_workspace_conserves_mass_and_records_its_source(
    validated_mta,
):
    root = validated_mta(seed=4, weeks=30, channels=2)
    _journeys_for(root, seed=1, weeks=slice(8, 20)).to_csv(
        root / "raw" / "journeys.csv", index=False
    )
    ws = Workspace.open(root)
    paths = attribute_paths(ws, AttributePathsParams(method="markov", bootstrap_replicates=0))
    assert paths.campaign_credit is not None and paths.campaign_credit.method == "markov"
    report = allocate(ws, AllocateParams(omega_source="path_credit", bootstrap=0))
    assert report.omega.source == "path_credit:markov"
    assert report.omega.groups_dated > 0 and report.omega.groups_fallback > 0
    assert report.mass_conservation_max_rel_error < MASS_TOL
    table = pd.read_csv(root / ALLOCATION_PATH, dtype={"group": str})
    truth = pd.read_csv(root / "truth" / "contributions.csv", dtype={"date": str})
    cells = truth.assign(group=truth["channel"] + "|" + truth["date"]).set_index("group")
    allocated = table.groupby("group")["allocated"].sum()
    unallocated = {g.group for g in report.unallocated_groups}
    assert not unallocated & set(allocated.index)
    kept = cells.loc[~cells.index.isin(unallocated), "contribution"]
    np.testing.assert_allclose(
        allocated.reindex(kept.index).to_numpy(), kept.to_numpy(), rtol=MASS_TOL
    )
    for block in report.block_totals:
        assert block.relative_error < MASS_TOL
    saved = json.loads((root / SUMMARY_PATH).read_text())
    assert saved["omega"]["source"] == "path_credit:markov"
    assert saved["metadata"]["input_hashes"][PATH_REPORT] == ws.sha256(root / PATH_REPORT)


# ----- the script and the command run the same step -----------------------------------------
def test_the_script_and_the_command_allocate_by_path_credit(tmp_path):
    ws = _hand_workspace(tmp_path)
    attribute_paths(ws, PATHS)
    (tmp_path / "analysis" / "transforms.json").write_text(json.dumps(TRANSFORMS))
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "allocate.py"),
            "--workspace",
            str(tmp_path),
            "--source",
            "mta",
            "--omega-source",
            "path_credit",
            "--covariates",
            '["channel"]',  # list parameters take JSON on the command line
            "--contributions",
            "analysis/contributions.csv",
            "--transforms-file",
            "analysis/transforms.json",
            "--bootstrap",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok" and payload["omega_source"] == "path_credit:linear"
    assert _allocated(tmp_path) == pytest.approx(EXPECTED, rel=1e-9)

    # The command reads the default inputs: contributions and transforms where the MMM
    # steps (here: a simulated workspace's truth/) would have put them.
    (tmp_path / "truth").mkdir()
    shutil.copy(
        tmp_path / "analysis" / "contributions.csv", tmp_path / "truth" / "contributions.csv"
    )
    (tmp_path / "analysis" / "mmm_transforms.json").write_text(json.dumps(TRANSFORMS))
    (tmp_path / ALLOCATION_PATH).unlink()
    cli = CliRunner().invoke(
        app,
        [
            "allocate",
            "--workspace",
            str(tmp_path),
            "--source",
            "mta",
            "--omega-source",
            "path_credit",
            "--covariates",
            '["channel"]',  # list parameters take JSON on the command line
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["omega_source"] == "path_credit:linear"
    assert _allocated(tmp_path) == pytest.approx(EXPECTED, rel=1e-9)
