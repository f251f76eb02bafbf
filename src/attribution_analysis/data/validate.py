"""The ``validate_data`` step: raw CSVs -> prepared weekly panel + validation report."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from attribution_analysis.contracts.common import DataRange, Finding
from attribution_analysis.contracts.validation import (
    CampaignPanelSummary,
    ChannelSummary,
    ControlsSummary,
    DataValidationReport,
    FileSummary,
    ImputedWindow,
    PanelSummary,
    ValidateDataParams,
)
from attribution_analysis.data import controls, identification
from attribution_analysis.data.grain import (
    Grain,
    choose_grain,
    days_per_period,
    period_step,
    to_period,
    weekly_anchor,
)
from attribution_analysis.data.prepare import (
    MEDIA_METRICS,
    NATIONAL,
    absent_is_zero,
    aggregate,
    fill_series,
)
from attribution_analysis.data.sources import MMMSources, Source, load_mmm_sources
from attribution_analysis.data.tables import shown_list, shown_value
from attribution_analysis.errors import DataValidationError, ParameterError
from attribution_analysis.provenance import build_metadata
from attribution_analysis.registry import RunRegistry
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

STEP = "validate_data"
PANEL_PATH = "analysis/prepared_panel.csv"
CAMPAIGN_PANEL_PATH = "analysis/prepared_campaign_panel.csv"
REPORT_PATH = "analysis/data_validation.json"
HIGH_CONFIDENCE_LIMIT = 0.0
MEDIUM_CONFIDENCE_LIMIT = 0.05


def validate_data(ws: Workspace, params: ValidateDataParams | None = None) -> DataValidationReport:
    """Validate ``ws/raw``, write the prepared panel and the report, all or nothing."""
    params = params or ValidateDataParams()
    registry = RunRegistry(ws)
    with registry.track(STEP, params.model_dump(mode="json")) as run:
        sources = load_mmm_sources(ws)
        run.input_hashes = ws.input_hashes([s.path for s in sources.all])
        report, outputs = _prepare(ws, sources, params, run.run_id, run.input_hashes)
        written = ws.commit(outputs)
        run.outputs = [ws.relative(p) for p in written]
    return report


def _prepare(
    ws: Workspace,
    sources: MMMSources,
    params: ValidateDataParams,
    run_id: str,
    hashes: dict[str, str],
) -> tuple[DataValidationReport, dict[str, bytes]]:
    notes: list[Finding] = []
    dated = [*sources.spend, sources.conversions]
    file_grains = {s.shown: s.grain for s in dated if s.grain}
    span = (max(s.end for s in dated) - min(s.start for s in dated)).days + 1
    grain, grain_reason = choose_grain(params.grain, file_grains, span)
    anchor = weekly_anchor({s.shown: s.frame["date"] for s in dated if s.grain == "weekly"})
    use_geo = _geo_mode(sources, notes)
    campaign_files = [s.shown for s in sources.spend if absent_is_zero(s)]
    if campaign_files:
        notes.append(
            Finding(
                code="campaign_rows_absent_as_zero",
                severity="info",
                message=f"{', '.join(campaign_files)} are campaign-level: platforms leave out "
                "campaigns that did not deliver, so periods without rows count as zero spend there "
                "(channel-level files must list every period; their gaps are imputed).",
            )
        )

    outcome_cols = [c for c in ("conversions", "revenue") if c in sources.conversions.frame]
    outcome = aggregate([sources.conversions], outcome_cols, [], grain, anchor, use_geo).frame
    media = aggregate(sources.spend, MEDIA_METRICS, ["channel"], grain, anchor, use_geo).frame
    grid = _window(outcome, media, grain, params, sources.conversions.shown, notes)
    geos = sorted(outcome["geo"].unique()) if use_geo else [NATIONAL]
    _check_geos(media, geos, sources, use_geo)
    channels = sorted(media["channel"].unique())

    columns: dict[str, object] = {}
    flags: dict[str, str] = {}
    imputations: list[ImputedWindow] = []
    n_rows = len(grid) * len(geos)
    target = {c: np.zeros(n_rows) for c in outcome_cols}
    target_flag = np.zeros(n_rows, dtype=bool)
    media_values = {(m, ch): np.zeros(n_rows) for m in MEDIA_METRICS for ch in channels}
    media_flags = {ch: np.zeros(n_rows, dtype=bool) for ch in channels}
    for g, geo in enumerate(geos):
        rows = slice(g * len(grid), (g + 1) * len(grid))
        filled = fill_series(
            outcome[outcome["geo"] == geo],
            outcome_cols,
            grid,
            grain,
            params.max_gap_periods,
            "target",
            sources.conversions.shown,
            geo,
        )
        for c in outcome_cols:
            target[c][rows] = filled.values[c].to_numpy()
        target_flag[rows] = filled.imputed
        imputations += filled.windows
        for channel in channels:
            series = media[(media["geo"] == geo) & (media["channel"] == channel)]
            shown = ", ".join(sorted({s for cell in series["sources"] for s in cell}))
            _check_coverage(series, grid, channel, geo, shown, sources.conversions.shown, grain)
            filled = fill_series(
                series,
                MEDIA_METRICS,
                grid,
                grain,
                params.max_gap_periods,
                f"spend:{channel}",
                shown,
                geo,
            )
            for m in MEDIA_METRICS:
                media_values[(m, channel)][rows] = filled.values[m].to_numpy()
            media_flags[channel][rows] = filled.imputed
            imputations += filled.windows

    period_col = np.tile(grid.strftime("%Y-%m-%d").to_numpy(), len(geos))
    columns["date"] = period_col
    if use_geo:
        columns["geo"] = np.repeat(geos, len(grid))
    columns.update(target)
    spend_cols = {ch: f"spend_{ch}" for ch in channels}
    imp_cols = {ch: f"impressions_{ch}" for ch in channels}
    click_cols = {ch: f"clicks_{ch}" for ch in channels}
    for ch in channels:
        columns[spend_cols[ch]] = media_values[("spend", ch)]
    for ch in channels:
        columns[imp_cols[ch]] = media_values[("impressions", ch)]
    for ch in channels:
        columns[click_cols[ch]] = media_values[("clicks", ch)]

    control = {"trend": np.tile(controls.trend(grid), len(geos))}
    for name, values in controls.fourier_terms(
        grid, params.yearly_harmonics, params.quarterly_harmonics, grain
    ).items():
        control[name] = np.tile(values, len(geos))
    holiday_cols, holiday_names = controls.holiday_counts(grid, grain, params.country)
    for name, values in holiday_cols.items():
        control[name] = np.tile(values, len(geos))
    factor_cols, factor_notes = controls.external_factors(sources.factors, grid, grain)
    for name, values in factor_cols.items():
        control[name] = np.tile(values, len(geos))
        if np.ptp(values) == 0:
            notes.append(
                Finding(
                    code="constant_factor",
                    severity="info",
                    subject=name,
                    message=f"{name} is constant over the window; it cannot "
                    "explain anything and will be dropped by the model step.",
                )
            )
    notes += [Finding(code="factor_filled", severity="info", message=m) for m in factor_notes]
    columns.update(control)
    flags["target"] = "imputed_target"
    columns["imputed_target"] = target_flag
    for ch in channels:
        flags[f"spend:{ch}"] = f"imputed_spend_{ch}"
        columns[f"imputed_spend_{ch}"] = media_flags[ch]
    panel = pd.DataFrame(columns)

    national_spend = pd.DataFrame(
        {
            ch: media_values[("spend", ch)].reshape(len(geos), len(grid)).sum(axis=0)
            for ch in channels
        }
    )
    channel_summaries = _channel_summaries(
        channels, media_values, media_flags, sources, media, n_rows
    )
    never = [c.channel for c in channel_summaries if c.total_spend == 0]
    if never:
        rows = _rows_of_channel(sources.spend, never[0])
        raise DataValidationError(
            problem=f"channel '{never[0]}' has zero spend in every period of the window "
            f"({grid[0].date()} to {grid[-1].date()}); its effect cannot be estimated.",
            fix="remove its rows, or extend the window to periods where it spent.",
            file=rows[0],
            column="spend",
            rows=rows[1],
            code="channel_never_spends",
        )
    ident, warnings = identification.measure(national_spend, len(control), n_rows, len(geos))
    for summary in channel_summaries:
        if summary.confidence != "high":
            warnings.append(
                Finding(
                    code="imputed_spend",
                    severity="warning",
                    subject=summary.channel,
                    value=summary.imputed_periods,
                    rule="imputed share > 0",
                    message=f"{summary.imputed_periods} periods of {summary.channel} spend were "
                    f"imputed: data confidence '{summary.confidence}'. Intervals for this channel "
                    "understate the uncertainty of the imputed periods.",
                )
            )
    if target_flag.any():
        warnings.append(
            Finding(
                code="imputed_target",
                severity="warning",
                value=int(target_flag.sum()),
                rule="imputed outcome periods > 0",
                message=f"{int(target_flag.sum())} outcome periods were imputed; the fit uses them "
                "(PyMC-Marketing has no likelihood mask) and the model checks leave them out "
                "of the predictive coverage (column imputed_target).",
            )
        )

    campaign_summary, campaign_bytes = _campaign_panel(sources.spend, grid, grain, anchor, use_geo)
    window = DataRange(
        start=grid[0].date(),
        end=grid[-1].date(),
        grain=grain,
        n_periods=len(grid),
        geos=[g for g in geos if g],
    )
    report = DataValidationReport(
        metadata=build_metadata(
            step=STEP,
            input_hashes=hashes,
            data_range=window,
            run_id=run_id,
            extra={"params": params.model_dump(mode="json")},
        ),
        status="passed_with_warnings" if warnings else "passed",
        grain=grain,
        grain_reason=grain_reason,
        window=window,
        target_default="conversions" if "conversions" in outcome_cols else "revenue",
        files=[_file_summary(s, hashes) for s in sources.all],
        channels=channel_summaries,
        imputations=imputations,
        identification=ident,
        controls=ControlsSummary(
            fourier_columns=[c for c in control if c.startswith("fourier_")],
            holiday_country=params.country.upper() if params.country else None,
            holiday_columns=list(holiday_cols),
            holidays_in_window=holiday_names,
            external_factors=list(factor_cols),
            trend_column="trend",
        ),
        panel=PanelSummary(
            path=PANEL_PATH,
            rows=len(panel),
            date_column="date",
            geo_column="geo" if use_geo else None,
            target_columns=outcome_cols,
            channels=channels,
            spend_columns=spend_cols,
            impressions_columns=imp_cols,
            clicks_columns=click_cols,
            imputed_flag_columns=flags,
            control_columns=list(control),
        ),
        campaign_panel=campaign_summary,
        warnings=warnings,
        notes=notes,
    )
    outputs = {
        PANEL_PATH: csv_bytes(panel),
        REPORT_PATH: json_bytes(report.model_dump(mode="json")),
    }
    if campaign_bytes is not None:
        outputs[CAMPAIGN_PANEL_PATH] = campaign_bytes
    return report, outputs


def _geo_mode(sources: MMMSources, notes: list[Finding]) -> bool:
    conv_geo = "geo" in sources.conversions.frame
    spend_geo = [("geo" in s.frame) for s in sources.spend]
    if conv_geo and all(spend_geo):
        return True
    if conv_geo or any(spend_geo):
        notes.append(
            Finding(
                code="aggregated_to_national",
                severity="info",
                message="geo columns are present in only some files, so everything was summed to a "
                "national panel. Give every spend file and conversions.csv a geo column for a geo "
                "model.",
            )
        )
    return False


def _window(
    outcome: pd.DataFrame,
    media: pd.DataFrame,
    grain: Grain,
    params: ValidateDataParams,
    shown: str,
    notes: list[Finding],
) -> pd.DatetimeIndex:
    """Modelling periods: the outcome's fully covered span, optionally trimmed by the user."""
    length = days_per_period(grain)
    complete = outcome.groupby("period")["coverage"].min()
    complete = complete[complete >= length].index
    if len(complete) == 0:
        raise DataValidationError(
            problem="no period of the outcome is fully covered (daily rows never fill a week).",
            fix="export complete weeks, or weekly rows.",
            file=shown,
            column="date",
            code="too_few_periods",
        )
    start, end = complete.min(), complete.max()
    first, last = outcome["period"].min(), outcome["period"].max()
    if start > first or end < last:
        notes.append(
            Finding(
                code="trimmed_partial_periods",
                severity="info",
                message=f"partial periods at the edges of {shown} were left out; the window is "
                f"{start.date()} to {end.date()}.",
            )
        )
    if params.start or params.end:
        anchor = int(start.day_of_week) if grain == "weekly" else 0
        if params.start:
            start = max(
                start, to_period(pd.Series([pd.Timestamp(params.start)]), grain, anchor).iloc[0]
            )
            if start < pd.Timestamp(params.start):
                start += period_step(grain)
        if params.end:
            end = min(end, to_period(pd.Series([pd.Timestamp(params.end)]), grain, anchor).iloc[0])
    if end < start:
        raise ParameterError(
            f"the window {params.start} .. {params.end} holds no complete period of {shown}.",
            fix="choose start/end inside the outcome's date range.",
        )
    media_start, media_end = media["period"].min(), media["period"].max()
    if media_end < start or media_start > end:
        raise DataValidationError(
            problem=f"spend covers {media_start.date()} to {media_end.date()} but the outcome "
            f"covers {start.date()} to {end.date()}: the date ranges do not overlap.",
            fix="export spend and conversions for the same dates.",
            file=shown,
            column="date",
            code="misaligned_dates",
        )
    return pd.date_range(start, end, freq=period_step(grain))


def _check_coverage(
    series: pd.DataFrame,
    grid: pd.DatetimeIndex,
    channel: str,
    geo: str,
    shown: str,
    outcome: str,
    grain: Grain,
) -> None:
    if series.empty:
        raise DataValidationError(
            problem=f"channel '{channel}' has no rows for geo {shown_value(geo)}.",
            fix="add its rows (spend 0 where it did not run).",
            file=shown,
            column="geo",
            code="misaligned_dates",
        )
    first, last = series["period"].min(), series["period"].max()
    if first > grid[0] or last < grid[-1]:
        raise DataValidationError(
            problem=f"channel '{channel}' has rows from {first.date()} to {last.date()}, but "
            f"{outcome} runs from {grid[0].date()} to {grid[-1].date()}: the date ranges are "
            "misaligned.",
            fix="add rows with spend 0 for the periods the channel did not run, or model the "
            f"common window with --start {max(first, grid[0]).date()} --end "
            f"{min(last, grid[-1]).date()}.",
            file=shown,
            column="date",
            code="misaligned_dates",
        )


def _check_geos(media: pd.DataFrame, geos: list[str], sources: MMMSources, use_geo: bool) -> None:
    if not use_geo:
        return
    extra = sorted(set(media["geo"]) - set(geos))
    if extra:
        raise DataValidationError(
            problem=f"spend has geos {shown_list(extra)} that {sources.conversions.shown} does not "
            "have.",
            fix="use the same geo names in every file.",
            file=sources.spend[0].shown,
            column="geo",
            code="misaligned_geos",
        )


def _rows_of_channel(spend: list[Source], channel: str) -> tuple[str, tuple[int, ...]]:
    for src in spend:
        mask = src.frame["channel"] == channel
        if mask.any():
            return src.shown, tuple(int(x) for x in src.frame.loc[mask, "_line"])
    return spend[0].shown, ()


def _channel_summaries(
    channels: list[str],
    media_values: dict,
    media_flags: dict,
    sources: MMMSources,
    media: pd.DataFrame,
    n_rows: int,
) -> list[ChannelSummary]:
    out = []
    for ch in channels:
        spend = media_values[("spend", ch)]
        imputed = int(media_flags[ch].sum())
        share = imputed / n_rows
        confidence = (
            "high"
            if share <= HIGH_CONFIDENCE_LIMIT
            else "medium"
            if share <= MEDIUM_CONFIDENCE_LIMIT
            else "low"
        )
        platforms = sorted(
            {s.platform or "" for s in sources.spend if (s.frame["channel"] == ch).any()}
        )
        campaigns = {
            c
            for s in sources.spend
            if "campaign" in s.frame
            for c in s.frame.loc[s.frame["channel"] == ch, "campaign"]
        }
        out.append(
            ChannelSummary(
                channel=ch,
                platforms=platforms,
                total_spend=round(float(spend.sum()), 6),
                total_impressions=round(float(media_values[("impressions", ch)].sum()), 6),
                total_clicks=round(float(media_values[("clicks", ch)].sum()), 6),
                active_periods=int((spend > 0).sum()),
                active_share=round(float((spend > 0).mean()), 6),
                imputed_periods=imputed,
                n_campaigns=len(campaigns),
                confidence=confidence,
            )
        )
    return out


def _campaign_panel(
    spend: list[Source], grid: pd.DatetimeIndex, grain: Grain, anchor: int, use_geo: bool
) -> tuple[CampaignPanelSummary | None, bytes | None]:
    campaign_sources = [s for s in spend if "campaign" in s.frame]
    if not campaign_sources:
        return None, None
    has_creative = any("creative" in s.frame for s in campaign_sources)
    for s in campaign_sources:
        if has_creative and "creative" not in s.frame:
            s.frame["creative"] = ""
    by = ["channel", "campaign", *(["creative"] if has_creative else [])]
    agg = aggregate(campaign_sources, MEDIA_METRICS, by, grain, anchor, use_geo).frame
    agg = agg[(agg["period"] >= grid[0]) & (agg["period"] <= grid[-1])]
    table = agg[["period", "geo", *by, *MEDIA_METRICS]].copy()
    table.insert(0, "date", table.pop("period").dt.strftime("%Y-%m-%d"))
    if not use_geo:
        table = table.drop(columns="geo")
    summary = CampaignPanelSummary(
        path=CAMPAIGN_PANEL_PATH,
        rows=len(table),
        n_campaigns=int(table[["channel", "campaign"]].drop_duplicates().shape[0]),
        has_creative=has_creative,
    )
    return summary, csv_bytes(table)


def _file_summary(src: Source, hashes: dict[str, str]) -> FileSummary:
    start: date = src.start.date()
    end: date = src.end.date()
    return FileSummary(
        path=src.shown,
        table=src.table,
        rows=len(src.frame),
        grain=src.grain,
        start=start,
        end=end,
        sha256=hashes[src.shown],
        ignored_columns=src.ignored_columns,
    )
