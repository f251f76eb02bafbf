"""Detect the grain of a dated table and map dates onto modelling periods."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from attribution_analysis.data.tables import LINE
from attribution_analysis.errors import DataValidationError, ParameterError

Grain = Literal["daily", "weekly"]
DAILY_MIN_DAYS = 730  # seed rule: daily grain only with 2+ years of daily history
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def detect_grain(frame: pd.DataFrame, shown: str, date_col: str = "date") -> Grain:
    """Daily or weekly, from the spacing of the file's distinct dates.

    Weekly: every gap between consecutive distinct dates is a multiple of 7 days. Daily: the
    typical gap is one day and there is no run of weekly steps. Anything else is a mix of
    grains (or weeks labelled on different weekdays) and is refused with the rows at fault.
    """
    dates = np.sort(frame[date_col].unique())
    if len(dates) < 2:
        raise DataValidationError(
            problem=f"only one distinct date ({pd.Timestamp(dates[0]).date()}): the grain "
            "(daily or weekly) cannot be told and a model needs many periods.",
            fix="export the full history (at least a year of weekly data is advisable).",
            file=shown,
            column=date_col,
            rows=tuple(frame[LINE].tolist()),
            code="too_few_periods",
        )
    gaps = np.diff(dates).astype("timedelta64[D]").astype(int)
    if np.all(gaps % 7 == 0):
        return "weekly"
    if np.median(gaps) == 1:
        weekly_steps = (gaps == 7).astype(int)
        run = np.convolve(weekly_steps, np.ones(3, dtype=int), mode="valid")
        if not np.any(run == 3):
            return "daily"
        at = int(np.argmax(run == 3))
    else:
        # Mostly weekly (or coarser) spacing with some off-weekday dates.
        at = int(np.argmax(gaps % 7 != 0))
    bad_date = pd.Timestamp(dates[at + 1])
    rows = frame.loc[frame[date_col] == bad_date, LINE].tolist()
    raise DataValidationError(
        problem=f"dates mix grains: the spacing changes around {bad_date.date()} (gaps of "
        f"{sorted(set(gaps.tolist()))[:6]} days). A file must be all daily or all weekly, with "
        "weeks labelled on the same weekday.",
        fix="export the whole file at one grain (daily or weekly, weeks starting the same day).",
        file=shown,
        column=date_col,
        rows=tuple(rows),
        code="mixed_grain",
    )


def weekly_anchor(weekly_files: dict[str, pd.Series]) -> int:
    """The weekday (0 = Monday) all weekly files label their weeks with; they must agree."""
    anchors: dict[int, list[str]] = {}
    for shown, dates in weekly_files.items():
        for weekday in sorted(set(pd.DatetimeIndex(dates).day_of_week)):
            anchors.setdefault(int(weekday), []).append(shown)
    if len(anchors) > 1:
        described = "; ".join(
            f"{', '.join(files)} on {WEEKDAYS[day]}" for day, files in sorted(anchors.items())
        )
        raise DataValidationError(
            problem=f"weekly files label their weeks on different weekdays ({described}), so "
            "their weeks do not line up.",
            fix="relabel every weekly file with the same week-start day (e.g. Monday).",
            file=next(iter(next(iter(anchors.values())))),
            column="date",
            code="misaligned_dates",
        )
    return next(iter(anchors)) if anchors else 0


def choose_grain(
    requested: str, file_grains: dict[str, Grain], span_days: int
) -> tuple[Grain, str]:
    """Apply the seed rule: weekly by default, daily only with 2+ years of daily data."""
    all_daily = all(g == "daily" for g in file_grains.values())
    if requested == "weekly":
        return "weekly", "weekly grain requested."
    if requested == "daily":
        if not all_daily:
            weekly = [f for f, g in file_grains.items() if g == "weekly"]
            raise ParameterError(
                f"daily grain was requested but {weekly} are weekly.",
                fix="use grain 'weekly' (or 'auto'), or supply daily files.",
            )
        if span_days < DAILY_MIN_DAYS:
            raise ParameterError(
                f"daily grain was requested but the data spans {span_days} days; daily models "
                f"need at least {DAILY_MIN_DAYS} days (2 years) of daily history.",
                fix="use grain 'weekly' (or 'auto') for the MMM. A campaign allocation of daily "
                "contributions does not need it: the campaign panel keeps the campaign files' "
                "daily rows whatever the MMM's grain.",
            )
        return "daily", "daily grain requested and the data has 2+ years of daily history."
    if all_daily and span_days >= DAILY_MIN_DAYS:
        return "daily", f"all files are daily and span {span_days} days (>= 2 years)."
    if all_daily:
        return "weekly", (
            f"files are daily but span only {span_days} days (< {DAILY_MIN_DAYS}); "
            "aggregated to weeks (seed rule: weekly unless 2+ years of daily data)."
        )
    return "weekly", "at least one file is weekly; daily files are aggregated to its weeks."


def to_period(dates: pd.Series, grain: Grain, anchor: int) -> pd.Series:
    """Map dates to the start of their modelling period (the week starting on ``anchor``)."""
    if grain == "daily":
        return dates
    offset = (dates.dt.day_of_week - anchor) % 7
    return dates - pd.to_timedelta(offset, unit="D")


def period_step(grain: Grain) -> pd.Timedelta:
    return pd.Timedelta(days=7 if grain == "weekly" else 1)


def days_per_period(grain: Grain) -> int:
    return 7 if grain == "weekly" else 1
