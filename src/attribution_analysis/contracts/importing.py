"""Parameters and answer of ``import_data``, and ``raw/import_mapping.json``.

``import_data`` turns one wide table (a row per period [and geo], a column per metric) into
the workspace's ``raw/`` input files. A dry run infers each column's role and asks what it
cannot tell; the write run takes the confirmed ``roles`` and writes the files.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from attribution_analysis.contracts.common import Finding, Identifier, StepAnswer, StrictModel

# Inline CSV text: at most this many bytes (UTF-8). The MCP server refuses a call whose
# arguments exceed its --max-argument-bytes (1 MiB by default) before this check.
MAX_INLINE_BYTES = 1_000_000
PREVIEW_ROWS = 3

TargetKind = Literal["revenue", "conversions"]
Role = Literal[
    "date",
    "geo",
    "target",
    "spend",
    "impressions",
    "clicks",
    "reach",
    "control",
    "organic",
    "event",
    "ignored",
    "unmapped",
]
Confidence = Literal["high", "medium", "low"]


class ChannelColumns(StrictModel):
    """The source columns of one paid channel."""

    spend: str = Field(description="Column holding the channel's spend (required).")
    impressions: str | None = Field(
        default=None, description="Column holding its impressions (or GRPs), if any."
    )
    clicks: str | None = Field(default=None, description="Column holding its clicks, if any.")
    reach: str | None = Field(default=None, description="Column holding its reach, if any.")


class ImportRoles(StrictModel):
    """The mapping of the source's columns to roles (column names as in the header)."""

    date: str = Field(description="Column holding the period (ISO date of the day or week).")
    geo: str | None = Field(default=None, description="Column holding the geo, for geo panels.")
    target: str = Field(description="Column holding the outcome the MMM explains.")
    target_kind: TargetKind = Field(
        description="'revenue' (currency) or 'conversions' (counts: orders, leads, units)."
    )
    channels: dict[Identifier, ChannelColumns] = Field(
        min_length=1,
        description="Paid channel name -> its columns (spend, and optional impressions, "
        "clicks, reach). Channels without spend cannot be modelled.",
    )
    controls: list[str] = Field(
        default_factory=list,
        description="Control columns (competitor activity, price, discount, macro series).",
    )
    organic: list[str] = Field(
        default_factory=list,
        description="Organic series (newsletter, organic impressions, promotions): written to "
        "external_factors.csv with kind 'organic' and modelled with carryover and saturation "
        "as their own component (no spend, no ROAS).",
    )
    events: list[str] = Field(
        default_factory=list,
        description="Event columns (0/1, or text labels expanded into one 0/1 factor per "
        "label): written with kind 'event', one effect each, their own component.",
    )
    ignored: list[str] = Field(default_factory=list, description="Columns deliberately left out.")


class ImportDataParams(StrictModel):
    content: str | None = Field(
        default=None,
        description=f"The table as CSV text (header row first; at most {MAX_INLINE_BYTES:,} "
        "bytes as UTF-8). Give this or path.",
    )
    path: str | None = Field(
        default=None,
        description="Workspace-relative path of the CSV file, e.g. 'uploads/marketing.csv'. "
        "Give this or content.",
    )
    dry_run: bool = Field(
        default=True,
        description="true: infer the roles, preview the files and list the questions to put "
        "to the user; writes nothing. false: write raw/ with the confirmed roles.",
    )
    roles: ImportRoles | None = Field(
        default=None,
        description="The confirmed mapping of columns to roles (the dry run's 'roles', as "
        "corrected by the user). Required for the write run.",
    )
    country: str | None = Field(
        default=None,
        description="ISO country code of the holiday calendar (e.g. 'US', 'DE'), or null for "
        "none. The write run needs it stated (null included); when it is left out, the dry "
        "run asks.",
    )
    overwrite: bool = Field(
        default=False,
        description="Replace raw/ input files that an earlier import did not write "
        "(spend, conversions, external factors).",
    )

    @field_validator("content")
    @classmethod
    def _content_size(cls, value: str | None) -> str | None:
        if value is not None:
            size = len(value.encode("utf-8"))
            if size > MAX_INLINE_BYTES:
                raise ValueError(
                    f"content is {size:,} bytes, above the inline limit of "
                    f"{MAX_INLINE_BYTES:,} bytes; save the CSV in the workspace (e.g. "
                    "uploads/marketing.csv) and give its path instead"
                )
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().upper()
        if not text.isalpha() or not 2 <= len(text) <= 3:
            raise ValueError("country must be an ISO 3166 code such as 'US' or 'DE', or null")
        return text

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.content is None) == (self.path is None):
            raise ValueError("give exactly one of content (CSV text) and path (a workspace file)")
        return self

    @property
    def country_stated(self) -> bool:
        """Whether the caller gave the country (null included) rather than leaving it out."""
        return "country" in self.model_fields_set


class ColumnRole(StrictModel):
    column: str = Field(description="Column name as in the header.")
    role: Role = Field(description="Role inferred (dry run) or used (write run).")
    channel: str | None = Field(default=None, description="Channel, for media columns.")
    confidence: Confidence = Field(description="How sure the inference is.")
    reason: str = Field(description="Why: the name or value pattern that decided it.")


class ImportQuestion(StrictModel):
    code: str = Field(
        description="e.g. 'unmapped_column', 'ambiguous_target', 'target_kind', 'country', "
        "'exposure_without_spend', 'confirm_role'."
    )
    column: str | None = Field(default=None, description="Column concerned, if one.")
    question: str = Field(description="The question to put to the user, in plain words.")
    options: list[str] = Field(default_factory=list, description="Likely answers.")


class FilePreview(StrictModel):
    path: str = Field(description="Workspace-relative file the write run writes.")
    rows: int = Field(ge=0, description="Data rows.")
    columns: list[str] = Field(description="Its header.")
    head: list[dict[str, str]] = Field(description="Its first rows, as written.")


class SourceSummary(StrictModel):
    name: str = Field(description="The path given, or 'content' for inline text.")
    bytes: int = Field(ge=0, description="Size in bytes.")
    sha256: str = Field(description="sha256 of the bytes.")
    rows: int = Field(ge=0, description="Data rows.")
    columns: list[str] = Field(description="Header.")
    start: dt.date | None = Field(default=None, description="First date (when known).")
    end: dt.date | None = Field(default=None, description="Last date (when known).")
    geos: list[str] = Field(default_factory=list, description="Geos (geo tables).")


class ImportDataAnswer(StepAnswer):
    dry_run: bool = Field(description="Whether this was a dry run (nothing written).")
    source: SourceSummary = Field(description="The table read.")
    roles: ImportRoles | None = Field(
        description="Dry run: the inferred mapping (null when no date or target column or "
        "no spend column was found); write run: the mapping used."
    )
    columns: list[ColumnRole] = Field(description="Every column with its role and why.")
    files: list[FilePreview] = Field(
        description="The files the write run writes (dry run: would write), with a preview."
    )
    questions: list[ImportQuestion] = Field(
        description="What to ask the user before the write run (empty: nothing open)."
    )
    country: str | None = Field(description="Holiday calendar stated (null: none or not yet).")
    findings: list[Finding] = Field(description="What the import did or could not do.")


class ImportMapping(StrictModel):
    """``raw/import_mapping.json``: how raw/ was produced from the user's table."""

    source: SourceSummary
    roles: ImportRoles
    country: str | None = Field(description="Holiday calendar stated at import (null: none).")
    files: list[str] = Field(description="raw/ files written by the import.")
    run_id: str
    findings: list[Finding] = Field(default_factory=list)
