"""Read one contract table from CSV with row-level checks and errors a user can act on.

The pydantic row model of each table (``contracts.inputs``) is the source of truth; this
module derives a :class:`TableSpec` from it and checks the whole column at once (vectorised)
instead of building one model per row, which would not scale to millions of rows.

Row numbers in errors are line numbers in the file as a spreadsheet shows them: the header
is row 1, the first data row is row 2.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
import numpy as np
import pandas as pd
from pydantic import BaseModel

from attribution_analysis.contracts.common import IDENTIFIER_HELP, IDENTIFIER_PATTERN
from attribution_analysis.errors import DataValidationError

LINE = "_line"  # column carrying each row's line number in the source file
NON_FINITE_WORDS = {"nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
MISSING_WORDS = {"", "na", "n/a", "null", "none", "#n/a"}
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # date | number | identifier | label
    required: bool
    nonnegative: bool
    description: str


@dataclass(frozen=True)
class TableSpec:
    table: str
    columns: tuple[ColumnSpec, ...]
    allow_extra: bool

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def table_spec(table: str, model: type[BaseModel]) -> TableSpec:
    """Derive the column rules of ``table`` from its pydantic row model."""
    columns = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        nonnegative = any(isinstance(m, annotated_types.Ge) and m.ge == 0 for m in field.metadata)
        columns.append(
            ColumnSpec(
                name=name,
                kind=str(extra.get("x-kind", "label")),
                required=field.is_required(),
                nonnegative=nonnegative,
                description=field.description or "",
            )
        )
    return TableSpec(table, tuple(columns), model.model_config.get("extra") == "allow")


def _lines(frame: pd.DataFrame, mask: pd.Series | np.ndarray) -> list[int]:
    return [int(x) for x in frame.loc[np.asarray(mask), LINE]]


def _decode(path: Path, shown: str) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise DataValidationError(
            problem="the file is empty.",
            fix="export the table again with its header row and data rows.",
            file=shown,
            code="empty_file",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataValidationError(
            problem=f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}).",
            fix="save the file as UTF-8 (in Excel: 'CSV UTF-8'; or `iconv -f latin1 -t utf-8`).",
            file=shown,
            rows=(line,),
            code="encoding",
        ) from None


def _parse_csv(text: str, shown: str) -> pd.DataFrame:
    _check_header(text, shown)
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise DataValidationError(
            problem=f"the file is not a well-formed CSV ({exc}).",
            fix="check that every row has as many comma-separated fields as the header and that "
            "quotes are balanced.",
            file=shown,
            rows=(int(match.group(1)),) if match else (),
            code="malformed_csv",
        ) from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(
            problem="the file has no header row.",
            fix="add the header row.",
            file=shown,
            code="empty_file",
        ) from None
    frame[LINE] = np.arange(len(frame)) + 2
    return frame


def _check_header(text: str, shown: str) -> None:
    """Duplicate column names, read from the raw header: pandas renames a repeated 'spend' to
    'spend.1' while parsing, which would hide the duplicate from any later check."""
    first = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    names = [c.strip().lower() for c in first]
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        raise DataValidationError(
            problem=f"column(s) {duplicates} appear more than once in the header.",
            fix="keep one column of each name.",
            file=shown,
            rows=(1,),
            code="duplicate_column",
        )


def _normalise_columns(frame: pd.DataFrame, spec: TableSpec, shown: str) -> list[str]:
    renamed = {c: c.strip().lower() for c in frame.columns if c != LINE}
    names = list(renamed.values())
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataValidationError(
            problem=f"column(s) {duplicates} appear more than once in the header.",
            fix="keep one column of each name.",
            file=shown,
            rows=(1,),
            code="duplicate_column",
        )
    frame.columns = [renamed.get(c, c) for c in frame.columns]
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            if close:
                hints.append(f"'{close[0]}' looks like '{name}'")
        raise DataValidationError(
            problem=f"required column(s) {missing} are missing; found {names}."
            + (f" ({'; '.join(hints)})" if hints else ""),
            fix=f"a {spec.table} file needs the columns {spec.required}"
            + (" (rename the look-alike columns)" if hints else "")
            + ".",
            file=shown,
            column=missing[0],
            rows=(1,),
            code="missing_column",
        )
    known = {c.name for c in spec.columns}
    return [c for c in names if c not in known]


def _check_date(frame: pd.DataFrame, column: str, shown: str) -> pd.Series:
    text = frame[column].str.strip()
    empty = text.isin(MISSING_WORDS)
    if empty.any():
        raise DataValidationError(
            problem="date is empty.",
            fix="fill the date or remove the row.",
            file=shown,
            column=column,
            rows=_lines(frame, empty),
            code="missing_value",
        )
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        example = text[bad].iloc[0]
        raise DataValidationError(
            problem=f"date '{example}' is not an ISO date (YYYY-MM-DD).",
            fix="write dates as YYYY-MM-DD; day/month orders such as 01/02/2024 are ambiguous "
            "and are not guessed.",
            file=shown,
            column=column,
            rows=_lines(frame, bad),
            code="bad_date",
        )
    has_time = parsed != parsed.dt.normalize()
    if has_time.any():
        raise DataValidationError(
            problem=f"date '{text[has_time].iloc[0]}' has a time of day; rows must be daily or "
            "weekly.",
            fix="aggregate intraday rows to days before loading.",
            file=shown,
            column=column,
            rows=_lines(frame, has_time),
            code="bad_date",
        )
    return parsed.dt.normalize().astype("datetime64[ns]")


def _check_number(frame: pd.DataFrame, col: ColumnSpec, shown: str) -> pd.Series:
    text = frame[col.name].str.strip()
    lowered = text.str.lower()
    missing = lowered.isin(MISSING_WORDS)
    if missing.any():
        raise DataValidationError(
            problem="value is empty.",
            fix="write 0 if nothing happened that period, or remove the row (whole missing "
            "periods are detected and imputed with a flag).",
            file=shown,
            column=col.name,
            rows=_lines(frame, missing),
            code="missing_value",
        )
    non_finite = lowered.isin(NON_FINITE_WORDS)
    if non_finite.any():
        raise DataValidationError(
            problem=f"value '{text[non_finite].iloc[0]}' is not a finite number.",
            fix="replace NaN/inf with the real value (0 if nothing was spent).",
            file=shown,
            column=col.name,
            rows=_lines(frame, non_finite),
            code="non_finite",
        )
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna()
    if bad.any():
        example = text[bad].iloc[0]
        hint = (
            " Remove thousands separators and currency symbols."
            if re.search(r"[,$€£ ]", example)
            else ""
        )
        raise DataValidationError(
            problem=f"value '{example}' is not a number.",
            fix=f"write plain numbers with '.' as decimal separator.{hint}",
            file=shown,
            column=col.name,
            rows=_lines(frame, bad),
            code="not_a_number",
        )
    overflow = ~np.isfinite(values.to_numpy(dtype=float))
    if overflow.any():
        raise DataValidationError(
            problem="value overflows to infinity.",
            fix="check the value.",
            file=shown,
            column=col.name,
            rows=_lines(frame, overflow),
            code="non_finite",
        )
    if col.nonnegative:
        negative = values < 0
        if negative.any():
            raise DataValidationError(
                problem=f"value {values[negative].iloc[0]:g} is negative; {col.name} cannot be.",
                fix="correct the row (refunds and make-goods belong in a separate adjustment, "
                "not as negative " + col.name + ").",
                file=shown,
                column=col.name,
                rows=_lines(frame, negative),
                code="negative_value",
            )
    return values.astype(float)


def _check_text(frame: pd.DataFrame, col: ColumnSpec, shown: str) -> pd.Series:
    text = frame[col.name].str.strip()
    empty = text == ""
    if empty.any():
        raise DataValidationError(
            problem=f"{col.name} is empty.",
            fix=f"fill in the {col.name} or remove the row.",
            file=shown,
            column=col.name,
            rows=_lines(frame, empty),
            code="missing_value",
        )
    if col.kind == "identifier":
        bad = ~text.map(lambda s: bool(_IDENTIFIER.match(s)))
        if bad.any():
            raise DataValidationError(
                problem=f"{col.name} name {text[bad].iloc[0]!r} has characters that are not "
                "allowed (it becomes a model coordinate and a column name).",
                fix=f"rename it: {IDENTIFIER_HELP}.",
                file=shown,
                column=col.name,
                rows=_lines(frame, bad),
                code="bad_name",
            )
    else:
        control = text.str.contains(_CONTROL)
        too_long = text.str.len() > 256
        bad = control | too_long
        if bad.any():
            raise DataValidationError(
                problem=f"{col.name} {text[bad].iloc[0]!r} has control characters or is longer "
                "than 256 characters.",
                fix=f"clean the {col.name} names.",
                file=shown,
                column=col.name,
                rows=_lines(frame, bad),
                code="bad_name",
            )
    return text


def load_table(path: Path, shown: str, spec: TableSpec) -> tuple[pd.DataFrame, list[str]]:
    """Load ``path`` under ``spec``: typed columns plus ``_line``; and the ignored columns.

    ``shown`` is the name used in messages (the workspace-relative path).
    """
    frame = _parse_csv(_decode(path, shown), shown)
    ignored = _normalise_columns(frame, spec, shown)
    data_cols = [c for c in frame.columns if c != LINE]
    blank = (frame[data_cols].apply(lambda s: s.str.strip()) == "").all(axis=1)
    frame = frame.loc[~blank].reset_index(drop=True)
    if frame.empty:
        raise DataValidationError(
            problem="the file has a header but no data rows.",
            fix="export the table again with its data.",
            file=shown,
            code="empty_file",
        )
    typed: dict[str, Any] = {LINE: frame[LINE].to_numpy()}
    for col in spec.columns:
        if col.name not in frame.columns:
            continue
        if col.kind == "date":
            typed[col.name] = _check_date(frame, col.name, shown).to_numpy()
        elif col.kind == "number":
            typed[col.name] = _check_number(frame, col, shown).to_numpy()
        else:
            typed[col.name] = _check_text(frame, col, shown).to_numpy(dtype=object)
    if spec.allow_extra:
        for name in ignored:
            typed[name] = frame[name].str.strip().to_numpy(dtype=object)
        ignored = []
    return pd.DataFrame(typed), ignored


def check_unique(frame: pd.DataFrame, keys: list[str], shown: str, what: str) -> None:
    """Refuse duplicate rows for ``keys``, naming the rows that collide."""
    dup = frame.duplicated(keys, keep=False)
    if dup.any():
        first = frame.loc[dup].sort_values([*keys, LINE]).iloc[0]
        desc = ", ".join(
            f"{k}={first[k].date() if isinstance(first[k], pd.Timestamp) else first[k]}"
            for k in keys
        )
        raise DataValidationError(
            problem=f"duplicate {what} rows ({desc} appears more than once).",
            fix=f"keep one row per {', '.join(keys)} (sum them if they are parts of one total).",
            file=shown,
            column=keys[0],
            rows=_lines(frame, dup),
            code="duplicate_rows",
        )
