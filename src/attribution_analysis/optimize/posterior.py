"""Response curves and spend history from the fitted MMM in the workspace.

Read from the stored fit (``mmm.stored``): posterior draws of the media curves, the scales
PyMC-Marketing derived from the data, the spend history. No PyMC model is rebuilt, so the
step imports neither PyMC, PyTensor nor PyMC-Marketing (``tests/test_light_steps.py``; the
seconds are in ``benchmarks/light_steps.py``). ``tests/optimize`` checks these curves against
PyMC-Marketing's own graph on a real fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from attribution_analysis.errors import WorkspaceError
from attribution_analysis.mmm.stored import Arrays, StoredFit
from attribution_analysis.optimize.response import (
    ResponseCurves,
    geometric_weights,
    timeline_weights,
)

# PyMC-Marketing saturation classes whose closed form ``ResponseCurves`` evaluates.
SATURATIONS = {"HillSaturation": "hill", "LogisticSaturation": "logistic"}


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


def spend_history(fitted: StoredFit, basis_periods: int) -> SpendHistory:
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


def _geo_share(fitted: StoredFit, frame: pd.DataFrame, dates: pd.Index) -> np.ndarray:
    channels = fitted.data.channels
    if not fitted.data.geo:
        return np.ones((1, len(channels)))
    geos = fitted.geos
    frame = frame.assign(geo=frame["geo"].astype(str))
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


def cell_max_per_period(fitted: StoredFit) -> np.ndarray:
    """(G, C): the most each geo x channel cell spent in one period (the per-cell cap)."""
    data = fitted.data
    frame = data.X[["date", "geo", *data.channels]].assign(geo=data.X["geo"].astype(str))
    per_period = frame.groupby(["geo", "date"], sort=True)[data.channels].sum()
    most = per_period.groupby(level="geo").max().reindex(fitted.geos).fillna(0.0)
    return most.to_numpy(dtype=float)


def _to_sgc(
    posterior: Arrays, name: str, draws: int, geos: list[str], channels: list[str]
) -> np.ndarray:
    """A per-draw variable as (sample, geo, channel): geos and channels by label, every
    k-th draw of each chain so that about ``draws`` remain (``summaries.thin_draws``), the
    samples chain by chain (xarray's ``stack(sample=("chain", "draw"))`` order)."""
    values, dims = posterior.values[name], list(posterior.dims[name])
    unexpected = set(dims) - {"chain", "draw", "geo", "channel"}
    if unexpected:
        raise WorkspaceError(
            f"the posterior's {name} has dims {sorted(unexpected)} this project does not "
            "build, so its response curves cannot be read.",
            fix="refit with fit_mmm in this workspace.",
        )
    values = posterior.select(name, channel=channels, geo=geos)
    # To (chain, draw, geo, channel), a dim the variable lacks as length 1.
    full = ("chain", "draw", "geo", "channel")
    values = np.transpose(values, [dims.index(d) for d in full if d in dims])
    lengths = iter(values.shape)
    values = values.reshape([next(lengths) if d in dims else 1 for d in full])
    step = max(1, (values.shape[0] * values.shape[1]) // draws)
    values = values[:, ::step].astype(float)
    values = values.reshape(-1, *values.shape[2:])
    return np.broadcast_to(values, (values.shape[0], len(geos), len(channels))).copy()


def curves_from_fit(
    fitted: StoredFit, horizon: int, draws: int, history: SpendHistory
) -> ResponseCurves:
    """The fitted model's per-draw response curves over a ``horizon``-period plan."""
    channels = list(fitted.data.channels)
    if fitted.method == "ridge_bootstrap":
        return _ridge_curves(fitted, horizon, draws, history, channels)
    geos = fitted.geos
    saturation = fitted.transform("saturation")
    kind = SATURATIONS.get(_class_name(saturation))
    if kind is None:
        # Only a model file this project did not write can get here: it builds Hill and
        # logistic saturation only.
        raise WorkspaceError(
            f"the stored fit uses {_class_name(saturation)} saturation, which this project "
            "does not build (Hill and logistic only), so its response curves cannot be read.",
            fix="refit with fit_mmm in this workspace.",
        )
    adstock = fitted.transform("adstock")
    sat_names, ad_names = _variable_mapping(saturation), _variable_mapping(adstock)
    posterior = fitted.arrays("posterior", [*sat_names.values(), *ad_names.values()])
    sat = {name: _to_sgc(posterior, v, draws, geos, channels) for name, v in sat_names.items()}
    ad_params = {name: _to_sgc(posterior, v, draws, geos, channels) for name, v in ad_names.items()}
    weights = _lag_weights(adstock, ad_params)  # (S, G, C, L)
    timeline, counts = timeline_weights(weights, horizon)
    channel_scale = fitted.channel_scale()
    # A channel with no spend in a geo has scale 0; PyMC-Marketing then feeds the model
    # zeros there (it rewrites the 0/0 to 0), so that geo's input is 0 per unit of spend.
    safe = np.where(channel_scale != 0, channel_scale, 1.0)
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
        input_per_spend=np.where(channel_scale != 0, history.geo_share / safe, 0.0),
        target_scale=fitted.target_scale(),
    )


def rebased(curves: ResponseCurves, fitted: StoredFit, history: SpendHistory) -> ResponseCurves:
    """The same curves with another basis window's split of each channel's spend over geos.

    Only that split depends on the basis (a national model's curves do not depend on it at
    all), so the draws, adstock timelines and saturation parameters are reused as they are.
    """
    if not fitted.data.geo or fitted.method == "ridge_bootstrap":
        return curves
    channel_scale = fitted.channel_scale()
    safe = np.where(channel_scale != 0, channel_scale, 1.0)
    unit = np.where(channel_scale != 0, history.geo_share / safe, 0.0)
    return replace(curves, input_per_spend=unit)


def _class_name(spec: dict[str, Any]) -> str:
    return str(spec["__type__"]).rsplit(".", 1)[-1]


def _variable_mapping(spec: dict[str, Any]) -> dict[str, str]:
    """Parameter -> posterior variable, as PyMC-Marketing names them (``{prefix}_{param}``)."""
    return {name: f"{spec['prefix']}_{name}" for name in spec["priors"]}


def _lag_weights(adstock: dict[str, Any], params: dict[str, np.ndarray]) -> np.ndarray:
    """Geometric adstock in NumPy (the default; no graph to compile, and the response test
    checks it against the library end to end); any other adstock through PyMC-Marketing's
    own function, which imports PyTensor (only then)."""
    mode = str(adstock.get("mode", "After")).lower()
    if _class_name(adstock) == "GeometricAdstock" and set(params) == {"alpha"} and mode == "after":
        return geometric_weights(
            params["alpha"], int(adstock["l_max"]), bool(adstock.get("normalize", True))
        )
    import pymc_marketing.mmm  # noqa: F401  (registers the adstock classes by type name)
    from pymc_marketing.serialization import serialization

    from attribution_analysis.optimize.response import library_adstock_weights

    return library_adstock_weights(serialization.deserialize(adstock), params)


def sampler_record(fitted: StoredFit, draws_used: int) -> dict[str, Any]:
    """What produced the draws, for the output's metadata: the NUTS settings of a Bayesian
    fit, or the bootstrap of a ridge fit (whose 'draws' are residual-bootstrap replicates
    with the tuned transforms held fixed; the NUTS settings in its params were never used)."""
    if fitted.method != "ridge_bootstrap":
        return {**fitted.params.sampler.model_dump(mode="json"), "draws_used": draws_used}
    from attribution_analysis.mmm.ridge import BLOCK

    # One variable's dims give the count; the whole group holds every replicate's weekly
    # contributions, which this record does not need.
    replicates = fitted.arrays("bootstrap", ["media_coefficient"]).sizes["sample"]
    return {
        "method": "ridge_bootstrap",
        "resampling": "moving-block bootstrap of the residuals, transforms held fixed",
        "replicates": replicates,
        "block_periods": BLOCK,
        "seed": fitted.params.seed,
        "draws_used": draws_used,
    }


def _ridge_curves(
    fitted: StoredFit, horizon: int, draws: int, history: SpendHistory, channels: list[str]
) -> ResponseCurves:
    """The ridge fallback: fixed transforms, one coefficient per bootstrap replicate."""
    from attribution_analysis.mmm.build import effective_l_max

    hyper = fitted.arrays("hyperparameters")
    coef = fitted.arrays("bootstrap").select("media_coefficient", channel=channels)
    step = max(1, coef.shape[0] // draws)
    coef = coef[::step]
    n = coef.shape[0]
    alpha, slope, kappa = (
        hyper.select(k, channel=channels)
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
        target_scale=np.array([float(hyper.values["target_scale"])]),
    )
