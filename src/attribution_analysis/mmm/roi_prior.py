"""A prior on each channel's return on spend (``MMMConfig.roi_prior``), as Meridian puts it.

Why: on an always-on channel the data see a short stretch of the response curve, its
contribution trades against the intercept along a ridge of equal likelihood, and the
posterior follows the priors there (``references/mmm_methodology.md``). PyMC-Marketing's
priors act on the curve's ceiling in scaled units, which says nothing about what a euro of
spend returns, so nothing stops the ridge from carrying a channel to a return no
advertiser sees. Meridian's answer is a prior on ROI itself: LogNormal(0.2, 0.9) by default
(median 1.22, 90% of its mass between 0.28 and 5.4).

PyMC-Marketing has no ROI parametrisation, so the prior enters as a potential: the
log-density of LogNormal(mu, sigma) at each channel's ROI over the fitted window (summed
contribution in the target's units / summed spend), added to the model's own priors, the
way PyMC-Marketing adds its cost-per-target calibration. The effective prior is the product
of the two (a soft constraint on the ridge, not a reparametrisation); no Jacobian is added,
as for any penalty on a derived quantity. It needs a revenue outcome: a return in
conversions per unit of spend has no scale a default could know.
"""

from __future__ import annotations

from typing import Any

from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.mmm import RoiPrior
from attribution_analysis.errors import ParameterError

POTENTIAL = "roi_prior"


def add_roi_prior(mmm: Any, target: str, prior: RoiPrior) -> None:
    """Add the ROI prior's potential to ``mmm.model`` (built, data as shared variables, so a
    compiled model with new data of the same structure evaluates it on the new data)."""
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.graph.rewriting.utils import rewrite_graph

    if target != "revenue":
        raise ParameterError(
            f"roi_prior needs a revenue outcome; this model's outcome is {target}, whose "
            "return per unit of spend has no default scale.",
            fix="drop roi_prior, or model revenue (import_data's target_kind 'revenue').",
        )
    model = mmm.model
    total = _sum_but_channel(model, "channel_contribution", scale="target_scale")
    spent = _sum_but_channel(model, "channel_data")
    # A channel without spend in the window has no return to constrain.
    has_spend = pt.gt(spent, 0)
    roi = pt.switch(has_spend, total / pt.switch(has_spend, spent, 1.0), 1.0)
    logp = pm.logp(pm.LogNormal.dist(mu=prior.mu, sigma=prior.sigma), pt.maximum(roi, 1e-12))
    # PyTensor has no gradient for PyMC's dims-aware operations; PyMC lowers the likelihood's
    # graph to plain tensor operations itself, but not a potential's. So: the term written on
    # the value variables (the random variables replaced, transforms included), then lowered.
    (on_values,) = model.replace_rvs_by_values([pt.sum(pt.switch(has_spend, logp, 0.0))])
    term = rewrite_graph(on_values, include=("lower_xtensor",))
    with model:
        pm.Potential(POTENTIAL, term)


def _sum_but_channel(model: Any, name: str, scale: str | None = None) -> Any:
    """(channel,): the variable summed over every other dim, times ``scale`` (a variable
    whose dims are a subset of its own) before the sum."""
    import pytensor.tensor as pt

    dims = list(model.named_vars_to_dims[name])
    values = model[name].values
    if scale is not None:
        own = list(model.named_vars_to_dims.get(scale, ()))
        factor = model[scale].values.dimshuffle([own.index(d) if d in own else "x" for d in dims])
        values = values * factor
    others = [axis for axis, dim in enumerate(dims) if dim != "channel"]
    return pt.sum(values, axis=others)


# The ROI prior speaks of money returned per unit of money spent. When the spend columns are
# not money in the outcome's currency (indices, spend scaled to [0, 1], thousands against
# units), its range cannot hold the data's: seen on PyMC-Marketing's public mmm_example.csv
# as revenue, where the outcome is about 11,000 per unit of "spend" and the prior let media
# explain 0.05% of it (every channel then prior-driven, by +100,000% and more). The fit runs
# as asked; the finding says why its numbers are the prior's and what to change.
SCALE_CONFLICT_SHARE = 0.01  # the prior's 95th-percentile ROI explains less than this share


def scale_conflict_finding(prior: RoiPrior, spend: float, outcome: float) -> Finding | None:
    """A warning when the ROI prior and the data's scale cannot agree: at the prior's 95th
    (5th) percentile return, all media together would explain under 1% (over 100%) of the
    outcome over the window; None otherwise, or without spend or outcome."""
    import math
    from statistics import NormalDist

    if not (spend > 0 and outcome > 0):
        return None
    z = NormalDist().inv_cdf(0.95)
    low, high = (math.exp(prior.mu + sign * z * prior.sigma) for sign in (-1, 1))
    per_unit = outcome / spend
    prior_range = f"LogNormal({prior.mu:g}, {prior.sigma:g}), 90% between {low:.2f} and {high:.2f}"
    if high * spend < SCALE_CONFLICT_SHARE * outcome:
        clash = (
            f"at the ROI prior's 95th-percentile return ({prior_range}) all media together would "
            f"explain {high / per_unit:.2%} of it: the media figures are the prior's, not the "
            "data's."
        )
        threshold, rule = (
            high / SCALE_CONFLICT_SHARE,
            "outcome / spend > ROI prior's 95th percentile / 1%",
        )
    elif low * spend > outcome:
        clash = (
            f"the ROI prior ({prior_range}) asks media to return at least {low:.2f} per unit: more "
            "than the whole outcome. The media figures are forced against the data."
        )
        threshold, rule = low, "outcome / spend < ROI prior's 5th percentile"
    else:
        return None
    return Finding(
        code="roi_prior_scale_conflict",
        severity="warning",
        message=f"the outcome is {per_unit:,.4g} per unit of spend over the window, and "
        + clash
        + " If the spend columns are not money in the outcome's currency (an index, spend "
        "scaled to 0-1, another unit), fit with roi_prior null, or give an roi_prior in these "
        "units ({mu, sigma} of log outcome per unit of spend).",
        value=per_unit,
        threshold=threshold,
        rule=rule,
    )
