"""Posterior summaries: mean, median and highest-density intervals of draws."""

from __future__ import annotations

import arviz_stats as azs
import numpy as np

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
