"""Control variables: trend, Fourier seasonality, holidays, external factors."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import holidays as holidays_lib
import numpy as np
import pandas as pd

from attribution_analysis.data.grain import Grain, days_per_period
from attribution_analysis.data.sources import Source
from attribution_analysis.errors import DataValidationError, ParameterError

YEAR_DAYS = 365.25


def trend(grid: pd.DatetimeIndex) -> np.ndarray:
    """Linear trend from 0 at the first period to 1 at the last."""
    return np.linspace(0.0, 1.0, len(grid)) if len(grid) > 1 else np.zeros(len(grid))


def fourier_terms(
    grid: pd.DatetimeIndex, yearly: int, quarterly: int, grain: Grain
) -> dict[str, np.ndarray]:
    """Sine/cosine pairs of the yearly and quarterly cycles, at each period's midpoint.

    The phase is measured from a fixed epoch, so the same calendar date gets the same values
    whatever window is modelled (refits and forecasts stay consistent).
    """
    middle = grid + pd.Timedelta(days=(days_per_period(grain) - 1) / 2)
    days = (middle - pd.Timestamp("1970-01-01")).total_seconds().to_numpy() / 86400.0
    columns: dict[str, np.ndarray] = {}
    for name, period, order in (
        ("yearly", YEAR_DAYS, yearly),
        ("quarterly", YEAR_DAYS / 4, quarterly),
    ):
        for k in range(1, order + 1):
            angle = 2 * np.pi * k * days / period
            columns[f"fourier_{name}_sin_{k}"] = np.sin(angle)
            columns[f"fourier_{name}_cos_{k}"] = np.cos(angle)
    return columns


@functools.cache
def country_codes() -> frozenset[str]:
    """The country codes the holidays package knows (ISO alpha-2, alpha-3 and aliases such
    as UK). Read from its registry table, not from list_supported_countries(), which imports
    every country's module to list them (0.1-0.15 s of a fresh process). Not by trying
    country_holidays(code) either: the package's constants (JAN, MON, PUBLIC...) are
    attributes too, so a code like 'JAN' would fail with a TypeError, not a refusal."""
    from holidays.registry import COUNTRIES  # in every release the project allows (>= 0.50)

    return frozenset(code for entry in COUNTRIES.values() for code in entry[1:] if code.isupper())


def holiday_counts(
    grid: pd.DatetimeIndex, grain: Grain, country: str | None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Days of public holiday in each period for ``country`` (ISO code), and their names."""
    if not country:
        return {}, []
    code = country.upper()
    if code not in country_codes():
        raise ParameterError(
            f"holiday country '{country}' is not known to the holidays package.",
            fix="pass an ISO 3166 alpha-2 code such as US, GB, DE, ES, FR, BR, JP.",
        )
    length = days_per_period(grain)
    end = grid[-1] + pd.Timedelta(days=length - 1)
    calendar = holidays_lib.country_holidays(code, years=range(grid[0].year, end.year + 1))
    days = pd.DatetimeIndex(sorted(pd.Timestamp(d) for d in calendar))
    days = days[(days >= grid[0]) & (days <= end)]
    counts = np.zeros(len(grid))
    if len(days):
        position = ((days - grid[0]).days // length).to_numpy()
        np.add.at(counts, position, 1.0)
    names = [f"{d.date()} {calendar.get(d.date())}" for d in days]
    return {"holidays": counts}, names


FACTOR_KINDS = ("control", "organic", "event")


@dataclass
class Factors:
    """External factors on the period grid: a column per factor, and each column's kind."""

    columns: dict[str, np.ndarray]
    notes: list[str]
    kinds: dict[str, str]  # column -> 'control' | 'organic' | 'event'

    def of_kind(self, kind: str) -> list[str]:
        return [c for c in self.columns if self.kinds[c] == kind]


def factor_kind(source: Source, name: str, rows: pd.DataFrame) -> str:
    """The one kind of factor ``name`` (blank = control); refuses unknown or mixed kinds."""
    if "kind" not in rows:
        return "control"
    given = rows["kind"].astype(object).where(rows["kind"].notna(), "")
    given = given.astype(str).str.strip().str.lower().replace("", "control")
    unknown = (~given.isin(FACTOR_KINDS)).to_numpy()
    kinds = given.unique().tolist()
    if unknown.any() or len(kinds) > 1:
        first = rows.index[unknown if unknown.any() else (given != given.iloc[0]).to_numpy()][0]
        raise DataValidationError(
            problem=f"factor '{name}' has kind '{rows.loc[first, 'kind']}', which is not one "
            f"of {list(FACTOR_KINDS)}."
            if unknown.any()
            else f"factor '{name}' is given more than one kind ({sorted(kinds)}).",
            fix="give every row of a factor the same kind: control (or blank), organic or event.",
            file=source.shown,
            column="kind",
            rows=(int(rows.loc[first, "_line"]),),
            code="invalid_value",
        )
    return str(kinds[0])


def external_factors(source: Source | None, grid: pd.DatetimeIndex, grain: Grain) -> Factors:
    """Pivot long factors to one column per factor on the period grid.

    Values inside a period are averaged; a period with no value takes the latest earlier
    value (macro indicators are often monthly). A factor with no value on or before the
    first period cannot be placed and is refused. Events are the exception: a period with
    no value is a period without the event (0), not the last value carried forward.
    """
    if source is None:
        return Factors({}, [], {})
    length = pd.Timedelta(days=days_per_period(grain))
    columns: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    notes = []
    for name, rows in source.frame.groupby("factor_name", sort=True):
        rows = rows.sort_values("date")
        kind = factor_kind(source, str(name), rows)
        kinds[f"ext_{name}"] = kind
        if kind != "event" and rows["date"].min() > grid[0]:
            raise DataValidationError(
                problem=f"factor '{name}' starts on {rows['date'].min().date()}, after the "
                f"modelling window starts ({grid[0].date()}).",
                fix="extend the factor back to the window start, or drop it.",
                file=source.shown,
                column="date",
                rows=(int(rows["_line"].iloc[0]),),
                code="misaligned_dates",
            )
        period_index = np.searchsorted(grid.to_numpy(), rows["date"].to_numpy(), side="right") - 1
        inside = (period_index >= 0) & (rows["date"].to_numpy() < (grid[-1] + length).to_numpy())
        means = pd.Series(rows["value"].to_numpy()[inside]).groupby(period_index[inside]).mean()
        column = pd.Series(np.nan, index=range(len(grid)))
        column.loc[means.index] = means.to_numpy()
        if kind == "event":
            columns[f"ext_{name}"] = column.fillna(0.0).to_numpy()
            continue
        if np.isnan(column.iloc[0]):
            before = rows.loc[rows["date"] < grid[0], "value"]
            column.iloc[0] = before.iloc[-1]
        filled = int(column.isna().sum())
        columns[f"ext_{name}"] = column.ffill().to_numpy()
        if filled:
            notes.append(
                f"factor '{name}': {filled} periods without a value took the latest earlier value"
            )
    return Factors(columns, notes, kinds)
