"""Shared fixtures: simulated workspaces (built once per session) and the corpus."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

from attribution_analysis.api import simulate_workspace
from attribution_analysis.contracts.simulation import SimulationParams

# Property tests draw the same examples on every run: a default suite that fails at random
# teaches everyone to ignore red. HYPOTHESIS_PROFILE=random searches afresh (a bug hunt).
settings.register_profile("default-suite", derandomize=True, print_blob=True)
settings.register_profile("random", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default-suite"))

# The shared small NUTS fit (tests/mmm, tests/optimize): one session fixture for both.
pytest_plugins = ["tests.fitted_mmm"]

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(scope="session")
def simulated_root(tmp_path_factory: pytest.TempPathFactory):
    """Factory: a simulated workspace per parameter set, built once, copied per test."""
    cache: dict[str, Path] = {}

    def build(**kwargs) -> Path:
        params = SimulationParams(**kwargs)
        key = params.model_dump_json()
        if key not in cache:
            folder = tmp_path_factory.mktemp("sim")
            simulate_workspace(folder, params)
            cache[key] = folder
        return cache[key]

    return build


@pytest.fixture
def simulated(simulated_root, tmp_path: Path):
    """Factory: a private copy of a simulated workspace, safe to modify."""

    def make(**kwargs) -> Path:
        target = tmp_path / "ws"
        shutil.copytree(simulated_root(**kwargs), target)
        return target

    return make


@pytest.fixture
def validated_with_lift_test(simulated) -> Path:
    """A validated 60-week, 2-channel MMM workspace with one simulated lift test, private to
    the test (the lift-test checks edit it)."""
    from attribution_analysis.api import validate_data
    from attribution_analysis.workspace import Workspace

    root = simulated(kind="mmm", seed=1, weeks=60, channels=2, lift_tests=1)
    validate_data(Workspace.open(root))
    return root
