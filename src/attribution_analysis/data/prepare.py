"""Aggregate loaded sources onto one period grid, align the window, impute short gaps.

Everything here works on long tables with vectorised groupbys; imputation loops over
series (channel x geo), never over rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from attribution_analysis.contracts.validation import ImputedWindow
from attribution_analysis.data.grain import Grain, days_per_period, period_step, to_period
from attribution_analysis.data.sources import Source
from attribution_analysis.data.tables import shown_value
from attribution_analysis.errors import DataValidationError, arg

NATIONAL = ""  # geo key of a national (non-geo) series
MEDIA_METRICS = ["spend", "impressions", "clicks"]
# Delivery metrics a spend file may leave out (no column, or empty cells): unknown, kept NaN
# through aggregation and filling, never read or summed as 0.
EXPOSURE_METRICS = ("impressions", "clicks", "reach")


@dataclass
class Aggregated:
    """A long table on the period grid plus the day coverage of each cell."""

    frame: pd.DataFrame  # period, geo, [channel], metrics..., coverage
    keys: list[str]


def aggregate(
    sources: list[Source],
    metrics: list[str],
    by: list[str],
    grain: Grain,
    anchor: int,
    use_geo: bool,
) -> Aggregated:
    """Sum ``metrics`` per (period, geo, *by); coverage = days of the period with data."""
    length = days_per_period(grain)
    parts = []
    for src in sources:
        frame = _with_idle_rows(src, by, metrics) if absent_is_zero(src) else src.frame
        part = pd.DataFrame(
            {
                "period": to_period(frame["date"], grain, anchor),
                "date": frame["date"],
                "geo": frame["geo"] if use_geo and "geo" in frame else NATIONAL,
                "row_days": 1 if src.grain == "daily" else 7,
            }
        )
        for key in by:
            part[key] = frame[key]
        for metric in metrics:
            # clicks: an absent column means none (offline media, the contract's rule);
            # impressions and reach absent, or any empty cell: not reported (NaN)
            default = np.nan if metric in ("impressions", "reach") else 0.0
            part[metric] = frame.get(metric, default)
        part["source"] = src.shown
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)
    keys = ["period", "geo", *by]
    grouped = long.groupby(keys, sort=True)[metrics]
    sums = grouped.sum()
    # A cell any of whose rows has an unknown exposure metric is unknown: a partial sum
    # would understate it.
    unknown = long[metrics].isna().groupby([long[k] for k in keys], sort=True).any()
    sums = sums.mask(unknown.reindex(sums.index).fillna(False).astype(bool))
    # Coverage per source, then the best-covered source per cell: two platform files that
    # both report a channel daily do not add up to more than the days of the period.
    per_source = (
        long.drop_duplicates([*keys, "source", "date"])
        .groupby([*keys, "source"])["row_days"]
        .sum()
        .clip(upper=length)
        .groupby(level=list(range(len(keys))))
        .max()
        .rename("coverage")
    )
    sources_per_cell = long.groupby(keys)["source"].agg(lambda s: sorted(set(s)))
    out = sums.join(per_source).join(sources_per_cell.rename("sources")).reset_index()
    return Aggregated(out, keys)


def absent_is_zero(src: Source) -> bool:
    """Campaign-level exports omit campaigns that did not deliver: absent rows mean zero.

    Channel-level files are expected to list every period, so there a missing period is a
    gap to detect and impute.
    """
    return "campaign" in src.frame


def _with_idle_rows(src: Source, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Add zero rows for every date of the file's grid on which a channel had no row."""
    frame = src.frame
    step = "1D" if src.grain == "daily" else "7D"
    dates = pd.date_range(src.start, src.end, freq=step)
    geos = frame["geo"].unique() if "geo" in frame else [None]
    keys = ["date", "channel", *(["geo"] if "geo" in frame else [])]
    grid = pd.MultiIndex.from_product(
        [dates, frame["channel"].unique(), *([geos] if "geo" in frame else [])], names=keys
    ).to_frame(index=False)
    seen = frame[keys].drop_duplicates()
    idle = grid.merge(seen, on=keys, how="left", indicator=True)
    idle = idle[idle["_merge"] == "left_only"].drop(columns="_merge")
    if idle.empty:
        return frame
    unknown = {
        m: set(frame.loc[frame[m].isna(), "channel"])
        for m in metrics
        if m in EXPOSURE_METRICS and m in frame
    }
    for column in frame.columns:
        if column not in idle:
            idle[column] = 0.0 if column in metrics else ""
    for metric, channels in unknown.items():
        # a campaign that did not run delivered nothing, but a channel that reports no
        # impressions reports none for its idle campaigns either
        idle.loc[idle["channel"].isin(channels), metric] = np.nan
    idle["_line"] = 0
    return pd.concat([frame, idle[frame.columns]], ignore_index=True)


@dataclass
class FilledSeries:
    values: pd.DataFrame  # index = period grid, columns = metrics
    imputed: np.ndarray  # bool per period
    windows: list[ImputedWindow] = field(default_factory=list)


def fill_series(
    series: pd.DataFrame,
    metrics: list[str],
    grid: pd.DatetimeIndex,
    grain: Grain,
    max_gap: int,
    label: str,
    shown: str,
    geo: str,
) -> FilledSeries:
    """Put one series on ``grid``: scale partly covered periods, interpolate short gaps.

    ``series`` has columns period, coverage and ``metrics``. Periods outside the grid are used
    only as interpolation anchors at the edges.
    """
    length = days_per_period(grain)
    series = series.set_index("period").sort_index()
    full = pd.date_range(
        min(series.index.min(), grid[0]), max(series.index.max(), grid[-1]), freq=period_step(grain)
    )
    values = series[metrics].reindex(full)
    coverage = series["coverage"].reindex(full).fillna(0).to_numpy()
    partial = (coverage > 0) & (coverage < length)
    values.loc[partial, metrics] = (
        values.loc[partial, metrics].to_numpy() * (length / coverage[partial])[:, None]
    )
    missing = coverage == 0
    in_grid = full.isin(grid)
    window = _Windows(label, shown, geo, full)
    windows = [
        *window.gaps(_runs(missing & in_grid), grain, max_gap),
        *window.of(_runs(partial & in_grid), "scaled up from the days reported in the period"),
    ]
    _interpolate(values, metrics, coverage > 0, missing)
    imputed = (missing | partial)[in_grid]
    return FilledSeries(values.loc[grid], imputed, windows)


@dataclass
class _Windows:
    """The imputed windows of one series on its ``full`` period range."""

    label: str
    shown: str
    geo: str
    full: pd.DatetimeIndex

    def of(self, runs: list[tuple[int, int]], method: str) -> list[ImputedWindow]:
        return [
            ImputedWindow(
                series=self.label,
                file=self.shown,
                geo=self.geo or None,
                start=self.full[start].date(),
                end=self.full[stop - 1].date(),
                n_periods=stop - start,
                method=method,
            )
            for start, stop in runs
        ]

    def gaps(self, runs: list[tuple[int, int]], grain: Grain, max_gap: int) -> list[ImputedWindow]:
        """The gaps, interpolated; refuses one longer than ``max_gap`` periods."""
        unit = "weeks" if grain == "weekly" else "days"
        for start, stop in runs:
            n = stop - start
            if n > max_gap:
                geo = f" (geo {shown_value(self.geo)})" if self.geo else ""
                raise DataValidationError(
                    problem=f"{self.label}{geo} has no rows from {self.full[start].date()} to "
                    f"{self.full[stop - 1].date()} ({n} {unit}); gaps longer than {max_gap} "
                    f"{unit} are not imputed because the guess would drive the estimate.",
                    fix="supply the missing rows (with 0 if the channel was dark), or shorten the "
                    f"modelling window with {arg('start')} / {arg('end')}.",
                    file=self.shown,
                    column="date",
                    code="long_gap",
                )
        return self.of(runs, "linear interpolation between the neighbouring periods")


def _interpolate(
    values: pd.DataFrame, metrics: list[str], observed: np.ndarray, missing: np.ndarray
) -> None:
    """Fill the missing periods of ``values`` linearly, in place; an exposure metric not
    reported in some observed period is unknown throughout, never guessed."""
    unknown = [m for m in metrics if m in EXPOSURE_METRICS and values.loc[observed, m].isna().any()]
    for metric in unknown:
        values[metric] = np.nan
    if missing.any():
        position = np.arange(len(values))
        for metric in [m for m in metrics if m not in unknown]:
            column = np.array(values[metric], dtype=float)  # a writable copy
            known = ~np.isnan(column)
            column[~known] = np.interp(position[~known], position[known], column[known])
            values[metric] = column


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs in ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    edges = np.diff(padded)
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))
