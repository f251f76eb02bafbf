"""Posterior summaries: mean, median and highest-density intervals of draws.

NumPy and xarray only: every light step (optimize_budget, exposure, the report's readers)
summarises draws, and importing ArviZ-stats for one sorted-window HDI cost about 0.4 s of a
fresh process's second. ``hdi`` is the same computation as ArviZ-stats' default
``hdi(method="nearest")``; ``tests/test_light_steps.py`` checks them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from attribution_analysis.contracts.common import Interval

if TYPE_CHECKING:  # thin_draws and band_90 call the objects' own methods
    import xarray as xr


def hdi(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """Narrowest interval between two draws that holds ``prob`` of the draws (flattened).

    The window spans ``floor(prob * n)`` sorted steps (at most ``n - 1``), as in ArviZ-stats'
    "nearest" HDI, so both give the same two draws for the same input.
    """
    values = np.sort(np.asarray(draws, dtype=float).ravel())
    n = values.size
    if n == 0:
        raise ValueError("no draws to compute an HDI from.")
    span = min(int(np.floor(prob * n)), n - 1)
    widths = values[span:] - values[: n - span]
    start = int(np.argmin(widths))
    return float(values[start]), float(values[start + span])


def interval(draws: np.ndarray) -> Interval:
    """Summarise a 1-D array of draws (any number of them)."""
    values = np.asarray(draws, dtype=float).ravel()
    return Interval(
        mean=float(values.mean()),
        median=float(np.median(values)),
        hdi_90=hdi(values, 0.9),
        hdi_95=hdi(values, 0.95),
    )


def thin_draws(dataset: xr.Dataset, n: int) -> xr.Dataset:
    """Every k-th draw of each chain, so that at most about ``n`` draws remain in all."""
    step = max(1, (dataset.sizes["chain"] * dataset.sizes["draw"]) // n)
    return dataset.isel(draw=slice(None, None, step))


def band_90(draws: xr.DataArray, dims: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Central 90% interval (5% and 95% quantiles) over the sample ``dims``."""
    low = draws.quantile(0.05, dim=dims).values
    high = draws.quantile(0.95, dim=dims).values
    return low, high
