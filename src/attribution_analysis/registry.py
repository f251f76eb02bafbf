"""Run registry: an audit trail of every step run, in SQLite inside the workspace.

One row per run (step, parameters, input hashes, output paths, status, duration, error).
This is the provenance the seed spec asks for in financial-services mode, and what the MCP
server's ``list_runs`` / ``get_job`` read after a restart.

:meth:`RunRegistry.track` is where a step holds the workspace's writer lock: it takes the
lock, finishes what a killed writer left (``Workspace.recover``), marks runs whose process is
gone as ``interrupted``, and records the run with its process id.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution_analysis.errors import WorkspaceError
from attribution_analysis.provenance import utc_now
from attribution_analysis.workspace import Workspace, disk_error

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    params_json TEXT NOT NULL,
    input_hashes_json TEXT NOT NULL DEFAULT '{}',
    outputs_json TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    pid INTEGER
);
CREATE INDEX IF NOT EXISTS runs_step ON runs(step, started_at);
"""


COLUMNS = (
    "run_id, step, status, started_at, finished_at, duration_s, params_json, "
    "input_hashes_json, outputs_json, error"
)


def _upgrade(db: sqlite3.Connection) -> None:
    """Registries written by earlier versions have a CHECK that refuses 'cancelled' or
    'interrupted' (so such a run would stay 'running' for ever) and no pid column. SQLite
    cannot alter a CHECK: the table is rebuilt under the current schema, its rows kept."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()
    if row is None or "'interrupted'" in row[0]:
        return
    # One explicit transaction: a crash half-way leaves the old table, never none.
    statements = [
        "ALTER TABLE runs RENAME TO runs_before_upgrade",
        "DROP INDEX IF EXISTS runs_step",
        *(part for part in SCHEMA.split(";") if part.strip()),
        f"INSERT INTO runs ({COLUMNS}) SELECT {COLUMNS} FROM runs_before_upgrade",
        "DROP TABLE runs_before_upgrade",
    ]
    db.executescript("BEGIN IMMEDIATE;\n" + ";\n".join(statements) + ";\nCOMMIT;")


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


@dataclass
class RunHandle:
    """What a step fills in while it runs; written to the registry when it ends."""

    run_id: str
    step: str
    input_hashes: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)


class RunRegistry:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.path: Path = workspace.internal / "runs.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.workspace.internal_dir()  # refuses a symlinked .attribution or registry file
        try:
            connection = sqlite3.connect(self.path, timeout=30)
            connection.row_factory = sqlite3.Row
            _upgrade(connection)
            connection.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise _registry_error(exc, self.path) from None
        return connection

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction; SQLite's disk and permission failures as errors
        the user can act on."""
        try:
            with contextlib.closing(self._connect()) as db, db:
                yield db
        except sqlite3.Error as exc:
            raise _registry_error(exc, self.path) from None

    @contextlib.contextmanager
    def track(self, step: str, params: dict[str, Any]) -> Iterator[RunHandle]:
        """Record a run of ``step`` while holding the workspace's writer lock; failures are
        recorded with their message and re-raised."""
        handle = RunHandle(run_id=uuid.uuid4().hex[:16], step=step)
        started = time.perf_counter()
        with self.workspace.writer(step, handle.run_id):
            self.workspace.recover()
            with self._db() as db:
                self._mark_interrupted(db)
                db.execute(
                    "INSERT INTO runs (run_id, step, status, started_at, params_json, pid) "
                    "VALUES (?, ?, 'running', ?, ?, ?)",
                    (
                        handle.run_id,
                        step,
                        utc_now(),
                        json.dumps(params, default=str),
                        os.getpid(),
                    ),
                )
            status, error = "failed", None
            try:
                yield handle
                status = "succeeded"
            except BaseException as exc:
                # Not an Exception (a job's cancellation, Ctrl-C): the run was stopped, not
                # broken.
                status = "failed" if isinstance(exc, Exception) else "cancelled"
                error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                # A failed step's own error is the one to report, not a full disk that also
                # refuses its registry row (the next writer marks that run interrupted).
                quiet = contextlib.suppress(WorkspaceError) if error else contextlib.nullcontext()
                with quiet, self._db() as db:
                    db.execute(
                        "UPDATE runs SET status=?, finished_at=?, duration_s=?, "
                        "input_hashes_json=?, outputs_json=?, error=? WHERE run_id=?",
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

    @staticmethod
    def _mark_interrupted(db: sqlite3.Connection) -> None:
        """Runs still 'running' whose process is gone were killed: say so. Called under the
        writer lock, so no other writer can be mid-run; this process's own outer runs (a
        step running another) stay as they are."""
        rows = db.execute("SELECT run_id, pid FROM runs WHERE status = 'running'").fetchall()
        for row in rows:
            if row["pid"] == os.getpid() or _alive(row["pid"]):
                continue
            db.execute(
                "UPDATE runs SET status='interrupted', finished_at=?, error=? WHERE run_id=?",
                (
                    utc_now(),
                    "interrupted: its process ended without recording an outcome (killed, "
                    "out of memory or power loss); its outputs were rolled forward or left "
                    "as they were before it",
                    row["run_id"],
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
        with self._db() as db:
            rows = db.execute(query, (*args, limit)).fetchall()
        return [
            {
                "run_id": r["run_id"],
                "step": r["step"],
                # A run whose process is gone is reported as such before the next writer
                # records it (a reader does not write).
                "status": "interrupted"
                if r["status"] == "running" and not _alive(r["pid"])
                else r["status"],
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


def _registry_error(exc: sqlite3.Error, path: Path) -> WorkspaceError:
    text = str(exc).lower()
    if "disk is full" in text or "disk i/o" in text:
        return disk_error(OSError(28, "No space left on device"), path, "recording the run")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return disk_error(OSError(30, "Read-only file system"), path, "recording the run")
    return WorkspaceError(
        f"the run registry {path} could not be used: {exc}.",
        fix="if the file is damaged, move it aside (it is an audit trail, not an input) and "
        "run the step again.",
        file=str(path),
    )
