"""``validate_model``'s refits compiled ahead (``mmm/refits.py``): a refit that takes its
model from the compile ahead draws exactly what it draws from its own compile, and the
compile ahead makes the refits the step would make, under the keys it looks them up by."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attribution_analysis.contracts.mmm import SamplerSettings, ValidateModelParams
from attribution_analysis.mmm import diagnostics, refits, sampling, sensitivity
from attribution_analysis.mmm.loaded import open_fit
from attribution_analysis.workspace import Workspace

TINY = SamplerSettings(draws=60, tune=60, stop_at_gates=False)


def test_a_refit_compiled_ahead_draws_what_its_own_compile_draws(fitted, monkeypatch):
    ws = Workspace.open(fitted)
    sampling.ONE_OFF.clear()
    keys = refits.precompile(ws, ValidateModelParams(backtest_periods=None))
    model = open_fit(ws)
    vague = refits.refit_key(model, refits.VAGUE)
    assert keys == [vague] and vague in sampling.ONE_OFF
    small = replace(model, params=model.params.model_copy(update={"sampler": TINY}))

    compiled: list[int] = []
    compile_frozen = sampling.compile_frozen
    monkeypatch.setattr(
        sampling, "compile_frozen", lambda *args: compiled.append(1) or compile_frozen(*args)
    )
    ahead = sensitivity.compare_with_vague_priors(small, seed=5)
    assert compiled == [] and vague not in sampling.ONE_OFF  # taken, not compiled again
    own = sensitivity.compare_with_vague_priors(small, seed=5)
    assert compiled == [1]
    assert ahead == own  # the same draws, to the last digit
    # Negative control: the comparison sees the draws (another seed, other figures).
    assert sensitivity.compare_with_vague_priors(small, seed=6) != own


def test_the_compile_ahead_keys_each_refit_by_the_fit_and_the_weeks_held_out(fitted, monkeypatch):
    """Both refits of a default validation, under the keys the step looks them up by; a
    validation without refits compiles nothing (the compile itself is stubbed)."""
    monkeypatch.setattr(sampling, "compile_frozen", lambda model, names: ("compiled", len(names)))
    sampling.ONE_OFF.clear()
    ws = Workspace.open(fitted)
    model = open_fit(ws)
    keys = refits.precompile(ws)
    backtest = refits.refit_key(model, refits.BACKTEST, ValidateModelParams().backtest_periods)
    assert keys == [refits.refit_key(model, refits.VAGUE), backtest]
    assert all(key in sampling.ONE_OFF for key in keys)
    # The keys the step's own refits look up (their sampling stopped at the look-up).
    asked: list[str | None] = []

    class Looked(Exception):
        pass

    def look_up(*args, one_off=None, **kwargs):
        asked.append(one_off)
        raise Looked

    monkeypatch.setattr(sensitivity, "sample_posterior", look_up)
    monkeypatch.setattr(sampling, "sample_posterior", look_up)  # run_backtest imports it late
    with pytest.raises(Looked):
        sensitivity.compare_with_vague_priors(model, seed=1)
    with pytest.raises(Looked):
        diagnostics.run_backtest(ws, model, ValidateModelParams().backtest_periods, seed=1)
    assert asked == keys
    # Negative controls: other weeks held out are another model; no refit, nothing compiled.
    assert refits.refit_key(model, refits.BACKTEST, 8) != backtest
    none = ValidateModelParams(backtest_periods=None, sensitivity_refit=False)
    assert refits.precompile(ws, none) == []
    sampling.ONE_OFF.clear()
