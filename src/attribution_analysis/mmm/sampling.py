"""Posterior sampling: nutpie with a compiled-model cache, or PyMC / NumPyro NUTS.

Why not ``MMM.fit()``: PyMC-Marketing bakes the data into a fresh graph each time and
computes every Deterministic (per-date contributions...) at each draw. Here the model it
builds is compiled once per *structure* with the data left as shared variables
(``freeze_model=False``), later data of the same structure is swapped in with
``with_data`` (no compile), and only free parameters are stored; deterministics are
computed once, afterwards, when a step needs them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import xarray as xr

from attribution_analysis.contracts.mmm import SamplerSettings
from attribution_analysis.errors import ParameterError
from attribution_analysis.numerics import use_reproducible_numerics
from attribution_analysis.progress import Progress, report


@dataclass
class SampleOutcome:
    idata: xr.DataTree
    seconds: float
    compile_seconds: float
    compile_reused: bool


class CompiledModels:
    """Process-wide cache of nutpie-compiled models keyed by model structure."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get_or_compile(self, key: str, model: Any, var_names: list[str]) -> tuple[Any, bool]:
        import nutpie

        with self._lock:
            compiled = self._models.get(key)
            if compiled is None:
                compiled = nutpie.compile_pymc_model(model, freeze_model=False, var_names=var_names)
                self._models[key] = compiled
                return compiled, False
        data = {name: var.get_value() for name, var in _shared_data(model).items()}
        return compiled.with_data(**data), True

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


COMPILED = CompiledModels()


def _shared_data(model: Any) -> dict[str, Any]:
    return {name: var for name, var in model.named_vars.items() if hasattr(var, "get_value")}


def free_variable_names(model: Any) -> list[str]:
    return [v.name for v in model.free_RVs]


def sample_posterior(
    mmm: Any, settings: SamplerSettings, seed: int, structure: str, progress: Progress | None = None
) -> SampleOutcome:
    """Sample the posterior of ``mmm.model``'s free parameters."""
    use_reproducible_numerics()
    model = mmm.model
    free = free_variable_names(model)
    total = float(settings.chains * (settings.draws + settings.tune))
    start = time.perf_counter()
    if settings.backend == "nutpie":
        import nutpie

        report(progress, 0, total, "compiling the model")
        compiled, reused = COMPILED.get_or_compile(structure, model, free)
        compile_seconds = time.perf_counter() - start

        def on_progress(chains: list[Any]) -> None:
            done = float(sum(c.finished_draws for c in chains))
            divergences = sum(c.divergences for c in chains)
            report(progress, done, total, f"sampling ({divergences} divergences)")

        idata = nutpie.sample(
            compiled,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=settings.chains,
            seed=seed,
            progress_bar=False,
            adaptation=settings.adaptation,
            target_accept=settings.target_accept,
            save_warmup=False,
            progress_callback=on_progress if progress else None,
        )
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
    seconds = time.perf_counter() - start
    report(progress, total, total, "sampling done")
    return SampleOutcome(idata, seconds, compile_seconds, reused)


def attach_posterior(mmm: Any, idata: xr.DataTree) -> xr.DataTree:
    """Give ``mmm`` the posterior as ``MMM.fit`` would: observed and fit data, attrs, flag."""
    import warnings

    from pymc_marketing import __version__

    groups = {
        f"/{name}": idata[name].to_dataset()
        for name in ("posterior", "sample_stats")
        if name in idata.children
    }
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


def observed_target(mmm: Any) -> xr.DataArray:
    """The likelihood's observed values (the scaled target), with the model's dims."""
    model = mmm.model
    rv = model[mmm.output_var]
    dims = model.named_vars_to_dims.get(mmm.output_var, ())
    values = model.rvs_to_values[rv].eval()
    return xr.DataArray(values, dims=dims, coords={d: list(model.coords[d]) for d in dims})
