"""Intraday downscaling: split a period's credit into hours by the campaign's delivery.

The MMM and the allocation work at the modelling grain (a week or a day). When a campaign's
hourly delivery is known (impressions per hour), its credit in a period can be spread over
hours in proportion to that delivery. This adds no information about effectiveness: it
assumes credit follows delivery within the period, and it conserves each row's credit
exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from attribution_analysis.errors import DataValidationError


def downscale_to_hours(
    allocation: pd.DataFrame,
    profile: pd.DataFrame,
    on: Sequence[str] = ("entity",),
    value: str = "allocated",
    hour: str = "hour",
    weight: str = "impressions",
) -> pd.DataFrame:
    """Spread each allocation row's ``value`` over the hours of its delivery profile.

    Parameters
    ----------
    allocation
        Rows to split (e.g. ``analysis/mta_allocation.csv``), with the ``on`` columns.
    profile
        Hourly delivery: the ``on`` columns, ``hour`` and ``weight`` (impressions). Keyed by
        campaign alone it is a typical day; keyed by (date, campaign) it is that period's
        actual delivery.
    on
        Columns joining the two tables.

    Returns
    -------
    DataFrame
        One row per allocation row and hour, ``value`` replaced by its hourly part and a
        ``hour_share`` column; the parts of each row add up to its ``value`` exactly (up to
        rounding).

    Raises
    ------
    DataValidationError
        Negative or non-finite weights, or allocation rows with credit but no delivery
        profile (they are listed; nothing is spread uniformly behind the user's back).
    """
    keys = list(on)
    missing = [c for c in [*keys, hour, weight] if c not in profile.columns]
    if missing:
        raise DataValidationError(
            problem=f"the delivery profile lacks columns {missing}.",
            fix=f"give columns {[*keys, hour, weight]}.",
            column=missing[0],
            code="missing_column",
        )
    weights = pd.to_numeric(profile[weight], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        raise DataValidationError(
            problem="hourly delivery must be finite and non-negative.",
            fix="correct the weights.",
            column=weight,
            rows=[int(i) for i in np.flatnonzero(bad)],
            code="negative_value",
        )
    prof = profile[[*keys, hour]].assign(_weight=weights)
    prof = prof.groupby([*keys, hour], as_index=False, sort=True)["_weight"].sum()
    totals = prof.groupby(keys)["_weight"].transform("sum")
    prof = prof.assign(hour_share=np.where(totals > 0, prof["_weight"] / totals, 0.0))
    prof = prof[prof["hour_share"] > 0].drop(columns="_weight")

    rows = allocation.reset_index(drop=True).assign(_row=lambda f: np.arange(len(f)))
    merged = rows.merge(prof, on=keys, how="left")
    uncovered = merged["hour_share"].isna() & (merged[value] > 0)
    if uncovered.any():
        example = merged.loc[uncovered, keys].iloc[0].to_dict()
        raise DataValidationError(
            problem=f"{int(uncovered.sum())} rows have credit but no hourly delivery, e.g. "
            f"{example}.",
            fix="add their delivery profile, or keep them at the period grain.",
            column=keys[-1],
            rows=[int(r) for r in merged.loc[uncovered, "_row"].unique()],
            code="missing_profile",
        )
    merged = merged[merged["hour_share"].notna()].copy()
    merged[value] = merged[value] * merged["hour_share"]
    return merged.drop(columns="_row").reset_index(drop=True)
