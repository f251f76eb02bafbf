"""The ``build_effective_exposure`` step: campaign impressions through the MMM's own adstock and
saturation, written for inspection (the allocation step builds the same table internally)."""

from __future__ import annotations

import pandas as pd

from attribution_analysis import layout
from attribution_analysis.allocation.exposure import (
    build_effective_exposure,
    check_delivery,
    choose_exposure,
    spend_basis_finding,
    to_periods,
)
from attribution_analysis.allocation.loaders import (
    CAMPAIGN_PANEL,
    PANEL_SPEC,
    load_transforms,
    mmm_periods,
    require_campaign_panel,
)
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.exposure import (
    BuildExposureParams,
    CampaignExposure,
    CampaignShare,
    ChannelExposure,
    ChannelExposureSummary,
    ExposureAnswer,
    ExposureReport,
)
from attribution_analysis.data.tables import load_table
from attribution_analysis.errors import MissingInputError
from attribution_analysis.provenance import build_metadata
from attribution_analysis.workspace import csv_bytes, json_bytes

STEP = "build_effective_exposure"
TABLE = layout.EXPOSURE_TABLE.path
SUMMARY = layout.EXPOSURE_SUMMARY.path
TOP_CAMPAIGNS = 3  # campaigns per channel in the answer (all are in the files)


def compute(ctx: StepContext, params: BuildExposureParams) -> StepOutput:
    """The build_effective_exposure step: the per-period table, its summary and the answer."""
    ws = ctx.ws
    panel_path = require_campaign_panel(ws)
    panel, _ = load_table(panel_path, CAMPAIGN_PANEL, PANEL_SPEC)
    if "campaign" not in panel.columns:
        raise MissingInputError(
            "the campaign panel has no campaign column, so there is nothing to split.",
            fix="campaign-level spend files (with a campaign column) are needed.",
            file=CAMPAIGN_PANEL,
        )
    transforms = load_transforms(
        ws, AllocateParams(source="mta", transforms_file=params.transforms_file)
    )
    check_delivery(panel, CAMPAIGN_PANEL)
    basis, spend_only = choose_exposure(panel, params.exposure, CAMPAIGN_PANEL)
    periods = mmm_periods(ws)
    if periods is not None:
        # The campaign panel keeps the campaign files' grain (daily rows under a weekly MMM);
        # the MMM's adstock and saturation are per MMM period, so delivery is summed to them.
        basis = to_periods(basis, periods.grain, periods.anchor, ["impressions"])
    media = basis[
        ["date", "channel", "campaign", "impressions", *(["geo"] if "geo" in panel else [])]
    ]
    table = build_effective_exposure(
        media, transforms.for_channels(media["channel"]), params.saturation_on
    )
    hashes = ws.input_hashes([panel_path, *transforms.files])
    findings = [spend_basis_finding(spend_only)] if spend_only else []
    if transforms.from_truth:
        findings.append(
            Finding(
                code="transforms_from_truth",
                severity="info",
                message="adstock and saturation are the simulator's truth "
                f"({layout.TRUTH_PARAMETERS.path}): no MMM transforms exist in this workspace "
                "yet.",
            )
        )
    report = ExposureReport(
        metadata=build_metadata(
            step=STEP,
            input_hashes=hashes,
            run_id=ctx.run_id,
            extra={"params": params.model_dump(mode="json")},
        ),
        exposure=params.exposure,
        saturation_on=params.saturation_on,
        transforms_source=transforms.source,
        table=TABLE,
        channels=_summaries(table),
        findings=findings,
    )
    files = {TABLE: csv_bytes(table), SUMMARY: json_bytes(report.model_dump(mode="json"))}
    return StepOutput(_answer(report, list(files)), files, hashes)


def _answer(report: ExposureReport, outputs: list[str]) -> ExposureAnswer:
    return ExposureAnswer(
        step=STEP,
        outputs=outputs,
        exposure=report.exposure,
        saturation_on=report.saturation_on,
        transforms_source=report.transforms_source,
        channels=[
            ChannelExposureSummary(
                channel=c.channel,
                campaigns=len(c.campaigns),
                top_campaigns=[
                    CampaignShare(
                        campaign=k.campaign, share_of_channel=round(k.share_of_channel, 4)
                    )
                    for k in sorted(c.campaigns, key=lambda k: -k.share_of_channel)[:TOP_CAMPAIGNS]
                ],
            )
            for c in report.channels
        ],
        findings=report.findings,
    )


def _summaries(table: pd.DataFrame) -> list[ChannelExposure]:
    totals = table.groupby(["channel", "campaign"], sort=True)[
        ["impressions", "effective_exposure"]
    ].sum()
    out = []
    for channel, rows in totals.groupby(level="channel", sort=True):
        channel_total = rows["effective_exposure"].sum()
        out.append(
            ChannelExposure(
                channel=str(channel),
                campaigns=[
                    CampaignExposure(
                        campaign=str(campaign),
                        impressions=float(r.impressions),
                        effective_exposure=float(r.effective_exposure),
                        share_of_channel=float(r.effective_exposure / channel_total)
                        if channel_total > 0
                        else 0.0,
                    )
                    for (_, campaign), r in rows.iterrows()
                ],
            )
        )
    return out
