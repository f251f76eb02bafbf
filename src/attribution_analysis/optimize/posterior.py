"""Response curves and spend history from the fitted MMM in the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from attribution_analysis.mmm.loaded import FittedModel
from attribution_analysis.optimize.response import (
    ResponseCurves,
    geometric_weights,
    library_adstock_weights,
    timeline_weights,
)
from attribution_analysis.summaries import thin_draws


@dataclass(frozen=True)
class SpendHistory:
    """What 'current spend' means, and how far the data reaches."""

    channels: list[str]
    current_per_period: np.ndarray  # (C,) mean spend per period over the basis window
    max_per_period: np.ndarray  # (C,) highest national spend in one period
    basis_start: str
    basis_end: str
    basis_periods: int
    geo_share: np.ndarray  # (G, C) share of each channel's spend by geo in the basis window


def spend_history(fitted: FittedModel, basis_periods: int) -> SpendHistory:
    """Current spend = mean spend per period over the last ``basis_periods`` periods of the
    data (all of it when shorter)."""
    data = fitted.data
    frame = data.X[["date", *(["geo"] if data.geo else []), *data.channels]]
    national = frame.groupby("date", sort=True)[data.channels].sum()
    basis = national.iloc[-min(basis_periods, len(national)) :]
    geo_share = _geo_share(fitted, frame, basis.index)
    return SpendHistory(
        channels=list(data.channels),
        current_per_period=basis.mean().to_numpy(dtype=float),
        max_per_period=national.max().to_numpy(dtype=float),
        basis_start=str(basis.index[0])[:10],
        basis_end=str(basis.index[-1])[:10],
        basis_periods=len(basis),
        geo_share=geo_share,
    )


def _geo_share(fitted: FittedModel, frame, dates) -> np.ndarray:
    channels = fitted.data.channels
    if not fitted.data.geo:
        return np.ones((1, len(channels)))
    geos = _geos(fitted)
    recent = frame[frame["date"].isin(dates)].groupby("geo")[channels].sum()
    overall = frame.groupby("geo")[channels].sum()
    # A channel dark in the recent window keeps its all-time geo split.
    share = recent.reindex(geos).fillna(0.0).to_numpy(dtype=float)
    fallback = overall.reindex(geos).fillna(0.0).to_numpy(dtype=float)
    totals = share.sum(axis=0)
    share = np.where(totals > 0, share / np.where(totals > 0, totals, 1), 0.0)
    fb_tot = fallback.sum(axis=0)
    fallback = np.where(fb_tot > 0, fallback / np.where(fb_tot > 0, fb_tot, 1), 1 / len(geos))
    return np.where(totals[None, :] > 0, share, fallback)


def _geos(fitted: FittedModel) -> list[str]:
    return [str(g) for g in fitted.mmm.model.coords["geo"]] if fitted.data.geo else ["national"]


def _to_sgc(values: xr.DataArray, n_geo: int, channels: list[str]) -> np.ndarray:
    """Broadcast a per-draw variable to (sample, geo, channel)."""
    values = values.sel(channel=channels) if "channel" in values.dims else values
    order = [d for d in ("sample", "geo", "channel") if d in values.dims]
    arr = values.transpose(*order).to_numpy().astype(float)
    if "geo" not in values.dims:
        arr = np.expand_dims(arr, axis=order.index("sample") + 1 if "sample" in order else 0)
    if "channel" not in values.dims:
        arr = arr[..., None]
    if "sample" not in values.dims:
        arr = arr[None]
    return np.broadcast_to(arr, (arr.shape[0], n_geo, len(channels))).copy()


def curves_from_fit(
    fitted: FittedModel, horizon: int, draws: int, history: SpendHistory
) -> ResponseCurves:
    """The fitted model's per-draw response curves over a ``horizon``-period plan."""
    channels = list(fitted.data.channels)
    if fitted.method == "ridge_bootstrap":
        return _ridge_curves(fitted, horizon, draws, history, channels)
    geos = _geos(fitted)
    model = fitted.mmm.model
    channel_scale = _model_value(model, "channel_scale", len(geos), len(channels))
    target_scale = np.broadcast_to(
        np.asarray(model["target_scale"].get_value(), dtype=float).reshape(-1), (len(geos),)
    ).copy()
    posterior = thin_draws(fitted.tree["posterior"].to_dataset(), draws)
    posterior = posterior.stack(sample=("chain", "draw")).transpose("sample", ...)
    saturation = fitted.mmm.saturation
    mapping = saturation.variable_mapping
    sat = {k: _to_sgc(posterior[v], len(geos), channels) for k, v in mapping.items()}
    adstock = fitted.mmm.adstock
    ad_params = {
        k: _to_sgc(posterior[v], len(geos), channels) for k, v in adstock.variable_mapping.items()
    }
    weights = _lag_weights(adstock, ad_params)  # (S, G, C, L)
    kind = "hill" if "kappa" in sat else "logistic"
    timeline, counts = timeline_weights(weights, horizon)
    return ResponseCurves(
        channels=channels,
        horizon=horizon,
        timeline_weight=timeline,
        period_count=counts,
        beta=sat["beta"],
        saturation=kind,
        slope=sat.get("slope"),
        kappa=sat.get("kappa"),
        lam=sat.get("lam"),
        input_per_spend=history.geo_share / channel_scale,
        target_scale=target_scale,
    )


def _lag_weights(adstock, params: dict[str, np.ndarray]) -> np.ndarray:
    """Geometric adstock in NumPy (no graph to compile; the response test checks it against
    the library end to end); any other adstock through PyMC-Marketing's own function."""
    from pymc_marketing.mmm import GeometricAdstock

    if (
        type(adstock) is GeometricAdstock
        and set(params) == {"alpha"}
        and str(getattr(adstock.mode, "value", adstock.mode)).lower() == "after"
    ):
        return geometric_weights(params["alpha"], int(adstock.l_max), bool(adstock.normalize))
    return library_adstock_weights(adstock, params)


def _model_value(model, name: str, n_geo: int, n_channel: int) -> np.ndarray:
    value = np.asarray(model[name].get_value(), dtype=float)
    dims = model.named_vars_to_dims.get(name, ())
    if "geo" not in dims:
        value = value[None, ...] if "channel" in dims else np.full((1, n_channel), value)
    return np.broadcast_to(value, (n_geo, n_channel)).copy()


def sampler_record(fitted: FittedModel, draws_used: int) -> dict[str, Any]:
    """What produced the draws, for the output's metadata: the NUTS settings of a Bayesian
    fit, or the bootstrap of a ridge fit (whose 'draws' are residual-bootstrap replicates
    with the tuned transforms held fixed; the NUTS settings in its params were never used)."""
    if fitted.method != "ridge_bootstrap":
        return {**fitted.params.sampler.model_dump(mode="json"), "draws_used": draws_used}
    from attribution_analysis.mmm.ridge import BLOCK

    replicates = int(fitted.tree["bootstrap"].sizes["sample"])
    return {
        "method": "ridge_bootstrap",
        "resampling": "moving-block bootstrap of the residuals, transforms held fixed",
        "replicates": replicates,
        "block_periods": BLOCK,
        "seed": fitted.params.seed,
        "draws_used": draws_used,
    }


def _ridge_curves(
    fitted: FittedModel, horizon: int, draws: int, history: SpendHistory, channels: list[str]
) -> ResponseCurves:
    """The ridge fallback: fixed transforms, one coefficient per bootstrap replicate."""
    from attribution_analysis.mmm.build import effective_l_max

    hyper = fitted.tree["hyperparameters"].to_dataset()
    coef = fitted.tree["bootstrap"]["media_coefficient"].sel(channel=channels).to_numpy()
    step = max(1, coef.shape[0] // draws)
    coef = coef[::step]
    n = coef.shape[0]
    alpha, slope, kappa = (
        hyper[k].sel(channel=channels).to_numpy()
        for k in ("adstock_alpha", "saturation_slope", "saturation_kappa")
    )
    l_max = effective_l_max(fitted.params.config)
    weights = np.broadcast_to(geometric_weights(alpha, l_max), (n, 1, len(channels), l_max))
    scale = fitted.data.spend.to_numpy(dtype=float).max(axis=0)
    timeline, counts = timeline_weights(weights, horizon)
    return ResponseCurves(
        channels=channels,
        horizon=horizon,
        timeline_weight=timeline,
        period_count=counts,
        beta=coef[:, None, :],
        saturation="hill",
        slope=np.broadcast_to(slope, (n, 1, len(channels))).copy(),
        kappa=np.broadcast_to(kappa, (n, 1, len(channels))).copy(),
        lam=None,
        input_per_spend=history.geo_share / np.maximum(scale, 1e-12)[None, :],
        target_scale=np.array([float(hyper["target_scale"])]),
    )
