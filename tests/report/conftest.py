"""A full pipeline workspace for the report tests, built once per session (about 30 s).

Simulate (mta, small) -> validate_data -> fit_mmm (a short real NUTS run, calibrated with
the simulated lift test) -> validate_model -> decompose_contributions -> allocate. The chains
are short on purpose; when they miss the ESS gate the decomposition runs with a recorded
override, which the report must then show as such. One campaign is renamed to carry a
``<script>`` tag: campaign names are free text, so the report has to escape them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from attribution_analysis.api import (
    allocate,
    decompose_contributions,
    fit_mmm,
    simulate_workspace,
    validate_data,
    validate_model,
)
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.contracts.mmm import FitMMMParams, SamplerSettings
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.workspace import Workspace

SMALL = SimulationParams(kind="mta", seed=5, weeks=78, channels=3, lift_tests=1)
# 2 chains x 80 draws: ArviZ caps a bulk ESS at N log10(N) = 353 for N = 160, below the
# gate's 400, so the fit fails its gates for any draws and the override path is always the
# one taken (which branch the report tests see must not depend on the posterior).
SHORT_NUTS = SamplerSettings(draws=80, tune=500)
HOSTILE = "<script>alert(1)</script>"
OVERRIDE = "report tests: short chains on purpose"


def _rename_top_campaign(root: Path) -> str:
    """Give the campaign with the most spend a name with a script tag, in every file."""
    spend = pd.concat(pd.read_csv(p) for p in sorted((root / "raw").glob("campaign_spend_*.csv")))
    old = str(spend.groupby("campaign")["spend"].sum().idxmax())
    new = f"{old} {HOSTILE}"
    for folder in ("raw", "truth"):
        for path in sorted((root / folder).glob("*.csv")):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            if "campaign" in frame.columns:
                frame["campaign"] = frame["campaign"].replace(old, new)
                frame.to_csv(path, index=False)
    return new


def _model_and_allocate(ws: Workspace) -> str | None:
    """Validate, fit (calibrated, short chains), check, decompose and allocate: the steps
    every report fixture shares. Returns the override the short fit needed, if any."""
    validate_data(ws)
    fit_mmm(
        ws,
        FitMMMParams(calibrate=True, sampler=SHORT_NUTS, retry=False, fallback_to_ridge=False),
    )
    diagnostics = validate_model(ws, backtest_periods=None, sensitivity_refit=False)
    override = None if diagnostics.passed else OVERRIDE
    decompose_contributions(ws, override_reason=override)
    allocate(
        ws,
        AllocateParams(
            source="mta", family="gamma", covariates=["objective", "creative_family"], bootstrap=5
        ),
    )
    return override


@pytest.fixture(scope="session")
def pipeline_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report_pipeline")
    simulate_workspace(root, SMALL)
    _rename_top_campaign(root)
    _model_and_allocate(Workspace.open(root))
    return root


@pytest.fixture
def pipeline(pipeline_root: Path, tmp_path: Path) -> Path:
    """A private copy of the pipeline workspace, safe to modify."""
    target = tmp_path / "ws"
    shutil.copytree(pipeline_root, target)
    return target


@pytest.fixture(scope="session")
def demo_like_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's data (same simulator settings, so the same channels and lift tests) through
    every step up to the budget, with short chains: what `make demo` writes, without relying
    on demo_workspace/ existing (it is not in a clean clone)."""
    from attribution_analysis.api import optimize_budget
    from attribution_analysis.contracts.budget import OptimizeBudgetParams
    from attribution_analysis.demo import DEMO

    root = tmp_path_factory.mktemp("demo_like") / "demo"
    simulate_workspace(root, DEMO)
    ws = Workspace.open(root)
    override = _model_and_allocate(ws)
    scenarios = [{"kind": "total_change", "change": c} for c in (0.1, -0.1)]
    optimize_budget(
        ws,
        OptimizeBudgetParams.model_validate({"scenarios": scenarios, "override_reason": override}),
    )
    return root


@pytest.fixture
def demo(demo_like_root: Path, tmp_path: Path) -> Path:
    """A private copy of the demo-like workspace (every step, budget included), safe to
    modify; without reports/, so each test writes its own."""
    target = tmp_path / "demo"
    shutil.copytree(demo_like_root, target, ignore=shutil.ignore_patterns("reports"))
    return target
