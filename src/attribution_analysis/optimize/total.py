"""The whole outcome over the horizon: the denominator a reader means by "growth".

The plan's lift is media-driven outcome; a CMO reads "+10%" as growth of the whole outcome
(base, media, controls together). The stored fit keeps the posterior's parameters, not its
fitted outcome per period (the deterministics are dropped to keep the file small), and
rebuilding the base, trend, seasonality and control terms here would re-implement
PyMC-Marketing's model outside it. The observed outcome over the last ``horizon`` periods is
what the current mix produced, in the data, and it needs no model: that is the denominator,
stated as such in ``total_outcome_basis``.
"""

from __future__ import annotations

import numpy as np

from attribution_analysis.contracts.budget import OutcomeSummary
from attribution_analysis.contracts.common import Interval
from attribution_analysis.mmm.stored import StoredFit
from attribution_analysis.summaries import interval


def observed_total(fitted: StoredFit, horizon: int) -> tuple[float, str]:
    """(the observed outcome over the last ``horizon`` periods, all geos, in the target's
    unit; how it was obtained). Data shorter than the horizon: their mean per period x
    horizon."""
    data = fitted.data
    per_period = (
        data.y.groupby(data.X["date"].to_numpy()).sum().sort_index()
        if data.geo
        else data.y.set_axis(data.X["date"].to_numpy()).sort_index()
    )
    window = per_period.iloc[-min(horizon, len(per_period)) :]
    used = len(window)
    total = float(window.sum()) * horizon / used
    start, end = str(window.index[0])[:10], str(window.index[-1])[:10]
    basis = f"observed {data.target} over the last {used} periods of the data ({start} to {end})"
    if used < horizon:
        basis += f", scaled to {horizon} periods"
    basis += (
        ": what the current mix produced, all sources together (the fitted model's own total "
        "per draw is not stored with the fit)"
    )
    return total, basis


def with_total(
    summary: OutcomeSummary, lift: np.ndarray, total: float, basis: str
) -> OutcomeSummary:
    """``summary`` with the whole outcome and the lift as a share of it (per draw)."""
    if not np.isfinite(total) or total <= 0:
        return summary.model_copy(
            update={"total_outcome_basis": f"{basis}; not positive, so no share of it is given"}
        )
    return summary.model_copy(
        update={
            "total_outcome": Interval(
                mean=total, median=total, hdi_90=(total, total), hdi_95=(total, total)
            ),
            "lift_pct_of_total": interval(lift / total),
            "total_outcome_basis": basis,
        }
    )
