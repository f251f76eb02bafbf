"""Plausibility of the prepared series, checked before any fit (part of ``validate_data``).

The raw readers (``data.tables``) bound every cell at ``MAX_ABS_VALUE`` (1e15). What they
cannot see is what the model sees after aggregation, so these rules apply to the series on
the modelling grid:

- **An outcome that carries no information is refused.** An outcome column (conversions,
  revenue) that is zero in every period of the window, or constant, is refused: there is
  nothing to explain. "Constant" includes a spread below ``CONSTANT_SPREAD`` (1e-9) of its
  largest value: PyMC-Marketing scales the target by its maximum magnitude, and a series
  such as 1e15, 1e15 - 1, ... is then constant to within floating-point rounding.
- **A period's value obeys the same ceiling as a row.** Summing days into weeks, campaigns
  into channels, files and geos into a national panel must not take any period's outcome,
  spend, impressions or clicks above ``MAX_ABS_VALUE``: no real week of one channel comes
  near it, and a sum of many 1e14 rows that does is a unit error (micros, cents), not data.
  With every period bounded, window totals are at most periods x geos x 1e15, far from
  float64's 1.8e308, and the model's max-abs scaling puts every value it squares in the
  likelihood in [-1, 1]; nothing can overflow.
- **Outcome per unit of spend at most ``MAX_OUTCOME_PER_SPEND`` (1e12).** A channel whose
  total spend over the window is positive but tiny next to the outcome (e.g. 1e-300 from a
  unit error, or a subnormal number) would make every ROAS (outcome / spend) overflow to
  infinity. No channel returns a trillion units of outcome per unit spent; such a channel's
  spend is in the wrong unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from attribution_analysis.data.grain import Grain, days_per_period
from attribution_analysis.data.sources import MMMSources, Source
from attribution_analysis.data.tables import MAX_ABS_TEXT, MAX_ABS_VALUE
from attribution_analysis.errors import DataValidationError

if TYPE_CHECKING:
    from attribution_analysis.data.validate import Filled

CONSTANT_SPREAD = 1e-9
MAX_OUTCOME_PER_SPEND = 1e12
MAX_OUTCOME_PER_SPEND_TEXT = "1e12"
PERIOD_METRICS = ("spend", "impressions", "clicks")


def check(filled: Filled, sources: MMMSources, grain: Grain, use_geo: bool) -> None:
    """Refuse an uninformative outcome, an aggregated value above the ceiling, or a spend
    so small next to the outcome that its ROAS would not be a finite number."""
    _check_outcome_informative(filled, sources, grain)
    _check_period_ceiling(filled, sources, grain, use_geo)
    _check_outcome_per_spend(filled, sources)


def _lines(src: Source, mask: pd.Series | np.ndarray | None = None) -> tuple[int, ...]:
    frame = src.frame if mask is None else src.frame[mask]
    return tuple(int(x) for x in frame["_line"])


def _window_mask(src: Source, filled: Filled, grain: Grain) -> pd.Series:
    dates = src.frame["date"]
    end = filled.grid[-1] + pd.Timedelta(days=days_per_period(grain))
    return (dates >= filled.grid[0]) & (dates < end)


def _check_outcome_informative(filled: Filled, sources: MMMSources, grain: Grain) -> None:
    src = sources.conversions
    window = f"{filled.grid[0].date()} to {filled.grid[-1].date()}"
    for column in filled.outcome_columns:
        values = filled.target[column]
        largest = float(np.max(np.abs(values)))
        rows = _lines(src, _window_mask(src, filled, grain))
        other = [c for c in filled.outcome_columns if c != column]
        drop = (
            f"drop the '{column}' column if '{other[0]}' is the outcome to model, or "
            if other
            else ""
        )
        if largest == 0:
            raise DataValidationError(
                problem=f"{column} is 0 in every period of the window ({window}); an outcome "
                "that never happens gives the model nothing to explain.",
                fix=f"{drop}export the real {column} (an all-zero column is most often an "
                "empty export or the wrong column mapped).",
                file=src.shown,
                column=column,
                rows=rows,
                code="outcome_all_zero",
            )
        spread = float(np.ptp(values))
        if spread <= CONSTANT_SPREAD * largest:
            raise DataValidationError(
                problem=f"{column} is constant over the window ({window}; {values[0]:g} in "
                f"every period, or varying by at most {CONSTANT_SPREAD:g} of its largest "
                "value, which the model's scaling rounds away); a constant outcome cannot "
                "respond to media.",
                fix=f"{drop}export the real per-period {column} (a constant is most often a "
                "placeholder or a total repeated in every row).",
                file=src.shown,
                column=column,
                rows=rows,
                code="outcome_constant",
            )


def _check_period_ceiling(filled: Filled, sources: MMMSources, grain: Grain, use_geo: bool) -> None:
    length = pd.Timedelta(days=days_per_period(grain))
    n = len(filled.grid)
    series: list[tuple[str, str | None, np.ndarray, list[Source]]] = [
        (c, None, filled.target[c], [sources.conversions]) for c in filled.outcome_columns
    ]
    series += [
        (metric, ch, filled.media[(metric, ch)], sources.spend)
        for metric in PERIOD_METRICS
        for ch in filled.channels
    ]
    for column, channel, values, files in series:
        above = np.flatnonzero(np.abs(values) > MAX_ABS_VALUE)
        if not len(above):
            continue
        index = int(above[0])
        period, geo = filled.grid[index % n], filled.geos[index // n]
        src, rows = _period_rows(files, column, channel, period, length, geo if use_geo else None)
        what = f"{column} of channel '{channel}'" if channel else column
        where = f" in geo {geo}" if use_geo and geo else ""
        raise DataValidationError(
            problem=f"{what} sums to {values[index]:g} in the period starting "
            f"{period.date()}{where} (the rows of that period added up: days into "
            f"{grain} periods, campaigns into channels, files together), above {MAX_ABS_TEXT}: "
            f"the rule is that a period's value obeys the same ceiling as a row "
            f"({MAX_ABS_TEXT}), and no real period comes near it.",
            fix="check the unit of these rows (micros or cents instead of currency units, "
            "impressions in units instead of thousands) and the rows themselves; a "
            "period's total must stay at most " + MAX_ABS_TEXT + ".",
            file=src.shown,
            column=column,
            rows=rows,
            code="out_of_range",
        )


def _period_rows(
    files: list[Source],
    column: str,
    channel: str | None,
    period: pd.Timestamp,
    length: pd.Timedelta,
    geo: str | None,
) -> tuple[Source, tuple[int, ...]]:
    """The first file with rows in that period (and their lines)."""
    for src in files:
        frame = src.frame
        if column not in frame:
            continue
        mask = (frame["date"] >= period) & (frame["date"] < period + length)
        if channel is not None:
            mask &= frame["channel"] == channel
        if geo is not None and "geo" in frame:
            mask &= frame["geo"] == geo
        if mask.any():
            return src, _lines(src, mask)
    return files[0], ()


def _check_outcome_per_spend(filled: Filled, sources: MMMSources) -> None:
    for column in filled.outcome_columns:
        outcome = float(np.sum(filled.target[column]))
        for ch in filled.channels:
            spend = float(np.sum(filled.media[("spend", ch)]))
            if spend <= 0:
                continue  # refused as a channel that never spends
            if outcome <= MAX_OUTCOME_PER_SPEND * spend:
                continue
            src, rows = _channel_rows(sources.spend, ch)
            raise DataValidationError(
                problem=f"channel '{ch}' spent {spend:g} in total over the window against "
                f"{outcome:g} {column}: more than {MAX_OUTCOME_PER_SPEND_TEXT} of outcome per "
                "unit of spend, which no channel returns (the rule: total outcome / total "
                f"spend of a channel at most {MAX_OUTCOME_PER_SPEND_TEXT}, so every ROAS stays "
                "a finite number).",
                fix="check the unit of this channel's spend (e.g. millions instead of "
                "currency units, or a value like 1e-300 from a broken export), or remove the "
                "channel if it did not really run.",
                file=src.shown,
                column="spend",
                rows=rows,
                code="implausible_spend",
            )


def _channel_rows(files: list[Source], channel: str) -> tuple[Source, tuple[int, ...]]:
    for src in files:
        mask = src.frame["channel"] == channel
        if mask.any():
            return src, _lines(src, mask)
    return files[0], ()
