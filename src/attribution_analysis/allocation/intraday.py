"""The optional ``downscale_intraday`` step: campaign credit per period spread over hours by
each campaign's delivery, conserving every row's credit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.allocation.downscale import downscale_to_hours
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.intraday import (
    DownscaleAnswer,
    DownscaleParams,
    DownscaleReport,
)
from attribution_analysis.errors import DataValidationError, step_ref
from attribution_analysis.provenance import build_metadata
from attribution_analysis.workspace import csv_bytes, json_bytes

STEP = "downscale_intraday"
ALLOCATION = layout.ALLOCATION.path
TABLE = layout.ALLOCATION_HOURLY.path
SUMMARY = layout.INTRADAY_SUMMARY.path
NOTE = (
    "credit within a period follows the campaign's hourly delivery; this adds no evidence "
    "about which hours work better, it only spreads the period's credit."
)


def compute(ctx: StepContext, params: DownscaleParams) -> StepOutput:
    """The downscale_intraday step: the hourly table, its summary and the answer."""
    ws = ctx.ws
    allocation_path = ws.require(
        ALLOCATION,
        f"{ALLOCATION} is missing: there is no campaign credit to spread over hours.",
        fix=f"run {step_ref('allocate')} (MMM -> campaigns) first.",
    )
    profile_path = ws.require(
        params.profile_file,
        f"{params.profile_file} is missing: hourly delivery per campaign is needed.",
        fix="export impressions per campaign and hour (campaign, hour, impressions"
        "[, date]) from the ad server into that file.",
    )
    allocation = pd.read_csv(allocation_path)
    profile = _read_profile(profile_path, params.profile_file)
    keys = ["date", "entity"] if "date" in profile.columns else ["entity"]
    try:
        hourly = downscale_to_hours(allocation, profile, on=keys)
    except DataValidationError as exc:
        # Point at the file and its line numbers (header = line 1).
        exc.file = ALLOCATION if exc.code == "missing_profile" else params.profile_file
        exc.rows = [r + 2 for r in exc.rows]
        raise
    hashes = ws.input_hashes([allocation_path, profile_path])
    report = DownscaleReport(
        metadata=build_metadata(step=STEP, input_hashes=hashes, run_id=ctx.run_id),
        table=TABLE,
        rows=len(hourly),
        profile_keyed_by=["date", "campaign"] if len(keys) == 2 else ["campaign"],
        max_relative_error=_conservation_error(hourly, allocation),
        note=NOTE,
    )
    files = {TABLE: csv_bytes(hourly), SUMMARY: json_bytes(report.model_dump(mode="json"))}
    answer = DownscaleAnswer(
        step=STEP,
        outputs=list(files),
        **report.model_dump(exclude={"metadata"}),
    )
    return StepOutput(answer, files, hashes)


def _conservation_error(hourly: pd.DataFrame, allocation: pd.DataFrame) -> float:
    """Largest |sum of a row's hourly parts - its credit| / its credit."""
    sums = hourly.groupby(["group", "entity"], sort=False)["allocated"].sum()
    original = allocation.set_index(["group", "entity"])["allocated"].loc[sums.index]
    denominator = np.maximum(np.abs(original.to_numpy()), 1e-300)
    return float(np.max(np.abs(sums.to_numpy() - original.to_numpy()) / denominator, initial=0.0))


def _read_profile(path, shown: str) -> pd.DataFrame:
    profile = pd.read_csv(path)
    missing = [c for c in ("campaign", "hour", "impressions") if c not in profile.columns]
    if missing:
        raise DataValidationError(
            problem=f"the delivery profile lacks columns {missing}.",
            fix="give columns campaign, hour (0-23), impressions[, date].",
            file=shown,
            column=missing[0],
            code="missing_column",
        )
    hours = pd.to_numeric(profile["hour"], errors="coerce")
    bad = hours.isna() | (hours < 0) | (hours > 23) | (hours % 1 != 0)
    if bad.any():
        raise DataValidationError(
            problem="hour must be a whole number from 0 to 23.",
            fix="correct those rows.",
            file=shown,
            column="hour",
            rows=[int(i) + 2 for i in np.flatnonzero(bad.to_numpy())],
            code="invalid_value",
        )
    return profile.assign(hour=hours.astype(int)).rename(columns={"campaign": "entity"})
