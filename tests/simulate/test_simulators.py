"""Simulators: reproducible byte for byte, and internally consistent with their truth."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.api import simulate_workspace
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.errors import WorkspaceError
from attribution_analysis.transforms import geometric_adstock, hill


def _digest(root) -> dict[str, str]:
    # The data, not the run registry (.attribution/: run ids and times of the recorded run).
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".attribution" not in p.relative_to(root).parts
    }


@pytest.mark.parametrize("kind", ["mmm", "mta", "hcp-brick"])
def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(kind, tmp_path):
    params = SimulationParams(
        kind=kind, seed=123, weeks=40, channels=3, lift_tests=1, n_hcps=60, n_bricks=12
    )
    simulate_workspace(tmp_path / "a", params)
    simulate_workspace(tmp_path / "b", params)
    simulate_workspace(tmp_path / "c", params.model_copy(update={"seed": 124}))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_refuses_to_mix_into_a_workspace_that_has_raw_files(tmp_path):
    params = SimulationParams(kind="mmm", weeks=30, channels=2)
    simulate_workspace(tmp_path, params)
    with pytest.raises(WorkspaceError, match="overwrite"):
        simulate_workspace(tmp_path, params.model_copy(update={"kind": "hcp-brick"}))
    simulate_workspace(tmp_path, params.model_copy(update={"kind": "hcp-brick"}), overwrite=True)
    assert not list((tmp_path / "raw").glob("campaign_spend_*"))


def test_mmm_truth_contributions_follow_from_the_raw_spend_and_true_parameters(simulated_root):
    root = simulated_root(kind="mmm", seed=21, weeks=104, channels=5)
    truth = json.loads((root / "truth" / "parameters.json").read_text())
    contributions = pd.read_csv(root / "truth" / "contributions.csv")
    for channel, p in truth["channels"].items():
        rows = contributions[contributions["channel"] == channel]
        spend = rows["spend"].to_numpy()
        raw = pd.concat(pd.read_csv(f) for f in (root / "raw").glob("campaign_spend_*.csv"))
        np.testing.assert_allclose(spend, raw.loc[raw["channel"] == channel, "spend"])
        expected = p["beta"] * hill(
            geometric_adstock(spend / spend.max(), p["adstock_alpha"], p["l_max"]),
            p["hill_slope"],
            p["hill_kappa"],
        )
        np.testing.assert_allclose(rows["contribution"], expected, rtol=1e-9)
    media = contributions["contribution"].sum()
    assert 0.15 < media / truth["outcome_total"] < 0.45  # media matters, but is not everything
    shares = [p["share_of_media"] for p in truth["channels"].values()]
    assert sum(shares) == pytest.approx(1.0)


def test_mmm_outcome_is_baseline_plus_media_plus_noise_of_the_stated_size(simulated_root):
    root = simulated_root(kind="mmm", seed=21, weeks=104, channels=5)
    truth = json.loads((root / "truth" / "parameters.json").read_text())
    conversions = pd.read_csv(root / "raw" / "conversions.csv")["conversions"].to_numpy()
    media = (
        pd.read_csv(root / "truth" / "contributions.csv")
        .groupby("date")["contribution"]
        .sum()
        .to_numpy()
    )
    residual_mean = (conversions - media).mean() - truth["baseline_total"] / len(conversions)
    noise_sd = truth["components"]["noise_sd"][0]
    assert abs(residual_mean) < 4 * noise_sd / np.sqrt(len(conversions))


def test_lift_tests_bracket_the_true_lift(simulated_root):
    root = simulated_root(kind="mmm", seed=21, weeks=104, channels=5, lift_tests=2)
    tests = json.loads((root / "analysis" / "incrementality_results.json").read_text())
    truth = json.loads((root / "truth" / "parameters.json").read_text())["lift_tests"]
    assert len(tests) == 2 and "true_lift" not in tests[0]
    for observed, true in zip(tests, truth, strict=True):
        assert observed["ci_lower"] <= observed["lift"] <= observed["ci_upper"]
        assert true["true_lift"] > 0
        # 10% standard error: the observed lift sits within 4 se of the truth.
        assert abs(observed["lift"] - true["true_lift"]) < 0.4 * true["true_lift"]


def test_geo_lift_tests_go_dark_in_one_geo_each(simulated_root):
    root = simulated_root(kind="mmm", seed=5, weeks=80, channels=3, geos=4, lift_tests=2)
    tests = json.loads((root / "analysis" / "incrementality_results.json").read_text())
    truth = json.loads((root / "truth" / "parameters.json").read_text())["lift_tests"]
    spend = pd.concat(pd.read_csv(f) for f in (root / "raw").glob("campaign_spend_*.csv"))
    contributions = pd.read_csv(root / "truth" / "contributions.csv")
    assert len({t["geo"] for t in tests}) == 2  # two markets, not two tests in one
    for observed, true in zip(tests, truth, strict=True):
        in_geo = (spend["geo"] == observed["geo"]) & (spend["channel"] == observed["channel"])
        window = spend["date"].between(observed["start"], observed["end"])
        # The spend switched off is that geo's spend of that channel in the window.
        assert observed["spend"] == pytest.approx(spend.loc[in_geo & window, "spend"].sum())
        assert observed["spend"] > 0
        # Going dark removes at most what the channel contributed there while it was dark and
        # over the carry-over after it (8 weeks), and something.
        after = pd.Timestamp(observed["end"]) + pd.Timedelta(weeks=8)
        cell = (contributions["geo"] == observed["geo"]) & (
            contributions["channel"] == observed["channel"]
        )
        held = contributions["date"].between(observed["start"], str(after.date()))
        assert 0 < true["true_lift"] <= contributions.loc[cell & held, "contribution"].sum()


def test_mta_campaigns_add_up_to_channels_and_the_true_split_to_the_contribution(simulated_root):
    root = simulated_root(kind="mta", seed=13, weeks=80, channels=4, collinear_pairs=1)
    raw = pd.concat(pd.read_csv(f) for f in (root / "raw").glob("campaign_spend_*.csv"))
    contributions = pd.read_csv(root / "truth" / "contributions.csv")
    split = pd.read_csv(root / "truth" / "campaign_split.csv")
    channel_spend = raw.groupby(["date", "channel"])["spend"].sum()
    truth_spend = contributions.set_index(["date", "channel"])["spend"]
    np.testing.assert_allclose(
        channel_spend.reindex(truth_spend.index, fill_value=0), truth_spend, atol=1e-6
    )
    per_cell = split.groupby(["date", "channel"])["contribution"].sum()
    target = contributions.set_index(["date", "channel"])["contribution"]
    np.testing.assert_allclose(
        per_cell.reindex(target.index, fill_value=0), target, rtol=1e-9, atol=1e-9
    )
    counts = pd.read_csv(root / "truth" / "campaign_productivity.csv").groupby("channel").size()
    assert counts.between(4, 12).all()
    pair = json.loads((root / "truth" / "campaigns.json").read_text())["collinear_campaigns"][0]
    a = raw[raw["campaign"] == pair[0]].set_index("date")["impressions"]
    b = raw[raw["campaign"] == pair[1]].set_index("date")["impressions"]
    joined = pd.concat([a, b], axis=1).fillna(0)
    ratio = joined.iloc[:, 1] / joined.iloc[:, 0].where(joined.iloc[:, 0] > 1000)
    assert ratio.dropna().between(0.69, 0.71).all()  # exactly proportional, up to rounding


def test_mta_productivity_has_mean_one_per_channel(simulated_root):
    root = simulated_root(kind="mta", seed=13, weeks=80, channels=4)
    meta = pd.read_csv(root / "truth" / "campaign_productivity.csv")
    np.testing.assert_allclose(meta.groupby("channel")["lambda_true"].mean(), 1.0)


def test_hcp_brick_sales_are_the_sum_of_latent_hcp_sales(simulated_root):
    root = simulated_root(kind="hcp-brick", seed=42)
    pairs = pd.read_csv(root / "truth" / "pair_truth.csv")
    sales = pd.read_csv(root / "raw" / "brick_sales.csv").set_index("brick_id")["sales"]
    np.testing.assert_allclose(pairs.groupby("brick_id")["z_true"].sum(), sales)
    hcps = pd.read_csv(root / "truth" / "hcp_truth.csv")
    beta = json.loads((root / "truth" / "parameters.json").read_text())["beta_true"]
    names = json.loads((root / "truth" / "parameters.json").read_text())["feature_names"]
    np.testing.assert_allclose(np.exp(hcps[names].to_numpy() @ beta), hcps["lambda_true"])
    assert len(hcps) == 400 and pairs["hcp_id"].nunique() == 400  # every HCP in >= 1 brick
    assert pairs["brick_id"].nunique() <= 80
    visits = pd.read_csv(root / "raw" / "hcp_brick.csv")
    assert set(visits.columns) == {"hcp_id", "brick_id", "visits"}


def test_hcp_brick_families_change_the_noise_not_the_mean(tmp_path):
    stats = {}
    for family in ("poisson", "negbin", "gamma"):
        folder = tmp_path / family
        simulate_workspace(
            folder,
            SimulationParams(
                kind="hcp-brick", seed=1, n_hcps=3000, n_bricks=300, hcp_family=family
            ),
        )
        pairs = pd.read_csv(folder / "truth" / "pair_truth.csv")
        pearson = ((pairs["z_true"] - pairs["mu"]) ** 2 / pairs["mu"]).mean()
        stats[family] = (pairs["z_true"].sum() / pairs["mu"].sum(), pearson)
    for ratio, _ in stats.values():
        assert ratio == pytest.approx(1.0, abs=0.03)
    assert stats["poisson"][1] == pytest.approx(1.0, abs=0.1)  # Poisson: variance = mean
    assert stats["negbin"][1] > 1.5  # overdispersed
    gamma_values = pd.read_csv(tmp_path / "gamma" / "truth" / "pair_truth.csv")["z_true"]
    assert (gamma_values % 1 != 0).any()  # euros, not units
