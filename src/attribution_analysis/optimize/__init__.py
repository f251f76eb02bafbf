"""Budget optimization and scenario planning on the fitted MMM's posterior.

Light parts (flag parsing in :mod:`.inputs`, the solver) are imported without the step: the
step itself (:func:`optimize_budget`, :mod:`.step`) loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attribution_analysis.optimize.step import optimize_budget

__all__ = ["optimize_budget"]


def __getattr__(name: str) -> Any:
    if name == "optimize_budget":
        from attribution_analysis.optimize.step import optimize_budget

        return optimize_budget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
