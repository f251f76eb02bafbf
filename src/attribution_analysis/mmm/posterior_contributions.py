"""Contributions evaluated on a posterior: PyMC-Marketing's own deterministics per draw, and
what ``fit_mmm`` stores of them for the decomposition (``reduce_draws``).

This half of the decomposition needs the model rebuilt and compiled (PyMC, PyTensor, xarray:
seconds of a fresh process), so it runs in ``fit_mmm``'s job, in ``validate_model``'s
prior-sensitivity refit, and in ``decompose_contributions`` only for a posterior written
before the stored group existed. ``decompose.py`` reads what it stored with NumPy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from attribution_analysis.mmm.component_names import (
    ORGANIC_CONTRIBUTION,
    event_coefficient_name,
    event_data_name,
)
from attribution_analysis.mmm.decompose import MARGINAL_STEP
from attribution_analysis.mmm.loaded import FittedModel
from attribution_analysis.summaries import band_90, thin_draws

# Summaries of sums over weeks need far fewer draws than the sampler keeps for its ESS gate.
DECOMPOSITION_DRAWS = 4000
# Weekly draws kept for the decomposition's draws file (and its long table).
STORED_DRAWS = 500
INTERCEPT = "intercept_contribution"
BASE_PARTS = (INTERCEPT, "yearly_seasonality_contribution", "control_contribution")


def contribution_draws(
    fitted: FittedModel, channel_scale: float | None = None
) -> dict[str, xr.DataArray]:
    """Per-draw contributions in original units: channel (sample, date[, geo], channel),
    base parts and the fitted mean ``mu``; with ``channel_scale``, also ``channel_scaled``:
    the channel contributions with every channel's spend multiplied by it."""
    from pymc.backends.arviz import apply_function_over_dataset, coords_and_dims_for_inferencedata

    model = fitted.mmm.model
    posterior = thin_draws(fitted.tree["posterior"].to_dataset(), DECOMPOSITION_DRAWS)
    free = posterior[[v.name for v in model.free_RVs]]
    # pm.compute_deterministics, with its one compiled function kept for both evaluations:
    # the spend is a shared variable read when the function runs, so the scaled evaluation
    # needs no second compile (half a second of this step). The pieces are PyMC's own.
    coords, dims = coords_and_dims_for_inferencedata(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        function, names = contribution_function(model)

        def evaluate() -> xr.Dataset:
            return apply_function_over_dataset(
                function, free, output_var_names=names, dims=dims, coords=coords, progressbar=False
            )

        values = evaluate()
        if channel_scale is not None:
            spend = model["channel_data"]
            original = spend.get_value()
            spend.set_value(original * channel_scale)
            try:
                values["channel_scaled"] = evaluate()["channel_contribution"]
            finally:
                spend.set_value(original)
    scale = fitted.target_scale
    out = {}
    for name in [*names, *(["channel_scaled"] if channel_scale is not None else [])]:
        if name == INTERCEPT:
            continue  # below
        out[name.replace("_contribution", "")] = (values[name] * scale).stack(
            sample=("chain", "draw")
        )
    # A free parameter as PyMC-Marketing builds it, a deterministic when the sampler moved the
    # level instead (intercept.py): taken from wherever it is, under one name.
    intercept = values.get(INTERCEPT, posterior.get(INTERCEPT))
    out[INTERCEPT] = (intercept * scale).stack(sample=("chain", "draw"))
    if fitted.data.events:
        out["event"] = (_event_draws(fitted, posterior) * scale).stack(sample=("chain", "draw"))
    return out


def contribution_function(model: Any) -> tuple[Any, list[str]]:
    """The compiled function from the free parameters to the deterministics the
    decomposition reads, and their names. ``mmm.fit.precompile`` compiles it ahead once,
    so that the fit's own compile of it finds its pieces in Numba's on-disk cache."""
    deterministic = {d.name for d in model.deterministics}
    names = ["channel_contribution", "mu"] + [
        p for p in (*BASE_PARTS, ORGANIC_CONTRIBUTION) if p in deterministic
    ]
    function = model.compile_fn(
        inputs=model.free_RVs, outs=[model[n] for n in names], on_unused_input="ignore"
    )
    return function, names


def _event_draws(fitted: FittedModel, posterior: xr.Dataset) -> xr.DataArray:
    """Per-event contributions on the target scale, (chain, draw, date[, geo], event): each
    event's coefficient times its indicator (PyMC-Marketing keeps only their sum)."""
    model = fitted.mmm.model
    parts = []
    for column in fitted.data.events:
        values = model[event_data_name(column)].get_value()
        dims = model.named_vars_to_dims[event_data_name(column)]
        indicator = xr.DataArray(values, dims=dims, coords={d: list(model.coords[d]) for d in dims})
        parts.append(posterior[event_coefficient_name(column)] * indicator)
    return xr.concat(parts, dim=xr.DataArray(fitted.data.events, dims="event"))


def _totals(values: xr.DataArray) -> np.ndarray:
    """Sum over everything but channel and sample: (sample, channel) or (sample,)."""
    keep = [d for d in ("sample", "channel") if d in values.dims]
    return values.sum([d for d in values.dims if d not in keep]).transpose(*keep).values


@dataclass
class Draws:
    """Per-draw (or per bootstrap replicate) pieces of the decomposition."""

    channel: xr.DataArray  # (sample, date[, geo], channel), original units
    marginal: np.ndarray  # (sample, channel): extra outcome from MARGINAL_STEP more spend
    base: np.ndarray  # (sample,): intercept + seasonality + controls over the window
    fitted: np.ndarray  # (sample,): the model's fitted total over the window
    # (sample, component): organic series and events over the window, and their names/kinds
    components: np.ndarray | None = None
    component_names: tuple[tuple[str, str], ...] = ()


def decomposition_of(mmm: Any, data: Any, tree: xr.DataTree, params: Any) -> xr.Dataset:
    """``reduce_draws`` of a fit just sampled (or bootstrapped): what ``fit_mmm`` stores in
    the posterior file's ``GROUP``, so that this step need not rebuild the model."""
    method = "ridge_bootstrap" if "bootstrap" in tree.children else "posterior"
    fitted = FittedModel(mmm, data, tree, params, {"result": {"method": method}}, {})
    return reduce_draws(draws_of(fitted))


def draws_of(fitted: FittedModel) -> Draws:
    """Every draw's contributions: the posterior's, or the ridge model's bootstrap."""
    if fitted.method == "ridge_bootstrap":
        return _ridge_draws(fitted)
    return _bayes_draws(fitted)


def reduce_draws(draws: Draws) -> xr.Dataset:
    """What the step's summaries read, small enough to keep in the posterior file: each
    draw's window totals (channel per geo, marginal, base, fitted, other components), the
    weekly mean and 90% band from every draw, and ``STORED_DRAWS`` weekly draws."""
    channel = draws.channel.drop_vars(
        [c for c in ("sample", "chain", "draw") if c in draws.channel.coords]
    )
    channel = channel.assign_coords(sample=np.arange(channel.sizes["sample"]))
    mean = channel.mean("sample")
    low, high = band_90(channel, "sample")
    step = max(1, channel.sizes["sample"] // STORED_DRAWS)
    kept = channel.isel(sample=slice(None, None, step))
    variables: dict[str, Any] = {
        "channel_total": channel.sum("date"),
        "marginal": (("sample", "channel"), draws.marginal),
        "base": ("sample", draws.base),
        "fitted": ("sample", draws.fitted),
        "weekly_mean": mean,
        "weekly_lower_90": mean.copy(data=low),
        "weekly_upper_90": mean.copy(data=high),
        "channel_draws": kept.rename(sample="stored_draw").drop_vars("stored_draw"),
    }
    if draws.components is not None:
        names, kinds = zip(*draws.component_names, strict=True)
        variables["components"] = (("sample", "component"), draws.components)
        variables["component_name"] = ("component", list(names))
        variables["component_kind"] = ("component", list(kinds))
    return xr.Dataset(variables)


def _bayes_draws(fitted: FittedModel) -> Draws:
    # Extra contribution per channel from MARGINAL_STEP more spend in every period.
    parts = contribution_draws(fitted, channel_scale=1 + MARGINAL_STEP)
    marginal = _totals(parts["channel_scaled"] - parts["channel"])
    # Base = intercept (one value per geo, every period) + seasonality + controls.
    base = _totals(parts["intercept_contribution"]) * parts["channel"].sizes["date"]
    for name in ("yearly_seasonality", "control"):
        if name in parts:
            base = base + _totals(parts[name])
    components, names = [], []
    for key, dim, kind in (("organic", "organic", "organic"), ("event", "event", "event")):
        if key in parts:
            values = parts[key]
            totals = values.sum([d for d in values.dims if d not in ("sample", dim)])
            components.append(totals.transpose("sample", dim).values)
            names += [(_factor_name(str(n)), kind) for n in values[dim].values]
    return Draws(
        parts["channel"],
        marginal,
        base,
        _totals(parts["mu"]),
        np.concatenate(components, axis=1) if components else None,
        tuple(names),
    )


def _factor_name(column: str) -> str:
    """The factor's name in external_factors.csv (panel columns carry an 'ext_' prefix)."""
    return column.removeprefix("ext_")


def _ridge_draws(fitted: FittedModel) -> Draws:
    from attribution_analysis.mmm.build import effective_l_max
    from attribution_analysis.mmm.ridge import marginal_contribution

    boot = fitted.tree["bootstrap"].to_dataset()
    spend = fitted.data.X[fitted.data.channels].to_numpy(dtype=float)
    marginal = marginal_contribution(
        fitted.tree, spend, effective_l_max(fitted.params.config), MARGINAL_STEP
    )
    return Draws(boot["channel_contribution"], marginal, _totals(boot["base"]), _totals(boot["mu"]))
