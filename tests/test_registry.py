"""The run registry: a registry written before 'cancelled' existed is upgraded in place."""

from __future__ import annotations

import sqlite3

import pytest

from attribution_analysis.registry import RunRegistry
from attribution_analysis.workspace import Workspace

OLD_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    params_json TEXT NOT NULL,
    input_hashes_json TEXT NOT NULL DEFAULT '{}',
    outputs_json TEXT NOT NULL DEFAULT '[]',
    error TEXT
);
CREATE INDEX runs_step ON runs(step, started_at);
INSERT INTO runs (run_id, step, status, started_at, params_json)
VALUES ('old1', 'fit_mmm', 'succeeded', '2026-01-01T00:00:00Z', '{}');
"""


class Stopped(BaseException):
    """Stands for a job's cancellation: not an Exception."""


def test_an_old_registry_keeps_its_runs_and_records_a_cancelled_one(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    registry = RunRegistry(ws)
    registry.path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(registry.path) as db:
        db.executescript(OLD_SCHEMA)
    with pytest.raises(Stopped), registry.track("allocate", {}):
        raise Stopped
    runs = {r["run_id"]: r for r in registry.list_runs()}
    assert runs["old1"]["status"] == "succeeded"
    assert [r["status"] for r in runs.values() if r["run_id"] != "old1"] == ["cancelled"]
