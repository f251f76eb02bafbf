"""Read one contract table from CSV with row-level checks and errors a user can act on.

The pydantic row model of each table (``contracts.inputs``) is the source of truth; this
module derives a :class:`TableSpec` from it and checks the whole column at once (vectorised)
instead of building one model per row, which would not scale to millions of rows.

Row numbers in errors are line numbers in the file as a spreadsheet shows them: the header
is row 1, the first data row is row 2.

Limits, so that no input can exhaust memory, overflow a sum or flood a message:

- a file may hold at most ``MAX_INPUT_BYTES`` bytes (512 MiB; the environment variable
  ``ATTRIBUTION_MAX_INPUT_BYTES`` overrides it), checked with ``os.stat`` before reading;
- a cell may hold at most ``MAX_CELL_CHARS`` characters (10,000);
- a number's magnitude may be at most ``MAX_ABS_VALUE`` (1e15): sums of millions of such rows
  stay finite, so every output stays valid JSON;
- a date must lie in ``MIN_DATE`` .. ``MAX_DATE`` (1900-01-01 .. 2200-12-31), inside what
  pandas' nanosecond timestamps hold (1677 .. 2262) with room for period arithmetic;
- a value quoted back in a message is cut to ``SHOWN_CHARS`` characters (60).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
import numpy as np
import pandas as pd
from pydantic import BaseModel

from attribution_analysis.contracts.common import IDENTIFIER_HELP, IDENTIFIER_PATTERN
from attribution_analysis.errors import DataValidationError, MissingInputError, ParameterError

LINE = "_line"  # column carrying each row's line number in the source file
NON_FINITE_WORDS = {"nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
MISSING_WORDS = {"", "na", "n/a", "null", "none", "#n/a"}
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MAX_INPUT_BYTES = 512 * 2**20
MAX_INPUT_BYTES_ENV = "ATTRIBUTION_MAX_INPUT_BYTES"
MAX_CELL_CHARS = 10_000
MAX_ABS_VALUE = 1e15
MAX_ABS_TEXT = "1e15"
MIN_DATE = pd.Timestamp("1900-01-01")
MAX_DATE = pd.Timestamp("2200-12-31")
DATE_RANGE_HELP = "dates must lie between 1900-01-01 and 2200-12-31"
SHOWN_CHARS = 60
SHOWN_ITEMS = 10
_DECODE_CHUNK = 1 << 20
_SCAN_CHUNK = 1 << 24
# A time of day followed by a zone: 'T00:00:00+02:00', ' 00:00Z', 'T00+0200', ' 12:00 UTC'.
_ZONE_SUFFIX = re.compile(
    r"(?:\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?|T\d{2})\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$",
    re.IGNORECASE,
)


def shown_value(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` quoted for a message, cut to ``limit`` characters: an input cell can be
    megabytes long or hold control characters, and a message must stay one readable line."""
    text = str(value)
    return repr(text[:limit] + "…" if len(text) > limit else text)


def shown_list(values: Iterable[object], limit: int = SHOWN_ITEMS) -> str:
    """Up to ``limit`` values, each cut by :func:`shown_value`, as '[a, b, ... and 3 more]'."""
    items = list(values)
    text = ", ".join(shown_value(v) for v in items[:limit])
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"[{text}{more}]"


def input_byte_limit() -> int:
    """The largest input file read, in bytes (``ATTRIBUTION_MAX_INPUT_BYTES`` or 512 MiB)."""
    raw = os.environ.get(MAX_INPUT_BYTES_ENV)
    if raw is None or not raw.strip():
        return MAX_INPUT_BYTES
    try:
        limit = int(raw.strip())
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ParameterError(
            f"the environment variable {MAX_INPUT_BYTES_ENV}={shown_value(raw)} is not a "
            "positive whole number of bytes.",
            fix=f"set it to a byte count such as {MAX_INPUT_BYTES} (512 MiB), or unset it.",
        )
    return limit


def _size_text(n: int) -> str:
    return f"{n:,} bytes ({n / 2**20:,.1f} MiB)"


def check_input_file(path: Path, shown: str) -> os.stat_result:
    """``os.stat`` of an input that must be a regular file: a folder, pipe or device under an
    input's name is refused (reading a folder fails, reading a pipe can block forever)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise MissingInputError(
            "the file does not exist.",
            fix="put the file in place, or remove the reference to it.",
            file=shown,
        ) from None
    except OSError as exc:
        raise _unreadable(exc, shown) from None
    if not stat.S_ISREG(info.st_mode):
        folder = stat.S_ISDIR(info.st_mode)
        what = "a folder" if folder else "a pipe, socket or device"
        raise DataValidationError(
            problem=f"this is {what}, not a regular file; the input of that name must be a file.",
            fix=(f"move the folder {shown} out of the way" if folder else f"remove {shown}")
            + " and put the input file in its place.",
            file=shown,
            code="not_a_file",
        )
    return info


def _unreadable(exc: OSError, shown: str) -> DataValidationError:
    return DataValidationError(
        problem=f"the file cannot be read ({exc.strerror or exc}).",
        fix="check that the file exists and is readable by this user.",
        file=shown,
        code="unreadable_file",
    )


def read_input_bytes(path: Path, shown: str) -> bytes:
    """The bytes of the input file ``path``, refusing a folder or device in its place and a
    file above :func:`input_byte_limit` before reading anything."""
    limit = input_byte_limit()
    info = check_input_file(path, shown)
    too_big = DataValidationError(
        problem=f"the file is {_size_text(info.st_size)}, above the input limit of "
        f"{_size_text(limit)}.",
        fix="aggregate the export (e.g. daily or weekly rows per channel instead of events) or "
        f"split it; if the machine has the memory, raise the limit with {MAX_INPUT_BYTES_ENV}="
        "<bytes>.",
        file=shown,
        code="file_too_large",
    )
    if info.st_size > limit:
        raise too_big
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)  # the file may have grown since the stat
    except OSError as exc:
        raise _unreadable(exc, shown) from None
    if len(data) > limit:
        raise too_big
    return data


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # date | number | identifier | label
    required: bool
    nonnegative: bool
    description: str
    blank: bool = False  # empty cells allowed: read as unknown (NaN), never as 0


@dataclass(frozen=True)
class TableSpec:
    table: str
    columns: tuple[ColumnSpec, ...]
    allow_extra: bool
    max_cell_chars: int = MAX_CELL_CHARS

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
                blank=bool(extra.get("x-blank", False)),
            )
        )
    return TableSpec(table, tuple(columns), model.model_config.get("extra") == "allow")


def _lines(frame: pd.DataFrame, mask: pd.Series | np.ndarray) -> list[int]:
    return [int(x) for x in frame.loc[np.asarray(mask), LINE]]


def _read_csv_bytes(path: Path, shown: str, max_cell: int) -> bytes:
    """The file's bytes, checked to be non-empty UTF-8 without an oversized cell."""
    data = read_input_bytes(path, shown)
    _check_csv_bytes(
        data, shown, max_cell, "file", "export the table again with its header row and data rows."
    )
    return data


def _check_csv_bytes(data: bytes, shown: str, max_cell: int, what: str, fix: str) -> None:
    """Refuse empty bytes (the {what} is empty; ``fix`` says what to give), bytes that are not
    UTF-8 and a cell over ``max_cell`` characters."""
    if not data.strip():
        raise DataValidationError(
            problem=f"the {what} is empty.", fix=fix, file=shown, code="empty_file"
        )
    _check_utf8(data, shown)
    _check_long_cells(data, shown, max_cell)


def _drop_blank_rows(frame: pd.DataFrame, shown: str, what: str, fix: str) -> pd.DataFrame:
    """``frame`` without its blank rows; refuses a {what} left with none (``fix`` says what to
    give)."""
    data_cols = [c for c in frame.columns if c != LINE]
    blank = (frame[data_cols].apply(lambda s: s.str.strip()) == "").all(axis=1)
    frame = frame.loc[~blank].reset_index(drop=True)
    if frame.empty:
        raise DataValidationError(
            problem=f"the {what} has a header but no data rows.",
            fix=fix,
            file=shown,
            code="empty_file",
        )
    return frame


def _check_utf8(data: bytes, shown: str) -> None:
    """Validate UTF-8 in chunks: decoding the whole file at once would hold a second copy
    of it, up to four times its size."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataValidationError(
            problem="the file is UTF-16 (it starts with a UTF-16 byte-order mark).",
            fix="save the file as UTF-8 (in Excel: 'CSV UTF-8'; or `iconv -f utf-16 -t utf-8`).",
            file=shown,
            rows=(1,),
            code="encoding",
        )
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, len(data), _DECODE_CHUNK):
        pending = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk
        try:
            decoder.decode(view[start : start + _DECODE_CHUNK], start + _DECODE_CHUNK >= len(data))
        except UnicodeDecodeError as exc:
            offset = start - pending + exc.start
            raise DataValidationError(
                problem=f"the file is not valid UTF-8 (byte 0x{data[offset]:02x} at offset "
                f"{offset}).",
                fix="save the file as UTF-8 (in Excel: 'CSV UTF-8'; or "
                "`iconv -f latin1 -t utf-8`).",
                file=shown,
                rows=(data.count(b"\n", 0, offset) + 1,),
                code="encoding",
            ) from None


def _check_long_cells(data: bytes, shown: str, max_cell: int) -> None:
    """Refuse a cell above ``max_cell`` characters before pandas builds it.

    Only a run of more than ``max_cell`` bytes without a comma or line break can hold such
    a cell (a character is at least one byte); :func:`_long_runs` finds them in bounded
    memory. Long quoted cells holding commas or line breaks are caught after parsing
    (``_check_cell_lengths``).
    """
    for start, end in _long_runs(data, max_cell):
        if end - start <= 4 * max_cell:  # short enough to count its characters exactly
            length = len(data[start:end].decode("utf-8", errors="replace").strip())
            if length <= max_cell:
                continue
            size = f"{length:,} characters"
        else:  # at least a quarter of its bytes are characters: certainly too long
            size = f"{end - start:,} bytes"
        header = _header_names(data)
        line_start = data.rfind(b"\n", 0, start) + 1
        index = data.count(b",", line_start, start)
        row = data.count(b"\n", 0, start) + 1
        column = _label(header[index]) if row > 1 and index < len(header) else None
        raise _long_cell_error(shown, size, max_cell, [row], column)


def _long_runs(data: bytes, max_cell: int) -> Iterator[tuple[int, int]]:
    """[start, end) byte spans longer than ``max_cell`` between commas and line breaks.

    Vectorised over chunks of 16 MiB (a regular expression restarts at every byte of a long
    field, quadratic in its length); the last delimiter seen carries over between chunks.
    """
    array = np.frombuffer(data, dtype=np.uint8)
    last = -1  # position of the latest delimiter
    for low in range(0, len(array), _SCAN_CHUNK):
        chunk = array[low : low + _SCAN_CHUNK]
        cuts = np.flatnonzero((chunk == ord(",")) | (chunk == ord("\n"))) + low
        if not len(cuts):
            continue
        bounds = np.concatenate(([last], cuts))
        for k in np.flatnonzero(np.diff(bounds) - 1 > max_cell):
            yield int(bounds[k]) + 1, int(bounds[k + 1])
        last = int(cuts[-1])
    if len(array) - last - 1 > max_cell:
        yield last + 1, len(array)


def _header_names(data: bytes) -> list[str]:
    """The raw header's column names (at most the first 64 KiB of the first line)."""
    first = data[: 1 << 16].split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
    try:
        return [c.strip() for c in next(csv.reader([first]), [])]
    except csv.Error:
        return []


def _long_cell_error(
    shown: str, size: str, max_cell: int, rows: list[int], column: str | None = None
) -> DataValidationError:
    return DataValidationError(
        problem=f"a cell holds {size}; cells may hold at most {max_cell:,} characters.",
        fix="check the export (a missing quote or line break can run a whole file into one "
        "cell); shorten the value if it is real.",
        file=shown,
        column=column,
        rows=rows,
        code="cell_too_long",
    )


def _check_cell_lengths(frame: pd.DataFrame, shown: str, max_cell: int) -> None:
    """Cells too long that the byte scan could not see (quoted values holding commas or
    line breaks)."""
    for column in frame.columns:
        if column == LINE:
            continue
        lengths = frame[column].str.len().to_numpy(dtype=float)
        too_long = lengths > max_cell
        if too_long.any():
            raise _long_cell_error(
                shown,
                f"{int(lengths.max()):,} characters",
                max_cell,
                _lines(frame, too_long),
                _label(column),
            )


def _parse_csv(data: bytes, shown: str) -> pd.DataFrame:
    _check_header(data, shown)
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise DataValidationError(
            problem="the file has no header row.",
            fix="add the header row.",
            file=shown,
            code="empty_file",
        ) from None
    except (ValueError, OverflowError) as exc:  # ParserError and the C reader's other refusals
        match = re.search(r"line (\d+)", str(exc))
        raise DataValidationError(
            problem=f"the file is not a well-formed CSV ({shown_value(exc, 200)}).",
            fix="check that every row has as many comma-separated fields as the header and that "
            "quotes are balanced.",
            file=shown,
            rows=(int(match.group(1)),) if match else (),
            code="malformed_csv",
        ) from None
    # A short last row (a truncated export) leaves its missing fields NaN, not text.
    frame = frame.fillna("")
    frame[LINE] = np.arange(len(frame)) + 2
    return frame


def _check_header(data: bytes, shown: str) -> None:
    """Duplicate column names, read from the raw header: pandas renames a repeated 'spend' to
    'spend.1' while parsing, which would hide the duplicate from any later check."""
    names = [c.lower() for c in _header_names(data)]
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        raise DataValidationError(
            problem=f"column(s) {shown_list(duplicates)} appear more than once in the header.",
            fix="keep one column of each name.",
            file=shown,
            rows=(1,),
            code="duplicate_column",
        )


def _label(name: object) -> str:
    """A column name as it goes into an error's ``column``: cut and with escapes."""
    return shown_value(name)[1:-1]


def _normalise_columns(frame: pd.DataFrame, spec: TableSpec, shown: str) -> list[str]:
    renamed = {c: c.strip().lower() for c in frame.columns if c != LINE}
    names = list(renamed.values())
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataValidationError(
            problem=f"column(s) {shown_list(duplicates)} appear more than once in the header.",
            fix="keep one column of each name.",
            file=shown,
            rows=(1,),
            code="duplicate_column",
        )
    frame.columns = [renamed.get(c, c) for c in frame.columns]
    missing = [c for c in spec.required if c not in frame.columns]
    if missing and len(names) == 1:
        delimiter = next((d for d in (";", "\t", "|") if d in names[0]), None)
        if delimiter is not None:
            raise DataValidationError(
                problem=f"the header is one column holding {delimiter!r}: the file uses "
                f"{delimiter!r} between fields, not ','.",
                fix="save the file as comma-separated CSV (in Excel: 'CSV UTF-8 (Comma "
                "delimited)'), with '.' as the decimal separator.",
                file=shown,
                rows=(1,),
                code="wrong_delimiter",
            )
    if missing:
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            if close:
                hints.append(f"{shown_value(close[0])} looks like '{name}'")
        raise DataValidationError(
            problem=f"required column(s) {missing} are missing; found {shown_list(names)}."
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


def parse_dates(text: pd.Series, utc: bool = False) -> pd.Series:
    """ISO 8601 dates, NaT where a value is not one; never raises. Without ``utc``, a column
    mixing time zones comes back as objects (the caller refuses the zones)."""
    try:
        return pd.to_datetime(text, format="ISO8601", errors="coerce", utc=utc)
    except (ValueError, TypeError, OverflowError):
        # pandas refuses some columns as a whole (mixed zones); parse the values one by one.
        values = pd.Series([_parse_one_date(v, utc) for v in text], index=text.index, dtype=object)
        return pd.to_datetime(values, utc=True) if utc else values


def _parse_one_date(value: str, utc: bool) -> pd.Timestamp | None:
    try:
        parsed = pd.to_datetime(value, format="ISO8601", utc=utc)
    except (ValueError, TypeError, OverflowError):
        return None
    return None if pd.isna(parsed) else parsed


def check_date_range(
    parsed: pd.Series,
    text: pd.Series,
    frame: pd.DataFrame,
    column: str,
    shown: str,
    what: str = "date",
) -> None:
    """Refuse parsed dates outside ``MIN_DATE`` .. ``MAX_DATE`` (``parsed`` naive)."""
    outside = ((parsed < MIN_DATE) | (parsed > MAX_DATE)).to_numpy(dtype=bool)
    if outside.any():
        raise DataValidationError(
            problem=f"{what} {shown_value(text[outside].iloc[0])} is out of range; "
            f"{DATE_RANGE_HELP}.",
            fix="check the year (a two-digit year or a placeholder such as 0001-01-01 or "
            "9999-12-31 is a sign of a broken export) and write dates as YYYY-MM-DD.",
            file=shown,
            column=column,
            rows=_lines(frame, outside),
            code="date_out_of_range",
        )


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
    zoned = text.str.contains(_ZONE_SUFFIX).to_numpy(dtype=bool)
    parsed = parse_dates(text)
    if not zoned.any() and isinstance(parsed.dtype, pd.DatetimeTZDtype):
        zoned = parsed.notna().to_numpy(dtype=bool)  # a zone spelt in a way the pattern missed
    if not zoned.any() and parsed.dtype == object:
        zoned = np.array([getattr(v, "tzinfo", None) is not None for v in parsed])
    if zoned.any():
        raise DataValidationError(
            problem=f"date {shown_value(text[zoned].iloc[0])} carries a time zone; rows are "
            "calendar days (or weeks).",
            fix="write dates as YYYY-MM-DD with no time and no time zone: the day in the "
            "reporting time zone of the account.",
            file=shown,
            column=column,
            rows=_lines(frame, zoned),
            code="bad_date",
        )
    parsed = pd.to_datetime(parsed, errors="coerce")  # the one-by-one fallback's objects
    bad = parsed.isna().to_numpy(dtype=bool)
    if bad.any():
        raise DataValidationError(
            problem=f"date {shown_value(text[bad].iloc[0])} is not an ISO date (YYYY-MM-DD).",
            fix="write dates as YYYY-MM-DD; day/month orders such as 01/02/2024 are ambiguous "
            "and are not guessed.",
            file=shown,
            column=column,
            rows=_lines(frame, bad),
            code="bad_date",
        )
    check_date_range(parsed, text, frame, column, shown)
    has_time = (parsed != parsed.dt.normalize()).to_numpy(dtype=bool)
    if has_time.any():
        raise DataValidationError(
            problem=f"date {shown_value(text[has_time].iloc[0])} has a time of day; rows must be "
            "daily or weekly.",
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
        first = text[missing].iloc[0]
        raise DataValidationError(
            problem="value is empty."
            if first == ""
            else f"value {shown_value(first)} marks a missing number.",
            fix="write the number; 0 only if nothing happened that period, or remove the row "
            "(whole missing periods are detected and imputed with a flag).",
            file=shown,
            column=col.name,
            rows=_lines(frame, missing),
            code="missing_value",
        )
    non_finite = lowered.isin(NON_FINITE_WORDS)
    if non_finite.any():
        raise DataValidationError(
            problem=f"value {shown_value(text[non_finite].iloc[0])} is not a finite number.",
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
            problem=f"value {shown_value(example)} is not a number.",
            fix=f"write plain numbers with '.' as decimal separator.{hint}",
            file=shown,
            column=col.name,
            rows=_lines(frame, bad),
            code="not_a_number",
        )
    floats = values.to_numpy(dtype=float)
    overflow = ~np.isfinite(floats)
    if overflow.any():
        raise DataValidationError(
            problem=f"value {shown_value(text[overflow].iloc[0])} overflows to infinity.",
            fix=f"check the value; numbers may be at most {MAX_ABS_TEXT} in magnitude.",
            file=shown,
            column=col.name,
            rows=_lines(frame, overflow),
            code="non_finite",
        )
    huge = np.abs(floats) > MAX_ABS_VALUE
    if huge.any():
        raise DataValidationError(
            problem=f"value {shown_value(text[huge].iloc[0])} is above {MAX_ABS_TEXT} in "
            "magnitude, the largest number an input may hold (sums of such values would "
            "overflow).",
            fix="check the value (an export error or a wrong unit, e.g. micros); no real "
            "spend, count or sale of one row comes near it.",
            file=shown,
            column=col.name,
            rows=_lines(frame, huge),
            code="out_of_range",
        )
    if col.nonnegative:
        negative = floats < 0
        if negative.any():
            raise DataValidationError(
                problem=f"value {floats[negative][0]:g} is negative; {col.name} cannot be.",
                fix="correct the row (refunds and make-goods belong in a separate adjustment, "
                "not as negative " + col.name + ").",
                file=shown,
                column=col.name,
                rows=_lines(frame, negative),
                code="negative_value",
            )
    # '-0' parses to -0.0, which would be written back as '-0'.
    return pd.Series(floats + 0.0, index=values.index)


def _check_optional_number(frame: pd.DataFrame, col: ColumnSpec, shown: str) -> np.ndarray:
    """A number column whose empty cells mean 'not reported': NaN there, the others checked
    as numbers. An empty cell is never read as 0."""
    empty = frame[col.name].str.strip().str.lower().isin(MISSING_WORDS).to_numpy()
    values = np.full(len(frame), np.nan)
    if not empty.all():
        values[~empty] = _check_number(frame.loc[~empty], col, shown).to_numpy()
    return values


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
        problem = (
            "{name} name {value} has characters that are not allowed (it becomes a model "
            "coordinate and a column name)."
        )
        fix = f"rename it: {IDENTIFIER_HELP}."
    else:
        bad = text.str.contains(_CONTROL) | (text.str.len() > 256)
        problem = "{name} {value} has control characters or is longer than 256 characters."
        fix = f"clean the {col.name} names."
    if bad.any():
        raise DataValidationError(
            problem=problem.format(name=col.name, value=shown_value(text[bad].iloc[0])),
            fix=fix,
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
    frame = _parse_csv(_read_csv_bytes(path, shown, spec.max_cell_chars), shown)
    _check_cell_lengths(frame, shown, spec.max_cell_chars)
    ignored = _normalise_columns(frame, spec, shown)
    frame = _drop_blank_rows(frame, shown, "file", "export the table again with its data.")
    typed: dict[str, Any] = {LINE: frame[LINE].to_numpy()}
    for col in spec.columns:
        if col.name not in frame.columns:
            continue
        if col.kind == "date":
            typed[col.name] = _check_date(frame, col.name, shown).to_numpy()
        elif col.kind == "number" and col.blank:
            typed[col.name] = _check_optional_number(frame, col, shown)
        elif col.kind == "number":
            typed[col.name] = _check_number(frame, col, shown).to_numpy()
        elif col.blank:  # optional text: an empty cell means the default
            typed[col.name] = frame[col.name].str.strip().to_numpy(dtype=object)
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
            f"{k}={first[k].date() if isinstance(first[k], pd.Timestamp) else _label(first[k])}"
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
