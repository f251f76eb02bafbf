"""Load ``raw/journeys.csv`` or ``raw/paths.csv`` into a :class:`PathData`, with the
project's file / column / row errors.

Both go through :func:`attribution_analysis.data.tables.load_table` for the common checks
(header, encoding, numbers, negatives, empty cells). Channel names get their own check
first, because a '>' inside a name would silently split one channel into two in every tool
that exports or reads path strings: that deserves its own message rather than the generic
"characters not allowed".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.contracts.common import IDENTIFIER_HELP, IDENTIFIER_PATTERN, Finding
from attribution_analysis.contracts.paths import JourneyRow, PathRow
from attribution_analysis.data.tables import (
    LINE,
    TableSpec,
    check_date_range,
    check_input_file,
    load_table,
    parse_dates,
    shown_value,
    table_spec,
)
from attribution_analysis.errors import DataValidationError, MissingInputError, arg, step_ref
from attribution_analysis.paths.data import PathData, build
from attribution_analysis.workspace import Workspace

SEPARATOR = ">"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def _loading_spec(model: type, text_columns: tuple[str, ...]) -> TableSpec:
    """The row model's spec with ``text_columns`` loaded as plain labels: their own checks
    (separator, identifier, path syntax) run here with more specific messages."""
    spec = table_spec(model.__name__, model)
    columns = tuple(replace(c, kind="label") if c.name in text_columns else c for c in spec.columns)
    return replace(spec, columns=columns)


JOURNEYS_SPEC = replace(_loading_spec(JourneyRow, ("channel",)), table="journeys")
# paths.csv: the path column can be far longer than a 256-character label, so it is read as
# an extra column and checked here.
_PATH_SPEC = replace(table_spec("paths", PathRow), table="paths")
# A path cell is a whole journey: allow 100,000 characters (thousands of touches) there.
PATHS_SPEC = TableSpec(
    "paths",
    tuple(c for c in _PATH_SPEC.columns if c.name != "path"),
    allow_extra=True,
    max_cell_chars=100_000,
)


@dataclass
class LoadedPaths:
    data: PathData
    kind: str  # journeys | paths
    file: str
    files: list[Path]
    n_touches: int
    findings: list[Finding] = field(default_factory=list)
    first_date: dt.date | None = None
    last_date: dt.date | None = None


def _lines(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> list[int]:
    return [int(x) for x in frame.loc[np.asarray(mask), LINE]]


def check_channel_names(
    names: pd.Series, frame: pd.DataFrame, shown: str, column: str, what: str
) -> None:
    """Refuse names holding the separator, then names breaking the identifier rule."""
    sep = names.str.contains(SEPARATOR, regex=False)
    if sep.any():
        raise DataValidationError(
            problem=f"{what} {shown_value(names[sep].iloc[0])} contains '{SEPARATOR}', the path "
            "separator; it would be read as two channels.",
            fix=f"rename the channel without '{SEPARATOR}' (e.g. 'search - brand').",
            file=shown,
            column=column,
            rows=_lines(frame, sep),
            code="separator_in_name",
        )
    arrow = names.str.contains(ARROW)
    if arrow.any():
        raise DataValidationError(
            problem=f"{what} {shown_value(names[arrow].iloc[0])} holds an arrow-like separator "
            f"that is not the path separator '{SEPARATOR}'; it would be read as one channel.",
            fix=f"separate steps with '{SEPARATOR}' only ('search > email').",
            file=shown,
            column=column,
            rows=_lines(frame, arrow),
            code="foreign_separator",
        )
    unique = pd.Series(names.unique())
    bad_names = set(unique[~unique.map(lambda s: bool(_IDENTIFIER.match(s)))])
    if bad_names:
        bad = names.isin(bad_names)
        raise DataValidationError(
            problem=f"{what} {shown_value(names[bad].iloc[0])} has characters that are not "
            "allowed (it becomes a column and a state name).",
            fix=f"rename it: {IDENTIFIER_HELP}.",
            file=shown,
            column=column,
            rows=_lines(frame, bad),
            code="bad_name",
        )


# Separators other tools use between steps; '>' splits them, so '->' leaves a '-' glued to
# the channel before it (and the others are refused as characters by the name rule).
ARROW = re.compile(r"-+\s*>|=+\s*>|[\u2190-\u21ff\u27f0-\u27ff\u2900-\u297f\u00bb\u203a|]")


def _require_conversions(conv: np.ndarray, shown: str, column: str) -> None:
    if not conv.sum() > 0:
        raise DataValidationError(
            problem="no journey converted: there are 0 conversions, so there is nothing to "
            "attribute.",
            fix=f"check the {column!r} column (converting journeys need it above 0), or export "
            "a period with conversions.",
            file=shown,
            column=column,
            code="no_conversions",
        )


def name_findings(names: list[str], shown: str, column: str) -> list[Finding]:
    """Channel names that differ only by case: probably one channel spelt two ways."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.casefold(), []).append(name)
    clashes = [sorted(g) for g in groups.values() if len(g) > 1]
    if not clashes:
        return []
    listed = "; ".join(" / ".join(g) for g in clashes)
    return [
        Finding(
            code="channel_case_variants",
            severity="warning",
            message=f"{shown} column {column!r}: channel names differ only by case ({listed}); "
            "they are counted as different channels. Write each channel one way if they are "
            "the same.",
            subject=listed,
            value=float(len(clashes)),
        )
    ]


def load_paths_input(ws: Workspace, source: str = "auto") -> LoadedPaths:
    journeys = ws.resolve(layout.JOURNEYS.path)
    paths = ws.resolve(layout.PATHS.path)
    if source == "auto":
        for candidate, shown in ((journeys, layout.JOURNEYS.path), (paths, layout.PATHS.path)):
            if candidate.exists() and not candidate.is_file():
                check_input_file(candidate, shown)  # a folder under the input's name
        if not journeys.is_file() and not paths.is_file():
            raise MissingInputError(
                f"no journey data: neither {layout.JOURNEYS.path} nor {layout.PATHS.path} exists.",
                fix=f"export user journeys as {layout.JOURNEYS.path} (journey_id, timestamp, "
                "channel, converted[, campaign, conversion_value]) or the aggregated "
                f"{layout.PATHS.path} (path, conversions[, value, nulls]); "
                f"{step_ref('simulate_workspace')} with {arg('kind')} journeys writes an "
                "example.",
                file=layout.JOURNEYS.path,
            )
        source = "journeys" if journeys.is_file() else "paths"
        loaded = load_journeys(ws) if source == "journeys" else load_aggregated(ws)
        if source == "journeys" and paths.is_file():
            loaded.findings.append(
                Finding(
                    code="paths_file_ignored",
                    severity="info",
                    message=f"{layout.JOURNEYS.path} and {layout.PATHS.path} both exist; the "
                    "touch-level journeys were used (source='paths' reads the other).",
                    subject=layout.PATHS.path,
                )
            )
        return loaded
    target = layout.JOURNEYS.path if source == "journeys" else layout.PATHS.path
    other = "paths" if source == "journeys" else "journeys"
    ws.require(
        target,
        f"{target} does not exist.",
        fix=f"put the file under raw/ or set {arg('source')} {other}.",
    )
    return load_journeys(ws) if source == "journeys" else load_aggregated(ws)


def _timestamps(frame: pd.DataFrame, shown: str) -> tuple[np.ndarray, np.ndarray]:
    """The touches' instants in UTC (to order touches and measure ages across time zones)
    and their calendar days as written (the user's local day: a conversion at 20:00 on a
    Sunday in New York belongs to that Sunday's week, not to Monday's in UTC)."""
    text = frame["timestamp"]
    # Offsets may differ between rows (exports in local time across a DST change): utc=True
    # puts every instant on one clock.
    parsed = parse_dates(text, utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            problem=f"timestamp {shown_value(text[bad].iloc[0])} is not an ISO 8601 date or "
            "date-time.",
            fix="write timestamps as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (optionally with a "
            "time-zone offset).",
            file=shown,
            column="timestamp",
            rows=_lines(frame, bad),
            code="bad_date",
        )
    parsed = parsed.dt.tz_localize(None)
    check_date_range(parsed, text, frame, "timestamp", shown, what="timestamp")
    instants = parsed.to_numpy(dtype="datetime64[ns]")
    written = pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    # ISO 8601's basic form (20240107T...) has no dashes: its UTC day is the fallback.
    days = np.where(written.isna(), instants, written.to_numpy(dtype="datetime64[ns]"))
    return instants, days.astype("datetime64[D]")


def load_journeys(ws: Workspace) -> LoadedPaths:
    """Long format: one row per touch; journeys ordered by timestamp (file order on ties)."""
    path = ws.resolve(layout.JOURNEYS.path)
    try:
        frame, _ = load_table(path, layout.JOURNEYS.path, JOURNEYS_SPEC)
    except DataValidationError as exc:
        if exc.column == "converted" and exc.code == "missing_value":
            # The generic "value is empty" fix talks about periods; say what a flag is.
            raise DataValidationError(
                problem="journey rows without a conversion flag (converted is empty).",
                fix="write converted=1 on the rows of journeys that converted and 0 on the "
                "others; without it converting and non-converting journeys cannot be told "
                "apart.",
                file=layout.JOURNEYS.path,
                column="converted",
                rows=exc.rows,
                code="missing_conversion_flag",
            ) from None
        raise
    check_channel_names(frame["channel"], frame, layout.JOURNEYS.path, "channel", "channel name")
    converted = frame["converted"].to_numpy(dtype=float)
    not_flag = ~np.isin(converted, (0.0, 1.0))
    if not_flag.any():
        raise DataValidationError(
            problem=f"converted is {converted[not_flag][0]:g}; it must be 0 or 1.",
            fix="write 1 on the rows of journeys that converted and 0 on the others.",
            file=layout.JOURNEYS.path,
            column="converted",
            rows=_lines(frame, not_flag),
            code="bad_flag",
        )
    times, days = _timestamps(frame, layout.JOURNEYS.path)
    ids, unit = pd.factorize(frame["journey_id"], sort=False)
    n_units = len(unit)
    # Order touches by journey, then time, then file line (stable for ties).
    order = np.lexsort((frame[LINE].to_numpy(), times, ids))
    ids, times, days = ids[order], times[order], days[order]
    frame = frame.iloc[order].reset_index(drop=True)
    flags = frame["converted"].to_numpy(dtype=float)
    conv_unit = np.zeros(n_units)
    np.maximum.at(conv_unit, ids, flags)
    lowest = np.ones(n_units)
    np.minimum.at(lowest, ids, flags)
    mixed = np.flatnonzero((conv_unit == 1) & (lowest == 0))
    value = None
    if "conversion_value" in frame.columns:
        value = np.zeros(n_units)
        np.maximum.at(value, ids, frame["conversion_value"].to_numpy(dtype=float))
        orphan = (value[ids] > 0) & (conv_unit[ids] == 0)
        if orphan.any():
            raise DataValidationError(
                problem="conversion_value is positive on a journey that never has converted=1.",
                fix="set converted=1 on that journey, or its conversion_value to 0.",
                file=layout.JOURNEYS.path,
                column="conversion_value",
                rows=_lines(frame, orphan),
                code="value_without_conversion",
            )
    _require_conversions(conv_unit, layout.JOURNEYS.path, "converted")
    channels = sorted(frame["channel"].unique())
    codes = pd.Categorical(frame["channel"], categories=channels).codes.astype(np.int64)
    # Age of each touch: days before the journey's last touch (its conversion or exit).
    ns = times.astype("datetime64[ns]").astype(np.int64)
    last = np.full(n_units, np.iinfo(np.int64).min)
    np.maximum.at(last, ids, ns)
    age = (last[ids] - ns) / 86_400e9
    # The conversion day: the local day of the journey's last touch (the latest in file
    # order among touches at the same instant; touches are sorted that way).
    final = np.ones(len(ids), dtype=bool)
    final[:-1] = ids[1:] != ids[:-1]
    unit_date = np.empty(n_units, dtype="datetime64[D]")
    unit_date[ids[final]] = days[final]
    campaign_codes = campaigns = None
    if "campaign" in frame.columns:
        campaign = frame["campaign"].astype(object)
        empty = campaign.isna() | (campaign == "")
        campaign = campaign.where(~empty, "(none)")
        campaigns = sorted(campaign.unique())
        campaign_codes = pd.Categorical(campaign, categories=campaigns).codes.astype(np.int64)
    data = build(
        channels,
        ids,
        codes,
        conv_unit,
        1.0 - conv_unit,
        value,
        touch_age_days=age,
        touch_campaign=campaign_codes,
        campaigns=campaigns,
        unit_date=unit_date,
    )
    first, last = days.min(), days.max()
    findings = name_findings(channels, layout.JOURNEYS.path, "channel")
    if len(mixed):
        findings.append(_mixed_flag_finding(unit, mixed))
    return LoadedPaths(
        data,
        "journeys",
        layout.JOURNEYS.path,
        [path],
        len(frame),
        findings,
        first_date=pd.Timestamp(first).date(),
        last_date=pd.Timestamp(last).date(),
    )


MIXED_SHOWN = 5


def _mixed_flag_finding(unit: pd.Index | np.ndarray, mixed: np.ndarray) -> Finding:
    """Journeys whose rows disagree on ``converted``: how they were read, and which ones."""
    names = [str(unit[i]) for i in mixed[:MIXED_SHOWN]]
    more = f" and {len(mixed) - MIXED_SHOWN} more" if len(mixed) > MIXED_SHOWN else ""
    return Finding(
        code="mixed_conversion_flags",
        severity="info",
        message=f"{layout.JOURNEYS.path}: {len(mixed)} journey(s) have converted=1 on some "
        f"rows and 0 on others ({', '.join(names)}{more}); each was counted as one converted "
        "journey (a journey converts when any of its rows says 1, as in exports that flag only the "
        "converting touch). If the 0 rows are a later, separate visit of the same user, give "
        "them their own journey_id.",
        subject=", ".join(names),
        value=float(len(mixed)),
        rule="converted = max of the journey's rows",
    )


def load_aggregated(ws: Workspace) -> LoadedPaths:
    """Aggregated form: one row per distinct path string with conversions and nulls."""
    path = ws.resolve(layout.PATHS.path)
    frame, _ = load_table(path, layout.PATHS.path, PATHS_SPEC)
    if "path" not in frame.columns:
        raise DataValidationError(
            problem=f"required column ['path'] is missing; found "
            f"{[c for c in frame.columns if c != LINE]}.",
            fix="a paths file needs the columns ['path', 'conversions'] (and 'nulls' for "
            "non-converting journeys, 'value' for conversion value).",
            file=layout.PATHS.path,
            column="path",
            rows=(1,),
            code="missing_column",
        )
    findings: list[Finding] = []
    text = frame["path"].astype(str).str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        raise DataValidationError(
            problem="path is empty.",
            fix="remove the row, or write its channels separated by '>' ('search > email').",
            file=layout.PATHS.path,
            column="path",
            rows=_lines(frame, empty),
            code="empty_path",
        )
    conv = frame["conversions"].to_numpy(dtype=float)
    nulls = (
        frame["nulls"].to_numpy(dtype=float) if "nulls" in frame.columns else np.zeros(len(frame))
    )
    if "nulls" not in frame.columns:
        findings.append(
            Finding(
                code="no_null_paths",
                severity="warning",
                message="paths.csv has no 'nulls' column, so every path converts: Markov "
                "removal effects and Shapley conversion rates then only reflect path shapes, "
                "not which channels raise conversion. Export non-converting paths too.",
                subject=layout.PATHS.path,
            )
        )
    empty_counts = (conv + nulls) == 0
    if empty_counts.any():
        findings.append(
            Finding(
                code="zero_count_paths",
                severity="info",
                message=f"{int(empty_counts.sum())} path row(s) have 0 conversions and 0 nulls; "
                "they carry no journeys and were left out.",
                subject=layout.PATHS.path,
                value=float(empty_counts.sum()),
            )
        )
        if empty_counts.all():
            raise DataValidationError(
                problem="every path row has 0 conversions and 0 nulls: the file holds no journeys.",
                fix="write each path's converting journeys in 'conversions' and its "
                "non-converting ones in 'nulls'.",
                file=layout.PATHS.path,
                column="conversions",
                rows=_lines(frame, empty_counts),
                code="no_journeys",
            )
        keep = ~empty_counts
        frame, text, conv, nulls = frame[keep], text[keep], conv[keep], nulls[keep]
        frame = frame.reset_index(drop=True)
        text = text.reset_index(drop=True)
    _require_conversions(conv, layout.PATHS.path, "conversions")
    arrows = text.str.contains(ARROW).to_numpy()
    if arrows.any():
        findings.append(
            Finding(
                code="arrow_separator",
                severity="warning",
                message=f"{int(arrows.sum())} path(s) use an arrow-like separator (first: "
                f"{shown_value(text[arrows].iloc[0])}, row "
                f"{int(frame[LINE].to_numpy()[arrows][0])}); only '{SEPARATOR}' separates steps, "
                "so the arrow's other characters stay in the channel names. Write paths as "
                "'search > email'.",
                subject=layout.PATHS.path,
                value=float(arrows.sum()),
            )
        )
    steps = text.str.split(SEPARATOR, regex=False).explode()
    step_unit = steps.index.to_numpy()
    steps = steps.str.strip().reset_index(drop=True)
    blank = (steps == "").to_numpy()
    if blank.any():
        rows = np.unique(step_unit[blank])
        raise DataValidationError(
            problem=f"path {shown_value(text.iloc[rows[0]])} has an empty step (two separators in "
            "a row, or one at an end).",
            fix="remove the stray '>' or fill in the missing channel; a channel name cannot "
            "contain '>'.",
            file=layout.PATHS.path,
            column="path",
            rows=[int(x) for x in frame[LINE].to_numpy()[rows]],
            code="empty_path",
        )
    step_frame = pd.DataFrame({LINE: frame[LINE].to_numpy()[step_unit]})
    check_channel_names(steps, step_frame, layout.PATHS.path, "path", "channel name")
    normal = steps.groupby(step_unit).agg(" > ".join)
    dup = normal.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(
            problem=f"path {shown_value(normal[dup].iloc[0])} appears more than once.",
            fix="keep one row per path (sum the conversions, value and nulls of the duplicates).",
            file=layout.PATHS.path,
            column="path",
            rows=_lines(frame, dup),
            code="duplicate_rows",
        )
    channels = sorted(steps.unique())
    codes = pd.Categorical(steps, categories=channels).codes.astype(np.int64)
    value = frame["value"].to_numpy(dtype=float) if "value" in frame.columns else None
    if value is not None:
        orphan = (value > 0) & (conv == 0)
        if orphan.any():
            raise DataValidationError(
                problem="value is positive on a path with 0 conversions.",
                fix="set the path's conversions, or its value to 0.",
                file=layout.PATHS.path,
                column="value",
                rows=_lines(frame, orphan),
                code="value_without_conversion",
            )
    findings.extend(name_findings(channels, layout.PATHS.path, "path"))
    data = build(channels, step_unit, codes, conv, nulls, value)
    return LoadedPaths(data, "paths", layout.PATHS.path, [path], len(steps), findings)
