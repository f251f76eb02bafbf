"""Shared helpers for the allocation tests: small model-generated problems and workspaces.

Truth comes from two places only: the project's simulators (``truth/`` of a simulated
workspace) and, for engine-level tests, problems drawn here from the allocation model with a
fixed seed (the generating rates are the truth).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from attribution_analysis.allocation.problem import AllocationProblem, problem_from_arrays
from attribution_analysis.api import validate_data
from attribution_analysis.workspace import Workspace


@dataclass(frozen=True)
class Drawn:
    problem: AllocationProblem
    rate: np.ndarray  # true rates
    z: np.ndarray  # true parts per row


def draw_problem(
    seed: int,
    n_groups: int = 400,
    n_entities: int = 40,
    per_group: int = 6,
    family: str = "poisson",
    rate: np.ndarray | None = None,
    shape: float = 20.0,
) -> Drawn:
    """Groups of ``per_group`` distinct entities, exposures Gamma(2, 1), parts from the model."""
    rng = np.random.default_rng(seed)
    members = np.argsort(rng.random((n_groups, n_entities)), axis=1)[:, :per_group]
    group = np.repeat(np.arange(n_groups), per_group)
    entity = members.ravel()
    exposure = rng.gamma(2.0, 1.0, size=len(group))
    rate = rng.lognormal(0.0, 0.5, size=n_entities) if rate is None else rate
    mean = rate[entity] * exposure
    z = rng.poisson(mean).astype(float) if family == "poisson" else rng.gamma(shape, mean / shape)
    totals = np.bincount(group, z, n_groups)
    return Drawn(problem_from_arrays(totals, group, entity, exposure, n_entities), rate, z)


@pytest.fixture
def validated_mta(simulated_root, tmp_path: Path):
    """Factory: a private, validated copy of a simulated mta workspace."""
    cache: dict[str, Path] = {}

    def make(**kwargs) -> Path:
        key = json.dumps(kwargs, sort_keys=True)
        if key not in cache:
            target = tmp_path / f"mta{len(cache)}"
            shutil.copytree(simulated_root(kind="mta", **kwargs), target)
            validate_data(Workspace.open(target))
            cache[key] = target
        return cache[key]

    return make


def consistent_contributions(root: Path, seed: int, noise_shape: float = 50.0) -> str:
    """Write channel contributions that *depend on* campaign productivity.

    The mta simulator draws C(channel, week) from the channel's spend alone, so its totals
    carry no information about which campaigns are more productive. This rebuilds C from the
    truth files so that they do, keeping the simulator's split rule and the MMM's view of
    saturation:

        C_t = kappa * hill(A_t / max_t I_t) * sum_k lambda_k a_k,t e_k,t / A_t

    with a = the simulator's adstocked impressions, A_t their channel total, I_t the channel's
    raw impressions, e ~ Gamma(shape, 1/shape) and kappa matching the channel's total. The
    true split is still z = C lambda a e / sum(lambda a e). Returns the relative path.
    """
    split = pd.read_csv(root / "truth" / "campaign_split.csv")
    rates = pd.read_csv(root / "truth" / "campaign_productivity.csv").set_index("campaign")
    params = json.loads((root / "truth" / "parameters.json").read_text())["channels"]
    channel_totals = pd.read_csv(root / "truth" / "contributions.csv")
    rng = np.random.default_rng(seed)
    split = split.assign(
        weight=split["campaign"].map(rates["lambda_true"]).to_numpy()
        * split["adstocked_impressions"].to_numpy()
        * rng.gamma(noise_shape, 1.0 / noise_shape, size=len(split))
    )
    cells = split.groupby(["date", "channel"], as_index=False)[
        ["weight", "adstocked_impressions", "impressions"]
    ].sum()
    peak = cells.groupby("channel")["impressions"].transform("max")
    x = cells["adstocked_impressions"] / peak
    slope = cells["channel"].map({c: p["hill_slope"] for c, p in params.items()})
    kappa = cells["channel"].map({c: p["hill_kappa"] for c, p in params.items()})
    level = x**slope / (x**slope + kappa**slope)
    cells["contribution"] = level * cells["weight"] / cells["adstocked_impressions"]
    scale = (
        channel_totals.groupby("channel")["contribution"].sum()
        / cells.groupby("channel")["contribution"].sum()
    )
    cells["contribution"] *= cells["channel"].map(scale)
    relative = "analysis/consistent_contributions.csv"
    cells[["date", "channel", "contribution"]].to_csv(root / relative, index=False)
    return relative


def productivity_spearman(root: Path, report) -> float:
    """Spearman correlation of identified campaigns' rates with the simulator's truth
    (productivity relative to its channel's mean, as the report states its rates)."""
    truth = pd.read_csv(root / "truth" / "campaign_productivity.csv").set_index("campaign")
    relative = truth["lambda_true"] / truth.groupby("channel")["lambda_true"].transform("mean")
    ours = pd.Series(
        {
            e.entity: e.productivity
            for e in report.entities
            if e.credit_set is None and e.productivity is not None
        }
    )
    return float(spearmanr(ours, relative.reindex(ours.index)).statistic)
