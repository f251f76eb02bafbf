"""The ``build_effective_exposure`` step: campaign impressions through the MMM's own adstock and
saturation, written for inspection (the allocation step builds the same table internally)."""

from __future__ import annotations

from attribution_analysis.allocation.exposure import build_effective_exposure
from attribution_analysis.allocation.loaders import (
    CAMPAIGN_PANEL,
    PANEL_SPEC,
    load_transforms,
    require_campaign_panel,
)
from attribution_analysis.contracts.allocation import AllocateParams, ChannelTransform
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.exposure import (
    BuildExposureParams,
    CampaignExposure,
    ChannelExposure,
    ExposureReport,
)
from attribution_analysis.data.tables import load_table
from attribution_analysis.errors import MissingInputError
from attribution_analysis.provenance import build_metadata
from attribution_analysis.registry import RunRegistry
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

STEP = "build_effective_exposure"
TABLE = "analysis/effective_exposure.csv"
SUMMARY = "analysis/effective_exposure.json"


def effective_exposure(ws: Workspace, params: BuildExposureParams) -> ExposureReport:
    registry = RunRegistry(ws)
    with registry.track(STEP, params.model_dump(mode="json")) as run:
        panel_path = require_campaign_panel(ws)
        panel, _ = load_table(panel_path, CAMPAIGN_PANEL, PANEL_SPEC)
        if "campaign" not in panel.columns:
            raise MissingInputError(
                "the campaign panel has no campaign column, so there is nothing to split.",
                fix="campaign-level spend files (with a campaign column) are needed.",
                file=CAMPAIGN_PANEL,
            )
        transforms, files, from_truth = load_transforms(
            ws, AllocateParams(source="mta", transforms_file=params.transforms_file)
        )
        source = ws.relative(files[0]) if files else "parameters given in the call"
        media = panel[
            ["date", "channel", "campaign", "impressions", *(["geo"] if "geo" in panel else [])]
        ]
        table = build_effective_exposure(
            media,
            {
                ch: ChannelTransform.model_validate(t)
                for ch, t in transforms.items()
                if ch in set(media["channel"])
            },
            params.saturation_on,
        )
        hashes = ws.input_hashes([panel_path, *files])
        run.input_hashes = hashes
        findings = []
        if from_truth:
            findings.append(
                Finding(
                    code="transforms_from_truth",
                    severity="info",
                    message="adstock and saturation are the simulator's truth "
                    "(truth/parameters.json): no MMM transforms exist in this workspace yet.",
                )
            )
        report = ExposureReport(
            metadata=build_metadata(
                step=STEP,
                input_hashes=hashes,
                run_id=run.run_id,
                extra={"params": params.model_dump(mode="json")},
            ),
            saturation_on=params.saturation_on,
            transforms_source=source,
            table=TABLE,
            channels=_summaries(table),
            findings=findings,
        )
        ws.commit({TABLE: csv_bytes(table), SUMMARY: json_bytes(report.model_dump(mode="json"))})
        run.outputs = [TABLE, SUMMARY]
        return report


def _summaries(table) -> list[ChannelExposure]:
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
