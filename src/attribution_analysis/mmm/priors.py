"""The project's default priors: the only place they live.

PyMC-Marketing's Hill defaults (HalfNormal(1.5) on slope, half-saturation and ceiling) let
the slope collapse towards 0 and the half-saturation point wander far beyond the observed
spend; for an always-on channel that trades off against the intercept and the sampler
crawls (bulk ESS 70-250 from 4,000 draws on simulated panels). Log-normal priors keep the
curve's shape in a plausible range without pinning it:

- half-saturation ``kappa`` (on spend scaled by its maximum): LogNormal(-0.5, 0.8), median
  0.6, 95% in [0.13, 2.9]: around the observed spend range, near-linear channels allowed;
- ``slope``: LogNormal(0.4, 0.5), median 1.5, 95% in [0.56, 4]: concave to S-shaped;
- adstock retention ``alpha``: Beta(1.5, 2), mean 0.43, instead of Beta(1, 3) (mean 0.25),
  which pulled long carry-over channels (TV, video, alpha ~0.7) towards short memory and
  under-credited them.

On simulated panels these lift the minimum bulk ESS from 70-250 to 440-1,300 per 4,000 draws
and the share of true channel contributions inside their 90% intervals from 75% to 85%
(README, MMM accuracy).
"""

from __future__ import annotations

from typing import Any

ADSTOCK_DEFAULTS: dict[str, dict[str, Any]] = {
    "adstock_alpha": {"dist": "Beta", "kwargs": {"alpha": 1.5, "beta": 2.0}},
}
HILL_DEFAULTS: dict[str, dict[str, Any]] = {
    "saturation_kappa": {"dist": "LogNormal", "kwargs": {"mu": -0.5, "sigma": 0.8}},
    "saturation_slope": {"dist": "LogNormal", "kwargs": {"mu": 0.4, "sigma": 0.5}},
}
LOGISTIC_DEFAULTS: dict[str, dict[str, Any]] = {}


def default_priors(saturation: str, adstock: str = "geometric") -> dict[str, dict[str, Any]]:
    """Defaults for the chosen curves; PyMC-Marketing adds the dims."""
    chosen = dict(HILL_DEFAULTS if saturation == "hill" else LOGISTIC_DEFAULTS)
    if adstock == "geometric":
        chosen.update(ADSTOCK_DEFAULTS)
    return {name: dict(spec) for name, spec in chosen.items()}
