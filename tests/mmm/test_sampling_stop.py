"""Sampling stops at the gates: where, and with which draws.

A tiny model (independent normals, compiled in a second or two) stands in for the MMM: the
stopping rule knows nothing of the model, and the MMM-level check (slow) is in
test_reproducibility.py. Ground truth is an independent path: nutpie run for a fixed number
of draws with the same seed, and ArviZ's R-hat and bulk ESS on its first draws.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytest
from arviz_stats import ess, rhat

from attribution_analysis.contracts.mmm import SamplerSettings
from attribution_analysis.mmm.convergence import ESS_LIMIT, RHAT_LIMIT
from attribution_analysis.mmm.sampling import sample_posterior

CHECK_EVERY = 50
MARGIN = 1.25
SEED = 5


@pytest.fixture(scope="module")
def tiny() -> SimpleNamespace:
    """Something shaped like an MMM for ``sample_posterior``: an object with a ``model``."""
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0, shape=3)
        pm.Normal("y", x.sum(), 1.0, observed=np.array([0.5, 1.5, 1.0]))
    return SimpleNamespace(model=model)


def _sample(tiny: SimpleNamespace, **settings) -> object:
    base = {"draws": 2000, "tune": 200, "check_every": CHECK_EVERY, "ess_margin": MARGIN}
    return sample_posterior(tiny, SamplerSettings(**{**base, **settings}), SEED, "test-tiny")


def _rule(posterior, draws: int, margin: float) -> bool:
    head = posterior.isel(draw=slice(0, draws))
    return (
        float(rhat(head).to_array().max()) < RHAT_LIMIT
        and float(ess(head, method="bulk").to_array().min()) >= ESS_LIMIT * margin
    )


def test_sampling_stops_at_the_first_check_that_meets_the_gates_with_the_margin(tiny):
    stopped = _sample(tiny)
    n = stopped.draws_per_chain
    assert stopped.stopped_at_gates
    # Past the first check (so the negative control below checks something), before the cap.
    assert n % CHECK_EVERY == 0 and CHECK_EVERY < n < 2000
    fixed = _sample(tiny, draws=n + CHECK_EVERY, stop_at_gates=False)
    assert not fixed.stopped_at_gates and fixed.draws_per_chain == n + CHECK_EVERY
    a = stopped.idata["posterior"].to_dataset()
    b = fixed.idata["posterior"].to_dataset()
    # Exactly the first n draws of every chain, whatever the chains had run beyond them.
    np.testing.assert_array_equal(a["x"].values, b["x"].values[:, :n])
    assert _rule(b, n, MARGIN)
    assert not any(_rule(b, k, MARGIN) for k in range(CHECK_EVERY, n, CHECK_EVERY))
    # The same seed stops at the same draw again (the compiled model is reused this time).
    again = _sample(tiny)
    assert again.compile_reused and again.draws_per_chain == n
    np.testing.assert_array_equal(again.idata["posterior"]["x"].values, a["x"].values)


def test_a_gate_out_of_reach_samples_up_to_the_cap(tiny):
    # ESS 5 x 400 = 2,000 cannot be reached with 2 x 300 draws (ArviZ caps ESS below that).
    capped = _sample(tiny, draws=300, ess_margin=5.0)
    assert not capped.stopped_at_gates
    assert capped.draws_per_chain == 300
    assert not np.isnan(capped.idata["posterior"]["x"].values).any()
