"""Finished jobs survive a server restart; jobs cut off by a restart say so."""

from __future__ import annotations

import pytest
from mcp import Client

from attribution_analysis.server.jobs import JobManager
from tests.server.test_stdio_pipeline import _params, _payload

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_a_finished_job_is_still_there_after_a_restart(tmp_path):
    root = tmp_path / "root"
    # Two server processes on the same root, one after the other: the second has nothing
    # in memory, so whatever it answers comes from the job table on disk.
    async with Client(_params(root), read_timeout_seconds=300) as client:
        call = client.call_tool
        _payload(
            await call(
                "simulate_workspace", {"workspace": "w", "kind": "mta", "weeks": 52, "channels": 2}
            )
        )
        _payload(await call("validate_data", {"workspace": "w"}))
        job = _payload(await call("allocate", {"workspace": "w", "wait_seconds": 300}))
        assert job["status"] == "succeeded", job

    async with Client(_params(root), read_timeout_seconds=300) as client:
        again = _payload(await client.call_tool("get_job", {"job_id": job["job_id"]}))
        listed = _payload(await client.call_tool("list_jobs", {}))
    assert again["status"] == "succeeded"
    assert again["result"] == job["result"]
    assert [j["job_id"] for j in listed["jobs"]] == [job["job_id"]]


def test_jobs_running_at_shutdown_are_marked_interrupted(tmp_path):
    manager = JobManager(tmp_path)
    with manager._db() as db:
        db.execute(
            "INSERT INTO jobs (job_id, tool, workspace, status, created_at, params_json) "
            "VALUES ('abc', 'fit_mmm', 'w', 'running', '2026-01-01', '{}')"
        )
    restarted = JobManager(tmp_path)
    job = restarted.get("abc")
    assert job.status == "interrupted"
    assert "start it again" in job.error["message"]
