"""Resource limits refuse work before it starts; the HTTP transport serves loopback only."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client

from attribution_analysis.server import ServerConfig, build_server
from tests.server.test_stdio_pipeline import HINTS, _clean_error, _payload

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_limits_are_checked_before_any_work(tmp_path):
    server = build_server(
        ServerConfig.at(tmp_path / "root", max_draws=500, max_chains=2, max_rows=100)
    )
    try:
        async with Client(server.mcp) as client:
            call = client.call_tool
            # 52 weeks of campaign-level spend: well over 100 rows per platform file.
            _payload(
                await call(
                    "simulate_workspace",
                    {"workspace": "w", "kind": "mta", "weeks": 52, "channels": 2},
                )
            )
            _clean_error(
                await call("fit_mmm", {"workspace": "w", "sampler": {"draws": 1000}}),
                "1000 draws per chain exceeds this server's limit of 500",
                "--max-draws",
            )
            _clean_error(
                await call("fit_mmm", {"workspace": "w", "sampler": {"draws": 100, "chains": 3}}),
                "3 chains exceeds this server's limit of 2",
                "--max-chains",
            )
            _clean_error(
                await call("allocate", {"workspace": "w", "method": "bayes", "draws": 1000}),
                "1000 draws per chain exceeds this server's limit of 500",
            )
            rows = "has more than 100 rows, this server's limit"
            _clean_error(await call("validate_data", {"workspace": "w"}), rows, "--max-rows")
            # EM and a quick fit sample nothing: their (default) sampler settings are not
            # refused, only the rows are.
            _clean_error(await call("allocate", {"workspace": "w"}), rows)
            _clean_error(await call("fit_mmm", {"workspace": "w", "quick": "map"}), rows)
            assert _payload(await call("list_jobs", {}))["jobs"] == []
    finally:
        server.jobs.shutdown()


async def test_max_jobs_refuses_a_job_beyond_the_limit(tmp_path):
    server = build_server(ServerConfig.at(tmp_path / "root", max_jobs=1))
    try:
        async with Client(server.mcp) as client:
            call = client.call_tool
            _payload(
                await call(
                    "simulate_workspace",
                    {"workspace": "w", "kind": "mta", "weeks": 52, "channels": 2},
                )
            )
            _payload(await call("validate_data", {"workspace": "w"}))
            long_fit = {"workspace": "w", "sampler": {"draws": 5000}, "use_cache": False}
            started = _payload(await call("fit_mmm", long_fit))
            assert started["status"] == "running"
            _clean_error(
                await call("allocate", {"workspace": "w"}),
                "1 background jobs are already running on this server",
            )
            _payload(await call("cancel_job", {"job_id": started["job_id"]}))
            final = _payload(
                await call("get_job", {"job_id": started["job_id"], "wait_seconds": 60})
            )
            assert final["status"] == "cancelled"
            # The slot is free again once the job has ended.
            allocated = _payload(await call("allocate", {"workspace": "w", "wait_seconds": 300}))
            assert allocated["status"] == "succeeded", allocated
    finally:
        server.jobs.shutdown()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listeners(port: int) -> set[str]:
    """Local addresses (hex, as the kernel lists them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                    found.add(address)
    return found


async def test_streamable_http_serves_loopback_only(tmp_path):
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attribution_analysis.server",
            "--transport",
            "streamable-http",
            "--port",
            str(port),
            "--workspace-root",
            str(tmp_path / "root"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() < deadline, "the HTTP server did not start in 60 s"
            time.sleep(0.2)
        if Path("/proc/net/tcp").exists():
            # Bound to 127.0.0.1 (0100007F, little-endian hex), not 0.0.0.0 or [::].
            assert _listeners(port) == {"0100007F"}, _listeners(port)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == set(HINTS)
            listed = _payload(await client.call_tool("list_jobs", {}))
            assert listed == {"jobs": []}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
