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

from attribution_analysis.allocation.bayes import BayesFit, fit_bayes
from attribution_analysis.allocation.covariates import Design, build_design
from attribution_analysis.allocation.downscale import downscale_to_hours
from attribution_analysis.allocation.em import EMFit, fit_em
from attribution_analysis.allocation.exposure import build_effective_exposure
from attribution_analysis.allocation.problem import (
    AllocationProblem,
    Origin,
    build_problem,
    problem_from_arrays,
)
from attribution_analysis.allocation.topdown import split_draws

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
