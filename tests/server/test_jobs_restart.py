"""Finished jobs survive a server restart; jobs cut off by a restart say so."""

from __future__ import annotations

import pytest
from mcp import Client

from attribution_analysis.server import ServerConfig, build_server
from attribution_analysis.server.jobs import JobManager

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_a_finished_job_is_still_there_after_a_restart(tmp_path):
    config = ServerConfig.at(tmp_path / "root")
    first = build_server(config)
    async with Client(first.mcp) as client:
        await client.call_tool(
            "simulate_workspace", {"workspace": "w", "kind": "mta", "weeks": 52, "channels": 2}
        )
        await client.call_tool("validate_data", {"workspace": "w"})
        started = await client.call_tool("allocate", {"workspace": "w", "wait_seconds": 300})
        job = started.structured_content
        assert job["status"] == "succeeded", job
    first.jobs.shutdown()

    second = build_server(config)  # a new process would build exactly this
    async with Client(second.mcp) as client:
        again = (await client.call_tool("get_job", {"job_id": job["job_id"]})).structured_content
    assert again["status"] == "succeeded"
    assert again["result"]["outputs"] == job["result"]["outputs"]


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
