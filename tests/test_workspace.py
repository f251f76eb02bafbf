"""Workspace paths stay inside the root; outputs are written all or nothing."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution_analysis.errors import WorkspaceError
from attribution_analysis.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


@pytest.mark.parametrize(
    "bad", ["../outside.csv", "raw/../../x", "/etc/passwd", "~/x", "", "raw/\x00x"]
)
def test_paths_escaping_the_workspace_are_refused(ws, bad):
    with pytest.raises(WorkspaceError):
        ws.resolve(bad)


def test_a_symlink_pointing_out_of_the_workspace_is_refused(ws, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("date,conversions\n")
    (ws.raw / "conversions.csv").symlink_to(secret)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.resolve("raw/conversions.csv")
    with pytest.raises(WorkspaceError):
        ws.raw_files("*.csv")


def test_paths_inside_resolve(ws):
    assert ws.resolve("analysis/x.json") == ws.root / "analysis" / "x.json"


def test_missing_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="does not exist"):
        Workspace.open(tmp_path / "nope")


def test_commit_writes_every_file_readable_and_leaves_no_temporaries(ws):
    ws.commit({"analysis/a.json": b"{}", "analysis/sub/b.csv": b"x\n"})
    assert (ws.analysis / "a.json").read_bytes() == b"{}"
    assert (ws.analysis / "sub" / "b.csv").read_bytes() == b"x\n"
    assert oct(os.stat(ws.analysis / "a.json").st_mode & 0o777) == "0o644"
    assert not [p for p in ws.analysis.rglob("*.tmp")]


def test_a_failure_while_staging_keeps_the_previous_results_whole(ws, monkeypatch):
    ws.commit({"analysis/a.json": b"old-a", "analysis/b.json": b"old-b"})
    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    # A full disk is an error the user can act on (where, what to free), not a traceback.
    with pytest.raises(WorkspaceError, match="no space left on the device"):
        ws.commit({"analysis/a.json": b"new-a", "analysis/b.json": b"new-b"})
    assert (ws.analysis / "a.json").read_bytes() == b"old-a"
    assert (ws.analysis / "b.json").read_bytes() == b"old-b"
    assert not list(ws.analysis.glob(".*.tmp"))


def test_commit_refuses_targets_outside_the_workspace(ws):
    with pytest.raises(WorkspaceError):
        ws.commit({"../escape.json": b"{}"})


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(min_value=1, max_value=6),
    data=st.data(),
    float_format=st.sampled_from(["%.10g", "%.6f", "%g"]),
)
def test_csv_bytes_are_the_bytes_pandas_writes(rows, data, float_format):
    """The plain-column fast path of ``csv_bytes`` against pandas' own ``to_csv`` (the
    implementation it stands in for) on generated frames: floats with NaN, infinities and
    signed zeros, integers, booleans, text with commas, quotes, line breaks and unicode, in
    NumPy and pandas' text dtypes. A frame the fast path declines (nullable integers,
    missing text, dates) goes to pandas itself."""
    import numpy as np
    import pandas as pd

    from attribution_analysis.workspace import _plain_csv, csv_bytes

    kinds = data.draw(
        st.lists(st.sampled_from(["f", "i", "b", "s", "o", "n", "d"]), min_size=1, max_size=4)
    )
    frame = pd.DataFrame()
    for k, kind in enumerate(kinds):
        name = data.draw(_TEXT) or f"c{k}"
        if name in frame:
            name = f"{name}{k}"
        if kind == "f":
            column = pd.Series(
                data.draw(st.lists(_FLOATS, min_size=rows, max_size=rows)), dtype=float
            )
        elif kind == "i":
            ints = st.integers(min_value=-(2**62), max_value=2**62)
            column = pd.Series(
                data.draw(st.lists(ints, min_size=rows, max_size=rows)), dtype=np.int64
            )
        elif kind == "b":
            column = pd.Series(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
        elif kind == "s":
            column = pd.Series(data.draw(st.lists(_TEXT, min_size=rows, max_size=rows)))
        elif kind == "o":
            column = pd.Series(
                data.draw(st.lists(_TEXT, min_size=rows, max_size=rows)), dtype=object
            )
        elif kind == "n":  # text with a missing value: pandas' path
            column = pd.Series(
                [None, *data.draw(st.lists(_TEXT, min_size=rows - 1, max_size=rows - 1))]
            )
        else:  # dates: pandas' path
            column = pd.Series(pd.date_range("2024-01-01", periods=rows, freq="D"))
        frame[name] = column.to_numpy() if kind != "s" else column
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format=float_format, lineterminator="\n")
    assert csv_bytes(frame, float_format) == buffer.getvalue().encode("utf-8")
    # Negative control: the fast path took the plain frames and declined the others.
    plain = not ({"n", "d"} & set(kinds))
    assert (_plain_csv(frame, float_format) is not None) is plain
