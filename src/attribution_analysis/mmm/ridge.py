"""Robyn-style fallback: ridge regression on tuned adstock/saturation transforms.

Used on request (``method="ridge"``) or when NUTS fails the gates even after its retry.
Transform hyperparameters (geometric adstock alpha, Hill slope and half-saturation per
channel) and the ridge penalty are tuned by differential evolution on Robyn's two
objectives, summed: the error on a time-ordered hold-out (the last 20% of periods) and
DECOMP.RSSD; media coefficients are constrained non-negative. The
intervals come from a moving-block bootstrap of the residuals with the tuned transforms held
fixed, so they are narrower than a posterior would be: they ignore the uncertainty of the
transforms themselves. Every output labels the method ``ridge_bootstrap``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.optimize import differential_evolution, lsq_linear

from attribution_analysis.data.controls import fourier_terms
from attribution_analysis.errors import ParameterError, arg
from attribution_analysis.mmm.panel import ModelData
from attribution_analysis.transforms import geometric_adstock, hill

if TYPE_CHECKING:  # imported where the fit builds its tree: the optimizer reads BLOCK only
    import xarray as xr

ALPHA_BOUNDS = (0.0, 0.9)
SLOPE_BOUNDS = (0.5, 3.0)
KAPPA_BOUNDS = (0.1, 2.0)
LOG_PENALTY_BOUNDS = (-4.0, 1.0)
HOLDOUT_SHARE = 0.2
BLOCK = 4  # periods per bootstrap block: keeps a month of residual autocorrelation
REPLICATES = 300


@dataclass
class RidgeFit:
    channels: list[str]
    alpha: np.ndarray
    slope: np.ndarray
    kappa: np.ndarray
    penalty: float
    objective: float
    tree: xr.DataTree


def _media_features(
    spend: np.ndarray, alpha, slope, kappa, l_max: int, maximum: np.ndarray | None = None
) -> np.ndarray:
    """hill(adstock(spend / maximum)) per channel; ``maximum`` defaults to spend's own."""
    maximum = spend.max(axis=0) if maximum is None else maximum
    scaled = spend / np.maximum(maximum, 1e-12)
    out = np.empty_like(scaled)
    for c in range(spend.shape[1]):
        out[:, c] = hill(geometric_adstock(scaled[:, c], alpha[c], l_max), slope[c], kappa[c])
    return out


def _solve(media: np.ndarray, other: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """Ridge with non-negative media coefficients; the intercept is not penalised."""
    design = np.column_stack([np.ones(len(y)), media, other])
    n_pen = design.shape[1] - 1
    augmented = np.vstack(
        [design, np.column_stack([np.zeros(n_pen), np.sqrt(penalty) * np.eye(n_pen)])]
    )
    target = np.concatenate([y, np.zeros(n_pen)])
    lower = np.full(design.shape[1], -np.inf)
    lower[1 : 1 + media.shape[1]] = 0.0
    return lsq_linear(augmented, target, bounds=(lower, np.inf), method="bvls").x


def fit_ridge(data: ModelData, l_max: int, yearly: int, seed: int) -> RidgeFit:
    if data.geo:
        # A geo ridge would need adstock per geo series, per-geo intercepts and a (date, geo)
        # bootstrap, and every reader of the ridge tree (decompose, validate_model, the
        # optimizer's curves) is national; the Bayesian model is what fits geo panels.
        n_geos = data.X["geo"].nunique()
        raise ParameterError(
            f"the ridge model fits national panels only, and this panel has {n_geos} geos. "
            "On a geo panel the Bayesian model replaces it: one adstock, saturation, "
            "intercept, control and noise parameter set per geo (references/"
            "mmm_methodology.md, 'Geo panels'); when NUTS fails the gates there is no ridge "
            "fallback.",
            fix=f"fit with NUTS (leave {arg('method')} at its default; {arg('quick')}='map' "
            "gives a first look), or re-import without the geo role to fit a national panel "
            f"with {arg('method')}='ridge'.",
        )
    spend = data.X[data.channels].to_numpy(dtype=float)
    dates = data.X["date"]
    terms = fourier_terms(pd.DatetimeIndex(dates), yearly, 0, data.report.grain)
    seasonality = np.column_stack(list(terms.values())) if terms else np.zeros((len(dates), 0))
    # Organic series and events enter the ridge as plain linear terms (no carryover, no
    # saturation), so their effects land in the base; fit.py says so in a finding.
    linear = [*data.controls, *data.organic, *data.events]
    other = (
        np.column_stack([data.X[linear].to_numpy(dtype=float), seasonality])
        if linear
        else seasonality
    )
    scale = float(np.abs(data.y).max())
    y = data.y.to_numpy(dtype=float) / scale
    (alpha, slope, kappa, penalty), objective = _tune(spend, other, y, l_max, seed)
    media = _media_features(spend, alpha, slope, kappa, l_max)
    replicates, contribution, base, noise = _bootstrap(media, other, y, penalty, seed)
    n_ch = len(data.channels)
    coords = {"sample": np.arange(REPLICATES), "date": dates.to_numpy(), "channel": data.channels}
    contribution, base, noise = contribution * scale, base * scale, noise * scale
    import xarray as xr

    bootstrap = xr.Dataset(
        {
            "channel_contribution": (("sample", "date", "channel"), contribution),
            "base": (("sample", "date"), base),
            "mu": (("sample", "date"), contribution.sum(axis=2) + base),
            "y_predictive": (("sample", "date"), contribution.sum(axis=2) + base + noise),
            "media_coefficient": (("sample", "channel"), replicates[:, 1 : 1 + n_ch]),
        },
        coords=coords,
    )
    hyper = xr.Dataset(
        {
            "adstock_alpha": ("channel", alpha),
            "saturation_slope": ("channel", slope),
            "saturation_kappa": ("channel", kappa),
            "ridge_penalty": penalty,
            "target_scale": scale,
            "objective": objective,
        },
        coords={"channel": data.channels},
    )
    tree = xr.DataTree.from_dict(
        {
            "/bootstrap": bootstrap,
            "/hyperparameters": hyper,
            "/observed_data": xr.Dataset(
                {"y": ("date", data.y.to_numpy())}, coords={"date": dates.to_numpy()}
            ),
        }
    )
    return RidgeFit(data.channels, alpha, slope, kappa, penalty, objective, tree)


def _tune(
    spend: np.ndarray, other: np.ndarray, y: np.ndarray, l_max: int, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, float], float]:
    """Adstock, saturation and penalty chosen by differential evolution on the hold-out
    objective; ``((alpha, slope, kappa, penalty), objective)``."""
    n_ch = spend.shape[1]
    split = int(len(y) * (1 - HOLDOUT_SHARE))

    def unpack(theta):
        return theta[:n_ch], theta[n_ch : 2 * n_ch], theta[2 * n_ch : 3 * n_ch], 10 ** theta[-1]

    spend_share = spend.sum(axis=0) / spend.sum()

    def loss(theta) -> float:
        """Hold-out NRMSE + DECOMP.RSSD, Robyn's two objectives summed with equal weights.

        RSSD (distance between effect shares and spend shares) stops the penalty from
        handing an always-on channel's effect to the intercept, which NRMSE alone allows.
        """
        alpha, slope, kappa, penalty = unpack(theta)
        media = _media_features(spend, alpha, slope, kappa, l_max)
        coef = _solve(media[:split], other[:split], y[:split], penalty)
        design = np.column_stack([np.ones(len(y)), media, other])
        residual = y[split:] - design[split:] @ coef
        nrmse = np.sqrt(np.mean(residual**2)) / (np.ptp(y[split:]) or 1.0)
        effect = coef[1 : 1 + n_ch] * media.sum(axis=0)
        share = effect / effect.sum() if effect.sum() > 0 else np.zeros(n_ch)
        return float(nrmse + np.sqrt(np.sum((share - spend_share) ** 2)))

    bounds = (
        [ALPHA_BOUNDS] * n_ch + [SLOPE_BOUNDS] * n_ch + [KAPPA_BOUNDS] * n_ch + [LOG_PENALTY_BOUNDS]
    )
    best = differential_evolution(
        loss, bounds, seed=seed, maxiter=60, popsize=8, tol=1e-6, polish=False
    )
    return unpack(best.x), float(best.fun)


def _bootstrap(
    media: np.ndarray, other: np.ndarray, y: np.ndarray, penalty: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Moving-block bootstrap of the ridge fit (scaled units): the coefficient replicates,
    channel contributions (sample, date, channel), base (sample, date) and predictive noise."""
    n_ch = media.shape[1]
    coef = _solve(media, other, y, penalty)
    design = np.column_stack([np.ones(len(y)), media, other])
    fitted = design @ coef
    # In-sample residuals are too small by the degrees of freedom the fit used; rescale them
    # (Davison & Hinkley's modified residuals) before resampling.
    residual = (y - fitted) * np.sqrt(len(y) / max(len(y) - design.shape[1], 1))
    rng = np.random.default_rng(seed)
    n = len(y)
    starts = rng.integers(0, n - BLOCK + 1, size=(REPLICATES, int(np.ceil(n / BLOCK))))
    index = (starts[:, :, None] + np.arange(BLOCK)).reshape(REPLICATES, -1)[:, :n]
    replicates = np.stack([_solve(media, other, fitted + residual[idx], penalty) for idx in index])
    contribution = replicates[:, None, 1 : 1 + n_ch] * media[None]
    base = (
        replicates[:, None, :1]
        + (replicates[:, None, 1 + n_ch :] * other[None]).sum(axis=2, keepdims=True)
    )[:, :, 0]
    noise = residual[rng.integers(0, n, size=(REPLICATES, n))]
    return replicates, contribution, base, noise


def marginal_contribution(
    tree: xr.DataTree, spend: np.ndarray, l_max: int, step: float
) -> np.ndarray:
    """Extra contribution (sample, channel) from ``step`` more spend in every period."""
    hyper = tree["hyperparameters"].to_dataset()
    coef = tree["bootstrap"]["media_coefficient"].to_numpy()
    scale = float(hyper["target_scale"])
    alpha, slope, kappa = (
        hyper[k].to_numpy() for k in ("adstock_alpha", "saturation_slope", "saturation_kappa")
    )
    base = _media_features(spend, alpha, slope, kappa, l_max)
    # Keep the fitted scale (the maximum of the observed spend) when spend is raised.
    raised = _media_features(
        spend * (1 + step), alpha, slope, kappa, l_max, maximum=spend.max(axis=0)
    )
    return (coef * (raised - base).sum(axis=0)[None, :]) * scale
