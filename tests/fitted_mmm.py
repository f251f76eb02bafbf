"""A small real NUTS fit shared by the MMM and optimizer tests (the default suite keeps one
real fit).

Registered once for the whole suite by ``tests/conftest.py`` (``pytest_plugins``), so that
tests/mmm and tests/optimize share one session-scoped fit instead of fitting twice.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from attribution_analysis.api import fit_mmm, simulate_workspace, validate_data
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.workspace import Workspace

SMALL = SimulationParams(kind="mmm", seed=31, weeks=104, channels=3, lift_tests=1)
# The default fit, retry included, but never the ridge fallback: which model the tests get
# must not depend on whether these draws pass the gates.
FITTED = FitMMMParams(fallback_to_ridge=False)


@pytest.fixture(scope="session")
def fitted_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fitted")
    simulate_workspace(root, SMALL)
    ws = Workspace.open(root)
    validate_data(ws)
    fit_mmm(ws, FITTED)
    return root


@pytest.fixture
def fitted(fitted_root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(fitted_root, target)
    return target


@pytest.fixture(scope="session")
def validated_root(fitted_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared fit, validated (no backtest or vague-prior refit: they cost two fits)."""
    from attribution_analysis.api import validate_model

    root = tmp_path_factory.mktemp("validated") / "ws"
    shutil.copytree(fitted_root, root)
    validate_model(Workspace.open(root), backtest_periods=None, sensitivity_refit=False)
    return root


@pytest.fixture
def validated(validated_root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ws"
    shutil.copytree(validated_root, target)
    return target
