"""Posterior summaries: mean, median and highest-density intervals of draws."""

from __future__ import annotations

from collections.abc import Sequence

import arviz_stats as azs
import numpy as np
import xarray as xr

from attribution_analysis.contracts.common import Interval


def interval(draws: np.ndarray) -> Interval:
    """Summarise a 1-D array of draws (any number of them)."""
    values = np.asarray(draws, dtype=float).ravel()
    hdi90 = azs.hdi(values, prob=0.9)
    hdi95 = azs.hdi(values, prob=0.95)
    return Interval(
        mean=float(values.mean()),
        median=float(np.median(values)),
        hdi_90=(float(hdi90[0]), float(hdi90[1])),
        hdi_95=(float(hdi95[0]), float(hdi95[1])),
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
