"""The ``import_data`` step: one wide table -> the workspace's raw/ input files.

A dry run reads the table, infers each column's role (:mod:`attribution_analysis.data.roles`),
previews the files it would write and lists the questions to put to the user; it writes
nothing. The write run takes the confirmed roles and returns the raw/ files (spend in long
format, the outcome, controls and events in long format) and ``raw/import_mapping.json``
(the roles, the source's hash, the country) for the runner to commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.importing import (
    PREVIEW_ROWS,
    ColumnRole,
    FilePreview,
    ImportDataAnswer,
    ImportDataParams,
    ImportMapping,
    ImportQuestion,
    ImportRoles,
    SourceSummary,
)
from attribution_analysis.data.roles import channel_name, infer
from attribution_analysis.data.tables import (
    LINE,
    MAX_CELL_CHARS,
    MISSING_WORDS,
    ColumnSpec,
    _check_cell_lengths,
    _check_csv_bytes,
    _check_date,
    _check_number,
    _check_text,
    _drop_blank_rows,
    _parse_csv,
    check_unique,
    read_input_bytes,
    shown_list,
    shown_value,
)
from attribution_analysis.errors import (
    AttributionError,
    DataValidationError,
    ParameterError,
    WorkspaceError,
    arg,
    step_ref,
)
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

STEP = "import_data"
PLATFORM = "imported"
SPEND_PATH = layout.SPEND.path_for(platform=PLATFORM)
EXPOSURES = ("impressions", "clicks", "reach")
INLINE = "content"


@dataclass
class Source:
    shown: str  # how errors name the table
    data: bytes
    frame: pd.DataFrame  # text cells, original (stripped) header names, plus _line


@dataclass
class Built:
    tables: dict[str, pd.DataFrame]
    findings: list[Finding] = field(default_factory=list)


def compute(ctx: StepContext, params: ImportDataParams) -> StepOutput:
    """The import_data step: infer (dry run) or write (confirmed roles) raw/."""
    source = read_source(ctx.ws, params)
    summary = _summary(source, params)
    roles, columns, questions, findings = _settle_roles(params, source)
    if not params.country_stated:
        questions.append(
            ImportQuestion(
                code="country",
                question="Which country's public holidays should the model account for (an "
                "ISO code such as US, GB, DE), or none? The data do not say.",
                options=["US", "GB", "DE", "none"],
            )
        )
    built = _try_build(roles, source, params.dry_run, findings)
    if built is not None:
        summary = _with_range(summary, built)
    previews = [_preview(path, table) for path, table in (built.tables if built else {}).items()]
    if params.dry_run:
        return StepOutput(
            _answer(params, summary, roles, columns, previews, questions, findings, [])
        )
    _check_write_params(params)
    assert built is not None and roles is not None
    files = {path: csv_bytes(table, float_format=None) for path, table in built.tables.items()}
    removes = _replaced(ctx.ws, params, set(files), source)
    mapping = ImportMapping(
        source=summary,
        roles=roles,
        country=params.country,
        files=sorted(files),
        run_id=ctx.run_id,
        findings=findings,
    )
    files[layout.IMPORT_MAPPING.path] = json_bytes(mapping.model_dump(mode="json"))
    findings.append(
        Finding(
            code="next_step",
            severity="info",
            message=f"raw/ is written; run {step_ref('validate_data')} (it takes the holiday "
            f"country from the import: {params.country or 'none'}).",
        )
    )
    answer = _answer(params, summary, roles, columns, previews, [], findings, sorted(files))
    hashes = {summary.name: summary.sha256} if params.path else {}
    return StepOutput(answer, files, hashes, removes=removes)


def _settle_roles(
    params: ImportDataParams, source: Source
) -> tuple[ImportRoles | None, list[ColumnRole], list[ImportQuestion], list[Finding]]:
    """The roles given (checked against the table) or, without them, the inferred ones;
    with each column's role, the questions to ask and the findings so far."""
    if params.roles is None:
        inferred = infer(source.frame)
        return inferred.roles, inferred.columns, list(inferred.questions), []
    columns = _columns_of(params.roles, source.frame)
    check_roles(params.roles, source)
    findings: list[Finding] = []
    left_out = [c.column for c in columns if c.role == "unmapped"]
    if left_out:
        findings.append(
            Finding(
                code="columns_left_out",
                severity="warning",
                message=f"columns {shown_list(left_out)} are not named in {arg('roles')} "
                "and were left out; name them (e.g. under 'ignored') to silence this.",
            )
        )
    return params.roles, columns, [], findings


def _try_build(
    roles: ImportRoles | None, source: Source, dry_run: bool, findings: list[Finding]
) -> Built | None:
    """The files the roles make, their findings added to ``findings``; a dry run reports a
    failure as a finding instead of raising it."""
    if roles is None:
        return None
    try:
        built = build(roles, source)
    except AttributionError as exc:
        if not dry_run:
            raise
        findings.append(
            Finding(
                code="preview_failed",
                severity="warning",
                message="the files cannot be built with these roles: " + exc.message,
            )
        )
        return None
    findings += built.findings
    return built


def _check_write_params(params: ImportDataParams) -> None:
    """Refuse a write run without confirmed roles or a stated country."""
    if params.roles is None:
        raise ParameterError(
            f"the write run needs the confirmed {arg('roles')}.",
            fix=f"run with {arg('dry_run')} true first, confirm its 'roles' with the user (and "
            f"answer its questions), then pass them as {arg('roles')}.",
            parameter="roles",
        )
    if not params.country_stated:
        raise ParameterError(
            f"the write run needs {arg('country')} stated: the holiday calendar the model "
            "uses (null for none).",
            fix=f"ask the user which country the data cover and pass {arg('country')} (e.g. "
            "US), or null for no holidays.",
            parameter="country",
        )


def _answer(
    params: ImportDataParams,
    summary: SourceSummary,
    roles: ImportRoles | None,
    columns: list[ColumnRole],
    previews: list[FilePreview],
    questions: list[ImportQuestion],
    findings: list[Finding],
    outputs: list[str],
) -> ImportDataAnswer:
    return ImportDataAnswer(
        step=STEP,
        outputs=outputs,
        dry_run=params.dry_run,
        source=summary,
        roles=roles,
        columns=columns,
        files=previews,
        questions=questions,
        country=params.country,
        findings=findings,
    )


# ----- reading ---------------------------------------------------------------------------------
def read_source(ws: Workspace, params: ImportDataParams) -> Source:
    """The table's bytes and text cells, with the reading checks of every raw input."""
    if params.content is not None:
        shown = INLINE
        data = params.content.encode("utf-8")
    else:
        assert params.path is not None
        shown = params.path
        data = read_input_bytes(ws.resolve(params.path), shown)
    _check_csv_bytes(
        data, shown, MAX_CELL_CHARS, "table", "give the CSV with its header row and data rows."
    )
    frame = _parse_csv(data, shown)
    _check_cell_lengths(frame, shown, MAX_CELL_CHARS)
    frame.columns = [c if c == LINE else str(c).strip() for c in frame.columns]
    names = [c for c in frame.columns if c != LINE]
    if len(names) == 1:
        delimiter = next((d for d in (";", "\t", "|") if d in names[0]), None)
        if delimiter is not None:
            raise DataValidationError(
                problem=f"the header is one column holding {delimiter!r}: the table uses "
                f"{delimiter!r} between fields, not ','.",
                fix="save it as comma-separated CSV with '.' as the decimal separator.",
                file=shown,
                rows=(1,),
                code="wrong_delimiter",
            )
    frame = _drop_blank_rows(frame, shown, "table", "give the table with its data.")
    return Source(shown, data, frame)


def _summary(source: Source, params: ImportDataParams) -> SourceSummary:
    return SourceSummary(
        name=params.path or INLINE,
        bytes=len(source.data),
        sha256=hashlib.sha256(source.data).hexdigest(),
        rows=len(source.frame),
        columns=[c for c in source.frame.columns if c != LINE],
    )


def _with_range(summary: SourceSummary, built: Built) -> SourceSummary:
    """The summary with the dates and geos the built tables hold, so that a dry run already
    shows the user the window and the geos that will be modelled."""
    dates: list[pd.Series] = []
    geos: set[str] = set()
    for table in built.tables.values():
        if "date" in table:
            dates.append(pd.to_datetime(table["date"], errors="coerce"))
        if "geo" in table:
            geos.update(str(g) for g in table["geo"].dropna().unique() if str(g))
    known = pd.concat(dates).dropna() if dates else pd.Series(dtype="datetime64[ns]")
    return summary.model_copy(
        update={
            "start": known.min().date() if len(known) else None,
            "end": known.max().date() if len(known) else None,
            "geos": sorted(geos),
        }
    )


# ----- roles -----------------------------------------------------------------------------------
def _named(roles: ImportRoles) -> list[tuple[str, str, str | None]]:
    """(column, role, channel) for every column the roles name."""
    out: list[tuple[str, str, str | None]] = [(roles.date, "date", None)]
    if roles.geo:
        out.append((roles.geo, "geo", None))
    out.append((roles.target, "target", None))
    for channel, cols in roles.channels.items():
        out.append((cols.spend, "spend", channel))
        for metric in EXPOSURES:
            column = getattr(cols, metric)
            if column:
                out.append((column, metric, channel))
    for role, names in (
        ("control", roles.controls),
        ("organic", roles.organic),
        ("event", roles.events),
        ("ignored", roles.ignored),
    ):
        out += [(n, role, None) for n in names]
    return out


def _columns_of(roles: ImportRoles, frame: pd.DataFrame) -> list[ColumnRole]:
    named = {column: (role, channel) for column, role, channel in _named(roles)}
    out = []
    for column in frame.columns:
        if column == LINE:
            continue
        role, channel = named.get(column, ("unmapped", None))
        out.append(
            ColumnRole(
                column=column,
                role=role,  # type: ignore[arg-type]
                channel=channel,
                confidence="high",
                reason="given in roles" if column in named else "not named in roles",
            )
        )
    return out


def check_roles(roles: ImportRoles, source: Source) -> None:
    """Refuse roles naming a column the table lacks, or one column twice."""
    present = [c for c in source.frame.columns if c != LINE]
    seen: dict[str, str] = {}
    for column, role, channel in _named(roles):
        what = f"{role} of channel '{channel}'" if channel else role
        if column not in present:
            import difflib

            close = difflib.get_close_matches(column, present, n=1, cutoff=0.6)
            raise ParameterError(
                f"{arg('roles')} names the column {shown_value(column)} as {what}, but the "
                f"table has no such column; it has {shown_list(present, 20)}."
                + (f" ({shown_value(close[0])} looks like it.)" if close else ""),
                fix=f"correct the column name in {arg('roles')} (names are matched exactly, "
                "as in the header).",
                parameter="roles",
            )
        if column in seen:
            raise ParameterError(
                f"{arg('roles')} gives the column {shown_value(column)} two roles: "
                f"{seen[column]} and {what}.",
                fix="give each column one role.",
                parameter="roles",
            )
        seen[column] = what


# ----- building the files ----------------------------------------------------------------------
def _number(frame: pd.DataFrame, column: str, shown: str, nonnegative: bool) -> np.ndarray:
    spec = ColumnSpec(column, "number", True, nonnegative, "")
    return _check_number(frame, spec, shown).to_numpy(dtype=float)


def _empty(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].str.strip().str.lower().isin(MISSING_WORDS).to_numpy()


def _optional_number(
    frame: pd.DataFrame, column: str, shown: str, nonnegative: bool
) -> np.ndarray | None:
    """A column whose cells may be empty: None when all are, else the numbers (NaN where
    empty)."""
    empty = _empty(frame, column)
    if empty.all():
        return None
    values = np.full(len(frame), np.nan)
    values[~empty] = _number(frame.loc[~empty], column, shown, nonnegative)
    return values


def build(roles: ImportRoles, source: Source) -> Built:
    """The raw/ tables the roles make of the source (errors name the column and rows)."""
    frame, shown = source.frame, source.shown
    base = _keys(roles, frame, shown)
    spend, findings = _spend_table(roles, frame, shown, base)
    tables = {SPEND_PATH: spend}
    # the outcome
    conversions = pd.DataFrame(dict(base))
    conversions[roles.target_kind] = _number(frame, roles.target, shown, nonnegative=True)
    tables[layout.CONVERSIONS.path] = conversions
    # controls, organic series and events: long, national
    factors, factor_findings = _factors(roles, frame, shown, base["date"])
    findings += factor_findings
    if factors is not None:
        tables[layout.EXTERNAL_FACTORS.path] = factors
    return Built(tables, findings)


def _keys(roles: ImportRoles, frame: pd.DataFrame, shown: str) -> dict[str, np.ndarray]:
    """The checked key columns of every table: the date as ISO text[, the geo]; refuses a
    period (and geo) given twice."""
    dates = _check_date(frame, roles.date, shown)
    keyed = pd.DataFrame({LINE: frame[LINE], "date": dates})
    key_cols = ["date"]
    if roles.geo:
        keyed["geo"] = _check_text(
            frame, ColumnSpec(roles.geo, "identifier", True, False, ""), shown
        ).to_numpy()
        key_cols.append("geo")
    check_unique(keyed, key_cols, shown, "period" if not roles.geo else "period and geo")
    date_text = dates.dt.strftime("%Y-%m-%d").to_numpy()
    return {"date": date_text, **({"geo": keyed["geo"].to_numpy()} if roles.geo else {})}


def _spend_table(
    roles: ImportRoles, frame: pd.DataFrame, shown: str, base: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, list[Finding]]:
    """Spend, long: one row per date[, geo] and channel; campaign = channel."""
    parts = []
    spend_only = []
    exposure_cols: set[str] = set()
    for channel, cols in roles.channels.items():
        part = pd.DataFrame(dict(base))
        part["channel"] = channel
        part["campaign"] = channel
        part["spend"] = _number(frame, cols.spend, shown, nonnegative=True)
        for metric in EXPOSURES:
            values = _exposure(frame, shown, channel, metric, getattr(cols, metric))
            part[metric] = np.nan if values is None else values
            if values is not None:
                exposure_cols.add(metric)
        if cols.impressions is None or np.isnan(part["impressions"]).all():
            spend_only.append(channel)
        parts.append(part)
    spend = pd.concat(parts, ignore_index=True)
    order = [*base, "channel", "campaign", "spend", *[m for m in EXPOSURES if m in exposure_cols]]
    table = spend[order].sort_values([*base, "channel"], kind="stable")
    return table, _spend_findings(spend_only, "reach" in exposure_cols)


def _exposure(
    frame: pd.DataFrame, shown: str, channel: str, metric: str, column: str | None
) -> np.ndarray | None:
    """A channel's exposure metric: None when it has no such column or the column is empty;
    refuses one empty in some rows only."""
    values = None if column is None else _optional_number(frame, column, shown, True)
    if values is not None and np.isnan(values).any():
        rows = frame.loc[np.isnan(values), LINE].tolist()
        raise DataValidationError(
            problem=f"{metric} of channel '{channel}' is empty in some rows but not "
            "in others; a channel's exposure is either reported in every period or "
            "not at all.",
            fix="fill the empty cells (0 where nothing ran), or drop the column from "
            f"{arg('roles')} to model the channel on spend alone.",
            file=shown,
            column=column,
            rows=rows,
            code="missing_value",
        )
    return values


def _spend_findings(spend_only: list[str], reach: bool) -> list[Finding]:
    findings = [
        Finding(
            code="spend_only_channel",
            severity="info",
            subject=channel,
            message=f"channel '{channel}' has no impressions: it is modelled on spend, "
            "and allocation within it can only split by spend (no effective exposure).",
        )
        for channel in spend_only
    ]
    if reach:
        findings.append(
            Finding(
                code="reach_not_modelled",
                severity="info",
                message="reach is kept in the spend file but not used by the model (reach "
                "does not add up over days or campaigns).",
            )
        )
    return findings


@dataclass
class _FactorSeries:
    """The factor series gathered from the source, by unique name, and findings on them."""

    frame: pd.DataFrame
    shown: str
    series: dict[str, np.ndarray] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # factor name -> its kind
    findings: list[Finding] = field(default_factory=list)
    used: set[str] = field(default_factory=set)  # the names taken, lower case

    def add(self, text: str, values: np.ndarray, kind: str) -> None:
        """Keep ``values`` under a unique factor name (case-insensitively; a clash gets
        '_2' appended)."""
        name = channel_name(text)
        while name.lower() in self.used:
            name = f"{name}_2"[-64:]
        self.used.add(name.lower())
        self.series[name] = values
        self.kinds[name] = kind

    def add_numbers(self, columns: list[str], kind: str) -> list[str]:
        """Add the controls or organic series (``kind``); the empty columns, left out."""
        dropped = []
        for column in columns:
            values = _optional_number(self.frame, column, self.shown, nonnegative=False)
            if values is None:
                dropped.append(column)
                continue
            if np.isnan(values).any():
                self.findings.append(
                    Finding(
                        code="factor_cells_empty",
                        severity="info",
                        subject=column,
                        value=float(np.isnan(values).sum()),
                        message=f"{column} is empty in {int(np.isnan(values).sum())} rows; "
                        "those rows are left out of external_factors.csv (validation carries "
                        "the last known value forward).",
                    )
                )
            self.add(column, values, kind)
        return dropped

    def add_events(self, columns: list[str]) -> None:
        """Add the events: numbers as they are (empty = 0), text labels as one 0/1 factor
        per label."""
        frame = self.frame
        for column in columns:
            empty = _empty(frame, column)
            text = frame[column].str.strip()
            numbers = pd.to_numeric(text.where(~empty), errors="coerce")
            if numbers[~empty].notna().all():
                filled = frame.assign(**{column: text.where(~empty, "0")})
                self.add(column, _number(filled, column, self.shown, False), "event")
                continue
            labels = sorted({t for t in text.str.lower() if t not in {"na", "none", "no", "", "-"}})
            for label in labels:
                self.add(
                    f"{column}_{label}", (text.str.lower() == label).to_numpy(dtype=float), "event"
                )
            self.findings.append(
                Finding(
                    code="event_labels_expanded",
                    severity="info",
                    subject=column,
                    message=f"{column} holds text labels; each label became a 0/1 factor "
                    f"({', '.join(labels)}).",
                )
            )


def _factors(
    roles: ImportRoles, frame: pd.DataFrame, shown: str, dates: np.ndarray
) -> tuple[pd.DataFrame | None, list[Finding]]:
    """Controls, organic series and events as external_factors.csv (long, national), or
    None when no column has a value; with the findings about them."""
    gathered = _FactorSeries(frame, shown)
    dropped = gathered.add_numbers(roles.controls, "control")
    dropped += gathered.add_numbers(roles.organic, "organic")
    gathered.add_events(roles.events)
    findings = gathered.findings + _factor_notes(roles, dropped)
    if not gathered.series:
        return None, findings
    if roles.geo:
        findings.append(
            Finding(
                code="factors_averaged_over_geos",
                severity="warning",
                message="external_factors.csv is national: controls, organic series and "
                "events were averaged over geos per period.",
            )
        )
    wide = pd.DataFrame(gathered.series)
    wide.insert(0, "date", dates)
    wide = wide.groupby("date", sort=True).mean()
    long = wide.reset_index().melt(id_vars="date", var_name="factor_name", value_name="value")
    long = long.dropna(subset=["value"])
    long["kind"] = long["factor_name"].map(gathered.kinds)
    return long.sort_values(["factor_name", "date"], kind="stable").reset_index(drop=True), findings


def _factor_notes(roles: ImportRoles, dropped: list[str]) -> list[Finding]:
    """Findings on the empty columns left out and on how organic series and events enter
    the model."""
    findings = []
    if dropped:
        findings.append(
            Finding(
                code="factor_empty",
                severity="warning",
                message=f"columns {shown_list(dropped)} are empty and were left out.",
            )
        )
    if roles.organic or roles.events:
        what = " and ".join(
            w for w, cols in (("organic series", roles.organic), ("events", roles.events)) if cols
        )
        findings.append(
            Finding(
                code="organic_and_events_as_components",
                severity="info",
                message=f"the {what} ({', '.join([*roles.organic, *roles.events])}) are written "
                "to external_factors.csv with their kind; the model gives each its own "
                "component (organic series: carryover and saturation, no spend and no ROAS; "
                "events: one effect each), reported apart from media and from the base.",
            )
        )
    return findings


def _preview(path: str, table: pd.DataFrame) -> FilePreview:
    head = table.head(PREVIEW_ROWS).astype(object).where(table.head(PREVIEW_ROWS).notna(), "")
    return FilePreview(
        path=path,
        rows=len(table),
        columns=[str(c) for c in table.columns],
        head=[{str(k): str(v) for k, v in row.items()} for row in head.to_dict("records")],
    )


# ----- what the write run replaces -------------------------------------------------------------
def _replaced(
    ws: Workspace, params: ImportDataParams, writing: set[str], source: Source
) -> list[str]:
    """raw/ input files to remove in the same commit; refuses mixing with files an earlier
    import did not write unless ``overwrite``."""
    mapping = ws.resolve(layout.IMPORT_MAPPING.path)
    imported: set[str] = set()
    if mapping.is_file():
        try:
            imported = set(json.loads(mapping.read_text(encoding="utf-8")).get("files", []))
        except (OSError, ValueError, AttributeError):
            imported = set()
    inputs = [ws.relative(p) for p in ws.raw_files(layout.SPEND.name.replace("{platform}", "*"))]
    for entry in (layout.CONVERSIONS, layout.EXTERNAL_FACTORS):
        if ws.resolve(entry.path).is_file():
            inputs.append(entry.path)
    if params.path:
        inputs = [p for p in inputs if p != ws.relative(ws.resolve(params.path))]
    foreign = [p for p in inputs if p not in imported and p not in writing]
    if foreign and not params.overwrite:
        raise WorkspaceError(
            f"raw/ already holds input files this import did not write ({shown_list(foreign)}); "
            "importing beside them would mix two data sets.",
            fix=f"use an empty workspace, or pass {arg('overwrite')} true to replace them.",
        )
    return sorted(p for p in inputs if p not in writing)
