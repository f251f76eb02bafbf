"""The seed's explicit prior-sensitivity comparison: refit with vague priors, compare ROAS.

Power-scaling (``diagnostics.prior_sensitivity``) needs no refit and flags parameters; this
refit answers the business question behind it: would a channel's ROAS change if we had
assumed almost nothing?
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attribution_analysis.contracts.mmm import MMMConfig
from attribution_analysis.mmm.build import build_mmm
from attribution_analysis.mmm.loaded import FittedModel
from attribution_analysis.mmm.posterior_contributions import contribution_draws
from attribution_analysis.mmm.priors import GEO_EFFECT, geo_effect_prior
from attribution_analysis.mmm.sampling import attach_posterior, sample_posterior

VAGUE_PRIORS: dict[str, dict[str, Any]] = {
    "saturation_beta": {"dist": "HalfNormal", "kwargs": {"sigma": 3.0}},
}
# A geo panel keeps its pooled structure (priors.GEO_POOLING), with the hyperpriors twice as
# wide, as the national HalfNormal(3) is twice the default's 1.5: the refit measures the pull
# of the priors' widths, not of pooling (an unpooled refit of a 20-geo panel is a different
# model, and one that does not converge in the draws a check can afford).
VAGUE_GEO_EFFECT_PRIOR = geo_effect_prior(width=2.0)
# Each adstock's own parameters (PyMC-Marketing's Weibull PDF adstock has lam and k).
VAGUE_ADSTOCK_PRIORS: dict[str, dict[str, dict[str, Any]]] = {
    "geometric": {"adstock_alpha": {"dist": "Beta", "kwargs": {"alpha": 1.0, "beta": 1.0}}},
    "weibull": {
        "adstock_lam": {"dist": "HalfNormal", "kwargs": {"sigma": 3.0}},
        "adstock_k": {"dist": "HalfNormal", "kwargs": {"sigma": 3.0}},
    },
}
# Each saturation family's own shape parameters (a prior the other family does not have is
# refused by build_mmm as an unknown name).
VAGUE_SHAPE_PRIORS: dict[str, dict[str, dict[str, Any]]] = {
    "hill": {
        "saturation_kappa": {"dist": "HalfNormal", "kwargs": {"sigma": 3.0}},
        "saturation_slope": {"dist": "HalfNormal", "kwargs": {"sigma": 3.0}},
    },
    # PyMC-Marketing's default is Gamma(3, 1) (mean 3, sd 1.7); vague: HalfNormal(6), sd 3.6.
    "logistic": {"saturation_lam": {"dist": "HalfNormal", "kwargs": {"sigma": 6.0}}},
}
SHIFT_LIMIT = 0.2  # relative change of mean ROAS that we call prior-driven
OVERLAP_LIMIT = 0.5


def overlap(a: np.ndarray, b: np.ndarray, bins: int = 60) -> float:
    """Overlap coefficient of two samples' densities (1 = identical, 0 = disjoint)."""
    low, high = min(a.min(), b.min()), max(a.max(), b.max())
    if high <= low:
        return 1.0
    edges = np.linspace(low, high, bins + 1)
    pa, _ = np.histogram(a, edges, density=True)
    pb, _ = np.histogram(b, edges, density=True)
    return float(np.minimum(pa, pb).sum() * (edges[1] - edges[0]))


def roas_draws(fitted: FittedModel, mmm: Any) -> dict[str, np.ndarray]:
    view = FittedModel(
        mmm, fitted.data, mmm.idata, fitted.params, fitted.manifest, fitted.input_hashes
    )
    channel = contribution_draws(view)["channel"]
    totals = channel.sum([d for d in channel.dims if d not in ("sample", "channel")])
    return {
        str(c): totals.sel(channel=c).values / fitted.data.X[str(c)].sum()
        for c in channel["channel"].values
    }


def vague_config(config: MMMConfig, geo: bool) -> MMMConfig:
    """``config`` with the vague priors (the user's other priors kept) and no ROI prior."""
    vague = {
        **VAGUE_PRIORS,
        **({GEO_EFFECT: VAGUE_GEO_EFFECT_PRIOR} if geo else {}),
        **VAGUE_ADSTOCK_PRIORS[config.adstock],
        **VAGUE_SHAPE_PRIORS[config.saturation],
    }
    # Vague means without the ROI prior too: it is one of the priors whose pull is measured.
    return config.model_copy(update={"priors": {**config.priors, **vague}, "roi_prior": None})


def vague_model(fitted: FittedModel) -> Any:
    """The fit's model with vague priors, built (not sampled)."""
    config: MMMConfig = fitted.params.config
    vague_mmm = build_mmm(fitted.data, vague_config(config, fitted.data.geo))
    # Lift tests are data: the refit keeps them, so that a channel a test pinned down is not
    # labelled prior-driven because the refit ignored the test.
    if fitted.lift_tests:
        from attribution_analysis.mmm.calibration import calibrate

        calibrate(vague_mmm, fitted.lift_tests, fitted.data, fitted.params.lift_reading)
    return vague_mmm


def compare_with_vague_priors(fitted: FittedModel, seed: int) -> list[dict[str, Any]]:
    from attribution_analysis.mmm.refits import VAGUE, refit_key

    vague_mmm = vague_model(fitted)
    # A one-off fit: compiled with its data frozen in (faster to compile and to sample), or
    # ahead of this step by the job worker (mmm/refits.py).
    outcome = sample_posterior(
        vague_mmm, fitted.params.sampler, seed, None, one_off=refit_key(fitted, VAGUE)
    )
    attach_posterior(vague_mmm, outcome.idata)
    informative = roas_draws(fitted, fitted.mmm)
    loose = roas_draws(fitted, vague_mmm)
    rows = []
    for channel, draws in informative.items():
        other = loose[channel]
        shift = float((other.mean() - draws.mean()) / max(abs(draws.mean()), 1e-12))
        ovl = overlap(draws, other)
        rows.append(
            {
                "channel": channel,
                "roas_informative": float(draws.mean()),
                "roas_vague": float(other.mean()),
                "relative_shift": shift,
                "overlap": ovl,
                "prior_dominates": abs(shift) > SHIFT_LIMIT or ovl < OVERLAP_LIMIT,
            }
        )
    return rows
