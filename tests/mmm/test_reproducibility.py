"""Same inputs and seed, same posterior, whatever the state of the compile caches.

PyTensor compiles with Numba and caches every op's function on disk; with Numba's fastmath
on, a function compiled fresh and the same function loaded from the cache could round
differently, and NUTS turned that last bit into a different chain (``numerics.py``). Here two
fresh processes fit the same workspace: the first with empty PyTensor and Numba caches, the
second with the caches the first one filled. Their draws must be identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attribution_analysis.api import simulate_workspace, validate_data
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.mmm import store
from attribution_analysis.workspace import Workspace

FIT = """
import json, sys
from attribution_analysis.contracts.mmm import FitMMMParams, SamplerSettings
from attribution_analysis.api import fit_mmm
from attribution_analysis.workspace import Workspace

results = []
for seed in json.loads(sys.argv[2]):
    params = FitMMMParams(
        sampler=SamplerSettings(draws=100, tune=100), seed=seed, retry=False,
        fallback_to_ridge=False, use_cache=False,
    )
    result = fit_mmm(Workspace.open(sys.argv[1]), params)
    results.append({"model_path": result.model_path, "reused": result.compile_reused})
print(json.dumps(results))
"""


def _fit_in_fresh_process(root: Path, caches: Path, seeds: list[int]) -> list[dict]:
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": f"base_compiledir={caches / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(caches / "numba"),
    }
    done = subprocess.run(
        [sys.executable, "-c", FIT, str(root), json.dumps(seeds)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _draws(root: Path, relative: str) -> dict[str, np.ndarray]:
    posterior = store.load_tree(Workspace.open(root), relative)["posterior"].to_dataset()
    return {name: posterior[name].values for name in posterior.data_vars}


# Slow: two fresh processes, one compiling from empty caches (about 80 s). The default suite
# keeps the in-process bit-equality check (test_fit.py: reuse against a fresh compile).
@pytest.mark.slow
def test_a_cold_and_a_warm_compile_cache_give_the_same_draws(tmp_path: Path):
    source = tmp_path / "source"
    simulate_workspace(source, SimulationParams(kind="mmm", seed=8, weeks=80, channels=2))
    validate_data(Workspace.open(source))
    cold_ws, warm_ws = tmp_path / "cold", tmp_path / "warm"
    shutil.copytree(source, cold_ws)
    shutil.copytree(source, warm_ws)
    caches = tmp_path / "caches"

    (cold,) = _fit_in_fresh_process(cold_ws, caches, [7])
    numba_files = list(caches.rglob("*.nbi"))
    assert numba_files, "the first process should have filled the empty Numba cache"
    # The second process loads what the first compiled; seed 8 is the negative control.
    warm, other_seed = _fit_in_fresh_process(warm_ws, caches, [7, 8])
    assert len(list(caches.rglob("*.nbi"))) == len(numba_files), (
        "the warm process should have compiled nothing new"
    )

    a, b = _draws(cold_ws, cold["model_path"]), _draws(warm_ws, warm["model_path"])
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    # Not vacuous: the draws vary, and another seed gives other draws.
    c = _draws(warm_ws, other_seed["model_path"])
    assert all(np.std(a[name]) > 0 for name in a)
    assert not np.array_equal(a["saturation_beta"], c["saturation_beta"])
