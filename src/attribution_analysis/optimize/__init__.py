"""Budget optimization and scenario planning on the fitted MMM's posterior."""

from attribution_analysis.optimize.step import OUTPUT, optimize_budget

__all__ = ["OUTPUT", "optimize_budget"]
