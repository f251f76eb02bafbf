"""The allocate step end to end on simulated workspaces, checked against truth/."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.step import ALLOCATION_PATH, SUMMARY_PATH
from attribution_analysis.api import allocate
from attribution_analysis.contracts.allocation import AllocateParams, AllocationReport
from attribution_analysis.registry import RunRegistry
from attribution_analysis.workspace import Workspace
from tests.allocation.conftest import consistent_contributions, productivity_spearman

COVARIATES = ["specialty", "seniority/10", "log1p(potential)"]
# Named tolerances (see the slow multi-seed tests for the spread behind them):
ORACLE_SHARE = 0.97  # covariate EM reaches >= 97% of the oracle's corr(credit, true z)
NAIVE_MARGIN = 0.03  # ... and beats the split by visits alone by a clear margin
LOG_RATE_CORR = 0.90  # corr(X beta_hat, X beta_true) on this seed (80 bricks; sd ~0.04)
MASS_TOL = 1e-9
RANK_SPEARMAN = 0.8  # campaign productivity ranks when the totals carry the signal


def hcp_truth(root):
    pairs = pd.read_csv(root / "truth" / "pair_truth.csv", dtype={"hcp_id": str})
    hcps = pd.read_csv(root / "truth" / "hcp_truth.csv", dtype={"hcp_id": str})
    return pairs, hcps.set_index("hcp_id")["lambda_true"]


def split_by(pairs: pd.DataFrame, rate: pd.Series) -> np.ndarray:
    """Brick sales split by rate x exposure, computed from the truth files alone."""
    weight = pairs["hcp_id"].map(rate) * pairs["exposure"]
    brick = pairs.groupby("brick_id")["z_true"].transform("sum")
    return (brick * weight / weight.groupby(pairs["brick_id"]).transform("sum")).to_numpy()


def test_hcp_covariate_em_nearly_matches_the_oracle_split(simulated):
    root = simulated(kind="hcp-brick", seed=7)
    report = allocate(Workspace.open(root), AllocateParams(covariates=COVARIATES, bootstrap=0))
    table = pd.read_csv(root / ALLOCATION_PATH, dtype={"group": str, "entity": str})
    pairs, rate_true = hcp_truth(root)
    merged = pairs.merge(
        table, left_on=["brick_id", "hcp_id"], right_on=["group", "entity"], suffixes=("", "_ours")
    )
    assert len(merged) == len(pairs) == len(table)
    ours = np.corrcoef(merged["allocated"], merged["z_true"])[0, 1]
    oracle = np.corrcoef(split_by(merged, rate_true), merged["z_true"])[0, 1]
    naive = np.corrcoef(split_by(merged, rate_true * 0 + 1), merged["z_true"])[0, 1]
    assert ours >= ORACLE_SHARE * oracle, (ours, oracle)
    assert ours >= naive + NAIVE_MARGIN, (ours, naive)
    rates = {e.entity: e.rate for e in report.entities}
    log_rate = np.log(rate_true.index.map(rates).to_numpy(dtype=float))
    assert np.corrcoef(log_rate, np.log(rate_true.to_numpy()))[0, 1] >= LOG_RATE_CORR
    assert report.m_step == "glm" and report.convergence.converged
    assert report.convergence.monotone


def test_hcp_credit_adds_up_to_every_bricks_sales(simulated):
    root = simulated(kind="hcp-brick", seed=7)
    allocate(Workspace.open(root), AllocateParams(bootstrap=0))
    table = pd.read_csv(root / ALLOCATION_PATH, dtype={"group": str})
    sales = pd.read_csv(root / "raw" / "brick_sales.csv", dtype={"brick_id": str})
    summed = table.groupby("group")["allocated"].sum().reindex(sales["brick_id"])
    assert np.allclose(summed.to_numpy(), sales["sales"].to_numpy(), rtol=MASS_TOL, atol=0)
    summary = AllocationReport.model_validate_json((root / SUMMARY_PATH).read_text())
    assert summary.mass_conservation_max_rel_error < MASS_TOL


def test_free_rates_on_hcp_data_are_flagged_as_overfitting(simulated):
    root = simulated(kind="hcp-brick", seed=7)
    report = allocate(Workspace.open(root), AllocateParams(pooling="none", bootstrap=10))
    codes = {f.code for f in report.findings}
    assert {"free_rates_not_identified", "saturated_fit"} <= codes
    assert report.pooling is not None and report.pooling.pooling == "none"
    assert report.identifiability.free_rates_identified is False
    pairs, rate_true = hcp_truth(root)
    table = pd.read_csv(root / ALLOCATION_PATH, dtype={"group": str, "entity": str})
    merged = pairs.merge(
        table, left_on=["brick_id", "hcp_id"], right_on=["group", "entity"], suffixes=("", "_ours")
    )
    ours = np.corrcoef(merged["allocated"], merged["z_true"])[0, 1]
    oracle = np.corrcoef(split_by(merged, rate_true), merged["z_true"])[0, 1]
    assert ours < 0.95 * oracle  # the overfit is real, not only a warning


def test_mta_campaign_credit_adds_up_to_each_channel_contribution(validated_mta):
    root = validated_mta(seed=7, collinear_pairs=1)
    report = allocate(Workspace.open(root), AllocateParams(bootstrap=0))
    table = pd.read_csv(root / ALLOCATION_PATH)
    contributions = pd.read_csv(root / "truth" / "contributions.csv")
    channel_total = contributions.groupby("channel")["contribution"].sum()
    unallocated = pd.Series(
        {g.group.split("|")[0]: 0.0 for g in report.unallocated_groups}, dtype=float
    )
    for g in report.unallocated_groups:
        unallocated[g.group.split("|")[0]] += g.total
    credit = table.groupby("channel")["allocated"].sum()
    expected = channel_total - unallocated.reindex(channel_total.index).fillna(0.0)
    assert np.allclose(credit.reindex(expected.index), expected, rtol=MASS_TOL, atol=0)
    assert all(b.relative_error < MASS_TOL for b in report.block_totals)


def test_mta_collinear_campaigns_are_reported_as_one_credit_set(validated_mta):
    root = validated_mta(seed=7, collinear_pairs=1)
    report = allocate(Workspace.open(root), AllocateParams(bootstrap=0))
    truth = json.loads((root / "truth" / "campaigns.json").read_text())["collinear_campaigns"]
    found = [sorted(s.entities) for s in report.identifiability.credit_sets]
    assert found == [sorted(pair) for pair in truth]
    table = pd.read_csv(root / ALLOCATION_PATH)
    flagged = table[table["campaign" if "campaign" in table else "entity"].isin(truth[0])]
    assert not flagged["identified"].any() and flagged["credit_set"].notna().all()


def test_channel_totals_that_follow_spend_alone_are_flagged_not_ranked(validated_mta):
    """Negative control: totals proportional to channel spend (what an MMM fitted on channel
    spend hands over) carry no campaign-mix signal; the step must say so, not rank noise."""
    root = validated_mta(seed=7, collinear_pairs=1)
    truth = pd.read_csv(root / "truth" / "contributions.csv")
    spend_only = truth[["date", "channel"]].assign(contribution=truth["spend"] * 0.05)
    spend_only.to_csv(root / "analysis" / "spend_only_contributions.csv", index=False)
    report = allocate(
        Workspace.open(root),
        AllocateParams(contributions="analysis/spend_only_contributions.csv", bootstrap=0),
    )
    flagged = {f.subject for f in report.findings if f.code == "no_productivity_evidence"}
    assert len(flagged) >= 2, [e.model_dump() for e in report.identifiability.evidence]
    assert report.truth_recovery.rank_spearman < 0.6


def test_mta_productivity_ranks_are_recovered_when_totals_carry_the_signal(validated_mta):
    root = validated_mta(seed=7, collinear_pairs=1)
    path = consistent_contributions(root, seed=7)
    report = allocate(
        Workspace.open(root), AllocateParams(contributions=path, family="gamma", bootstrap=0)
    )
    rho = productivity_spearman(root, report)
    assert rho >= RANK_SPEARMAN, rho
    assert not any(f.code == "no_productivity_evidence" for f in report.findings)


def test_contribution_draws_give_campaign_intervals_that_add_up_draw_by_draw(validated_mta):
    root = validated_mta(seed=5, weeks=60, channels=2)
    contributions = pd.read_csv(root / "truth" / "contributions.csv")
    rng = np.random.default_rng(0)
    draws = pd.concat(
        [
            contributions[["date", "channel"]].assign(
                draw=d, contribution=contributions["contribution"] * rng.gamma(20, 1 / 20)
            )
            for d in range(50)
        ]
    )
    draws.to_csv(root / "analysis" / "draws.csv", index=False)
    report = allocate(
        Workspace.open(root), AllocateParams(contributions="analysis/draws.csv", bootstrap=0)
    )
    table = pd.read_csv(root / ALLOCATION_PATH)
    assert {"lower_90", "upper_90"} <= set(table.columns)
    assert (table["lower_90"] <= table["allocated"] + 1e-9).all()
    assert (table["allocated"] <= table["upper_90"] + 1e-9).all()
    for entity in report.entities:
        assert entity.total_allocated_lower_90 <= entity.total_allocated
        assert entity.total_allocated <= entity.total_allocated_upper_90


def test_the_run_is_recorded_with_its_input_hashes_and_outputs(simulated):
    root = simulated(kind="hcp-brick", seed=7)
    ws = Workspace.open(root)
    report = allocate(ws, AllocateParams(bootstrap=0))
    (run,) = RunRegistry(ws).list_runs(step="allocate")
    assert run["status"] == "succeeded" and run["run_id"] == report.metadata.run_id
    assert set(run["input_hashes"]) == {"raw/brick_sales.csv", "raw/hcp_brick.csv", "raw/hcps.csv"}
    assert set(run["outputs"]) == {ALLOCATION_PATH, SUMMARY_PATH}
    assert report.metadata.input_hashes == run["input_hashes"]


def test_a_failed_run_leaves_earlier_outputs_untouched_and_is_recorded(simulated):
    root = simulated(kind="hcp-brick", seed=7)
    ws = Workspace.open(root)
    allocate(ws, AllocateParams(bootstrap=0))
    before = {p: (root / p).read_bytes() for p in (ALLOCATION_PATH, SUMMARY_PATH)}
    sales = root / "raw" / "brick_sales.csv"
    sales.write_text(sales.read_text().replace("B001,", "B001,-"))
    with pytest.raises(Exception, match="negative"):
        allocate(ws, AllocateParams(bootstrap=0))
    assert {p: (root / p).read_bytes() for p in before} == before
    assert not list((root / "analysis").glob(".*.tmp"))
    last = RunRegistry(ws).list_runs(step="allocate")[0]
    assert last["status"] == "failed" and "negative" in last["error"]


def test_one_rate_per_channel_has_no_ranking_to_recover_and_still_writes(validated_mta):
    """covariates=['channel'] gives every campaign of a channel the same productivity: the
    rank correlation with the truth is undefined (null), not a non-finite number that would
    refuse the whole summary."""
    root = validated_mta(seed=3, weeks=40, channels=2)
    report = allocate(Workspace.open(root), AllocateParams(covariates=["channel"], bootstrap=0))
    assert report.truth_recovery is not None and report.truth_recovery.rank_spearman is None
    assert (root / SUMMARY_PATH).is_file()


def test_the_answer_carries_what_the_agent_quotes(validated_mta):
    """The step's answer (MCP tool, CLI, scripts): the settings, identifiability, the
    coefficients with their 90% intervals and every finding, typed by AllocateAnswer."""
    from attribution_analysis.contracts.allocation import AllocateAnswer
    from attribution_analysis.steps import execute, step

    root = validated_mta(seed=7, collinear_pairs=1)
    spec = step("allocate")
    assert spec.answer is AllocateAnswer
    answer = AllocateAnswer.model_validate(
        execute(spec, Workspace.open(root), AllocateParams(covariates=["channel"], bootstrap=0))
    )
    summary = AllocationReport.model_validate_json((root / SUMMARY_PATH).read_text())
    assert answer.outputs == [ALLOCATION_PATH, SUMMARY_PATH]
    assert answer.omega_source == "effective_exposure" and answer.m_step == "glm"
    assert answer.coefficients == summary.coefficients and answer.coefficients
    assert answer.credit_sets == [s.entities for s in summary.identifiability.credit_sets]
    assert answer.findings == summary.findings
    assert all(f.severity != "info" for f in answer.warnings)
    assert answer.converged is True and answer.bayes is None
