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

from attribution_analysis.server import jobs


class _NoParams(BaseModel):
    pass


def _swallowing_step(ws, params, progress):
    """Like a library loop that catches every Exception and goes on."""
    progress(0, 1, "started")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the behaviour under test
            time.sleep(0.01)
    return {"done": True}


def _reraising_step(ws, params, progress):
    """Like a library that turns any error during compilation into its own error."""
    progress(0, 1, "started")
    try:
        time.sleep(30)
    except Exception as exc:
        raise RuntimeError("compilation failed") from exc
    return {"done": True}


def _run_child(step_name: str, folder: str, conn) -> None:
    from attribution_analysis import steps

    runner = {"swallow": _swallowing_step, "reraise": _reraising_step}[step_name]
    fake = steps.StepSpec(name=step_name, title="t", description="d", params=_NoParams, run=runner)
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

    job = jobs.Job(
        job_id="j1",
        tool="fit_mmm",
        workspace="w",
        status="cancelling",
        created_at="2026-01-01",
        params={},
        process=_Process(),
    )
    manager.jobs[job.job_id] = job
    with manager._db() as db:
        db.execute(
            "INSERT INTO jobs (job_id, tool, workspace, status, created_at, params_json) "
            "VALUES ('j1', 'fit_mmm', 'w', 'running', '2026-01-01', '{}')"
        )
    manager._watch(job, _Conn())
    assert job.status == "cancelled"
    assert jobs.JobManager(tmp_path).get("j1").status == "cancelled"
