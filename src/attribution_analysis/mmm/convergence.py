"""Convergence gates of the seed spec, measured with arviz-stats on free parameters.

The limits live here and only here: the fit's retry, the validate_model criteria and the
allocation's Bayesian sampler read them from this module (with their rule texts).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RHAT_LIMIT = 1.05
ESS_LIMIT = 400.0
# A handful of divergent transitions in thousands is noise; more means biased draws.
DIVERGENCE_SHARE_LIMIT = 0.001

RHAT_RULE = f"R-hat < {RHAT_LIMIT:g}"
ESS_RULE = f"bulk ESS > {ESS_LIMIT:.0f} for every parameter"
DIVERGENCE_RULE = f"divergent transitions <= {DIVERGENCE_SHARE_LIMIT:.1%} of draws"
GATES_RULE = f"{RHAT_RULE}, {ESS_RULE}, {DIVERGENCE_RULE}"


# Attribute set on a stored posterior variable that the fit derived from free ones.
DERIVED = "derived_from_free_parameters"


def parameter_names(tree: Any) -> list[str]:
    """Free parameters: what the seed's 'all parameters' means (not per-date deterministics,
    nor the curve parameters a fit derives from free ones, ``DERIVED``): the variables the
    sampler moves, the same ones ``sampling``'s stop rule checks, so a fit that stopped at
    the gates is not refused for a derived quantity."""
    posterior = tree["posterior"].to_dataset()
    return [
        name
        for name, var in posterior.data_vars.items()
        if "date" not in var.dims
        and not name.endswith("_original_scale")
        and not var.attrs.get(DERIVED)
    ]


def convergence_summary(tree: Any) -> dict[str, float | int | None]:
    import arviz_stats as azs  # here: importing the gates' limits must stay light

    posterior = tree["posterior"].to_dataset()
    names = parameter_names(tree)
    data = posterior[names]
    rhat = azs.rhat(data)
    bulk = azs.ess(data, method="bulk")
    tail = azs.ess(data, method="tail")
    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else None
    divergences = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    return {
        "max_rhat": float(max(np.nanmax(rhat[n].values) for n in names)),
        "min_ess_bulk": float(min(np.nanmin(bulk[n].values) for n in names)),
        "min_ess_tail": float(min(np.nanmin(tail[n].values) for n in names)),
        "divergences": divergences,
        "draws": int(posterior.sizes["chain"] * posterior.sizes["draw"]),
    }


def passes_gates(summary: dict[str, Any]) -> bool:
    return (
        bool(summary)
        and summary["max_rhat"] < RHAT_LIMIT
        and summary["min_ess_bulk"] > ESS_LIMIT
        and summary["divergences"] <= DIVERGENCE_SHARE_LIMIT * summary["draws"]
    )


def meets_stopping_rule(summary: dict[str, Any], ess_margin: float) -> bool:
    """Whether sampling may stop: R-hat passes its gate and the smallest bulk ESS reaches
    the ESS gate times ``ess_margin``. Divergences are left out: their share does not fall
    with more draws, so sampling on would not fix them (the fit's retry lowers the step)."""
    return (
        bool(summary)
        and summary["max_rhat"] < RHAT_LIMIT
        and summary["min_ess_bulk"] >= ESS_LIMIT * ess_margin
    )


def fails_on_divergences_only(summary: dict[str, Any]) -> bool:
    """R-hat and bulk ESS pass but too many transitions diverged: a smaller step is the
    remedy, not more draws."""
    return (
        bool(summary)
        and summary["max_rhat"] < RHAT_LIMIT
        and summary["min_ess_bulk"] > ESS_LIMIT
        and summary["divergences"] > DIVERGENCE_SHARE_LIMIT * summary["draws"]
    )
