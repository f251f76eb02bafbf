"""Cancelling a job works even when the library it is inside swallows exceptions.

PyTensor's graph rewriter catches ``Exception`` around each rewrite, logs it and carries
on; a SIGTERM that arrived during compilation was once recorded as a failed job. These
tests run the real job child in a spawned process around steps that behave like that.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time

import pytest
from pydantic import BaseModel

from attribution_analysis.contracts.common import StepAnswer
from attribution_analysis.server import jobs


class _NoParams(BaseModel):
    pass


def _swallowing_step(ctx, params):
    """Like a library loop that catches every Exception and goes on."""
    ctx.progress(0, 1, "started")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the behaviour under test
            time.sleep(0.01)
    return {"done": True}


def _reraising_step(ctx, params):
    """Like a library that turns any error during compilation into its own error."""
    ctx.progress(0, 1, "started")
    try:
        time.sleep(30)
    except Exception as exc:
        raise RuntimeError("compilation failed") from exc
    return {"done": True}


class _Internal(BaseModel):
    count: int


def _invalid_step(ctx, params):
    """A step whose internal contract is broken: pydantic raises inside the step."""
    _Internal.model_validate({"count": "many"})
    return {"done": True}


def _run_child(step_name: str, folder: str, conn) -> None:
    from attribution_analysis import steps

    compute = {
        "swallow": "_swallowing_step",
        "reraise": "_reraising_step",
        "invalid": "_invalid_step",
    }[step_name]
    fake = steps.StepSpec(
        name=step_name,
        title="t",
        description="d",
        params=_NoParams,
        answer=StepAnswer,
        compute=f"{__name__}:{compute}",
    )
    steps.STEPS = [fake, *steps.STEPS]
    jobs._child(step_name, folder, "{}", conn)


@pytest.mark.parametrize("step_name", ["swallow", "reraise"])
def test_sigterm_is_a_cancellation_whatever_the_library_catches(tmp_path, step_name):
    from attribution_analysis.workspace import Workspace

    Workspace.create(tmp_path / "ws")
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_run_child, args=(step_name, str(tmp_path / "ws"), child))
    process.start()
    child.close()
    assert parent.poll(60), "the child never reported progress"
    assert parent.recv()[0] == "progress"
    process.terminate()
    assert parent.poll(20), "the child did not answer the cancellation"
    outcome = parent.recv()
    process.join(10)
    assert outcome[0] == "cancelled", outcome
    assert process.exitcode == 0


def test_a_validation_error_in_a_job_is_worded_like_the_cli(tmp_path):
    """A pydantic ValidationError raised inside a job reaches the client through
    error_payload (field: message, a fix), never as pydantic's raw text."""
    from attribution_analysis.workspace import Workspace

    Workspace.create(tmp_path / "ws")
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_run_child, args=("invalid", str(tmp_path / "ws"), child))
    process.start()
    child.close()
    assert parent.poll(60), "the child never answered"
    status, error = parent.recv()
    process.join(10)
    assert status == "failed", error
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith("count 'many' is refused: ")
    assert error["fix"]
    assert "validation error" not in error["message"]
    assert "errors.pydantic.dev" not in error["message"]


def _cancelling_job(manager: jobs.JobManager, job_id: str, process: object) -> jobs.Job:
    """A fit job the user has asked to cancel, known to the manager and to its database
    (as 'running', which is what the database holds until the process ends)."""
    job = jobs.Job(
        job_id=job_id,
        tool="fit_mmm",
        workspace="w",
        status="cancelling",
        created_at="2026-01-01",
        params={},
        process=process,
    )
    manager.jobs[job_id] = job
    with manager._db() as db:
        db.execute(
            "INSERT INTO jobs (job_id, tool, workspace, status, created_at, params_json) "
            "VALUES (?, 'fit_mmm', 'w', 'running', '2026-01-01', '{}')",
            (job_id,),
        )
    return job


def test_a_failure_reported_after_cancel_is_recorded_as_cancelled(tmp_path):
    manager = jobs.JobManager(tmp_path)

    class _Conn:
        def __init__(self):
            self.messages = [("failed", {"code": "internal_error", "message": "boom"})]

        def recv(self):
            if not self.messages:
                raise EOFError
            return self.messages.pop(0)

    class _Process:
        exitcode = 0

        def join(self, timeout=None):
            return None

    job = _cancelling_job(manager, "j1", _Process())
    manager._watch(job, _Conn())
    assert job.status == "cancelled"
    assert jobs.JobManager(tmp_path).get("j1").status == "cancelled"


class _Ended:
    """A job's pipe whose process ended without sending anything."""

    def recv(self):
        raise EOFError


def test_a_job_stopped_before_it_could_answer_reports_the_cancellation(tmp_path):
    """SIGTERM during the process's start-up (before its handler exists) kills it with
    exit code -15 and no message: that is still the cancellation the user asked for."""

    class _Killed:
        exitcode = -15

        def join(self, timeout=None):
            return None

    manager = jobs.JobManager(tmp_path)
    job = _cancelling_job(manager, "j2", _Killed())
    manager._watch(job, _Ended())
    assert (job.status, job.error) == ("cancelled", jobs.CANCELLED)
    assert jobs.JobManager(tmp_path).get("j2").error == jobs.CANCELLED


def test_cancel_right_after_start_is_a_clean_cancellation(tmp_path):
    """The same with a real process, cancelled while the interpreter is still starting."""
    from attribution_analysis.workspace import Workspace

    folder = Workspace.create(tmp_path / "ws").root
    manager = jobs.JobManager(tmp_path)
    job = manager.start("fit_mmm", "ws", folder, '{"quick": "map"}')
    manager.cancel(job.job_id)
    assert _settle(job), job.status
    assert (job.status, job.error) == ("cancelled", jobs.CANCELLED)


def _settle(job: jobs.Job) -> bool:
    deadline = time.monotonic() + 30
    while job.status not in jobs.TERMINAL and time.monotonic() < deadline:
        time.sleep(0.1)
    return job.status in jobs.TERMINAL


def test_a_job_being_cancelled_still_counts_against_max_jobs(tmp_path):
    from attribution_analysis.errors import ParameterError

    manager = jobs.JobManager(tmp_path, max_jobs=1)
    manager.jobs["j3"] = jobs.Job(
        job_id="j3",
        tool="fit_mmm",
        workspace="w",
        status="cancelling",
        created_at="2026-01-01",
        params={},
    )
    with pytest.raises(ParameterError, match="1 background jobs are already running"):
        manager.start("allocate", "w", tmp_path, "{}")


def test_a_cancelled_run_is_recorded_as_cancelled(tmp_path):
    """The run registry accepts the 'cancelled' status its tracker writes (a CHECK constraint
    once refused it, leaving the run 'running' in the audit trail forever)."""
    from attribution_analysis.registry import RunRegistry
    from attribution_analysis.workspace import Workspace

    registry = RunRegistry(Workspace.create(tmp_path / "ws"))
    with pytest.raises(jobs.JobCancelled), registry.track("fit_mmm", {}):
        raise jobs.JobCancelled()
    (run,) = registry.list_runs()
    assert run["status"] == "cancelled"
