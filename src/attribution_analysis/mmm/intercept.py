"""The intercept sampled through the mean fitted level, a change of variables for the sampler.

Why: on an always-on channel the data see a short stretch of the response curve, so its
contribution trades against the intercept along a ridge (``references/mmm_methodology.md``).
Sampled as PyMC-Marketing builds it, (intercept, coefficient) lie along that ridge: on
independent worlds the always-on channel's coefficient correlates about 0.8 with the
intercept and gets a twentieth of an effective draw per draw (``benchmarks/mixing.py``).
Sampling instead the mean level of the fit without the base's other parts,

    level = intercept + mean over weeks of the summed channel contributions

(per geo on a panel, where the intercept is per geo by default), and deriving
``intercept = level - that mean`` takes the ridge out of the coordinates the sampler moves
in: the level is what the data pin down, whatever the channels' share of it.
The map (intercept, media parameters) -> (level, media parameters) is a shift by a function
of the other coordinates, with unit Jacobian, so the likelihood is unchanged; the intercept's
prior (Normal(0, 2) on a target scaled to a maximum of 1, wide against both) now states the
mean level. ``intercept_contribution`` stays in the model as a deterministic with its name,
so every reader of PyMC-Marketing's model is unchanged.

PyMC-Marketing has no such option, so the model it built is rewritten with ``pm.do`` (PyMC's
own intervention, which keeps every other variable and potential). The mean is taken over
the fitted weeks' spend held in a data variable of its own (``LEVEL_SPEND``): out-of-sample
prediction sets ``channel_data`` to new weeks, and the intercept of a posterior draw must not
move with them. While sampling the two hold the same weeks, so the model the sampler compiles
reads the level's mean from ``channel_data`` itself (``sampled_model``): PyTensor then
computes the adstock and saturation once for the likelihood and the level, not twice.
"""

from __future__ import annotations

from typing import Any

LEVEL = "intercept_level"
LEVEL_SPEND = "intercept_level_channel_data"
LEVEL_WEEKS = "intercept_level_date"
CHANNEL_DATA = "channel_data"


def sample_level_not_intercept(mmm: Any) -> None:
    """Replace ``mmm.model`` by the same model with the intercept derived from ``LEVEL``."""
    import pymc as pm
    import pytensor.xtensor as ptx
    from pytensor.graph.replace import graph_replace

    model = mmm.model
    spend = model[CHANNEL_DATA]
    dims = model.named_vars_to_dims[CHANNEL_DATA]
    intercept_dims = tuple(model.named_vars_to_dims.get("intercept_contribution", ()))
    # Its own name for the weeks: prediction gives ``date`` other weeks, these stay.
    own_dims = tuple(LEVEL_WEEKS if d == "date" else d for d in dims)
    with model:
        model.add_coord(LEVEL_WEEKS, list(model.coords["date"]))
        fitted_spend = pm.Data(LEVEL_SPEND, spend.get_value(), dims=own_dims)
        level = mmm.model_config["intercept"].create_variable(LEVEL, xdist=True)
    contributions = model["channel_contribution"]
    # Averaged over every dim the intercept lacks: the weeks, and the geos of a panel whose
    # user gave one intercept for all geos; still a shift by a function of the media.
    averaged = [d for d in contributions.dims if d != "channel" and d not in intercept_dims]
    media = contributions.sum(dim="channel").mean(dim=averaged)
    media = graph_replace(media, {spend: ptx.as_xtensor(fitted_spend, dims=dims)}, strict=False)
    derived = (level - media).transpose(*intercept_dims)
    mmm.model = _intervene(model, {"intercept_contribution": derived})


def _intervene(model: Any, interventions: dict[str, Any]) -> Any:
    """``pm.do`` with the dims handed back as PyMC-Marketing's own build gives them (tuples,
    where ``pm.do`` gives lists)."""
    import pymc as pm

    rewritten = pm.do(model, interventions)
    for name, own in list(rewritten.named_vars_to_dims.items()):
        if own is not None:
            rewritten.named_vars_to_dims[name] = tuple(own)
    return rewritten


def reads_level_from_channel_data(model: Any) -> bool:
    """Whether ``sampled_model`` merges the level's spend into ``channel_data``: the model
    has the level, and the two hold the same values."""
    import numpy as np

    if LEVEL_SPEND not in model.named_vars:
        return False
    fitted = model[LEVEL_SPEND].get_value()
    return bool(np.array_equal(fitted, model[CHANNEL_DATA].get_value()))


def sampled_model(model: Any) -> Any:
    """The model the sampler compiles: ``model`` with the level's spend read from
    ``channel_data``, which holds the very same weeks while a model is fitted.

    Why: as two data variables, PyTensor cannot know that they are equal, so the compiled
    log-density and gradient evaluate every channel's adstock and saturation twice (161
    nodes and 3 adstock convolutions instead of 196 and 5 on 156 weeks x 4 channels). One
    variable lets its merge pass share them: on an independent world (``logistic_short``,
    an empty compile cache) the compile takes about 10% less time and each gradient about
    30% less. The posterior is the same, since the values are equal; the model kept for
    prediction is ``model``, whose intercept stays with the fitted weeks. A model without
    the level, or whose two spends differ, is returned as it is."""
    if not reads_level_from_channel_data(model):
        return model
    return _intervene(model, {LEVEL_SPEND: model[CHANNEL_DATA].values})
