"""Allocation: split group totals (brick sales, MMM channel contributions) across entities
(HCPs, campaigns) with exact mass conservation.

Public API:

* :func:`build_problem`, :class:`AllocationProblem`: the long exposure table, checked.
* :func:`fit_em`: EM (Poisson or Gamma; free rates or a ridge GLM on covariates; SQUAREM).
* :func:`fit_bayes`: the hierarchical Bayesian model (PyMC, NUTS).
* :func:`build_effective_exposure`: campaign impressions through MMM adstock/saturation.
* :func:`split_draws`: MMM contribution draws re-split with fitted shares.
* :func:`downscale_to_hours`: a period's credit spread over hourly delivery.
* the workspace step: :mod:`.step` (as a Python function:
  :func:`attribution_analysis.api.allocate`).
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module that defines it, imported on first use (PEP 562): importing a
# submodule runs this file first, and the Bayesian model's diagnostics import xarray and
# scipy.stats (with dask, about 1 s of a fresh process) that build_effective_exposure and
# downscale_intraday never use.
_HOME = {
    "BayesFit": "bayes",
    "fit_bayes": "bayes",
    "Design": "covariates",
    "build_design": "covariates",
    "downscale_to_hours": "downscale",
    "EMFit": "em",
    "fit_em": "em",
    "build_effective_exposure": "exposure",
    "AllocationProblem": "problem",
    "Origin": "problem",
    "build_problem": "problem",
    "problem_from_arrays": "problem",
    "split_draws": "topdown",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = [
    "AllocationProblem",
    "BayesFit",
    "Design",
    "EMFit",
    "Origin",
    "build_design",
    "build_effective_exposure",
    "build_problem",
    "downscale_to_hours",
    "fit_bayes",
    "fit_em",
    "problem_from_arrays",
    "split_draws",
]
