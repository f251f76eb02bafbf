"""Workspace paths stay inside the root; outputs are written all or nothing."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

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
