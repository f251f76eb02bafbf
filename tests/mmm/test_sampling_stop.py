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


def _data_model(observed: np.ndarray) -> SimpleNamespace:
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0, shape=3)
        y = pm.Data("y_data", observed)
        pm.Normal("y", x.sum(), 1.0, observed=y)
    return SimpleNamespace(model=model)


def _posterior_mean_of_sum(observed: np.ndarray) -> float:
    """Conjugate truth: s = sum(x) ~ N(0, 3), y_i ~ N(s, 1)."""
    return float(observed.sum() / (1 / 3 + len(observed)))


def test_a_one_off_fit_is_compiled_with_its_data_and_not_kept(monkeypatch):
    from attribution_analysis.mmm import sampling
    from attribution_analysis.mmm.sampling import COMPILED

    frozen: list[object] = []

    def spy(model, var_names):
        frozen.append(model)
        return compile_frozen(model, var_names)

    compile_frozen = sampling.compile_frozen
    monkeypatch.setattr(sampling, "compile_frozen", spy)
    settings = SamplerSettings(draws=1000, tune=300, stop_at_gates=False)
    kept = len(COMPILED._models)
    for n, observed in enumerate((np.array([0.5, 1.5, 1.0]), np.array([-2.0, -1.0, -3.0]))):
        data_model = _data_model(observed)
        outcome = sample_posterior(data_model, settings, SEED, None)
        assert not outcome.compile_reused
        assert len(frozen) == n + 1 and frozen[-1] is data_model.model  # compiled frozen
        total = outcome.idata["posterior"]["x"].sum("x_dim_0").values.ravel()
        # Each fit answers its own data (within 5 Monte Carlo standard errors of the truth).
        assert abs(total.mean() - _posterior_mean_of_sum(observed)) < 5 * total.std() / 30
    assert len(COMPILED._models) == kept
    # Negative control: a keyed fit is kept, and the next one with other data reuses it.
    first = sample_posterior(_data_model(np.array([0.5, 1.5, 1.0])), settings, SEED, "one-off-test")
    second = sample_posterior(
        _data_model(np.array([-2.0, -1.0, -3.0])), settings, SEED, "one-off-test"
    )
    assert not first.compile_reused and second.compile_reused
    assert len(COMPILED._models) == kept + 1
    assert len(frozen) == 2  # a keyed fit is not compiled frozen


def test_the_gates_look_at_the_variables_the_stop_rule_looks_at():
    """A curve parameter the fit derives from free ones (a geo panel's effect size) is
    stored but not gated: the stop rule checks the sampler's free variables only."""
    import xarray as xr

    from attribution_analysis.mmm.convergence import DERIVED, convergence_summary

    rng = np.random.default_rng(2)
    free = rng.normal(size=(2, 1000))
    # Two chains apart: an R-hat far above the limit.
    stuck = np.stack([rng.normal(0, 1, 1000), rng.normal(5, 1, 1000)])
    posterior = xr.Dataset(
        {"free": (("chain", "draw"), free), "derived": (("chain", "draw"), stuck)}
    )
    posterior["derived"].attrs[DERIVED] = 1
    tree = xr.DataTree.from_dict({"/posterior": posterior})
    assert convergence_summary(tree)["max_rhat"] < RHAT_LIMIT
    # Negative control: the same variable without the mark is gated, and fails.
    del posterior["derived"].attrs[DERIVED]
    tree = xr.DataTree.from_dict({"/posterior": posterior})
    assert convergence_summary(tree)["max_rhat"] > RHAT_LIMIT
