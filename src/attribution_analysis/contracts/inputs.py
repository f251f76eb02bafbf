"""Input tables of the workspace contract (``workspace/raw/``) and the lift-test file.

Each row model is the single source of truth for its table: the loader derives the
required and optional columns, their kinds and the non-negativity rules from these fields
(see :func:`attribution_analysis.data.tables.table_spec`), and ``schemas/`` exports them.
"""

from __future__ import annotations

import datetime as dt
from typing import Self

from pydantic import ConfigDict, Field, model_validator

from attribution_analysis.contracts.common import Identifier, Label, StrictModel


def _kind(kind: str) -> dict[str, str]:
    return {"x-kind": kind}


def _exposure() -> dict[str, str | bool]:
    # A delivery metric: empty cells mean 'not reported' (unknown), never 0.
    return {"x-kind": "number", "x-blank": True}


class CampaignSpendRow(StrictModel):
    """One row of ``raw/campaign_spend_{platform}.csv`` (daily or weekly).

    Channel-level files have one row per date and channel; campaign-level files add a
    ``campaign`` column (and optionally ``creative`` and ``geo``).
    """

    date: dt.date = Field(
        description="Day, or first day of the week, the row covers (ISO 8601).",
        json_schema_extra=_kind("date"),
    )
    channel: Identifier = Field(
        description="Marketing channel, e.g. 'paid_search'.", json_schema_extra=_kind("identifier")
    )
    spend: float = Field(
        ge=0, description="Media spend in account currency.", json_schema_extra=_kind("number")
    )
    impressions: float | None = Field(
        default=None,
        ge=0,
        description="Impressions (or GRPs for offline media). Optional: a channel without "
        "them (no column, or the cells of all its rows empty) is a spend-only channel, "
        "modelled on spend; empty cells are never read as 0.",
        json_schema_extra=_exposure(),
    )
    clicks: float | None = Field(
        default=None,
        ge=0,
        description="Clicks (0 or absent offline); empty cells mean not reported.",
        json_schema_extra=_exposure(),
    )
    reach: float | None = Field(
        default=None,
        ge=0,
        description="Reach (people reached), if reported; kept, not modelled (not additive "
        "over days or campaigns).",
        json_schema_extra=_exposure(),
    )
    campaign: Label | None = Field(
        default=None,
        description="Campaign name (campaign files).",
        json_schema_extra=_kind("label"),
    )
    creative: Label | None = Field(
        default=None, description="Creative name, if reported.", json_schema_extra=_kind("label")
    )
    geo: Identifier | None = Field(
        default=None,
        description="Geo (market, region, DMA).",
        json_schema_extra=_kind("identifier"),
    )


class ConversionsRow(StrictModel):
    """One row of ``raw/conversions.csv``: the outcome, at the same grain as spend."""

    date: dt.date = Field(
        description="Day, or first day of the week (ISO 8601).", json_schema_extra=_kind("date")
    )
    conversions: float | None = Field(
        default=None,
        ge=0,
        description="Conversions (leads, sign-ups, sales units).",
        json_schema_extra=_kind("number"),
    )
    revenue: float | None = Field(
        default=None,
        ge=0,
        description="Revenue in account currency.",
        json_schema_extra=_kind("number"),
    )
    geo: Identifier | None = Field(
        default=None,
        description="Geo, for geo-level outcomes.",
        json_schema_extra=_kind("identifier"),
    )

    @model_validator(mode="after")
    def _has_outcome(self) -> Self:
        if self.conversions is None and self.revenue is None:
            raise ValueError("a conversions row needs 'conversions' or 'revenue'")
        return self


class ExternalFactorRow(StrictModel):
    """One row of ``raw/external_factors.csv`` (long format: one factor per row)."""

    date: dt.date = Field(
        description="Day or week start (ISO 8601).", json_schema_extra=_kind("date")
    )
    factor_name: Identifier = Field(
        description="Factor, e.g. 'competitor_spend', 'cpi'.", json_schema_extra=_kind("identifier")
    )
    value: float = Field(description="Factor value (any sign).", json_schema_extra=_kind("number"))
    kind: Label | None = Field(
        default=None,
        description="How the factor enters the model: 'control' (default: a linear effect, "
        "no carryover), 'organic' (a non-paid series such as newsletter sends or organic "
        "impressions: carryover and saturation, its own component) or 'event' (a 0/1 "
        "indicator with its own effect per event). One kind per factor; blank = control.",
        json_schema_extra={"x-kind": "label", "x-blank": True},
    )


class CampaignMetadataRow(StrictModel):
    """One row of ``raw/campaign_metadata.csv``: campaign covariates for allocation.

    Columns beyond those listed are kept as further covariates.
    """

    model_config = ConfigDict(extra="allow")

    campaign: Label = Field(
        description="Campaign name, as in the campaign spend files.",
        json_schema_extra=_kind("label"),
    )
    channel: Identifier = Field(
        description="Channel the campaign runs in.", json_schema_extra=_kind("identifier")
    )
    objective: Label | None = Field(
        default=None, description="e.g. Awareness / Conversion.", json_schema_extra=_kind("label")
    )
    format: Label | None = Field(
        default=None,
        description="e.g. video / static / search_ad.",
        json_schema_extra=_kind("label"),
    )
    creative_family: Label | None = Field(
        default=None, description="Creative family or concept.", json_schema_extra=_kind("label")
    )


class BrickSalesRow(StrictModel):
    """One row of ``raw/brick_sales.csv`` (pharma variant): sales observed per brick."""

    brick_id: Label = Field(
        description="Brick (small sales territory) id.", json_schema_extra=_kind("label")
    )
    sales: float = Field(
        ge=0,
        description="Sales in the brick (units or currency).",
        json_schema_extra=_kind("number"),
    )


class HcpBrickRow(StrictModel):
    """One row of ``raw/hcp_brick.csv``: an HCP's exposure (visits) in a brick."""

    hcp_id: Label = Field(description="HCP (doctor) id.", json_schema_extra=_kind("label"))
    brick_id: Label = Field(description="Brick id.", json_schema_extra=_kind("label"))
    visits: float | None = Field(
        default=None, ge=0, description="Rep visits (exposure).", json_schema_extra=_kind("number")
    )
    exposure: float | None = Field(
        default=None,
        ge=0,
        description="Exposure, if not given as visits.",
        json_schema_extra=_kind("number"),
    )

    @model_validator(mode="after")
    def _has_exposure(self) -> Self:
        if self.visits is None and self.exposure is None:
            raise ValueError("an hcp_brick row needs 'visits' or 'exposure'")
        return self


class HcpRow(StrictModel):
    """One row of ``raw/hcps.csv``: HCP covariates. Extra columns are further covariates."""

    model_config = ConfigDict(extra="allow")

    hcp_id: Label = Field(description="HCP id.", json_schema_extra=_kind("label"))
    specialty: Label | None = Field(
        default=None, description="Specialty, e.g. CARDIO.", json_schema_extra=_kind("label")
    )
    seniority: float | None = Field(
        default=None, ge=0, description="Years in practice.", json_schema_extra=_kind("number")
    )
    potential: float | None = Field(
        default=None, ge=0, description="Prescribing potential.", json_schema_extra=_kind("number")
    )


class IncrementalityResult(StrictModel):
    """One lift test in ``analysis/incrementality_results.json`` (a JSON list of these).

    ``lift`` is the incremental outcome (in the model's target units) caused by the channel's
    spend during ``[start, end]``, with its confidence interval.
    """

    channel: Identifier = Field(description="Channel tested (must exist in the spend data).")
    lift: float = Field(description="Incremental outcome over the test window.")
    ci_lower: float = Field(description="Lower bound of the lift's confidence interval.")
    ci_upper: float = Field(description="Upper bound of the lift's confidence interval.")
    ci_level: float = Field(
        default=0.9, gt=0, lt=1, description="Coverage of [ci_lower, ci_upper] (default 90%)."
    )
    start: dt.date | None = Field(default=None, description="First day of the test.")
    end: dt.date | None = Field(default=None, description="Last day of the test.")
    spend: float | None = Field(
        default=None, ge=0, description="Spend switched on (or off) by the test, if known."
    )
    geo: Identifier | None = Field(default=None, description="Geo of a geo-level test.")
    metric: str | None = Field(default=None, description="'conversions' or 'revenue'.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.ci_lower > self.ci_upper:
            raise ValueError(
                f"ci_lower ({self.ci_lower}) is above ci_upper ({self.ci_upper}); swap them"
            )
        if not self.ci_lower <= self.lift <= self.ci_upper:
            raise ValueError(
                f"lift {self.lift} lies outside its interval [{self.ci_lower}, {self.ci_upper}]"
            )
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self
