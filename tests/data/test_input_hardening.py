"""Hostile raw input: every case is a typed error naming file, column and rows, with a fix,
never a traceback; messages stay short; analysis/ is left as it was.

Dates with time zones or out of range, folders named like inputs, numbers beyond the ceiling,
files above the byte budget and cells above the length limit, in the MMM's raw files, the
journeys of the path step and the tables of the allocation.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attribution_analysis.allocation.loaders import load_inputs
from attribution_analysis.api import validate_data
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.data import tables
from attribution_analysis.data.tables import (
    MAX_ABS_VALUE,
    MAX_CELL_CHARS,
    MAX_INPUT_BYTES_ENV,
    shown_value,
)
from attribution_analysis.errors import AttributionError, DataValidationError, ParameterError
from attribution_analysis.paths.inputs import load_paths_input
from attribution_analysis.workspace import Workspace
from tests.conftest import CORPUS

PREVIOUS = b'{"previous": "good result"}\n'
MESSAGE_LIMIT = 1000  # characters: values cut to 60, lists to 10 values, never a whole cell
CONVERSIONS = "raw/conversions.csv"
TV = "raw/campaign_spend_tv.csv"
JOURNEY_HEADER = "journey_id,timestamp,channel,converted,conversion_value\n"


def _workspace(tmp_path: Path) -> Path:
    """The corpus' valid base with an earlier result in analysis/."""
    root = tmp_path / "ws"
    shutil.copytree(CORPUS / "valid_base", root, ignore=shutil.ignore_patterns("expect.json"))
    (root / "analysis").mkdir()
    (root / "analysis" / "data_validation.json").write_bytes(PREVIOUS)
    return root


def _analysis(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "analysis").rglob("*")) if p.is_file()}


def _replace(root: Path, relative: str, old: str, new: str, count: int = 1) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def _line_of(root: Path, relative: str, prefix: str) -> int:
    lines = (root / relative).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(prefix))


def _refused(root: Path) -> AttributionError:
    """validate_data's error on ``root``, checked to leave analysis/ as it was."""
    before = _analysis(root)
    with pytest.raises(AttributionError) as caught:
        validate_data(Workspace.open(root))
    assert _analysis(root) == before
    error = caught.value
    assert error.fix, error.message
    assert len(error.message) < MESSAGE_LIMIT, error.message[:2000]
    return error


# ----- 1. dates: time zones and out-of-range years ----------------------------------------------
@pytest.mark.parametrize(
    ("relative", "old", "new", "code", "words"),
    [
        pytest.param(
            CONVERSIONS,
            "2024-01-08,",
            "2024-01-08T00:00:00+02:00,",
            "bad_date",
            "time zone",
            id="one-offset-among-plain-dates",
        ),
        pytest.param(
            CONVERSIONS, "2024-01-08,", "2024-01-08T00:00:00Z,", "bad_date", "time zone", id="zulu"
        ),
        pytest.param(
            TV, "2024-01-08,", "2024-01-08 00:00-0500,", "bad_date", "time zone", id="spend-file"
        ),
        pytest.param(
            CONVERSIONS, "2024-01-08,", "2300-01-08,", "date_out_of_range", "2200", id="year-2300"
        ),
        pytest.param(
            CONVERSIONS, "2024-01-08,", "0001-01-08,", "date_out_of_range", "1900", id="year-0001"
        ),
        pytest.param(TV, "2024-01-08,", "1677-01-08,", "date_out_of_range", "1900", id="year-1677"),
    ],
)
def test_zoned_or_out_of_range_dates_are_typed_errors(tmp_path, relative, old, new, code, words):
    root = _workspace(tmp_path)
    row = _line_of(root, relative, old)
    _replace(root, relative, old, new)
    error = _refused(root)
    assert isinstance(error, DataValidationError)
    assert (error.code, error.file, error.column) == (code, relative, "date")
    assert list(error.rows) == [row]
    assert words in error.message
    assert "YYYY-MM-DD" in error.fix


def test_dates_all_in_one_time_zone_are_refused_on_every_row(tmp_path):
    root = _workspace(tmp_path)
    path = root / CONVERSIONS
    lines = path.read_text().splitlines()
    zoned = [lines[0]] + [line.replace(",", "T00:00:00+02:00,", 1) for line in lines[1:]]
    path.write_text("\n".join(zoned) + "\n")
    error = _refused(root)
    assert (error.code, error.column) == ("bad_date", "date")
    assert list(error.rows) == list(range(2, len(lines) + 1))
    assert "time zone" in error.message


# ----- 2. a folder where an input file should be ------------------------------------------------
@pytest.mark.parametrize(
    "relative",
    [CONVERSIONS, "raw/campaign_spend_x.csv", TV, "raw/external_factors.csv"],
)
def test_a_folder_named_like_an_input_is_refused_naming_it(tmp_path, relative):
    root = _workspace(tmp_path)
    path = root / relative
    if path.exists():
        path.unlink()
    path.mkdir()
    (path / "inside.csv").write_text("date\n")
    error = _refused(root)
    assert (error.code, error.file) == ("not_a_file", relative)
    assert "folder" in error.message


def test_a_pipe_named_like_an_input_is_refused_without_blocking(tmp_path):
    """Reading a named pipe waits for a writer forever; it is refused from its stat."""
    root = _workspace(tmp_path)
    pipe = root / CONVERSIONS
    pipe.unlink()
    os.mkfifo(pipe)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            validate_data(Workspace.open(root))
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # unblock the reader, then fail
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("validate_data blocked reading a named pipe")
    assert isinstance(outcome[0], DataValidationError), outcome
    assert (outcome[0].code, outcome[0].file) == ("not_a_file", CONVERSIONS)


def test_a_folder_named_journeys_csv_is_refused_not_reported_missing(tmp_path):
    root = tmp_path / "ws"
    (root / "raw" / "journeys.csv").mkdir(parents=True)
    with pytest.raises(DataValidationError) as caught:
        load_paths_input(Workspace.open(root))
    assert (caught.value.code, caught.value.file) == ("not_a_file", "raw/journeys.csv")


@pytest.mark.parametrize("relative", ["raw/hcp_brick.csv", "raw/hcps.csv"])
def test_a_folder_named_like_an_allocation_input_is_refused(simulated, relative):
    root = simulated(kind="hcp-brick", seed=2)
    path = root / relative
    path.unlink()
    path.mkdir()
    with pytest.raises(DataValidationError) as caught:
        load_inputs(Workspace.open(root), AllocateParams(bootstrap=0))
    assert (caught.value.code, caught.value.file) == ("not_a_file", relative)


# ----- 5. numbers beyond the ceiling ---------------------------------------------------------
@pytest.mark.parametrize(
    ("relative", "old", "new", "column"),
    [
        pytest.param(CONVERSIONS, "514.00,", "1e308,", "conversions", id="conversions-1e308"),
        pytest.param(TV, "2096.00,", "1e308,", "spend", id="spend-1e308"),
        pytest.param(TV, "2096.00,", "-1.7e308,", "spend", id="spend-minus-1.7e308"),
        pytest.param(TV, ",188640,", ",1e16,", "impressions", id="impressions-1e16"),
    ],
)
def test_numbers_above_the_ceiling_are_refused(tmp_path, relative, old, new, column):
    root = _workspace(tmp_path)
    row = _line_of(root, relative, "2024-01-08")
    _replace(root, relative, old, new)
    error = _refused(root)
    assert (error.code, error.file, error.column) == ("out_of_range", relative, column)
    assert list(error.rows) == [row]
    assert "1e15" in error.message


def test_a_number_at_the_ceiling_is_accepted(tmp_path):
    root = _workspace(tmp_path)
    _replace(root, TV, ",188640,", f",{MAX_ABS_VALUE:.0f},")
    report = validate_data(Workspace.open(root))
    assert report.channels[-1].total_impressions > MAX_ABS_VALUE


def test_brick_sales_above_the_ceiling_are_refused(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    path = root / "raw" / "brick_sales.csv"
    lines = path.read_text().splitlines()
    assert lines[0] == "brick_id,sales"
    lines[1] = lines[1].split(",")[0] + ",1e308"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as caught:
        load_inputs(Workspace.open(root), AllocateParams(bootstrap=0))
    error = caught.value
    assert (error.code, error.file, error.column) == (
        "out_of_range",
        "raw/brick_sales.csv",
        "sales",
    )
    assert list(error.rows) == [2]


def test_journey_values_above_the_ceiling_are_refused(tmp_path):
    root = tmp_path / "ws"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "journeys.csv").write_text(
        JOURNEY_HEADER + "j1,2024-01-01,search,1,1e308\nj2,2024-01-02,email,0,0\n"
    )
    with pytest.raises(DataValidationError) as caught:
        load_paths_input(Workspace.open(root))
    error = caught.value
    assert (error.code, error.column, list(error.rows)) == ("out_of_range", "conversion_value", [2])


# ----- 6. journey timestamps out of range --------------------------------------------------------
@pytest.mark.parametrize("stamp", ["2300-01-01T10:00:00", "0001-01-01", "1600-03-01T00:00:00Z"])
def test_journey_timestamps_out_of_range_are_refused(tmp_path, stamp):
    root = tmp_path / "ws"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "journeys.csv").write_text(
        JOURNEY_HEADER + f"j1,2024-01-01,search,0,0\nj1,{stamp},email,1,5\n"
    )
    with pytest.raises(DataValidationError) as caught:
        load_paths_input(Workspace.open(root))
    error = caught.value
    assert (error.code, error.file, error.column) == (
        "date_out_of_range",
        "raw/journeys.csv",
        "timestamp",
    )
    assert list(error.rows) == [3]
    assert "1900-01-01" in error.message and "2200-12-31" in error.message


def test_journey_timestamps_mixing_offsets_are_still_read(tmp_path):
    root = tmp_path / "ws"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "journeys.csv").write_text(
        JOURNEY_HEADER + "j1,2024-03-30T23:00:00+01:00,search,0,0\n"
        "j1,2024-03-31T10:00:00+02:00,email,1,5\n"
    )
    loaded = load_paths_input(Workspace.open(root))
    assert loaded.n_touches == 2


# ----- 7. byte budget, cell length, echoed values -------------------------------------------
def test_a_file_above_the_byte_limit_is_refused_with_its_size_and_the_limit(tmp_path, monkeypatch):
    root = _workspace(tmp_path)
    with open(root / CONVERSIONS, "a") as handle:
        handle.write("\n" * 10_000)  # blank lines: the largest file, still a valid one
    size = (root / CONVERSIONS).stat().st_size
    monkeypatch.setenv(MAX_INPUT_BYTES_ENV, str(size - 1))
    error = _refused(root)
    assert (error.code, error.file) == ("file_too_large", CONVERSIONS)
    assert f"{size:,} bytes" in error.message and f"{size - 1:,} bytes" in error.message
    assert MAX_INPUT_BYTES_ENV in error.fix


def test_the_byte_limit_is_checked_before_reading(tmp_path, monkeypatch):
    """A sparse 64 MiB file under a 1 MiB limit: refused from its size, never read."""
    root = _workspace(tmp_path)
    with open(root / CONVERSIONS, "r+b") as handle:
        handle.truncate(64 * 2**20)
    monkeypatch.setenv(MAX_INPUT_BYTES_ENV, str(2**20))
    reads: list[int] = []
    real_open = open

    def watching_open(file, mode="r", *args, **kwargs):
        if str(file).endswith("conversions.csv") and "b" in mode:
            reads.append(1)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    error = _refused(root)
    assert error.code == "file_too_large"
    assert reads == []


def test_a_bad_byte_limit_setting_is_a_parameter_error(tmp_path, monkeypatch):
    root = _workspace(tmp_path)
    monkeypatch.setenv(MAX_INPUT_BYTES_ENV, "lots")
    with pytest.raises(ParameterError, match=MAX_INPUT_BYTES_ENV):
        validate_data(Workspace.open(root))


def test_a_giant_single_field_is_refused_early_without_echoing_it(tmp_path):
    """157 rows of one field, one of them 2 MB: the message stays short."""
    root = _workspace(tmp_path)
    rows = ["2024-01-01"] * 156 + ["x" * 2_000_000]
    (root / CONVERSIONS).write_text("date\n" + "\n".join(rows) + "\n")
    error = _refused(root)
    assert (error.code, error.file, list(error.rows)) == ("cell_too_long", CONVERSIONS, [158])
    assert error.column == "date"
    assert f"{MAX_CELL_CHARS:,}" in error.message


def test_a_long_quoted_cell_spanning_lines_is_refused(tmp_path):
    root = _workspace(tmp_path)
    cell = '"' + ("y" * 99 + "\n") * 200 + '"'
    _replace(root, TV, "2024-01-08,tv,", f"2024-01-08,{cell},")
    error = _refused(root)
    assert (error.code, error.column, list(error.rows)) == ("cell_too_long", "channel", [3])


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        pytest.param(",tv,", ",tv" + "é" * 5000 + ",", "bad_name", id="channel-name"),
        pytest.param(",2096.00,", ",99" + "z" * 5000 + ",", "not_a_number", id="number"),
        pytest.param("2024-01-08,", "2024-01-08" + "q" * 5000 + ",", "bad_date", id="date"),
    ],
)
def test_echoed_values_are_cut_to_a_short_prefix(tmp_path, old, new, code):
    root = _workspace(tmp_path)
    _replace(root, TV, old, new)
    error = _refused(root)
    assert error.code == code
    assert "…" in error.message


def test_many_odd_column_names_are_listed_briefly(tmp_path):
    root = _workspace(tmp_path)
    names = ",".join(f"col{i}_" + "w" * 500 for i in range(200))
    (root / CONVERSIONS).write_text(f"{names}\n" + ",".join(["1"] * 200) + "\n")
    error = _refused(root)
    assert error.code == "missing_column"
    assert "and 190 more" in error.message


def test_utf16_and_semicolon_files_get_their_own_fix(tmp_path):
    root = _workspace(tmp_path)
    text = (root / CONVERSIONS).read_text()
    (root / CONVERSIONS).write_bytes(text.encode("utf-16"))
    error = _refused(root)
    assert (error.code, error.file) == ("encoding", CONVERSIONS)
    assert "UTF-16" in error.message
    (root / CONVERSIONS).write_text(text.replace(",", ";"))
    error = _refused(root)
    assert error.code == "wrong_delimiter"
    assert "';'" in error.message


def test_shown_value_cuts_and_escapes():
    assert shown_value("abc") == "'abc'"
    cut = shown_value("x" * 1000)
    assert cut == "'" + "x" * 60 + "…'"
    assert shown_value("a\x00b") == "'a\\x00b'"


@given(
    pieces=st.lists(st.sampled_from([b"a", b"bb", b",", b"\n", b"\xc3\xa9"]), max_size=60),
    max_cell=st.integers(0, 6),
    chunk=st.integers(1, 9),
)
def test_long_runs_match_a_plain_split_whatever_the_chunking(pieces, max_cell, chunk):
    data = b"".join(pieces)
    expected, start = [], 0
    for i, byte in enumerate([*data, ord(",")]):
        if byte in (ord(","), ord("\n")):
            if i - start > max_cell:
                expected.append((start, i))
            start = i + 1
    with mock.patch.object(tables, "_SCAN_CHUNK", chunk):
        assert list(tables._long_runs(data, max_cell)) == expected
