"""Same inputs and seed, same posterior, whatever the state of the compile caches.

PyTensor compiles with Numba and caches every op's function on disk; with Numba's fastmath
on, a function compiled fresh and the same function loaded from the cache could round
differently, and NUTS turned that last bit into a different chain (``numerics.py``). Here two
fresh processes fit the same workspace: the first with empty PyTensor and Numba caches, the
second with the caches the first one filled. Their draws must be identical. A third, with
empty caches of its own, compiles at LLVM's level 3 (Numba's default; the package's is 2):
the level must change speed, not draws.

Sampling stops at the gates (``SamplerSettings.stop_at_gates``) at a point fixed by the draws,
never by wall time: the stopped fit keeps exactly the first draws of a fixed-length fit with
the same seed. Not covered (not promised): other machines, CPUs or versions of PyTensor, Numba
or nutpie, and the pymc/numpyro backends.
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


def _fit_in_fresh_process(
    root: Path, caches: Path, seeds: list[int], numba_opt: str | None = None
) -> list[dict]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "NUMBA_OPT"},
        "PYTENSOR_FLAGS": f"base_compiledir={caches / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(caches / "numba"),
        **({"NUMBA_OPT": numba_opt} if numba_opt else {}),
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


def _llvm_level(root: Path) -> object:
    manifest = json.loads((root / "analysis" / "mmm_fit.json").read_text())
    return manifest["metadata"]["extra"]["llvm_opt_level"]


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

    level3_ws = tmp_path / "level3"
    shutil.copytree(source, level3_ws)
    (level3,) = _fit_in_fresh_process(level3_ws, tmp_path / "caches3", [7], numba_opt="3")

    # Not vacuous: the two processes did compile at different levels.
    assert _llvm_level(cold_ws) == 2 and _llvm_level(level3_ws) == 3

    a, b = _draws(cold_ws, cold["model_path"]), _draws(warm_ws, warm["model_path"])
    d = _draws(level3_ws, level3["model_path"])
    assert a.keys() == b.keys() == d.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        np.testing.assert_array_equal(a[name], d[name], err_msg=f"{name}, LLVM level 3")
    # Not vacuous: the draws vary, and another seed gives other draws.
    c = _draws(warm_ws, other_seed["model_path"])
    assert all(np.std(a[name]) > 0 for name in a)
    assert not np.array_equal(a["saturation_beta"], c["saturation_beta"])


# Slow (about a minute): on the MMM, the stopping point needs ~2,000 draws per chain. The
# default suite checks the same on a tiny model (test_sampling_stop.py).
@pytest.mark.slow
def test_stopping_at_the_gates_keeps_exactly_the_draws_a_fixed_length_fit_samples(tmp_path: Path):
    """The stopping rule, checked against an independent path: a fit of fixed length with
    the same seed. The stopped fit's draws must be that fit's first draws bit for bit (so
    the point where the chains happened to be when sampling stopped leaves no trace), and
    the stopping point must be the first checkpoint where ArviZ, on the fixed fit's first
    draws, finds R-hat and bulk ESS within the gates with the margin."""
    from arviz_stats import ess, rhat

    from attribution_analysis.api import fit_mmm
    from attribution_analysis.contracts.mmm import FitMMMParams, SamplerSettings
    from attribution_analysis.mmm.convergence import ESS_LIMIT, RHAT_LIMIT

    root = tmp_path / "ws"
    simulate_workspace(root, SimulationParams(kind="mmm", seed=8, weeks=60, channels=2))
    validate_data(Workspace.open(root))
    check_every, margin, cap = 100, 1.25, 3000
    adaptive = SamplerSettings(draws=cap, tune=300, check_every=check_every, ess_margin=margin)
    common = {"retry": False, "fallback_to_ridge": False, "use_cache": False, "seed": 11}
    stopped = fit_mmm(Workspace.open(root), FitMMMParams(sampler=adaptive, **common))
    assert stopped.stopped_at_gates, stopped.convergence
    n = stopped.draws_per_chain
    # Past the first checkpoint, so that the negative control below checks something.
    assert n % check_every == 0 and check_every < n < cap
    a = _draws(root, stopped.model_path)

    fixed = adaptive.model_copy(update={"draws": n + check_every, "stop_at_gates": False})
    longer = fit_mmm(Workspace.open(root), FitMMMParams(sampler=fixed, **common))
    assert not longer.stopped_at_gates and longer.draws_per_chain == n + check_every
    b = _draws(root, longer.model_path)
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name][:, :n], err_msg=name)

    posterior = store.load_tree(Workspace.open(root), longer.model_path)["posterior"]
    posterior = posterior.to_dataset()
    free = posterior[[v for v in posterior.data_vars if "date" not in posterior[v].dims]]

    def rule(draws: int) -> bool:
        head = free.isel(draw=slice(0, draws))
        return (
            float(rhat(head).to_array().max()) < RHAT_LIMIT
            and float(ess(head, method="bulk").to_array().min()) >= ESS_LIMIT * margin
        )

    assert rule(n)
    assert not any(rule(k) for k in range(check_every, n, check_every))
