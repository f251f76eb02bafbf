"""Background jobs: long steps run in their own process, so the server keeps answering,
a job can be cancelled by stopping its process, and a crash in PyMC cannot take the
server down. Job records live in SQLite under the workspace root and survive restarts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution_analysis.errors import WorkspaceError
from attribution_analysis.provenance import utc_now
from attribution_analysis.server.config import shorten
from attribution_analysis.workspace import Workspace

logger = logging.getLogger(__name__)

TERMINAL = {"succeeded", "failed", "cancelled", "interrupted"}
CANCEL_GRACE_SECONDS = 10.0
CANCELLED = {"message": "the job was cancelled; no output was written."}

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    workspace TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    params_json TEXT NOT NULL,
    result_json TEXT,
    error_json TEXT,
    progress REAL
);
"""
# Error fields cut to a bounded length before they are stored or returned (a step's error
# may quote its input, and an input may hold a 100 MB field).
ERROR_TEXT_FIELDS = ("message", "problem", "fix")


class JobCancelled(BaseException):
    """Raised inside a job's process when the server asks it to stop.

    A BaseException, like KeyboardInterrupt, because libraries on the fitting path catch
    ``Exception`` and carry on (PyTensor's graph rewriter logs and skips a failing rewrite),
    which would swallow the cancellation and let the job run on or fail for another reason.
    """


@dataclass
class Job:
    job_id: str
    tool: str
    workspace: str
    status: str  # queued | running | succeeded | failed | cancelled | interrupted
    created_at: str
    params: dict[str, Any]
    progress: float | None = 0.0  # None: not known (a job read back from before this field)
    total: float = 1.0
    message: str = ""
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    finished_at: str | None = None
    process: Any = field(default=None, repr=False)
    updated: threading.Event = field(default_factory=threading.Event, repr=False)

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "tool": self.tool,
            "workspace": self.workspace,
            "status": self.status,
            "progress": self.share(),
            "message": self.message,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
        }

    def share(self) -> float | None:
        """Share done, 0 to 1. Only a succeeded job reports 1: a job that failed or was
        cancelled keeps the share it reached, or None when that share was 1 (a phase, such
        as sampling, had finished, and the job then failed) or is not known."""
        if self.status == "succeeded":
            return 1.0
        if self.progress is None or not self.total:
            return None
        share = round(self.progress / self.total, 4)
        return share if share < 1.0 else None


def _child(step_name: str, folder: str, params_json: str, conn) -> None:
    """Entry point of a job's process: run one step, report progress, send the outcome."""

    cancel_requested = False

    def stop(signum, frame):
        nonlocal cancel_requested
        cancel_requested = True
        raise JobCancelled()

    signal.signal(signal.SIGTERM, stop)
    # The process inherits the server's stdout, which is the stdio transport: anything a
    # library writes there (from Python or native code) would corrupt the protocol.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    from pydantic import ValidationError

    from attribution_analysis.errors import AttributionError
    from attribution_analysis.frontends.output import error_payload
    from attribution_analysis.steps import execute, step
    from attribution_analysis.workspace import Workspace

    spec = step(step_name)

    def progress(done: float, total: float, message: str) -> None:
        conn.send(("progress", float(done), float(total), str(message)))

    try:
        params = spec.params.model_validate_json(params_json)
        payload = execute(spec, Workspace.open(folder), params, progress, "mcp")
        conn.send(("succeeded", payload))
    except BaseException as exc:
        # After a cancel request, whatever surfaces (JobCancelled, or another error a library
        # raised while unwinding) is the cancellation.
        if cancel_requested or isinstance(exc, JobCancelled):
            conn.send(("cancelled", CANCELLED))
        elif isinstance(exc, (AttributionError, ValidationError)):
            # A ValidationError raised inside a step (an internal contract) is worded as the
            # CLI and the inline path word it, never as pydantic's raw text.
            conn.send(("failed", error_payload(exc, "mcp")))
        elif isinstance(exc, Exception):  # a crash: the message, never a traceback
            message = f"{type(exc).__name__}: {exc}".strip()[:500]
            conn.send(("failed", {"code": "internal_error", "message": message}))
        else:
            raise
    finally:
        conn.close()


class JobManager:
    def __init__(self, root: Path, max_jobs: int = 2) -> None:
        # The server's own files follow the workspace rule: inside the root, no symlink out
        # (Workspace.internal_dir refuses a symlinked .attribution or registry file).
        Path(root).mkdir(parents=True, exist_ok=True)
        internal = Workspace(Path(root).resolve()).internal_dir()
        self.db_path = internal / "jobs.sqlite"
        if self.db_path.is_symlink():
            raise WorkspaceError(
                f"{self.db_path} is a symlink; the server's job table must live inside its root.",
                fix=f"remove {self.db_path} and start the server again.",
            )
        self.max_jobs = max_jobs
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.context = multiprocessing.get_context("spawn")
        with self._db() as db:
            # Job tables written before the progress column existed gain it.
            columns = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            if "progress" not in columns:
                db.execute("ALTER TABLE jobs ADD COLUMN progress REAL")
            # Jobs that were running when the server stopped cannot be resumed.
            db.execute(
                "UPDATE jobs SET status='interrupted', finished_at=?, error_json=? "
                "WHERE status IN ('queued', 'running')",
                (
                    utc_now(),
                    json.dumps(
                        {"message": "the server stopped while this job ran; start it again."}
                    ),
                ),
            )

    @contextlib.contextmanager
    def _db(self):
        connection = sqlite3.connect(self.db_path, timeout=30)
        connection.row_factory = sqlite3.Row
        try:
            connection.executescript(SCHEMA)
            with connection:
                yield connection
        finally:
            connection.close()

    def running(self) -> int:
        # A job being cancelled still holds its process (up to the grace period, or stuck in
        # native code), so it still counts against the limit.
        active = {"queued", "running", "cancelling"}
        return sum(1 for j in self.jobs.values() if j.status in active)

    def start(self, tool: str, workspace: str, folder: Path, params_json: str) -> Job:
        from attribution_analysis.errors import ParameterError

        with self.lock:
            if self.running() >= self.max_jobs:
                raise ParameterError(
                    f"{self.max_jobs} background jobs are already running on this server.",
                    fix="wait for one to finish (get_job) or cancel one (cancel_job).",
                )
            job = Job(
                job_id=uuid.uuid4().hex[:12],
                tool=tool,
                workspace=workspace,
                status="running",
                created_at=utc_now(),
                params=json.loads(params_json),
            )
            self.jobs[job.job_id] = job
        with self._db() as db:
            db.execute(
                "INSERT INTO jobs (job_id, tool, workspace, status, created_at, params_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job.job_id, tool, workspace, job.status, job.created_at, params_json),
            )
        parent, child = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=_child, args=(tool, str(folder), params_json, child), daemon=True
        )
        process.start()
        child.close()
        job.process = process
        threading.Thread(target=self._watch, args=(job, parent), daemon=True).start()
        return job

    def _watch(self, job: Job, conn) -> None:
        """Follow a job's pipe until its process ends, then record the outcome. Whatever
        happens here, the job ends with a final status: a watcher that died would leave it
        'running' for ever, holding one of the server's job slots."""
        outcome: tuple[str, dict[str, Any]] | None = None
        try:
            outcome = self._follow(job, conn)
        except Exception as exc:  # a broken pipe, a message that cannot be unpickled, ...
            logger.exception("lost contact with job %s", job.job_id)
            self._stop(job)
            outcome = (
                "failed",
                {
                    "code": "internal_error",
                    "message": "the server lost contact with the job's process "
                    f"({type(exc).__name__}: {exc}); it was stopped (outputs are committed "
                    "whole or not at all).",
                },
            )
        try:
            self._settle(job, outcome)
        except Exception:  # the job table is unwritable (disk full, ...): keep it in memory
            logger.exception("could not record the end of job %s", job.job_id)
            if job.status not in TERMINAL:
                job.error = job.error or {"message": "the job's end could not be recorded."}
                job.message, job.status = job.error["message"], "failed"
            job.updated.set()

    @staticmethod
    def _follow(job: Job, conn) -> tuple[str, dict[str, Any]] | None:
        outcome: tuple[str, dict[str, Any]] | None = None
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return outcome
            if message[0] == "progress":
                _, job.progress, job.total, job.message = message
                job.updated.set()
            else:
                outcome = (message[0], message[1])

    @staticmethod
    def _stop(job: Job) -> None:
        with contextlib.suppress(Exception):
            if job.process.is_alive():
                job.process.terminate()
                job.process.join(timeout=CANCEL_GRACE_SECONDS)
            if job.process.is_alive():
                job.process.kill()

    def _settle(self, job: Job, outcome: tuple[str, dict[str, Any]] | None) -> None:
        job.process.join(timeout=CANCEL_GRACE_SECONDS)
        if job.status == "cancelling" and outcome is not None and outcome[0] == "failed":
            # The user asked to stop: a failure after the signal is the cancellation itself.
            outcome = ("cancelled", CANCELLED)
        if outcome is None and job.status == "cancelling":
            # Stopped before its SIGTERM handler was installed (still starting up) or killed
            # after the grace period: a cancellation all the same, and nothing was written.
            outcome = ("cancelled", CANCELLED)
        if outcome is None:
            outcome = (
                "failed",
                {
                    "message": "the job's process ended without a result "
                    f"(exit code {job.process.exitcode})."
                },
            )
        self._finish(job, *outcome)

    def _finish(self, job: Job, status: str, body: dict[str, Any]) -> None:
        job.finished_at = utc_now()
        if status == "succeeded":
            job.result = body
            job.progress, job.message = job.total, "done"
        else:
            job.error = _bounded_error(body, status)
            job.message = job.error["message"]
        job.status = status  # last: a reader that sees a final status sees its fields
        try:
            with self._db() as db:
                db.execute(
                    "UPDATE jobs SET status=?, finished_at=?, result_json=?, error_json=?, "
                    "progress=? WHERE job_id=?",
                    (
                        status,
                        job.finished_at,
                        json.dumps(job.result) if job.result is not None else None,
                        json.dumps(job.error) if job.error is not None else None,
                        job.share(),
                        job.job_id,
                    ),
                )
        finally:
            job.updated.set()

    def get(self, job_id: str) -> Job:
        from attribution_analysis.errors import ParameterError

        if job_id in self.jobs:
            return self.jobs[job_id]
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            raise ParameterError(
                f"no job '{job_id}' on this server.", fix="use a job id from list_jobs."
            )
        return Job(
            job_id=row["job_id"],
            tool=row["tool"],
            workspace=row["workspace"],
            status=row["status"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            params=json.loads(row["params_json"]),
            progress=1.0 if row["status"] == "succeeded" else row["progress"],
            result=json.loads(row["result_json"]) if row["result_json"] else None,
            error=json.loads(row["error_json"]) if row["error_json"] else None,
        )

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status in TERMINAL or job.process is None:
            return job
        job.status = "cancelling"
        job.process.terminate()  # SIGTERM: the step raises JobCancelled and writes nothing
        threading.Thread(target=self._reap, args=(job,), daemon=True).start()
        return job

    def _reap(self, job: Job) -> None:
        job.process.join(timeout=CANCEL_GRACE_SECONDS)
        if job.process.is_alive():  # stuck in native code: stop it hard
            job.process.kill()

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT job_id FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            {k: v for k, v in self.get(r["job_id"]).view().items() if k not in {"result"}}
            for r in rows
        ]

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            if job.status not in TERMINAL and job.process is not None:
                job.process.terminate()


def _bounded_error(body: dict[str, Any], status: str) -> dict[str, Any]:
    """The error as stored and returned: a non-empty message, and no text field longer
    than ``shorten`` allows."""
    error = dict(body) if isinstance(body, dict) else {"message": str(body)}
    for key in ERROR_TEXT_FIELDS:
        if isinstance(error.get(key), str):
            error[key] = shorten(error[key])
    if not str(error.get("message") or "").strip():
        error["message"] = f"the job ended as '{status}' without saying why."
    return error
