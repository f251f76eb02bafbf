"""``analysis/data_validation.json``: what the validation step found and prepared."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from attribution_analysis.contracts.common import (
    DataRange,
    Finding,
    Metadata,
    StepAnswer,
    StrictModel,
)

Grain = Literal["daily", "weekly"]
HolidayCountrySource = Literal["given", "import", "default", "none"]
DEFAULT_COUNTRY = "US"


class FileSummary(StrictModel):
    path: str = Field(description="Workspace-relative path of the input file.")
    table: str = Field(description="Contract table, e.g. 'campaign_spend', 'conversions'.")
    rows: int = Field(ge=0, description="Data rows read.")
    grain: Grain | None = Field(default=None, description="Grain detected in this file.")
    start: dt.date | None = Field(default=None, description="First date in the file.")
    end: dt.date | None = Field(default=None, description="Last date in the file.")
    sha256: str = Field(description="sha256 of the file's bytes.")
    ignored_columns: list[str] = Field(
        default_factory=list, description="Columns not in the contract (not used)."
    )


class ChannelSummary(StrictModel):
    channel: str = Field(description="Channel name.")
    platforms: list[str] = Field(description="Platform files the channel's rows came from.")
    total_spend: float = Field(description="Spend over the modelling window.")
    total_impressions: float | None = Field(
        description="Impressions over the modelling window; null when the channel reports "
        "none (a spend-only channel)."
    )
    total_clicks: float | None = Field(
        description="Clicks over the modelling window; null when not reported."
    )
    active_periods: int = Field(description="Periods (summed over geos) with spend > 0.")
    active_share: float = Field(description="Share of periods with spend > 0.")
    imputed_periods: int = Field(description="Periods whose spend was imputed.")
    n_campaigns: int = Field(default=0, description="Distinct campaigns (campaign files only).")
    confidence: Literal["high", "medium", "low"] = Field(
        description="Data confidence after imputation: high (none imputed), medium (<= 5% of "
        "periods), low (> 5%)."
    )


class ImputedWindow(StrictModel):
    series: str = Field(description="What was imputed, e.g. 'spend:tv' or 'target'.")
    file: str = Field(description="File whose rows were missing.")
    geo: str | None = Field(default=None, description="Geo, for geo panels.")
    start: dt.date = Field(description="First missing period.")
    end: dt.date = Field(description="Last missing period.")
    n_periods: int = Field(ge=1, description="Missing periods in this window.")
    method: str = Field(description="How the gap was filled.")


class IdentificationMetrics(StrictModel):
    """Numbers that threaten identification, measured before any fit."""

    spend_correlation: dict[str, dict[str, float]] = Field(
        description="Pearson correlation of weekly channel spends (national totals)."
    )
    vif: dict[str, float | None] = Field(
        description="Variance inflation factor per channel (None: perfectly collinear)."
    )
    condition_number: float | None = Field(
        description="Condition number of the standardised media matrix (None: singular)."
    )
    n_parameters: int = Field(description="Approximate parameters of the default MMM.")
    periods_per_parameter: float = Field(description="Observations per model parameter.")


class ControlsSummary(StrictModel):
    fourier_columns: list[str] = Field(description="Fourier seasonality columns generated.")
    holiday_country: str | None = Field(description="Country code of the holiday calendar.")
    holiday_country_source: HolidayCountrySource = Field(
        default="given",
        description="How the holiday country was chosen: 'given' by the caller, 'import' "
        "(stated at import_data), 'default' (not given: US was assumed; confirm it with the "
        "user), 'none' (no holidays).",
    )
    holiday_columns: list[str] = Field(description="Holiday indicator columns generated.")
    holidays_in_window: list[str] = Field(description="Holidays falling inside the window.")
    external_factors: list[str] = Field(
        description="External factor columns entering as controls (kind 'control')."
    )
    organic_series: list[str] = Field(
        default_factory=list,
        description="External factor columns of kind 'organic': non-paid series modelled "
        "with carryover and saturation as their own component.",
    )
    event_columns: list[str] = Field(
        default_factory=list,
        description="External factor columns of kind 'event': indicators with one effect "
        "each, their own component.",
    )
    trend_column: str = Field(description="Linear trend column (0 at start, 1 at end).")


class PanelSummary(StrictModel):
    path: str = Field(description="Workspace-relative path of the prepared panel CSV.")
    rows: int = Field(description="Rows (periods x geos).")
    date_column: str = Field(description="Date column name.")
    geo_column: str | None = Field(description="Geo column name, for geo panels.")
    target_columns: list[str] = Field(description="Outcome columns present.")
    channels: list[str] = Field(description="Channels, in panel order.")
    spend_columns: dict[str, str] = Field(description="Channel -> spend column.")
    impressions_columns: dict[str, str] = Field(description="Channel -> impressions column.")
    clicks_columns: dict[str, str] = Field(description="Channel -> clicks column.")
    imputed_flag_columns: dict[str, str] = Field(
        description="Series -> boolean column marking imputed cells."
    )
    control_columns: list[str] = Field(description="Control columns (Fourier, holidays, factors).")


class CampaignPanelSummary(StrictModel):
    path: str = Field(description="Workspace-relative path of the campaign panel CSV.")
    rows: int = Field(description="Rows (period x geo x channel x campaign x creative).")
    n_campaigns: int = Field(description="Distinct (channel, campaign) pairs.")
    has_creative: bool = Field(description="Whether creatives are reported.")


class DataValidationReport(StrictModel):
    """Output of ``validate_data`` (``analysis/data_validation.json``)."""

    metadata: Metadata
    status: Literal["passed", "passed_with_warnings"] = Field(
        description="'passed_with_warnings' when any warning below needs a look."
    )
    grain: Grain = Field(description="Modelling grain chosen.")
    grain_reason: str = Field(description="Why that grain was chosen.")
    window: DataRange = Field(description="Modelling window after alignment.")
    target_default: Literal["conversions", "revenue"] = Field(
        description="Outcome the MMM models by default (conversions when present)."
    )
    files: list[FileSummary] = Field(description="Every input file read.")
    channels: list[ChannelSummary] = Field(description="Per-channel summary.")
    imputations: list[ImputedWindow] = Field(description="Every imputed window.")
    identification: IdentificationMetrics
    controls: ControlsSummary
    panel: PanelSummary
    campaign_panel: CampaignPanelSummary | None = Field(
        default=None, description="Campaign-level panel, when campaign files exist."
    )
    warnings: list[Finding] = Field(description="Rules triggered, with their numbers.")
    notes: list[Finding] = Field(description="Informational notes (trimming, aggregation).")


Confidence = Literal["high", "medium", "low"]


class ValidateDataAnswer(StepAnswer):
    """What validate_data answers: the decisions it took (grain, window), the channels with
    their data confidence, and every warning to read out (the full report is a file)."""

    validation_status: Literal["passed", "passed_with_warnings"] = Field(
        description="'passed_with_warnings' when any warning needs a look."
    )
    grain: Grain = Field(description="Modelling grain chosen.")
    grain_reason: str = Field(description="Why that grain was chosen; say it to the user.")
    window: DataRange = Field(description="Modelling window after alignment.")
    target_default: Literal["conversions", "revenue"] = Field(
        description="Outcome the MMM models by default (conversions when present)."
    )
    channels: list[str] = Field(description="Channels found, in panel order.")
    holiday_country: str | None = Field(
        description="Country whose holiday calendar the controls use (null: none)."
    )
    holiday_country_source: HolidayCountrySource = Field(
        description="How it was chosen: 'given' by the caller, 'import' (stated at "
        "import_data), 'default' (not given, so "
        f"{DEFAULT_COUNTRY} was assumed: confirm the country with the user and re-run with "
        "it), 'none' (no holiday controls)."
    )
    data_confidence: dict[str, Confidence] = Field(
        description="Per channel: data confidence after imputation (high: nothing imputed, "
        "medium: <= 5% of periods, low: more); report imputed spend with its grade."
    )
    imputed_periods: dict[str, int] = Field(
        description="Per channel: periods whose spend was imputed."
    )
    warnings: list[Finding] = Field(
        description="Rules triggered, with their numbers (high spend correlation, VIF or "
        "condition number: the data cannot separate those channels; imputed spend or outcome)."
    )
    notes: list[Finding] = Field(
        description="Informational notes (trimmed partial periods, aggregation, fills)."
    )


class ValidateDataParams(StrictModel):
    """Parameters of the ``validate_data`` step."""

    grain: Literal["auto", "weekly", "daily"] = Field(
        default="auto",
        description="Modelling grain; 'auto' applies the seed rule (weekly unless "
        "2+ years of daily data).",
    )
    country: str | None = Field(
        default=DEFAULT_COUNTRY,
        description="ISO country code of the holiday calendar; null for none. Ask the user: "
        f"when it is not given, {DEFAULT_COUNTRY} is assumed and the answer says so "
        "(holiday_country_source 'default').",
    )
    start: dt.date | None = Field(default=None, description="Optional first date of the window.")
    end: dt.date | None = Field(default=None, description="Optional last date of the window.")
    max_gap_periods: int = Field(
        default=4,
        ge=0,
        le=52,
        description="Longest run of missing periods that is imputed; longer gaps are errors.",
    )
    yearly_harmonics: int = Field(default=2, ge=0, le=10, description="Yearly Fourier pairs.")
    quarterly_harmonics: int = Field(default=1, ge=0, le=5, description="Quarterly Fourier pairs.")
