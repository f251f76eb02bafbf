"""``validate_model``'s two refits, compiled ahead while the agent reads the fit's answer.

``validate_model`` refits the model twice: with vague priors (``sensitivity``) and on all but
the last weeks (``diagnostics.run_backtest``). Each is a one-off model compiled with its data
frozen in: on the demo workspace, in a fresh process, 7.4 s and 4.3 s of compiling in a 36 s
step. They depend only on the fit (its data, configuration and lift tests, which the fit's
key covers) and on the step's ``backtest_periods``, so the job worker that ran the fit
compiles them right after it (``server/jobs.py``) and keeps them in ``sampling.ONE_OFF``
under ``refit_key``; the refit then takes its model instead of compiling it. The same graph
compiles to the same code, so the draws for a seed are the same either way.
"""

from __future__ import annotations

import hashlib
import json

from attribution_analysis.contracts.mmm import ValidateModelParams
from attribution_analysis.mmm.loaded import FittedModel
from attribution_analysis.workspace import Workspace

VAGUE = "vague_priors"
BACKTEST = "backtest"


def refit_key(fitted: FittedModel, kind: str, periods: int | None = None) -> str:
    """What decides a refit's frozen model: the fit (its key hashes its data, configuration,
    lift tests and settings), which refit, and the weeks held out."""
    payload = {"fit": fitted.manifest["result"]["fit_key"], "refit": kind, "periods": periods}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def precompile(ws: Workspace, params: ValidateModelParams | None = None) -> list[str]:
    """Compile the refits ``validate_model`` with ``params`` (None: its defaults) would make
    of the workspace's fit, into ``sampling.ONE_OFF``, without sampling or writing anything;
    the keys compiled: none for a fit that ``validate_model`` does not refit (a quick fit, the
    ridge model) or that samples with another backend than nutpie. Raises what opening the
    fit raises (no fit, a stale fit)."""
    from attribution_analysis.mmm.build import build_mmm
    from attribution_analysis.mmm.diagnostics import backtest_split
    from attribution_analysis.mmm.loaded import open_fit
    from attribution_analysis.mmm.sampling import ONE_OFF, compile_frozen, free_variable_names
    from attribution_analysis.mmm.sensitivity import vague_model
    from attribution_analysis.numerics import use_reproducible_numerics

    params = params or ValidateModelParams()
    fitted = open_fit(ws)
    if fitted.method != "bayesian_nuts" or fitted.params.sampler.backend != "nutpie":
        return []
    use_reproducible_numerics()  # the numerics the refit compiles under
    models = []
    if params.sensitivity_refit:
        models.append((refit_key(fitted, VAGUE), vague_model(fitted)))
    periods = params.backtest_periods
    if periods:
        split = backtest_split(fitted, periods)
        if not isinstance(split, str):
            models.append(
                (refit_key(fitted, BACKTEST, periods), build_mmm(split[0], fitted.params.config))
            )
    for key, mmm in models:
        ONE_OFF.put(key, compile_frozen(mmm.model, free_variable_names(mmm.model)))
    return [key for key, _ in models]
