"""Parameters and summary of the ``build_effective_exposure`` step."""

from __future__ import annotations

from pydantic import Field

from attribution_analysis.contracts.allocation import ExposureMetric, SaturationOn
from attribution_analysis.contracts.common import Finding, Metadata, StepAnswer, StrictModel


class BuildExposureParams(StrictModel):
    exposure: ExposureMetric = Field(
        default="impressions",
        description="The delivery metric run through adstock and saturation: 'impressions' "
        "(default; channels that report none use spend), 'reach', 'clicks' or 'spend', as in "
        "the allocate step.",
    )
    saturation_on: SaturationOn = Field(
        default="channel_total",
        description="'channel_total' (default): saturate the channel's adstocked total as the "
        "MMM does and share it by adstocked impressions; 'campaign': saturate each campaign "
        "alone (favours small campaigns when the channel is saturated).",
    )
    transforms_file: str | None = Field(
        default=None,
        description="Workspace-relative JSON {channel: {alpha, l_max, saturation}}. Default: "
        "analysis/mmm_transforms.json (the fitted MMM's posterior means), else the "
        "simulator's truth/parameters.json.",
    )


class CampaignExposure(StrictModel):
    campaign: str
    impressions: float
    effective_exposure: float
    share_of_channel: float = Field(description="Share of the channel's effective exposure.")


class ChannelExposure(StrictModel):
    channel: str
    campaigns: list[CampaignExposure]


class ExposureReport(StrictModel):
    """``analysis/effective_exposure.json`` (the per-period table is the CSV beside it)."""

    metadata: Metadata
    exposure: ExposureMetric = Field(
        default="impressions",
        description="Delivery metric used; the table's 'impressions' column holds it.",
    )
    saturation_on: SaturationOn
    transforms_source: str = Field(description="File the adstock/saturation parameters came from.")
    table: str = Field(
        description="Workspace-relative CSV: date, [geo], channel, campaign, "
        "impressions, adstocked, effective_exposure."
    )
    channels: list[ChannelExposure]
    findings: list[Finding] = Field(default_factory=list)


class CampaignShare(StrictModel):
    campaign: str = Field(description="Campaign id.")
    share_of_channel: float = Field(
        ge=0, le=1, description="Share of the channel's effective exposure (4 decimals)."
    )


class ChannelExposureSummary(StrictModel):
    channel: str = Field(description="Channel name.")
    campaigns: int = Field(ge=0, description="Number of campaigns of the channel.")
    top_campaigns: list[CampaignShare] = Field(
        description="The campaigns with the largest shares of effective exposure (at most 3)."
    )


class ExposureAnswer(StepAnswer):
    """What ``build_effective_exposure`` answers: where the transforms came from and the
    largest campaigns per channel (every campaign and period is in the files)."""

    exposure: ExposureMetric = Field(
        default="impressions", description="Delivery metric run through the transforms."
    )
    saturation_on: SaturationOn = Field(
        description="Where saturation was applied: the channel total or each campaign."
    )
    transforms_source: str = Field(
        description="File the adstock/saturation parameters came from (or 'parameters given "
        "in the call')."
    )
    channels: list[ChannelExposureSummary] = Field(
        description="Per channel: campaign count and top campaigns by share."
    )
    findings: list[Finding] = Field(
        description="Notes to pass on, e.g. transforms taken from the simulator's truth."
    )
