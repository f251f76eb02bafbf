"""Posterior sampling: nutpie with a compiled-model cache, or PyMC / NumPyro NUTS.

Why not ``MMM.fit()``: PyMC-Marketing bakes the data into a fresh graph each time and
computes every Deterministic (per-date contributions...) at each draw. Here the model it
builds is compiled once per *structure* with the data left as shared variables
(``freeze_model=False``), later data of the same structure is swapped in with
``with_data`` (no compile), and only free parameters are stored (with the curve
parameters a geo panel derives, ``derived_curve_parameters``); other deterministics are
computed once, afterwards, when a step needs them.

With ``stop_at_gates`` nutpie samples in the background up to the draws cap while this
module checks R-hat and bulk ESS on the first ``check_every``, ``2 * check_every``, ...
draws of every chain, and stops at the first check that meets the gates with a margin.
A chain's first n draws do not depend on how many it was asked for (nutpie's warm-up
schedule depends on ``tune`` only), and each check looks at exactly n draws per chain
whatever the chains had sampled by then, so a seed stops at the same draw on a busy or an
idle machine.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from attribution_analysis.contracts.mmm import SamplerSettings
from attribution_analysis.errors import ParameterError
from attribution_analysis.mmm.convergence import DERIVED
from attribution_analysis.mmm.intercept import (
    LEVEL_SPEND,
    reads_level_from_channel_data,
    sampled_model,
)
from attribution_analysis.numerics import use_reproducible_numerics
from attribution_analysis.progress import Progress, report

# How often the waiting thread looks at the chains' progress (wall time decides only when
# a check runs, never what it sees).
POLL_SECONDS = 0.1


@dataclass
class SampleOutcome:
    idata: xr.DataTree
    seconds: float
    compile_seconds: float
    compile_reused: bool
    draws_per_chain: int
    stopped_at_gates: bool = False


class CompiledModels:
    """Process-wide cache of nutpie-compiled models keyed by model structure."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()

    def get_or_compile(self, key: str, model: Any, var_names: list[str]) -> tuple[Any, bool]:
        import nutpie

        # A merged and an unmerged model (``sampled_model``) are two compiled structures.
        merged = reads_level_from_channel_data(model)
        with self._lock:
            compiled = self._models.get((key, merged))
            if compiled is None:
                compiled = nutpie.compile_pymc_model(
                    sampled_model(model), freeze_model=False, var_names=var_names
                )
                self._models[(key, merged)] = compiled
                return compiled, False
        data = {name: var.get_value() for name, var in _shared_data(model).items()}
        # Only the data the compiled model reads: the merged model reads the level's spend
        # from channel_data, which holds the same values (checked above for this model).
        inputs = {var.name for var in compiled.shared_var_keys}
        unread = set(data) - inputs
        if unread - ({LEVEL_SPEND} if merged else set()):
            raise RuntimeError(f"the compiled model does not read the data {sorted(unread)}")
        return compiled.with_data(**{k: v for k, v in data.items() if k in inputs}), True

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


COMPILED = CompiledModels()


class OneOffModels:
    """Frozen compiled models made ahead for one later use each (``mmm.refits``: the job
    worker compiles ``validate_model``'s refits while the agent reads the fit's answer),
    keyed by what decides the model (``refits.refit_key``); taken, not kept. The same graph
    compiles to the same code, so a refit sampled from a model compiled ahead draws what it
    would have drawn from its own compile."""

    MAX_MODELS = 4  # the newest kept: two refits of one fit, and of one other

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def put(self, key: str, compiled: Any) -> None:
        with self._lock:
            self._models.pop(key, None)
            self._models[key] = compiled
            while len(self._models) > self.MAX_MODELS:
                self._models.pop(next(iter(self._models)))

    def take(self, key: str) -> Any | None:
        with self._lock:
            return self._models.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._models

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


ONE_OFF = OneOffModels()


def compile_frozen(model: Any, var_names: list[str]) -> Any:
    """A compiled model with the data as constants: it cannot take new data, but PyTensor
    folds what depends on the data alone, so it compiles and samples faster (on an
    independent world's 156 weeks x 4 channels, from an empty compile cache: 27 s to compile
    and 3.8 s for 2 x 2,000 draws, against 46 s and 7.3 s with the data left as inputs)."""
    import nutpie

    return nutpie.compile_pymc_model(sampled_model(model), freeze_model=True, var_names=var_names)


def _shared_data(model: Any) -> dict[str, Any]:
    return {name: var for name, var in model.named_vars.items() if hasattr(var, "get_value")}


def free_variable_names(model: Any) -> list[str]:
    return [v.name for v in model.free_RVs]


def sample_posterior(
    mmm: Any,
    settings: SamplerSettings,
    seed: int,
    structure: str | None,
    progress: Progress | None = None,
    one_off: str | None = None,
) -> SampleOutcome:
    """Sample the posterior of ``mmm.model``'s free parameters. ``structure`` keys the
    compiled model for reuse with new data; None marks a one-off fit (a refit of
    ``validate_model``), compiled with its data frozen in and not kept, or taken from
    ``ONE_OFF`` under the key ``one_off`` when it was compiled ahead."""
    use_reproducible_numerics()
    model = mmm.model
    free = free_variable_names(model)
    total = float(settings.chains * (settings.draws + settings.tune))
    start = time.perf_counter()
    if settings.backend == "nutpie":
        report(progress, 0, total, "compiling the model")
        if structure is None:
            ahead = ONE_OFF.take(one_off) if one_off is not None else None
            reused = ahead is not None
            compiled = ahead if reused else compile_frozen(model, free)
        else:
            compiled, reused = COMPILED.get_or_compile(structure, model, free)
        compile_seconds = time.perf_counter() - start

        if settings.stop_at_gates:
            idata, stopped = _sample_until_gates(compiled, settings, seed, progress, total)
        else:
            idata, stopped = _sample_nutpie(compiled, settings, seed, progress, total), False
    else:
        import pymc as pm

        if settings.backend == "numpyro":
            try:
                import numpyro  # noqa: F401
            except ImportError:
                raise ParameterError(
                    "the numpyro backend needs jax and numpyro, which are not installed.",
                    fix="use backend 'nutpie' (default) or 'pymc', or `pip install numpyro`.",
                ) from None
        report(progress, 0, total, f"sampling with {settings.backend}")
        compile_seconds, reused = 0.0, False
        with model:
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=settings.chains,
                random_seed=seed,
                target_accept=settings.target_accept,
                nuts_sampler=settings.backend,
                var_names=free,
                progressbar=False,
                compute_convergence_checks=False,
            )
        stopped = False
    seconds = time.perf_counter() - start
    report(progress, total, total, "sampling done")
    draws = int(idata["posterior"].sizes["draw"])
    return SampleOutcome(idata, seconds, compile_seconds, reused, draws, stopped)


def _nutpie_arguments(settings: SamplerSettings, seed: int) -> dict[str, Any]:
    return {
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "cores": settings.chains,
        "seed": seed,
        "progress_bar": False,
        "adaptation": settings.adaptation,
        "target_accept": settings.target_accept,
        "save_warmup": False,
    }


def _sample_nutpie(
    compiled: Any, settings: SamplerSettings, seed: int, progress: Progress | None, total: float
) -> xr.DataTree:
    """Exactly ``settings.draws`` per chain."""
    import nutpie

    def on_progress(chains: list[Any]) -> None:
        done = float(sum(c.finished_draws for c in chains))
        divergences = sum(c.divergences for c in chains)
        report(progress, done, total, f"sampling ({divergences} divergences)")

    return nutpie.sample(
        compiled,
        **_nutpie_arguments(settings, seed),
        progress_callback=on_progress if progress else None,
    )


def _sample_until_gates(
    compiled: Any, settings: SamplerSettings, seed: int, progress: Progress | None, total: float
) -> tuple[xr.DataTree, bool]:
    """Sample up to ``settings.draws`` per chain, stopping at the first check (every
    ``check_every`` draws per chain) where the gates are met with ``ess_margin``: the
    posterior of that many draws per chain and whether sampling stopped before the cap.

    Written here because nutpie samples a fixed number of draws and PyMC-Marketing has no
    stopping rule; nutpie's background sampler (``blocking=False``) gives what is needed:
    a copy of the trace so far (``inspect``) and ``abort``.
    """
    import nutpie

    from attribution_analysis.mmm.convergence import convergence_summary, meets_stopping_rule

    # nutpie calls back on its own thread; progress is reported from this one only (a job's
    # progress goes down a pipe that two threads must not write at once).
    finished = [0] * settings.chains  # draws per chain, warm-up included
    divergences = [0] * settings.chains
    lock = threading.Lock()

    def on_progress(chains: list[Any]) -> None:
        with lock:
            finished[:] = [c.finished_draws for c in chains]
            divergences[:] = [c.divergences for c in chains]

    sampler = nutpie.sample(
        compiled,
        **_nutpie_arguments(settings, seed),
        blocking=False,
        progress_callback=on_progress,
        progress_rate=100,
    )
    try:
        checkpoint = min(settings.check_every, settings.draws)
        last = "stops once the gates are met"
        while checkpoint < settings.draws:
            done = _finished(sampler)
            with lock:
                ahead, diverged = min(finished) - settings.tune, sum(divergences)
                report(
                    progress,
                    float(sum(finished)),
                    total,
                    f"sampling ({diverged} divergences; {last})",
                )
            if ahead >= checkpoint or done:
                trace = sampler.inspect()
                # The progress counters only say when to look; what the trace holds decides.
                kept = settings.draws if done else _stored_draws(trace)
                # Every check the chains have passed since the last look, in order: the
                # decision at a checkpoint never depends on how far the chains ran beyond it.
                while checkpoint < settings.draws and checkpoint <= kept:
                    summary = convergence_summary(first_draws(trace, checkpoint))
                    last = (
                        f"at {checkpoint} draws per chain min bulk ESS "
                        f"{summary['min_ess_bulk']:.0f}, max R-hat {summary['max_rhat']:.3f}"
                    )
                    if meets_stopping_rule(summary, settings.ess_margin):
                        return first_draws(sampler.abort(), checkpoint), True
                    checkpoint += settings.check_every
                if done:
                    break
            time.sleep(POLL_SECONDS)
        return sampler.wait(), False
    except BaseException:
        # A cancelled job (JobCancelled from SIGTERM) or a failed check: stop the chains
        # (quietly: they may have been stopped already), then let the cause through.
        with contextlib.suppress(Exception):
            sampler.cancel()
        raise


def _finished(sampler: Any) -> bool:
    # nutpie 0.16's is_finished raises TimeoutError while the chains still run (measured)
    # and answers True once they are done.
    try:
        return bool(sampler.is_finished)
    except TimeoutError:
        return False


def _stored_draws(trace: xr.DataTree) -> int:
    """Draws every chain has stored: nutpie pads a chain that is behind with NaN."""
    posterior = trace["posterior"].to_dataset()
    values = next(iter(posterior.data_vars.values())).values
    first = values.reshape(values.shape[0], values.shape[1], -1)[..., 0]
    return int(np.isfinite(first).sum(axis=1).min())


def first_draws(trace: xr.DataTree, draws: int) -> xr.DataTree:
    """The posterior and sample stats of the first ``draws`` draws of every chain."""
    groups = {
        f"/{name}": trace[name].to_dataset().isel(draw=slice(0, draws))
        for name in ("posterior", "sample_stats")
        if name in trace.children
    }
    return xr.DataTree.from_dict(groups)


def attach_posterior(mmm: Any, idata: xr.DataTree) -> xr.DataTree:
    """Give ``mmm`` the posterior as ``MMM.fit`` would: observed and fit data, attrs, flag."""
    import warnings

    from pymc_marketing import __version__

    groups = {
        f"/{name}": idata[name].to_dataset()
        for name in ("posterior", "sample_stats")
        if name in idata.children
    }
    derived = derived_curve_parameters(mmm, groups["/posterior"])
    if derived is not None:
        groups["/posterior"] = groups["/posterior"].merge(derived)
    groups["/observed_data"] = xr.Dataset({mmm.output_var: observed_target(mmm)})
    tree = xr.DataTree.from_dict(groups)
    tree["/posterior"].attrs["pymc_marketing_version"] = __version__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_data = mmm.create_fit_data_group()
        if fit_data is not None:
            tree["/fit_data"] = fit_data
    mmm.idata = tree
    mmm.set_idata_attrs(mmm.idata)
    mmm.is_fitted_ = True
    return mmm.idata


def derived_curve_parameters(mmm: Any, posterior: xr.Dataset) -> xr.Dataset | None:
    """The media curves' parameters that the model derives rather than samples (a geo
    panel's effect size, exp of its sampled log effects: ``priors.GeoEffectPrior``), evaluated per
    draw: the decomposition, the optimizer and the report read every curve parameter from
    the stored posterior by PyMC-Marketing's name."""
    import warnings

    import pymc as pm

    model = mmm.model
    deterministic = {v.name for v in model.deterministics}
    curve = [*mmm.adstock.model_config, *mmm.saturation.model_config]
    names = [name for name in curve if name in deterministic and name not in posterior]
    if not names:
        return None
    free = [v.name for v in model.free_RVs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        derived = pm.compute_deterministics(
            posterior[free], model=model, var_names=names, progressbar=False
        )
    for name in derived.data_vars:
        derived[name].attrs[DERIVED] = 1  # not gated: convergence.parameter_names
    return derived


def observed_target(mmm: Any) -> xr.DataArray:
    """The likelihood's observed values (the scaled target), with the model's dims."""
    model = mmm.model
    rv = model[mmm.output_var]
    dims = model.named_vars_to_dims.get(mmm.output_var, ())
    values = model.rvs_to_values[rv].eval()
    return xr.DataArray(values, dims=dims, coords={d: list(model.coords[d]) for d in dims})
