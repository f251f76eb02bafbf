"""The project's default priors: the only place they live.

PyMC-Marketing's Hill defaults (HalfNormal(1.5) on slope, half-saturation and ceiling) let
the slope collapse towards 0 and the half-saturation point wander far beyond the observed
spend; for an always-on channel that trades off against the intercept and the sampler
crawls (bulk ESS 70-250 from 4,000 draws on simulated panels). Log-normal priors keep the
curve's shape in a plausible range without pinning it:

- half-saturation ``kappa`` (on spend scaled by its maximum): LogNormal(-0.5, 0.8), median
  0.6, 95% in [0.13, 2.9]: around the observed spend range, near-linear channels allowed;
- ``slope``: LogNormal(0, 0.5), median 1, 95% in [0.38, 2.7]: concave unless the data show
  an S-shape. The previous median of 1.5 was chosen on the project's own simulator, whose
  slopes are drawn from [1, 2.5]; on worlds we did not write it made curves convex over the
  observed spend, so a lift test at peak spend pinned the curve there and left every other
  week's contribution low (``research_preset``: each test matched within 2%, channel totals
  at 0.52-0.64 of truth). Meridian fixes its media slope at 1; PyMC-Marketing's default
  logistic curve is concave. Centred on 1, over 9 independent worlds x 2 seeds the default
  fit's share error fell from 6.4 to 5.8 points, mean media-total error from 23% to 17% and
  90% coverage rose from 79% to 91% (references/mmm_methodology.md, "The Hill slope prior");
- adstock retention ``alpha``: Beta(1.5, 2), mean 0.43, instead of Beta(1, 3) (mean 0.25),
  which pulled long carry-over channels (TV, video, alpha ~0.7) towards short memory and
  under-credited them.

On simulated panels these (with the previous slope prior) lifted the minimum bulk ESS from
70-250 to 440-1,300 per 4,000 draws and the share of true channel contributions inside their
90% intervals from 75% to 85% (README, MMM accuracy).

The prior on each channel's return on spend (revenue outcomes) is not a curve prior: its
default is ``RoiPrior`` in ``contracts/mmm.py`` and it enters as a potential
(``mmm/roi_prior.py``).
"""

from __future__ import annotations

from typing import Any

ADSTOCK_DEFAULTS: dict[str, dict[str, Any]] = {
    "adstock_alpha": {"dist": "Beta", "kwargs": {"alpha": 1.5, "beta": 2.0}},
}
HILL_DEFAULTS: dict[str, dict[str, Any]] = {
    "saturation_kappa": {"dist": "LogNormal", "kwargs": {"mu": -0.5, "sigma": 0.8}},
    "saturation_slope": {"dist": "LogNormal", "kwargs": {"mu": 0.0, "sigma": 0.5}},
}
LOGISTIC_DEFAULTS: dict[str, dict[str, Any]] = {}


def default_priors(saturation: str, adstock: str = "geometric") -> dict[str, dict[str, Any]]:
    """Defaults for the chosen curves; PyMC-Marketing adds the dims."""
    chosen = dict(HILL_DEFAULTS if saturation == "hill" else LOGISTIC_DEFAULTS)
    if adstock == "geometric":
        chosen.update(ADSTOCK_DEFAULTS)
    return {name: dict(spec) for name, spec in chosen.items()}


# ----- geo panels: partial pooling across geos ----------------------------------------------
# PyMC-Marketing gives every media parameter of a geo model its own value per (geo, channel),
# unpooled: 20 geos x 3 channels x 4 curve parameters is 240 parameters, each learnt from one
# geo's series, and on a 20-geo panel the sampler did not converge in 2 x 1,000 draws (R-hat
# 1.09, 196 divergences on geo_world seed 2; pooled: R-hat 1.03-1.13, 0-1 divergences on
# seeds 1-3, better but not yet converged at those draws; references/mmm_methodology.md,
# "Geo panels"). Meridian's structure
# instead: the curve's shape (carry-over, half-saturation, slope) is one per channel, shared by
# all geos (spend is scaled per geo, so a shared half-saturation sits at the same share of each
# geo's own spend), and the effect size varies by geo around a channel mean, log-normally
# (Meridian: beta_gm ~ LogNormal(beta_m, eta_m), eta_m ~ HalfNormal(1)). Small geos borrow
# strength from large ones instead of following their noise. Until the level
# parametrisation (mmm/intercept.py) the centred form was kept: on geo_world seed 1 (2 x 1,000
# draws) the non-centred form's geo spread stalled (R-hat 1.16, bulk ESS 11) where the
# centred one reached R-hat 1.09, ESS 32, and on the 6-geo demo world each form diverged in
# its own place: the centred in a funnel at the bottom of the always-on search channel's geo
# spread, the non-centred at a low Hill slope with a large effect (that channel's ridge with
# the baseline). The level parametrisation takes the ridge away; with it, on the same worlds
# (one run each): geo_world seed 1 centred R-hat 1.046, ESS 38, non-centred R-hat 1.015,
# ESS 151 (0 divergences both, the same per-geo coverage); the demo world centred 105
# divergences then 25 after the remedy (fails the gate), non-centred 0 (passes, at 1,250
# draws per chain). So non-centred, until the spread was integrated out (below).
GEO_EFFECT = "saturation_beta"
GEO_SHARED_DIMS = ("channel",)


# log beta[geo, channel] ~ Normal(mu[channel], sigma[channel]^2), with sigma[channel]^2 ~
# InverseGamma(2, width^2) integrated out. mu's prior, Normal(-0.5, width), median 0.6 and 95%
# in [0.085, 4.3] at width 1, spans the central mass of PyMC-Marketing's single-geo default
# HalfNormal(1.5) (90% in [0.09, 2.9]) on the same scaled units.
#
# Why the spread is integrated out: sampled, the spread was the slowest parameter of every geo
# fit, whichever form. Non-centred (log beta = mu + sigma * offset), a channel whose geos the
# data tell apart moves sigma only by moving every geo's offset with it; centred, a channel
# whose geos the data cannot tell apart (national TV flights) has sigma near 0 and a funnel.
# One panel has both: on geo_world seed 1 (20 geos x 104 weeks, 2 x 1,000 draws) sigma's bulk
# ESS was search 330 / social 175 / tv 238 non-centred and 137 / 315 / 63 centred, the
# lowest of any parameter each time. Integrated out, no spread is sampled: given mu, a
# channel's geo log-effects are jointly multivariate Student-t, nu = 2a = 4, scale
# (b / a) I = width^2 / 2 I (the standard normal/inverse-gamma mixture), which has neither the
# funnel nor the ridge. Its inverse-gamma spread prior has the prior variance of a geo's log
# effect around its channel mean of the HalfNormal(width) prior on sigma it replaces
# (Meridian's eta ~ HalfNormal(1) at width 1): E[sigma^2] = b / (a - 1) = width^2; it is
# heavier-tailed (an outlying geo costs less) and keeps sigma away from 0, where the data
# cannot say how far geos differ. The spread's posterior, if wanted, is exact per draw:
# sigma^2 | log beta ~ InverseGamma(a + G / 2, b + sum of squared deviations / 2).
# Measured: references/mmm_methodology.md, "Geo panels".
GEO_EFFECT_DIST = "GeoEffect"
GEO_SPREAD_SHAPE = 2.0  # a of the inverse-gamma prior on sigma^2 (nu = 2a = 4)


class GeoEffectPrior:
    """The geo effect size's prior (a pymc-extras ``VariableFactory``: PyMC-Marketing calls
    ``create_variable``), written by hand because no prior of pymc-extras or ``pymc.dims``
    gives a multivariate Student-t over one dim of a (geo, channel) variable."""

    dims = ("geo", "channel")

    def __init__(self, width: float = 1.0) -> None:
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        self.width = float(width)

    @property
    def parameters(self) -> dict[str, float]:
        return {"width": self.width}

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> GeoEffectPrior:
        unknown = set(spec) - {"dist", "kwargs"} or set(spec.get("kwargs", {})) - {"width"}
        if spec.get("dist") != GEO_EFFECT_DIST or unknown:
            raise ValueError(
                f'expected {{"dist": "{GEO_EFFECT_DIST}", "kwargs": {{"width": W}}}}, got {spec}'
            )
        return cls(**spec.get("kwargs", {}))

    def to_dict(self) -> dict[str, Any]:
        return {"dist": GEO_EFFECT_DIST, "kwargs": {"width": self.width}}

    def deepcopy(self) -> GeoEffectPrior:
        return GeoEffectPrior(self.width)

    def __repr__(self) -> str:
        return f"GeoEffectPrior(width={self.width:g})"

    def create_variable(self, name: str, xdist: bool = False) -> Any:
        """``name`` (geo, channel) = exp(``name``_raw (channel, geo)), the raw log effects
        multivariate Student-t around ``name``_raw_mu (channel)."""
        import numpy as np
        import pymc as pm
        import pytensor.tensor as pt
        from pytensor.xtensor import as_xtensor

        n_geos = len(pm.modelcontext(None).coords["geo"])
        mu = pm.Normal(f"{name}_raw_mu", mu=-0.5, sigma=self.width, dims="channel")
        shape_a, scale_b = GEO_SPREAD_SHAPE, self.width**2
        log_effect = pm.MvStudentT(
            f"{name}_raw",
            nu=2 * shape_a,
            mu=mu[:, None] * np.ones(n_geos),
            scale=(scale_b / shape_a) * np.eye(n_geos),
            dims=("channel", "geo"),
        )
        effect = pm.Deterministic(name, pt.exp(log_effect).T, dims=self.dims)
        return as_xtensor(effect, dims=self.dims) if xdist else effect


def geo_effect_prior(width: float = 1.0) -> dict[str, Any]:
    """The geo effect size's prior as a config entry, its scales times ``width`` (1: the
    default; the vague-prior refit uses 2)."""
    return GeoEffectPrior(width).to_dict()


def read_prior(spec: dict[str, Any]) -> Any:
    """A prior from its dict: pymc-extras' ``Prior``, or the geo effect's own."""
    if spec.get("dist") == GEO_EFFECT_DIST:
        return GeoEffectPrior.from_dict(spec)
    from pymc_extras.prior import Prior

    return Prior.from_dict(spec)


GEO_EFFECT_PRIOR = geo_effect_prior()
# What fixes the pooled structure: part of a geo fit's cache key, so a fit made without it
# is not reused for this model.
GEO_POOLING = {
    "shared_dims": list(GEO_SHARED_DIMS),
    GEO_EFFECT: GEO_EFFECT_PRIOR,
    "spread": f"InverseGamma({GEO_SPREAD_SHAPE:g}, width^2) on sigma^2, integrated out",
}


def pooled_across_geos(media_priors: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """A geo model's media priors (``Prior`` objects by model_config name: every adstock and
    saturation parameter, defaults included) with the pooling of ``GEO_POOLING``.

    The effect size gets the hierarchical prior (``GeoEffectPrior``) unless the user gave one
    (``given``); every other curve parameter whose prior has no dims is shared across geos. A
    prior given with dims keeps them: ``("geo", "channel")`` asks for one value per geo, unpooled.
    """

    out = {}
    for name, prior in media_priors.items():
        if name == GEO_EFFECT and name not in given:
            out[name] = GeoEffectPrior()
        elif name != GEO_EFFECT and not prior.dims:
            shared = prior.deepcopy()
            shared.dims = GEO_SHARED_DIMS
            out[name] = shared
        else:
            out[name] = prior
    return out


# ----- checks of user-given priors ---------------------------------------------------------
# The dimensions a prior may carry, by the model_config name it overrides. PyMC-Marketing
# only fails on others deep inside model building (a shape error, or a message about the
# 'saturation effect'), so they are refused here with the prior's name.
_MEDIA_DIMS = ("channel",)
_DIMS_BY_NAME = {
    "intercept": (),
    "likelihood": ("date",),
    "gamma_control": ("control",),
    "gamma_fourier": ("fourier_mode",),
}
# Parameters that must be positive in every distribution where they appear (a hint for the
# message; the check itself evaluates the prior's log-density).
_POSITIVE = ("sigma", "tau", "lam", "beta", "nu", "b")


def allowed_dims(name: str, geo: bool) -> tuple[str, ...]:
    """The dims the prior ``name`` may use in a national (``geo`` False) or geo model."""
    own = _DIMS_BY_NAME.get(name, _MEDIA_DIMS)
    return (*own, "geo") if geo else own


def prior_dims(prior: Any) -> set[str]:
    """Every dim a prior uses, its hyperpriors' included."""
    dims = set(prior.dims or ())
    for value in prior.parameters.values():
        if hasattr(value, "dims") and hasattr(value, "parameters"):
            dims |= prior_dims(value)
    return dims


def check_prior(name: str, prior: Any, geo: bool) -> None:
    """Refuse a user prior whose dims the model lacks or whose parameters give no valid value
    (a negative sigma, NaN, lower above upper), with the prior's name and the fix."""
    from attribution_analysis.errors import ParameterError

    allowed = allowed_dims(name, geo)
    unknown = sorted(prior_dims(prior) - set(allowed))
    if unknown:
        raise ParameterError(
            f"prior '{name}' uses dims {unknown}, which this model does not have for "
            f"'{name}' (it allows {list(allowed) or 'no dims'}).",
            fix=(f"use dims from {list(allowed)}, or leave" if allowed else "leave")
            + " 'dims' out to get the default.",
        )
    reason = _invalid_value(name, prior, allowed)
    if reason is not None:
        hint = [
            f"{k}={v:g}"
            for k, v in prior.parameters.items()
            if k in _POSITIVE and isinstance(v, int | float) and not v > 0
        ]
        raise ParameterError(
            f"prior '{name}' ({prior}) has no valid value: {reason}"
            + (f" ({', '.join(hint)} must be positive)." if hint else "."),
            fix="give every scale or shape parameter (sigma, beta, alpha, lam, nu) a finite "
            'positive value, e.g. {"dist": "HalfNormal", "kwargs": {"sigma": 1.0}}.',
        )


def _invalid_value(name: str, prior: Any, dims: tuple[str, ...]) -> str | None:
    """Why the prior's log-density is not finite at its starting point, or None if it is.

    The prior is built alone in a throwaway model (dims of size 2: sizes do not change
    validity) and its log-density compiled without C code, a fraction of a second.
    """
    import numpy as np
    import pymc as pm

    try:
        with pm.Model(coords={d: [0, 1] for d in dims}) as model:
            prior.create_variable(name)
        logp = model.compile_fn(model.logp(sum=False), mode="FAST_COMPILE")
        values = logp(model.initial_point())
    except Exception as exc:  # pymc and pytensor raise many types for an invalid parameter
        return str(exc).strip().rstrip(".")[:200] or type(exc).__name__
    if all(np.all(np.isfinite(v)) for v in values):
        return None
    return "its log-density is not finite"
