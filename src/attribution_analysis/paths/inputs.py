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


def _labels_and_codes(labels: pd.Series) -> tuple[list, np.ndarray]:
    """The distinct labels, sorted, and each row's index into them."""
    names = sorted(labels.unique())
    return names, pd.Categorical(labels, categories=names).codes.astype(np.int64)


def _refuse_value_without_conversion(
    frame: pd.DataFrame, orphan: np.ndarray, shown: str, column: str, problem: str, fix: str
) -> None:
    """A conversion value on rows that never converted: the value would belong to nothing."""
    if orphan.any():
        raise DataValidationError(
            problem=problem,
            fix=fix,
            file=shown,
            column=column,
            rows=_lines(frame, orphan),
            code="value_without_conversion",
        )


def _read_journeys(path: Path) -> pd.DataFrame:
    """journeys.csv through the common checks, then its channel names and 0/1 flags."""
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
    return frame


@dataclass
class _Touches:
    """journeys.csv's rows ordered by journey, then time, then file line."""

    frame: pd.DataFrame
    ids: np.ndarray  # each touch's journey index
    unit: pd.Index  # the journey ids, by index
    times: np.ndarray  # UTC instants
    days: np.ndarray  # local calendar days, as written


def _sorted_touches(frame: pd.DataFrame) -> _Touches:
    times, days = _timestamps(frame, layout.JOURNEYS.path)
    ids, unit = pd.factorize(frame["journey_id"], sort=False)
    # Order touches by journey, then time, then file line (stable for ties).
    order = np.lexsort((frame[LINE].to_numpy(), times, ids))
    frame = frame.iloc[order].reset_index(drop=True)
    return _Touches(frame, ids[order], unit, times[order], days[order])


def _journey_outcomes(t: _Touches) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(converted per journey, journeys with mixed flags, value per journey or None)."""
    n_units = len(t.unit)
    flags = t.frame["converted"].to_numpy(dtype=float)
    conv_unit = np.zeros(n_units)
    np.maximum.at(conv_unit, t.ids, flags)
    lowest = np.ones(n_units)
    np.minimum.at(lowest, t.ids, flags)
    mixed = np.flatnonzero((conv_unit == 1) & (lowest == 0))
    value = None
    if "conversion_value" in t.frame.columns:
        value = np.zeros(n_units)
        np.maximum.at(value, t.ids, t.frame["conversion_value"].to_numpy(dtype=float))
        _refuse_value_without_conversion(
            t.frame,
            (value[t.ids] > 0) & (conv_unit[t.ids] == 0),
            layout.JOURNEYS.path,
            "conversion_value",
            problem="conversion_value is positive on a journey that never has converted=1.",
            fix="set converted=1 on that journey, or its conversion_value to 0.",
        )
    _require_conversions(conv_unit, layout.JOURNEYS.path, "converted")
    return conv_unit, mixed, value


def _touch_ages(t: _Touches) -> np.ndarray:
    """Age of each touch: days before the journey's last touch (its conversion or exit)."""
    ns = t.times.astype("datetime64[ns]").astype(np.int64)
    last = np.full(len(t.unit), np.iinfo(np.int64).min)
    np.maximum.at(last, t.ids, ns)
    return (last[t.ids] - ns) / 86_400e9


def _conversion_days(t: _Touches) -> np.ndarray:
    """The conversion day: the local day of the journey's last touch (the latest in file
    order among touches at the same instant; touches are sorted that way)."""
    final = np.ones(len(t.ids), dtype=bool)
    final[:-1] = t.ids[1:] != t.ids[:-1]
    unit_date = np.empty(len(t.unit), dtype="datetime64[D]")
    unit_date[t.ids[final]] = t.days[final]
    return unit_date


def _touch_campaigns(frame: pd.DataFrame) -> tuple[np.ndarray | None, list | None]:
    """(each touch's campaign index, the campaigns), empty cells as '(none)'; None without
    a campaign column."""
    if "campaign" not in frame.columns:
        return None, None
    campaign = frame["campaign"].astype(object)
    empty = campaign.isna() | (campaign == "")
    campaigns, codes = _labels_and_codes(campaign.where(~empty, "(none)"))
    return codes, campaigns


def load_journeys(ws: Workspace) -> LoadedPaths:
    """Long format: one row per touch; journeys ordered by timestamp (file order on ties)."""
    path = ws.resolve(layout.JOURNEYS.path)
    touches = _sorted_touches(_read_journeys(path))
    conv_unit, mixed, value = _journey_outcomes(touches)
    channels, codes = _labels_and_codes(touches.frame["channel"])
    campaign_codes, campaigns = _touch_campaigns(touches.frame)
    data = build(
        channels,
        touches.ids,
        codes,
        conv_unit,
        1.0 - conv_unit,
        value,
        touch_age_days=_touch_ages(touches),
        touch_campaign=campaign_codes,
        campaigns=campaigns,
        unit_date=_conversion_days(touches),
    )
    findings = name_findings(channels, layout.JOURNEYS.path, "channel")
    if len(mixed):
        findings.append(_mixed_flag_finding(touches.unit, mixed))
    return LoadedPaths(
        data,
        "journeys",
        layout.JOURNEYS.path,
        [path],
        len(touches.frame),
        findings,
        first_date=pd.Timestamp(touches.days.min()).date(),
        last_date=pd.Timestamp(touches.days.max()).date(),
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


def _read_path_rows(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """paths.csv through the common checks, and its path strings (stripped, none empty)."""
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
    return frame, text


def _path_counts(frame: pd.DataFrame, findings: list[Finding]) -> tuple[np.ndarray, np.ndarray]:
    """(conversions, nulls) per path row; nulls are 0 (with a warning) without the column."""
    conv = frame["conversions"].to_numpy(dtype=float)
    if "nulls" in frame.columns:
        return conv, frame["nulls"].to_numpy(dtype=float)
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
    return conv, np.zeros(len(frame))


def _drop_empty_paths(
    frame: pd.DataFrame,
    text: pd.Series,
    conv: np.ndarray,
    nulls: np.ndarray,
    findings: list[Finding],
) -> tuple[pd.DataFrame, pd.Series, np.ndarray, np.ndarray]:
    """Leave out rows with 0 conversions and 0 nulls (with a note); refuse a file of only
    those."""
    empty_counts = (conv + nulls) == 0
    if not empty_counts.any():
        return frame, text, conv, nulls
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
    frame, text = frame[keep].reset_index(drop=True), text[keep].reset_index(drop=True)
    return frame, text, conv[keep], nulls[keep]


def _arrow_findings(frame: pd.DataFrame, text: pd.Series) -> list[Finding]:
    """Paths written with an arrow ('->', '→'): their other characters stay in the names."""
    arrows = text.str.contains(ARROW).to_numpy()
    if not arrows.any():
        return []
    return [
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
    ]


def _path_steps(frame: pd.DataFrame, text: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(each step's channel name, its path row), refusing empty steps, bad channel names and
    paths written twice."""
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
    return steps, step_unit


def load_aggregated(ws: Workspace) -> LoadedPaths:
    """Aggregated form: one row per distinct path string with conversions and nulls."""
    path = ws.resolve(layout.PATHS.path)
    frame, text = _read_path_rows(path)
    findings: list[Finding] = []
    conv, nulls = _path_counts(frame, findings)
    frame, text, conv, nulls = _drop_empty_paths(frame, text, conv, nulls, findings)
    _require_conversions(conv, layout.PATHS.path, "conversions")
    findings.extend(_arrow_findings(frame, text))
    steps, step_unit = _path_steps(frame, text)
    channels, codes = _labels_and_codes(steps)
    value = frame["value"].to_numpy(dtype=float) if "value" in frame.columns else None
    if value is not None:
        _refuse_value_without_conversion(
            frame,
            (value > 0) & (conv == 0),
            layout.PATHS.path,
            "value",
            problem="value is positive on a path with 0 conversions.",
            fix="set the path's conversions, or its value to 0.",
        )
    findings.extend(name_findings(channels, layout.PATHS.path, "path"))
    data = build(channels, step_unit, codes, conv, nulls, value)
    return LoadedPaths(data, "paths", layout.PATHS.path, [path], len(steps), findings)
