"""Build PyMC-Marketing's MMM from our configuration (no re-implementation of the model)."""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any

from attribution_analysis import layout
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig, RoiPrior
from attribution_analysis.errors import ParameterError, arg
from attribution_analysis.mmm.calibration import LIFT_READINGS
from attribution_analysis.mmm.panel import ModelData
from attribution_analysis.mmm.priors import (
    GEO_EFFECT,
    GEO_EFFECT_DIST,
    GEO_POOLING,
    check_prior,
    default_priors,
    pooled_across_geos,
    read_prior,
)
from attribution_analysis.numerics import use_reproducible_numerics

FINANCIAL_SERVICES_L_MAX = 26  # 6 months of weekly carry-over for long sales cycles


def effective_l_max(config: MMMConfig) -> int:
    if config.financial_services and "l_max" not in config.model_fields_set:
        return FINANCIAL_SERVICES_L_MAX
    return config.l_max


def build_mmm(data: ModelData, config: MMMConfig) -> Any:
    """A built (not fitted) ``pymc_marketing.mmm.MMM`` over ``data``."""
    use_reproducible_numerics()
    from pymc_marketing.mmm import (
        MMM,
        GeometricAdstock,
        HillSaturation,
        LogisticSaturation,
        WeibullPDFAdstock,
    )

    l_max = effective_l_max(config)

    def curves(prefix: str = "", priors: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """Fresh adstock and saturation of the configured families (``prefix`` names their
        variables apart from the media's, e.g. for organic series)."""
        adstock_kind = GeometricAdstock if config.adstock == "geometric" else WeibullPDFAdstock
        saturation_kind = HillSaturation if config.saturation == "hill" else LogisticSaturation
        own = priors or {}
        return (
            adstock_kind(l_max=l_max, prefix=f"{prefix}adstock", priors=own.get("adstock") or None),
            saturation_kind(prefix=f"{prefix}saturation", priors=own.get("saturation") or None),
        )

    adstock, saturation = curves()
    model_config = {}
    # Priors without dims get PyMC-Marketing's default (channel,); a geo panel's are pooled
    # across geos below (priors.pooled_across_geos).
    priors = {**default_priors(config.saturation, config.adstock), **config.priors}
    for name, spec in priors.items():
        if spec.get("dist") == GEO_EFFECT_DIST and name != GEO_EFFECT:
            raise ParameterError(
                f"prior '{name}': the '{GEO_EFFECT_DIST}' prior is the geo effect size's "
                f"(pooled across geos); it does not apply to '{name}'.",
                fix=f"give it as '{GEO_EFFECT}', or give '{name}' a pymc-extras prior.",
            )
        try:
            model_config[name] = read_prior(spec)
        except Exception as exc:  # pymc-extras raises several types for a bad spec
            raise ParameterError(
                f"prior '{name}' could not be read: {exc}.",
                fix='give priors as Prior.to_dict() output, e.g. {"dist": "HalfNormal", '
                '"kwargs": {"sigma": 1.0}}.',
            ) from None
    known = set(_default_prior_names(adstock, saturation))
    unknown = sorted(set(model_config) - known)
    if unknown:
        raise ParameterError(
            f"unknown prior name(s) {unknown}.", fix=f"use one of {sorted(known)}."
        )
    # The project's defaults are known good; only the user's overrides are checked (each
    # costs a small throwaway model, and a bad one would otherwise fail deep in PyMC or
    # sample a log-density of -inf).
    for name in config.priors:
        check_prior(name, model_config[name], data.geo)
    if data.geo:
        media = {**adstock.model_config, **saturation.model_config}
        media.update({name: model_config[name] for name in media if name in model_config})
        model_config.update(pooled_across_geos(media, set(config.priors)))
    n_obs = len(data.y)
    n_params = (
        2
        + 4 * (len(data.channels) + len(data.organic))
        + len(data.controls)
        + len(data.events)
        + 2 * config.yearly_seasonality
    )
    if n_obs < 2 * n_params:
        raise ParameterError(
            f"{n_obs} observations for about {n_params} parameters: too few periods to fit "
            "this model.",
            fix="use more history, fewer controls or a shorter Fourier order, or fit with "
            f"{arg('quick')} only to explore.",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            mmm = MMM(
                date_column="date",
                channel_columns=list(data.channels),
                target_column=data.target,
                adstock=adstock,
                saturation=saturation,
                control_columns=list(data.controls) or None,
                yearly_seasonality=config.yearly_seasonality or None,
                dims=("geo",) if data.geo else None,
                scaling=geo_scaling() if data.geo else None,
                model_config=model_config or None,
            )
            if data.organic or data.events:
                from attribution_analysis.mmm.components import add_components

                add_components(
                    mmm,
                    data.X,
                    data.organic,
                    data.events,
                    data.geo,
                    *curves("organic_", _component_priors(priors)),
                )
            mmm.build_model(data.X[_model_columns(data)], data.y)
            roi_prior = resolved_roi_prior(config, data.target)
            if roi_prior is not None:
                from attribution_analysis.mmm.roi_prior import add_roi_prior

                add_roi_prior(mmm, data.target, roi_prior)
            if config.intercept_sampled_as == "level":
                from attribution_analysis.mmm.intercept import sample_level_not_intercept

                sample_level_not_intercept(mmm)
        except (ValueError, TypeError, KeyError) as exc:
            if not config.priors:
                raise  # the project's own configuration failed: a bug, not an input error
            # check_prior catches the known ways a prior breaks the model; this names the
            # priors for any other PyMC-Marketing refuses.
            raise ParameterError(
                f"the model could not be built with the given priors "
                f"{sorted(config.priors)}: {str(exc)[:300]}.",
                fix="give each prior the dims of its parameter (see the model_config of "
                "PyMC-Marketing's MMM), or leave 'dims' out to get the default.",
            ) from None
    return mmm


# A geo panel's outcome and each channel's spend are scaled by their maximum within each geo
# (PyMC-Marketing's default reduces over geos too: one maximum of the whole panel). Why: the
# curve priors are stated on scaled values (Hill kappa as a share of the largest spend, beta
# as a share of the largest outcome), and with one panel-wide maximum a geo of a twentieth
# of the largest one sees its spend at a few percent of the scale, where the kappa prior's
# mass sits far above it and the curve is in its convex foot: the prior then reads "almost no
# effect" in small geos and "normal" in large ones. Per geo, the same prior means the same
# thing in every geo (Meridian scales media and outcome per geo, by population, for the same
# reason). A channel a geo never spent on has a maximum of 0; PyMC-Marketing turns its 0/0
# into the zeros the data hold, and the optimizer gives such a cell no response.
GEO_SCALING = {"target": {"method": "max", "dims": []}, "channel": {"method": "max", "dims": []}}


def geo_scaling() -> Any:
    """PyMC-Marketing's ``Scaling`` for a geo panel: ``GEO_SCALING``."""
    from pymc_marketing.mmm.scaling import DataDerivedScaling, Scaling

    return Scaling(
        **{
            variable: DataDerivedScaling(method=spec["method"], dims=tuple(spec["dims"]))
            for variable, spec in GEO_SCALING.items()
        }
    )


def _model_columns(data: ModelData) -> list[str]:
    """The columns PyMC-Marketing reads from X (organic and event columns reach the model
    through their components)."""
    keys = ["date", *(["geo"] if data.geo else [])]
    return [*keys, *data.channels, *data.controls]


def _component_priors(priors: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The media's adstock and saturation priors for the organic series' own curves, by
    transformation and parameter name, with the organic dimension."""
    from pymc_extras.prior import Prior

    from attribution_analysis.mmm.component_names import ORGANIC_DIM

    out: dict[str, dict[str, Any]] = {"adstock": {}, "saturation": {}}
    for name, spec in priors.items():
        kind, _, parameter = name.partition("_")
        # The geo effect's pooled prior is over (geo, channel); organic series keep the
        # default effect prior.
        if kind in out and parameter and spec.get("dist") != GEO_EFFECT_DIST:
            out[kind][parameter] = Prior.from_dict({**spec, "dims": ORGANIC_DIM})
    return out


def _default_prior_names(adstock: Any, saturation: Any) -> list[str]:
    base = ["intercept", "likelihood", "gamma_control", "gamma_fourier"]
    return base + list(adstock.model_config) + list(saturation.model_config)


def resolved_roi_prior(config: MMMConfig, target: str) -> RoiPrior | None:
    """The ROI prior the model gets: 'auto' is Meridian's default on a revenue outcome and
    none on conversions (a return in conversions per unit of spend has no default scale)."""
    if config.roi_prior == "auto":
        return RoiPrior() if target == "revenue" else None
    return config.roi_prior


def effective_spec(config: MMMConfig, target: str) -> dict[str, Any]:
    """The configuration with defaults resolved: what actually defines the model. An absent
    ROI prior is left out, so a model without one keeps the key it had before the option."""
    spec = {
        **config.model_dump(mode="json", exclude={"roi_prior"}),
        "l_max": effective_l_max(config),
        "priors": {**default_priors(config.saturation, config.adstock), **config.priors},
    }
    roi_prior = resolved_roi_prior(config, target)
    if roi_prior is not None:
        spec["roi_prior"] = roi_prior.model_dump(mode="json")
    return spec


def structure_key(data: ModelData, config: MMMConfig, extra: dict[str, Any]) -> str:
    """Hash of what fixes the compiled graph: everything but the data values."""
    payload = {
        "channels": data.channels,
        "controls": data.controls,
        "organic": data.organic,
        "events": data.events,
        "geo": data.geo,
        "geos": sorted(data.X["geo"].unique().tolist()) if data.geo else [],
        "n": len(data.y),
        "config": effective_spec(config, data.target),
        **({"scaling": GEO_SCALING, "pooling": GEO_POOLING} if data.geo else {}),
        **extra,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def fit_settings(params: FitMMMParams, hashes: dict[str, str]) -> dict[str, Any]:
    """Everything besides data and model configuration that changes the fit (cache key)."""
    return {
        "sampler": params.sampler.model_dump(mode="json"),
        "seed": params.seed,
        "calibrate": params.calibrate,
        "quick": params.quick,
        "method": params.method,
        "fallback_to_ridge": params.fallback_to_ridge,
        "retry": params.retry,
        "lift_hash": hashes.get(layout.LIFT_TESTS.path),
        **({"lift_reading": LIFT_READINGS[params.lift_reading]} if params.calibrate else {}),
    }


def fit_key(data: ModelData, config: MMMConfig, settings: dict[str, Any]) -> str:
    """Hash of data values + configuration + sampler settings: the fit cache key."""
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(json.dumps(effective_spec(config, data.target), sort_keys=True).encode())
    if data.geo:  # a geo fit made under other scaling or pooling is not this model's
        digest.update(json.dumps(GEO_SCALING, sort_keys=True).encode())
        digest.update(json.dumps(GEO_POOLING, sort_keys=True).encode())
    digest.update(data.X.to_csv(index=False).encode())
    digest.update(data.y.to_csv(index=False).encode())
    return digest.hexdigest()[:16]
