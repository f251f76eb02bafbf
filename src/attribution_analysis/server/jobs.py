"""Background jobs: long steps run in their own process, so the server keeps answering,
a job can be cancelled by stopping its process, and a crash in PyMC cannot take the
server down. Job records live in SQLite under the workspace root and survive restarts.

A job's process is a worker that stays alive after a job that ended normally and takes the
next one, so what it compiled (``mmm.sampling.COMPILED``: nutpie models keyed by model
structure, and PyTensor's in-memory function caches) serves the next fit of the same
structure: a second fit through the server then costs what a second fit in one process
costs. Chosen over an on-disk cache of the compiled model because a nutpie-compiled model
holds Numba function pointers and shared data that nutpie cannot serialise, and pickling
its PyTensor graph would still recompile on load. A worker is never reused after a
cancellation or a crash: cancel still kills the job's process (the runner commits a step's
outputs whole or not at all, so the workspace is left unchanged) and the next job starts a
fresh worker. The first worker need not wait for the first job: when the data were imported
or validated through the server, one is started to import the fitting libraries while the
agent reads that answer (``warm_worker``), and it compiles the model a default ``fit_mmm``
of that workspace would sample (``mmm.fit.precompile``), after ``validate_data``. Until that
compile ends the worker takes only a ``fit_mmm`` of that workspace that compiles a model
(which waits for it and then, in the default configuration, reuses it); any other job goes
to another worker, so a MAP fit or an allocation does not wait behind a compile it does not
need (it shares the cores with it). Likewise, once a fit succeeded, its worker compiles the
two refits of ``validate_model`` (``mmm.refits.precompile``), and until that ends it takes
only a ``validate_model`` of that workspace.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable
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
# A worker retires after this many jobs, bounding what a long-lived process can accumulate
# (compiled models of many structures, fragmentation) at one recompile per this many jobs.
JOBS_PER_WORKER = 25
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
    # Its outcome has arrived and its worker is kept: too late to cancel.
    ended: bool = field(default=False, repr=False)
    updated: threading.Event = field(default_factory=threading.Event, repr=False)
    folder: Path | None = field(default=None, repr=False)  # the workspace it runs in

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
    """Entry point of a one-job process: run one step, report progress, send the outcome."""
    _prepare_process()
    try:
        _run_job(step_name, folder, params_json, conn)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # see _worker
        conn.close()


# What a fit imports before it can build a model (PyMC, PyMC-Marketing, nutpie and Numba
# with them): 3.5-3.8 s of a fresh process on this 2-core machine. A worker started ahead
# of the first job (``JobManager.warm_worker``) imports them while nothing waits for it.
FIT_IMPORTS = ("pymc", "pymc_marketing.mmm", "nutpie", "attribution_analysis.mmm.fit")
# A worker's request to compile ahead for a step: (PRECOMPILE, folder, tool); a default fit
# after the data were validated, validate_model's refits after a fit.
PRECOMPILE = "precompile"


def _import_fit_libraries() -> None:
    import importlib

    for name in FIT_IMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # the job that needs it will report it, in its own words
            logger.exception("a warm worker could not import %s", name)
            return


def _precompile(folder: str, tool: str = "fit_mmm") -> None:
    """Compile what the step ``tool`` with its defaults would compile in the workspace in
    ``folder``, keeping it in this process for that step, which usually follows: a default
    fit's model (``mmm.fit.precompile``), or ``validate_model``'s refits of the fit
    (``mmm.refits.precompile``). A workspace where that step cannot run yet (data not
    validated, no fit, ...) is skipped: the step itself will say why, in its own words."""
    from attribution_analysis.errors import AttributionError
    from attribution_analysis.workspace import Workspace

    if tool == "validate_model":
        from attribution_analysis.mmm.refits import precompile
    else:
        from attribution_analysis.mmm.fit import precompile  # type: ignore[assignment]

    start = time.perf_counter()
    try:
        compiled = precompile(Workspace.open(folder))
    except AttributionError as exc:
        logger.info("nothing compiled ahead of %s for %s: %s", tool, folder, exc)
        return
    except Exception:  # never fatal: the step compiles it again and reports any error
        logger.warning("compiling ahead of %s for %s failed", tool, folder, exc_info=True)
        return
    if compiled:
        logger.info(
            "compiled ahead of %s for %s in %.1f s", tool, folder, time.perf_counter() - start
        )


def _worker(conn, pending=None, warm: bool = False) -> None:
    """Entry point of a worker process: run the jobs the server sends, one after the other,
    until it sends ``None``, closes the pipe, or a job ends in a way that leaves the process
    unfit for another (cancelled, crashed). ``warm``: import the fitting libraries first (a
    job sent meanwhile waits in the pipe). A ``(PRECOMPILE, folder, tool)`` request compiles
    ahead what that step would compile (``_precompile``) and then counts ``pending`` down (the
    server counts it up when it sends the request)."""
    _prepare_process()
    try:
        if warm:
            _import_fit_libraries()
        while True:
            request = conn.recv()
            if request is None:
                return
            if request[0] == PRECOMPILE:
                try:
                    _precompile(*request[1:])
                finally:
                    if pending is not None:
                        with pending.get_lock():
                            pending.value -= 1
                continue
            if not _run_job(*request, conn):
                return
    except (EOFError, JobCancelled):  # the server went away or stopped an idle worker
        return
    finally:
        # A stop that arrives while the interpreter shuts down must end it quietly, not
        # raise JobCancelled inside an exit handler (which prints a traceback to stderr).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.close()


_cancel_requested = False


def _prepare_process() -> None:
    def stop(signum, frame):
        global _cancel_requested
        _cancel_requested = True
        raise JobCancelled()

    signal.signal(signal.SIGTERM, stop)
    # The process inherits the server's stdout, which is the stdio transport: anything a
    # library writes there (from Python or native code) would corrupt the protocol.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _run_job(step_name: str, folder: str, params_json: str, conn) -> bool:
    """Run one step and send its outcome; whether the process may run another job."""
    from pydantic import ValidationError

    from attribution_analysis.errors import AttributionError
    from attribution_analysis.frontends.output import error_payload
    from attribution_analysis.steps import execute, step
    from attribution_analysis.workspace import Workspace

    def progress(done: float, total: float, message: str) -> None:
        conn.send(("progress", float(done), float(total), str(message)))

    try:
        spec = step(step_name)
        params = spec.params.model_validate_json(params_json)
        payload = execute(spec, Workspace.open(folder), params, progress, "mcp")
        conn.send(("succeeded", payload))
        return True
    except BaseException as exc:
        # After a cancel request, whatever surfaces (JobCancelled, or another error a library
        # raised while unwinding) is the cancellation.
        if _cancel_requested or isinstance(exc, JobCancelled):
            conn.send(("cancelled", CANCELLED))
            return False
        if isinstance(exc, (AttributionError, ValidationError)):
            # A ValidationError raised inside a step (an internal contract) is worded as the
            # CLI and the inline path word it, never as pydantic's raw text.
            conn.send(("failed", error_payload(exc, "mcp")))
            return True
        if isinstance(exc, Exception):  # a crash: the message, never a traceback
            message = f"{type(exc).__name__}: {exc}".strip()[:500]
            conn.send(("failed", {"code": "internal_error", "message": message}))
            return False
        raise


@dataclass
class Worker:
    """A job process and the server's end of its pipe."""

    process: Any
    conn: Any
    # Compiles ahead sent and not yet ended (a shared integer: ``JobManager.warm_worker``);
    # ``compiled_for`` names the workspace folder, and ``compiled_tool`` the step, it
    # compiles, or compiled, ahead for.
    pending: Any = None
    compiled_for: str | None = None
    compiled_tool: str = "fit_mmm"
    jobs_run: int = 0
    last_workspace: str | None = None
    last_tool: str | None = None

    def busy_compiling(self) -> bool:
        # A worker that died while compiling is not busy: the next job finds it dead.
        # Alive first: the counter's lock is shared with the worker's process.
        return self.process.is_alive() and self.pending is not None and self.pending.value > 0

    def takes(self, tool: str, folder: str, params_json: str) -> bool:
        """Whether a job may be sent now: any job when ready; while it compiles ahead, only
        the step it compiles for, in that workspace, and for a fit only one that compiles a
        model (the likeliest to reuse it; one of another configuration waits, then compiles
        its own from a warmer Numba cache)."""
        return not self.busy_compiling() or self.holds_model_for(tool, folder, params_json)

    def holds_model_for(self, tool: str, folder: str, params_json: str) -> bool:
        """Whether the job is the step, in the workspace, this worker compiled ahead for."""
        if tool != self.compiled_tool or folder != self.compiled_for:
            return False
        if tool == "validate_model":
            return _uses_refits_compiled_ahead(params_json)
        return _compiles_one_model(params_json)


def _surplus(idle: list[Worker], size: int) -> list[Worker]:
    """The idle workers to retire so that at most ``size`` stay: the oldest first, never one
    compiling ahead (its compile would be lost); the pool may exceed its size until that
    compile ends."""
    excess = max(0, len(idle) - size)
    return [w for w in idle if not w.busy_compiling()][:excess]


@functools.lru_cache(maxsize=64)  # asked once per idle worker while one job is placed
def _compiles_one_model(params_json: str) -> bool:
    from attribution_analysis.contracts.mmm import FitMMMParams

    try:
        return FitMMMParams.model_validate_json(params_json).compiles_one_model()
    except ValueError:  # the job itself will refuse it, in its own words
        return False


@functools.lru_cache(maxsize=64)
def _uses_refits_compiled_ahead(params_json: str) -> bool:
    """Whether a validation makes a refit that ``mmm.refits.precompile`` compiles (those of
    a default validation): one that makes none, or a backtest of other weeks only, need not
    wait for the compile."""
    from attribution_analysis.contracts.mmm import ValidateModelParams

    try:
        params = ValidateModelParams.model_validate_json(params_json)
    except ValueError:  # the job itself will refuse it, in its own words
        return False
    default = ValidateModelParams().backtest_periods
    return params.sensitivity_refit or params.backtest_periods == default


class JobManager:
    def __init__(
        self,
        root: Path,
        max_jobs: int = 2,
        on_success: Callable[[str, Path], None] | None = None,
    ) -> None:
        """``on_success(tool, folder)``: called when a job succeeds (the server draws the
        report's charts then: ``server/prefetch.py``); its errors are logged, never raised."""
        self.on_success = on_success
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
        # Workers whose last job ended normally, waiting for the next (at most max_jobs).
        self.idle: list[Worker] = []
        self.closed = False  # shut down: no new worker is started ahead of a job
        # Whether warm_worker compiles a default fit's model ahead (--no-compile-ahead).
        self.compile_ahead = True
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
                folder=folder,
            )
            self.jobs[job.job_id] = job
        with self._db() as db:
            db.execute(
                "INSERT INTO jobs (job_id, tool, workspace, status, created_at, params_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job.job_id, tool, workspace, job.status, job.created_at, params_json),
            )
        worker = self._send(job, folder, params_json)
        threading.Thread(target=self._watch, args=(job, worker.conn, worker), daemon=True).start()
        return job

    def _send(self, job: Job, folder: Path, params_json: str) -> Worker:
        """Hand the job to an idle worker (preferring one that last worked on the same
        workspace, then on the same tool: the likeliest to hold its compiled model), or to
        a new one."""
        request = (job.tool, str(folder), params_json)
        while True:
            with self.lock:
                ranked = sorted(
                    (w for w in self.idle if w.takes(job.tool, str(folder), params_json)),
                    key=lambda w: (
                        w.holds_model_for(job.tool, str(folder), params_json),
                        w.last_workspace == str(folder),
                        w.last_tool == job.tool,
                    ),
                    reverse=True,
                )
                worker = ranked[0] if ranked else None
                if worker is not None:
                    self.idle.remove(worker)
            if worker is None:
                break
            try:
                if worker.process.is_alive():
                    worker.conn.send(request)
                    break
            except (OSError, ValueError):  # it died while idle: start another
                pass
            self._retire(worker)
        if worker is None:
            worker = self._spawn()
            worker.conn.send(request)
        worker.jobs_run += 1
        worker.last_workspace, worker.last_tool = str(folder), job.tool
        job.process = worker.process
        if worker.busy_compiling():  # what get_job shows until the step reports progress
            job.message = f"waiting for what is compiled ahead for this workspace's {job.tool}"
        return worker

    def _spawn(self, warm: bool = False) -> Worker:
        parent, child = self.context.Pipe(duplex=True)
        pending = self.context.Value("i", 0)
        process = self.context.Process(target=_worker, args=(child, pending, warm), daemon=True)
        process.start()
        child.close()
        return Worker(process=process, conn=parent, pending=pending)

    def warm_worker(self, folder: Path | None = None) -> bool:
        """Get a worker ready for the fit that usually follows a data step, while nothing
        waits for it: start one that imports the fitting libraries when none is idle, and
        with ``folder`` (a workspace whose data were just validated) have it compile the
        model a default ``fit_mmm`` of that workspace would sample (``_precompile``). None
        starts while a job runs (it would take the job's cores); while a worker compiles
        ahead for another workspace, none either; for the same workspace (validated again)
        the request queues behind it. Whether a worker was started or asked to compile.
        (After a fit, ``_watch`` asks the fit's own worker for ``validate_model``'s refits.)"""
        if not self.compile_ahead:
            folder = None
        with self.lock:
            # Not beside running jobs: its imports would take their cores, and the worker
            # that ends first would make it surplus.
            if self.closed or self.running():
                return False
            busy = [w for w in self.idle if w.busy_compiling()]
            if busy and (folder is None or busy[0].compiled_for != str(folder)):
                return False
            if folder is None and self.idle:
                return False
            # The worker compiling for it, else the idle one likeliest to hold that
            # workspace's model already (then the compile ahead is a look-up), else any,
            # else a new one.
            ranked = busy or sorted(
                self.idle,
                key=lambda w: (w.compiled_for == str(folder), w.last_workspace == str(folder)),
                reverse=True,
            )
            worker = ranked[0] if ranked else self._spawn(warm=True)
            if worker not in self.idle:
                self.idle.append(worker)
            if folder is None:
                return True
            return self._compile_ahead(worker, folder, "fit_mmm")

    def _compile_ahead(self, worker: Worker, folder: Path, tool: str) -> bool:
        """Send an idle worker a compile ahead of ``tool`` in ``folder`` (the caller holds
        ``self.lock``); whether it was sent."""
        try:
            with worker.pending.get_lock():
                worker.pending.value += 1
            worker.compiled_for, worker.compiled_tool = str(folder), tool
            worker.jobs_run += 1  # each compile ahead may leave a model in the worker
            worker.conn.send((PRECOMPILE, str(folder), tool))
        except (OSError, ValueError):  # it died while idle: the next job starts another
            with worker.pending.get_lock():
                worker.pending.value = 0
            self.idle.remove(worker)
            self._retire(worker)
            return False
        return True

    def _watch(self, job: Job, conn, worker: Worker | None = None) -> None:
        """Follow a job's pipe until its outcome arrives or its process ends, then record
        the outcome and, when the worker may run another job, put it back in the pool.
        Whatever happens here, the job ends with a final status: a watcher that died would
        leave it 'running' for ever, holding one of the server's job slots."""
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
        # Decided under the lock that cancel() takes: a job either is cancelled (its worker
        # is stopped and never reused) or has ended before the cancel could see it running.
        with self.lock:
            reuse = (
                worker is not None
                and outcome is not None
                and job.status == "running"
                and _worker_survives(outcome)
            )
            job.ended = reuse  # cancel() now leaves it alone
        # Back in the pool before the job is seen to end: a client that starts its next fit
        # as soon as this one reports success finds the warm worker.
        surplus: list[Worker] = []
        if worker is not None and reuse and worker.jobs_run < JOBS_PER_WORKER:
            with self.lock:
                self.idle.append(worker)
                self._compile_next_ahead(job, outcome, worker)
                surplus = _surplus(self.idle, self.max_jobs)
                self.idle = [w for w in self.idle if w not in surplus]
        elif worker is not None:
            surplus = [worker]
        try:
            self._settle(job, outcome, ended=not reuse)
        except Exception:  # the job table is unwritable (disk full, ...): keep it in memory
            logger.exception("could not record the end of job %s", job.job_id)
            if job.status not in TERMINAL:
                job.error = job.error or {"message": "the job's end could not be recorded."}
                job.message, job.status = job.error["message"], "failed"
            job.updated.set()
        for old in surplus:
            self._retire(old)

    def _compile_next_ahead(
        self, job: Job, outcome: tuple[str, dict[str, Any]] | None, worker: Worker
    ) -> None:
        """After a fit succeeded, its worker (back in the pool, the caller holds
        ``self.lock``) compiles ``validate_model``'s refits of it, which the agent usually
        asks for next, while the agent reads the fit's answer (``mmm/refits.py``). Not
        beside other running jobs (it would take their cores), nor with --no-compile-ahead.
        Before the job is seen to end, so that a validation sent at once finds the worker
        busy for it and queues behind the compile rather than compiling its own."""
        if (
            job.tool != "fit_mmm"
            or not self.compile_ahead
            or self.closed
            or job.folder is None
            or outcome is None
            or outcome[0] != "succeeded"
            or any(
                j is not job and j.status in {"queued", "running", "cancelling"}
                for j in self.jobs.values()
            )
        ):
            return
        self._compile_ahead(worker, job.folder, "validate_model")

    @staticmethod
    def _retire(worker: Worker) -> None:
        """Ask a worker to exit (stopping it if it will not) and close its pipe."""
        with contextlib.suppress(Exception):
            if worker.process.is_alive():
                worker.conn.send(None)
                worker.process.join(timeout=CANCEL_GRACE_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
        with contextlib.suppress(Exception):
            worker.conn.close()

    @staticmethod
    def _follow(job: Job, conn) -> tuple[str, dict[str, Any]] | None:
        """Progress until the job's outcome (returned), or None if its process ended first."""
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return None
            if message[0] == "progress":
                _, job.progress, job.total, job.message = message
                job.updated.set()
            else:
                return (message[0], message[1])

    @staticmethod
    def _stop(job: Job) -> None:
        with contextlib.suppress(Exception):
            if job.process.is_alive():
                job.process.terminate()
                job.process.join(timeout=CANCEL_GRACE_SECONDS)
            if job.process.is_alive():
                job.process.kill()

    def _settle(
        self, job: Job, outcome: tuple[str, dict[str, Any]] | None, ended: bool = True
    ) -> None:
        """Record the job's final status; ``ended``: its process is exiting (a worker kept
        for the next job is not waited for)."""
        if ended:
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
        if status == "succeeded" and self.on_success is not None and job.folder is not None:
            try:
                self.on_success(job.tool, job.folder)
            except Exception:
                logger.warning("the hook after job %s failed", job.job_id, exc_info=True)

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
        with self.lock:
            # ended: the job is over and its outcome is being recorded.
            if job.status in TERMINAL or job.ended or job.process is None:
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
        self.closed = True
        for job in list(self.jobs.values()):
            if job.status not in TERMINAL and job.process is not None:
                job.process.terminate()
        with self.lock:
            idle, self.idle = self.idle, []
        for worker in idle:
            with contextlib.suppress(Exception):
                worker.process.terminate()


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


def _worker_survives(outcome: tuple[str, dict[str, Any]]) -> bool:
    """A worker takes another job after a success or a refused input, never after a crash
    (its state is unknown) or a cancellation (its process is being stopped)."""
    status, body = outcome
    return status == "succeeded" or (status == "failed" and body.get("code") != "internal_error")
