"""Run registry: an audit trail of every step run, in SQLite inside the workspace.

One row per run (step, parameters, input hashes, output paths, status, duration, error).
This is the provenance the seed spec asks for in financial-services mode, and what the MCP
server's ``list_runs`` / ``get_job`` read after a restart.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution_analysis.provenance import utc_now
from attribution_analysis.workspace import Workspace

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    params_json TEXT NOT NULL,
    input_hashes_json TEXT NOT NULL DEFAULT '{}',
    outputs_json TEXT NOT NULL DEFAULT '[]',
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_step ON runs(step, started_at);
"""


def _allow_cancelled(db: sqlite3.Connection) -> None:
    """Registries written before runs could be 'cancelled' have a CHECK that refuses the
    status, so a cancelled run would stay 'running' for ever. SQLite cannot alter a CHECK:
    the table is rebuilt under the current schema, its rows kept."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()
    if row is None or "'cancelled'" in row[0]:
        return
    # One explicit transaction: a crash half-way leaves the old table, never none.
    statements = [
        "ALTER TABLE runs RENAME TO runs_before_cancelled",
        "DROP INDEX IF EXISTS runs_step",
        *(part for part in SCHEMA.split(";") if part.strip()),
        "INSERT INTO runs SELECT * FROM runs_before_cancelled",
        "DROP TABLE runs_before_cancelled",
    ]
    db.executescript("BEGIN IMMEDIATE;\n" + ";\n".join(statements) + ";\nCOMMIT;")


@dataclass
class RunHandle:
    """What a step fills in while it runs; written to the registry when it ends."""

    run_id: str
    step: str
    input_hashes: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)


class RunRegistry:
    def __init__(self, workspace: Workspace) -> None:
        self.path: Path = workspace.internal / "runs.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.row_factory = sqlite3.Row
        _allow_cancelled(connection)
        connection.executescript(SCHEMA)
        return connection

    @contextlib.contextmanager
    def track(self, step: str, params: dict[str, Any]) -> Iterator[RunHandle]:
        """Record a run of ``step``; failures are recorded with their message and re-raised."""
        handle = RunHandle(run_id=uuid.uuid4().hex[:16], step=step)
        started = time.perf_counter()
        with contextlib.closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO runs (run_id, step, status, started_at, params_json) "
                "VALUES (?, ?, 'running', ?, ?)",
                (handle.run_id, step, utc_now(), json.dumps(params, default=str)),
            )
        status, error = "failed", None
        try:
            yield handle
            status = "succeeded"
        except BaseException as exc:
            # Not an Exception (a job's cancellation, Ctrl-C): the run was stopped, not broken.
            status = "failed" if isinstance(exc, Exception) else "cancelled"
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with contextlib.closing(self._connect()) as db, db:
                db.execute(
                    "UPDATE runs SET status=?, finished_at=?, duration_s=?, input_hashes_json=?,"
                    " outputs_json=?, error=? WHERE run_id=?",
                    (
                        status,
                        utc_now(),
                        round(time.perf_counter() - started, 4),
                        json.dumps(handle.input_hashes),
                        json.dumps(handle.outputs),
                        error,
                        handle.run_id,
                    ),
                )

    def list_runs(self, step: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        query = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if step:
            query += " WHERE step = ?"
            args = (step,)
        query += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        with contextlib.closing(self._connect()) as db:
            rows = db.execute(query, (*args, limit)).fetchall()
        return [
            {
                "run_id": r["run_id"],
                "step": r["step"],
                "status": r["status"],
                "started_at": r["started_at"],
                "finished_at": r["finished_at"],
                "duration_s": r["duration_s"],
                "params": json.loads(r["params_json"]),
                "input_hashes": json.loads(r["input_hashes_json"]),
                "outputs": json.loads(r["outputs_json"]),
                "error": r["error"],
            }
            for r in rows
        ]
