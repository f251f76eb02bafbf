"""Property: whatever is done to the raw CSVs, validate_data succeeds or raises a typed
AttributionError, and a refused run leaves every file under analysis/ byte for byte as it was.

Each example starts from a valid simulated workspace and applies one to four mutations of
the kinds real exports go wrong: encodings (latin-1, UTF-16, byte-order marks), delimiters,
date formats, time zones and impossible years, numbers (1e308, -0, NaN, inf, thousands
separators, empty cells), sizes (no rows, duplicated rows), names (odd, control characters,
duplicated columns), structure (missing or extra columns, a truncated last line, a folder or
nothing where a file should be, oversized cells).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from attribution_analysis.api import validate_data
from attribution_analysis.errors import AttributionError
from attribution_analysis.workspace import Workspace

SIMULATION = {"kind": "mmm", "seed": 1, "weeks": 60, "channels": 2}
SENTINEL = b'{"earlier": "result"}\n'

DATES = [
    "01/02/2024",
    "2024-1-8",
    "20240108",
    "2024-01-08T00:00:00+02:00",
    "2024-01-08T00:00:00Z",
    "2024-01-08 12:00",
    "0001-01-01",
    "2300-01-01",
    "1677-09-21",
    "2024-02-30",
    "",
    "yesterday",
]
NUMBERS = [
    "1e308",
    "-1e308",
    "1e16",
    "-0",
    "NaN",
    "inf",
    "-Infinity",
    "1,000",
    "1.000,5",
    "",
    " ",
    "-1",
    "0x10",
    "1_000",
    "١٢٣",
    "1e-320",
    "€12",
]
NAMES = ["", " ", "date\x00", "spend\t", "Spend", "DATE", "ünïcødé", "a,b", '"q"', "x" * 300]
CELLS = ["é", "\x00", "\x1b[31m", "<script>", "'; DROP TABLE", "\u202e", "x" * 20_000, '"']
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le", "cp1252"]
KINDS = [
    "date",
    "all_dates_zoned",
    "number",
    "cell",
    "rename",
    "duplicate_column",
    "drop_column",
    "extra_column",
    "drop_rows",
    "duplicate_row",
    "duplicate_all",
    "truncate",
    "delimiter",
    "encoding",
    "folder",
    "delete",
    "empty",
    "garbage",
]


@dataclass(frozen=True)
class Mutation:
    kind: str
    file: int  # index into the workspace's raw CSVs
    row: int  # picks a data row (modulo)
    column: int  # picks a column (modulo)
    value: str
    encoding: str


mutations = st.builds(
    Mutation,
    kind=st.sampled_from(KINDS),
    file=st.integers(0, 10),
    row=st.integers(0, 10_000),
    column=st.integers(0, 10),
    value=st.one_of(
        st.sampled_from(DATES + NUMBERS + NAMES + CELLS),
        st.text(max_size=12),
    ),
    encoding=st.sampled_from(ENCODINGS),
)


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()]


def _write_rows(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> None:
    text = "\n".join(",".join(r) for r in rows) + "\n"
    path.write_bytes(text.encode(encoding, errors="replace"))


def _apply(raw: Path, m: Mutation) -> None:
    files = sorted(p for p in raw.iterdir() if p.suffix == ".csv")
    if not files:
        return
    path = files[m.file % len(files)]
    if not path.is_file():
        return  # an earlier mutation turned it into a folder or removed it
    if m.kind == "folder":
        path.unlink()
        path.mkdir()
        return
    if m.kind == "delete":
        path.unlink()
        return
    if m.kind == "empty":
        path.write_bytes(b"" if m.row % 2 else b"\n\n")
        return
    if m.kind == "garbage":
        data = path.read_bytes()
        cut = m.row % (len(data) + 1)
        path.write_bytes(data[:cut] + bytes([m.row % 256, 0, 0xFF]) + data[cut:])
        return
    try:
        rows = _rows(path)
    except UnicodeDecodeError:
        return  # already re-encoded by an earlier mutation
    if not rows:
        return  # emptied by an earlier mutation
    header, body = rows[0], rows[1:]
    width = len(header)
    r = m.row % len(body) if body else 0
    c = m.column % width
    if m.kind == "date" and body:
        body[r][0] = m.value if m.value in DATES else DATES[m.row % len(DATES)]
    elif m.kind == "all_dates_zoned":
        for row in body:
            row[0] += "T00:00:00+02:00"
    elif m.kind == "number" and body:
        numeric = [i for i, name in enumerate(header) if name not in ("date", "channel")]
        if numeric:
            col = numeric[m.column % len(numeric)]
            if col < len(body[r]):
                body[r][col] = m.value if m.value in NUMBERS else NUMBERS[m.row % len(NUMBERS)]
    elif m.kind == "cell" and body and c < len(body[r]):
        body[r][c] = CELLS[m.row % len(CELLS)] if m.value not in CELLS else m.value
    elif m.kind == "rename":
        header[c] = m.value if m.value in NAMES else NAMES[m.row % len(NAMES)]
    elif m.kind == "duplicate_column":
        header[c] = header[(c + 1) % width]
    elif m.kind == "drop_column":
        header.pop(c)
        for row in body:
            if c < len(row):
                row.pop(c)
    elif m.kind == "extra_column":
        header.append(NAMES[m.row % len(NAMES)] or "extra")
        for row in body:
            row.append(m.value.replace(",", "").replace("\n", ""))
    elif m.kind == "drop_rows":
        body = [] if m.row % 2 else body[:1]
    elif m.kind == "duplicate_row" and body:
        body.insert(r, list(body[r]))
    elif m.kind == "duplicate_all":
        body = body + [list(row) for row in body]
    elif m.kind == "truncate":
        text = "\n".join(",".join(row) for row in [header, *body])
        path.write_bytes(text[: len(text) - 1 - m.row % 12].encode())
        return
    elif m.kind == "delimiter":
        delimiter = ";" if m.row % 2 else "\t"
        path.write_text("\n".join(delimiter.join(row) for row in [header, *body]) + "\n")
        return
    elif m.kind == "encoding":
        if body and len(body[r]) > 1:
            body[r][1] += "é"
        _write_rows(path, [header, *body], m.encoding)
        return
    _write_rows(path, [header, *body])


def _analysis(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "analysis").rglob("*"))
        if p.is_file()
    }


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-JSON constant {constant} in the validation report")

    return json.loads(text, parse_constant=refuse)


def _tally(outcome: str) -> None:
    """Count outcomes for --hypothesis-show-statistics (outside a property test: nothing)."""
    if currently_in_test_context():
        event(outcome)


def _check(base: Path, changes: list[Mutation]) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = Path(tmp) / "ws"
        shutil.copytree(base, root)
        (root / "analysis" / "sentinel.json").write_bytes(SENTINEL)
        for change in changes:
            _apply(root / "raw", change)
        before = _analysis(root)
        try:
            report = validate_data(Workspace.open(root))
        except AttributionError as error:
            _tally(f"refused: {error.code}")
            assert error.message and error.fix, error.message
            assert len(error.message) < 2_000, error.message[:300]
            assert _analysis(root) == before, f"analysis/ changed by a refused run: {error}"
            return
        _tally("accepted")
        # Accepted: the outputs are complete and strictly valid JSON / CSV.
        written = root / "analysis" / "data_validation.json"
        assert _strict_json(written.read_text())["status"] == report.status
        assert (root / "analysis" / "prepared_panel.csv").stat().st_size > 0


def _fuzz(simulated_root, changes: list[Mutation]) -> None:
    _check(simulated_root(**SIMULATION), changes)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(changes=st.lists(mutations, min_size=1, max_size=4))
def test_mutated_raw_files_are_accepted_or_refused_with_a_typed_error(simulated_root, changes):
    _fuzz(simulated_root, changes)


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(changes=st.lists(mutations, min_size=1, max_size=4))
def test_mutated_raw_files_thoroughly(simulated_root, changes):
    _fuzz(simulated_root, changes)


@pytest.mark.parametrize("kind", KINDS)
def test_every_mutation_kind_alone(simulated_root, kind):
    """Each kind once, so every one is exercised whatever the property search draws."""
    _fuzz(simulated_root, [Mutation(kind, 1, 7, 2, "", "utf-16")])
