"""Parameters and summary of the optional ``downscale_intraday`` step."""

from __future__ import annotations

from pydantic import Field

from attribution_analysis.contracts.common import Finding, Metadata, StepAnswer, StrictModel


class DownscaleParams(StrictModel):
    profile_file: str = Field(
        default="raw/hourly_delivery.csv",
        description="Workspace-relative CSV of hourly delivery: campaign, hour (0-23), "
        "impressions, and optionally date (that period's own delivery; without it, one "
        "typical day per campaign).",
    )


class DownscaleReport(StrictModel):
    """``analysis/intraday_summary.json``."""

    metadata: Metadata
    table: str = Field(description="Workspace-relative CSV of hourly credit.")
    rows: int = Field(ge=0, description="Rows of the hourly table.")
    profile_keyed_by: list[str] = Field(description="Columns the profile was joined on.")
    max_relative_error: float = Field(
        description="Largest |sum of hourly parts - period credit| / period credit."
    )
    note: str = Field(description="What the split assumes.")


class DownscaleAnswer(StepAnswer):
    """What ``downscale_intraday`` answers: the hourly table, how the profile was joined, the
    conservation check and what the split assumes."""

    table: str = Field(description="Workspace-relative CSV of hourly credit.")
    rows: int = Field(ge=0, description="Rows of the hourly table.")
    profile_keyed_by: list[str] = Field(
        description="Columns the profile was joined on: ['date', 'campaign'] (each period's "
        "own delivery) or ['campaign'] (one typical day per campaign)."
    )
    max_relative_error: float = Field(
        ge=0, description="Largest |sum of hourly parts - period credit| / period credit."
    )
    note: str = Field(description="What the split assumes; say it with the numbers.")
    findings: list[Finding] = Field(
        default_factory=list, description="Notes and warnings (none so far for this step)."
    )
