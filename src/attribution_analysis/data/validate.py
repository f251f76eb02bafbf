"""The ``validate_data`` step: raw CSVs -> prepared weekly panel + validation report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.common import DataRange, Finding
from attribution_analysis.contracts.importing import ImportMapping
from attribution_analysis.contracts.inputs import IncrementalityResult
from attribution_analysis.contracts.validation import (
    DEFAULT_COUNTRY,
    CampaignPanelSummary,
    ChannelSummary,
    ControlsSummary,
    DataValidationReport,
    FileSummary,
    HolidayCountrySource,
    ImputedWindow,
    PanelSummary,
    ValidateDataAnswer,
    ValidateDataParams,
)
from attribution_analysis.data import controls, identification, plausibility
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
from attribution_analysis.data.sources import (
    MMMSources,
    Source,
    load_mmm_sources,
    spend_only_findings,
)
from attribution_analysis.data.tables import shown_list, shown_value
from attribution_analysis.errors import DataValidationError, ParameterError, arg, step_ref
from attribution_analysis.provenance import build_metadata
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

STEP = "validate_data"
LIFT_FILE = layout.LIFT_TESTS.path
HIGH_CONFIDENCE_LIMIT = 0.0
MEDIUM_CONFIDENCE_LIMIT = 0.05


def compute(ctx: StepContext, params: ValidateDataParams) -> StepOutput:
    """The validate_data step: the raw files -> the prepared panel(s) and the report."""
    ws = ctx.ws
    sources = load_mmm_sources(ws)
    params, mapping = _country_from_import(ws, params)
    hashes = ws.input_hashes([s.path for s in sources.all] + ([mapping] if mapping else []))
    source = "import" if mapping is not None else holiday_country_source(params)
    lift_tests = _lift_tests(ws)
    report, files = _prepare(sources, params, ctx.run_id, hashes, source, lift_tests)
    answer = ValidateDataAnswer(
        step=STEP,
        outputs=list(files),
        validation_status=report.status,
        grain=report.grain,
        grain_reason=report.grain_reason,
        window=report.window,
        target_default=report.target_default,
        channels=[c.channel for c in report.channels],
        holiday_country=report.controls.holiday_country,
        holiday_country_source=report.controls.holiday_country_source,
        data_confidence={c.channel: c.confidence for c in report.channels},
        imputed_periods={c.channel: c.imputed_periods for c in report.channels},
        warnings=report.warnings,
        notes=report.notes,
    )
    return StepOutput(answer, files, hashes)


@dataclass
class Filled:
    """The outcome and media series on the modelling grid, geo-major (geo, period) rows."""

    grid: pd.DatetimeIndex
    geos: list[str]
    channels: list[str]
    outcome_columns: list[str]
    target: dict[str, np.ndarray]  # outcome column -> values
    target_imputed: np.ndarray  # bool per row
    media: dict[tuple[str, str], np.ndarray]  # (metric, channel) -> values
    media_imputed: dict[str, np.ndarray]  # channel -> bool per row
    imputations: list[ImputedWindow]

    @property
    def n_rows(self) -> int:
        return len(self.grid) * len(self.geos)

    def national_spend(self) -> pd.DataFrame:
        shape = (len(self.geos), len(self.grid))
        return pd.DataFrame(
            {ch: self.media[("spend", ch)].reshape(shape).sum(axis=0) for ch in self.channels}
        )


@dataclass
class Controls:
    """Control columns per panel row, and what they are."""

    columns: dict[str, np.ndarray]
    holiday_columns: list[str]
    holidays_in_window: list[str]
    factors: controls.Factors


def _prepare(
    sources: MMMSources,
    params: ValidateDataParams,
    run_id: str,
    hashes: dict[str, str],
    country_source: HolidayCountrySource,
    lift_tests: list[IncrementalityResult] | None = None,
) -> tuple[DataValidationReport, dict[str, bytes]]:
    """Align, fill and check the sources (and the lift tests against them); the report and
    the files to write."""
    notes: list[Finding] = _country_note(country_source)
    grain, grain_reason, anchor = _grain(sources, params)
    use_geo = _geo_mode(sources, notes)
    notes += _campaign_note(sources)
    notes += spend_only_findings(sources)
    outcome_cols = [c for c in ("conversions", "revenue") if c in sources.conversions.frame]
    outcome = aggregate([sources.conversions], outcome_cols, [], grain, anchor, use_geo).frame
    media = aggregate(sources.spend, MEDIA_METRICS, ["channel"], grain, anchor, use_geo).frame
    grid = _window(outcome, media, grain, params, sources.conversions.shown, notes)
    geos = sorted(outcome["geo"].unique()) if use_geo else [NATIONAL]
    _check_geos(media, geos, sources, use_geo)
    filled = _fill(outcome, media, outcome_cols, grid, geos, grain, params, sources)
    plausibility.check(filled, sources, grain, use_geo)
    controls = _controls(filled, grain, params, sources, notes)
    panel, panel_summary = _panel(filled, controls, use_geo)
    channel_summaries = _channel_summaries(filled, sources)
    _check_every_channel_spends(channel_summaries, sources, grid)
    ident, warnings = identification.measure(
        filled.national_spend(), len(controls.columns), filled.n_rows, len(geos)
    )
    warnings += _imputation_warnings(channel_summaries, filled.target_imputed)
    campaign_summary, campaign_bytes = _campaign_panel(sources.spend, grain, anchor, use_geo)
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
        imputations=filled.imputations,
        identification=ident,
        controls=ControlsSummary(
            fourier_columns=[c for c in controls.columns if c.startswith("fourier_")],
            holiday_country=params.country.upper() if params.country else None,
            holiday_country_source=country_source,
            holiday_columns=controls.holiday_columns,
            holidays_in_window=controls.holidays_in_window,
            external_factors=controls.factors.of_kind("control"),
            organic_series=controls.factors.of_kind("organic"),
            event_columns=controls.factors.of_kind("event"),
            trend_column="trend",
        ),
        panel=panel_summary,
        campaign_panel=campaign_summary,
        warnings=warnings,
        notes=notes,
    )
    if lift_tests:
        report = _with_lift_checks(report, panel, lift_tests)
    elif lift_tests is not None:
        report.notes.append(
            Finding(
                code="no_lift_tests",
                severity="info",
                message=f"{LIFT_FILE} holds an empty list: no lift tests, so a fit cannot be "
                "calibrated.",
            )
        )
    files = {
        layout.PANEL.path: csv_bytes(panel),
        layout.DATA_VALIDATION.path: json_bytes(report.model_dump(mode="json")),
    }
    if campaign_bytes is not None:
        files[layout.CAMPAIGN_PANEL.path] = campaign_bytes
    return report, files


def _lift_tests(ws: Workspace) -> list[IncrementalityResult] | None:
    """The workspace's lift tests (bounds checked), [] for an empty list, None without the
    file."""
    from attribution_analysis.mmm.calibration import read_lift_tests

    if not ws.resolve(LIFT_FILE).exists():
        return None
    return read_lift_tests(ws, allow_empty=True)[0]


def _with_lift_checks(
    report: DataValidationReport, panel: pd.DataFrame, tests: list[IncrementalityResult]
) -> DataValidationReport:
    """The lift tests checked against the prepared panel, before any fit: a test the fit
    would refuse is refused now (nothing is written); the kept tests' warnings and notes go
    into the report. Each test is read against the outcome it measures."""
    from attribution_analysis.mmm.calibration import check_lift_tests
    from attribution_analysis.mmm.panel import ModelData

    summary = report.panel
    warnings, notes = [], []
    by_target: dict[str, list[IncrementalityResult]] = {}
    for test in tests:
        target = test.metric if test.metric in summary.target_columns else report.target_default
        by_target.setdefault(target, []).append(test)
    for target, group in by_target.items():
        columns = {"date": pd.to_datetime(panel["date"])}
        if summary.geo_column:
            columns["geo"] = panel[summary.geo_column].astype(str)
        for channel in summary.channels:
            columns[channel] = panel[summary.spend_columns[channel]].astype(float)
        view = ModelData(
            X=pd.DataFrame(columns),
            y=panel[target].astype(float).rename(target),
            channels=list(summary.channels),
            controls=[],
            geo=bool(summary.geo_column),
            target=target,
            report=report,
            input_hashes={},
            imputed_target=panel["imputed_target"].astype(bool).to_numpy(),
        )
        found_warnings, found_notes = check_lift_tests(group, view)
        warnings += found_warnings
        notes += found_notes
    return report.model_copy(
        update={
            "warnings": report.warnings + warnings,
            "notes": report.notes + notes,
            "status": "passed_with_warnings" if report.warnings or warnings else report.status,
        }
    )


def _country_from_import(
    ws: Workspace, params: ValidateDataParams
) -> tuple[ValidateDataParams, Path | None]:
    """The holiday country the user stated at import (raw/import_mapping.json), when the
    caller does not give one now: the question asked at import is not asked twice."""
    path = ws.resolve(layout.IMPORT_MAPPING.path)
    if "country" in params.model_fields_set or not path.is_file():
        return params, None
    try:
        mapping = ImportMapping.model_validate_json(path.read_bytes())
    except ValueError:
        raise DataValidationError(
            "the import mapping cannot be read (it was edited or cut short).",
            fix=f"run {step_ref('import_data')} again, or pass {arg('country')} here.",
            file=layout.IMPORT_MAPPING.path,
        ) from None
    return params.model_copy(update={"country": mapping.country}), path


def holiday_country_source(params: ValidateDataParams) -> HolidayCountrySource:
    """'none' (no calendar), 'given' by the caller, or 'default' (US, assumed)."""
    if not params.country:
        return "none"
    return "given" if "country" in params.model_fields_set else "default"


def _country_note(source: HolidayCountrySource) -> list[Finding]:
    """The holiday country is never silent: an assumed one asks to be confirmed."""
    if source != "default":
        return []
    return [
        Finding(
            code="holiday_country_default",
            severity="warning",
            subject=DEFAULT_COUNTRY,
            rule="country not given",
            message=f"no holiday country was given, so the {DEFAULT_COUNTRY} holiday calendar "
            "was assumed for the holiday controls. Confirm the country with the user and, if "
            "it is another, re-run validate_data with its ISO code as the country parameter "
            "(or no country for no holiday controls).",
        )
    ]


def _grain(sources: MMMSources, params: ValidateDataParams) -> tuple[Grain, str, int]:
    """The modelling grain, why, and the weekday weeks start on."""
    dated = [*sources.spend, sources.conversions]
    file_grains = {s.shown: s.grain for s in dated if s.grain}
    span = (max(s.end for s in dated) - min(s.start for s in dated)).days + 1
    grain, reason = choose_grain(params.grain, file_grains, span)
    anchor = weekly_anchor({s.shown: s.frame["date"] for s in dated if s.grain == "weekly"})
    return grain, reason, anchor


def _campaign_note(sources: MMMSources) -> list[Finding]:
    campaign_files = [s.shown for s in sources.spend if absent_is_zero(s)]
    if not campaign_files:
        return []
    return [
        Finding(
            code="campaign_rows_absent_as_zero",
            severity="info",
            message=f"{', '.join(campaign_files)} are campaign-level: platforms leave out "
            "campaigns that did not deliver, so periods without rows count as zero spend there "
            "(channel-level files must list every period; their gaps are imputed).",
        )
    ]


def _fill(
    outcome: pd.DataFrame,
    media: pd.DataFrame,
    outcome_cols: list[str],
    grid: pd.DatetimeIndex,
    geos: list[str],
    grain: Grain,
    params: ValidateDataParams,
    sources: MMMSources,
) -> Filled:
    """Every series on the grid, short gaps imputed (and recorded), long ones refused."""
    channels = sorted(media["channel"].unique())
    n_rows = len(grid) * len(geos)
    filled = Filled(
        grid=grid,
        geos=geos,
        channels=channels,
        outcome_columns=outcome_cols,
        target={c: np.zeros(n_rows) for c in outcome_cols},
        target_imputed=np.zeros(n_rows, dtype=bool),
        media={(m, ch): np.zeros(n_rows) for m in MEDIA_METRICS for ch in channels},
        media_imputed={ch: np.zeros(n_rows, dtype=bool) for ch in channels},
        imputations=[],
    )
    outcome_file = sources.conversions.shown
    for g, geo in enumerate(geos):
        rows = slice(g * len(grid), (g + 1) * len(grid))
        series = fill_series(
            outcome[outcome["geo"] == geo],
            outcome_cols,
            grid,
            grain,
            params.max_gap_periods,
            "target",
            outcome_file,
            geo,
        )
        for c in outcome_cols:
            filled.target[c][rows] = series.values[c].to_numpy()
        filled.target_imputed[rows] = series.imputed
        filled.imputations += series.windows
        for channel in channels:
            rows_of = media[(media["geo"] == geo) & (media["channel"] == channel)]
            shown = ", ".join(sorted({s for cell in rows_of["sources"] for s in cell}))
            _check_coverage(rows_of, grid, channel, geo, shown, outcome_file, grain)
            series = fill_series(
                rows_of,
                MEDIA_METRICS,
                grid,
                grain,
                params.max_gap_periods,
                f"spend:{channel}",
                shown,
                geo,
            )
            for m in MEDIA_METRICS:
                filled.media[(m, channel)][rows] = series.values[m].to_numpy()
            filled.media_imputed[channel][rows] = series.imputed
            filled.imputations += series.windows
    return filled


def _controls(
    filled: Filled,
    grain: Grain,
    params: ValidateDataParams,
    sources: MMMSources,
    notes: list[Finding],
) -> Controls:
    """Trend, Fourier terms, holidays and external factors, repeated for every geo."""
    grid, n_geos = filled.grid, len(filled.geos)
    columns = {"trend": np.tile(controls.trend(grid), n_geos)}
    for name, values in controls.fourier_terms(
        grid, params.yearly_harmonics, params.quarterly_harmonics, grain
    ).items():
        columns[name] = np.tile(values, n_geos)
    holiday_cols, holiday_names = controls.holiday_counts(grid, grain, params.country)
    for name, values in holiday_cols.items():
        columns[name] = np.tile(values, n_geos)
    factors = controls.external_factors(sources.factors, grid, grain)
    factor_cols, factor_notes = factors.columns, factors.notes
    for name, values in factor_cols.items():
        columns[name] = np.tile(values, n_geos)
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
    return Controls(columns, list(holiday_cols), holiday_names, factors)


def _panel(filled: Filled, control: Controls, use_geo: bool) -> tuple[pd.DataFrame, PanelSummary]:
    """The modelling panel: date[, geo], outcome, media per channel, controls, imputed flags."""
    channels = filled.channels
    columns: dict[str, object] = {
        "date": np.tile(filled.grid.strftime("%Y-%m-%d").to_numpy(), len(filled.geos))
    }
    if use_geo:
        columns["geo"] = np.repeat(filled.geos, len(filled.grid))
    columns.update(filled.target)
    metric_columns = {m: {ch: f"{m}_{ch}" for ch in channels} for m in MEDIA_METRICS}
    for metric in ("spend", "impressions", "clicks"):
        for ch in channels:
            columns[metric_columns[metric][ch]] = filled.media[(metric, ch)]
    columns.update(control.columns)
    flags = {"target": "imputed_target"}
    columns["imputed_target"] = filled.target_imputed
    for ch in channels:
        flags[f"spend:{ch}"] = f"imputed_spend_{ch}"
        columns[f"imputed_spend_{ch}"] = filled.media_imputed[ch]
    panel = pd.DataFrame(columns)
    summary = PanelSummary(
        path=layout.PANEL.path,
        rows=len(panel),
        date_column="date",
        geo_column="geo" if use_geo else None,
        target_columns=filled.outcome_columns,
        channels=channels,
        spend_columns=metric_columns["spend"],
        impressions_columns=metric_columns["impressions"],
        clicks_columns=metric_columns["clicks"],
        imputed_flag_columns=flags,
        control_columns=list(control.columns),
    )
    return panel, summary


def _check_every_channel_spends(
    summaries: list[ChannelSummary], sources: MMMSources, grid: pd.DatetimeIndex
) -> None:
    never = [c.channel for c in summaries if c.total_spend == 0]
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


def _imputation_warnings(
    summaries: list[ChannelSummary], target_imputed: np.ndarray
) -> list[Finding]:
    warnings = [
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
        for summary in summaries
        if summary.confidence != "high"
    ]
    if target_imputed.any():
        n = int(target_imputed.sum())
        warnings.append(
            Finding(
                code="imputed_target",
                severity="warning",
                value=n,
                rule="imputed outcome periods > 0",
                message=f"{n} outcome periods were imputed; the fit uses them "
                "(PyMC-Marketing has no likelihood mask) and the model checks leave them out "
                "of the predictive coverage (column imputed_target).",
            )
        )
    return warnings


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
            fix=f"choose {arg('start')} and {arg('end')} inside the outcome's date range.",
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
            f"common window with {arg('start')} {max(first, grid[0]).date()} {arg('end')} "
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


def _channel_summaries(filled: Filled, sources: MMMSources) -> list[ChannelSummary]:
    out = []
    for ch in filled.channels:
        spend = filled.media[("spend", ch)]
        imputed = int(filled.media_imputed[ch].sum())
        share = imputed / filled.n_rows
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
                total_impressions=_total(filled.media[("impressions", ch)]),
                total_clicks=_total(filled.media[("clicks", ch)]),
                active_periods=int((spend > 0).sum()),
                active_share=round(float((spend > 0).mean()), 6),
                imputed_periods=imputed,
                n_campaigns=len(campaigns),
                confidence=confidence,
            )
        )
    return out


def _total(values: np.ndarray) -> float | None:
    """A delivery metric's total over the window; None when it is not reported."""
    return None if np.isnan(values).all() else round(float(np.nansum(values)), 6)


def _campaign_panel(
    spend: list[Source], grain: Grain, anchor: int, use_geo: bool
) -> tuple[CampaignPanelSummary | None, bytes | None]:
    campaign_sources = [s for s in spend if "campaign" in s.frame]
    if not campaign_sources:
        return None, None
    has_creative = any("creative" in s.frame for s in campaign_sources)
    for s in campaign_sources:
        if has_creative and "creative" not in s.frame:
            s.frame["creative"] = ""
    by = ["channel", "campaign", *(["creative"] if has_creative else [])]
    # The allocation splits contributions at their own grain (daily contributions over a few
    # months are fine there, though the MMM needs two years of daily data): the campaign
    # panel keeps the campaign files' own grain, every row (edge days outside the MMM's
    # window included) and reach, and the allocation sums it to the contributions' periods.
    own: Grain = "daily" if all(s.grain == "daily" for s in campaign_sources) else grain
    metrics = [
        *MEDIA_METRICS,
        *(["reach"] if any("reach" in s.frame for s in campaign_sources) else []),
    ]
    agg = aggregate(campaign_sources, metrics, by, own, anchor, use_geo).frame
    table = agg[["period", "geo", *by, *metrics]].copy()
    table.insert(0, "date", table.pop("period").dt.strftime("%Y-%m-%d"))
    if not use_geo:
        table = table.drop(columns="geo")
    summary = CampaignPanelSummary(
        path=layout.CAMPAIGN_PANEL.path,
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
