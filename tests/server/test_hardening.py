"""Server hardening: nothing escapes, nothing crashes, nothing is lost.

Odd workspace names, limits below one, a failed job's progress, raw files too large to
read, error texts (never empty, never huge) and the HTTP transport's bearer token and
idle-session expiry. Network traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

import attribution_analysis.server as server_module
from attribution_analysis.errors import ParameterError, WorkspaceError
from attribution_analysis.server import ServerConfig, build_server, jobs
from attribution_analysis.server.config import MAX_ERROR_CHARS, shorten
from tests.server.test_limits_and_http import _free_port, _listeners
from tests.server.test_stdio_pipeline import HINTS, _clean_error, _payload

TOKEN = "hardening-test-token-0123456789"
SERVER = [sys.executable, "-m", "attribution_analysis.server"]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ATTRIBUTION_MCP_TOKEN"}
    return {**env, "PYTHONWARNINGS": "ignore", **extra}


# ----- 1. workspace names ----------------------------------------------------------------------
ODD_NAMES = {
    "newline": ("shop\nevil", "control character"),
    "carriage return": ("shop\r", "control character"),
    "tab": ("a\tb", "control character"),
    "nul": ("a\x00b", "control character"),
    "reserved": (".attribution", "starting with '.'"),
    "hidden": (".hidden", "starting with '.'"),
    "dot": (".", "starting with '.'"),
    "nested raw": ("good/raw", "one folder name"),
    "nested": ("a/b", "one folder name"),
    "backslash": ("a\\b", "one folder name"),
    "space": ("my shop", "' '"),
    "unicode": ("caf\u00e9", "'\\xe9'"),
    "too long": ("w" * 65, "64 characters"),
}


@pytest.mark.parametrize(("name", "reason"), list(ODD_NAMES.values()), ids=list(ODD_NAMES.keys()))
def test_odd_workspace_names_are_refused(tmp_path, name, reason):
    config = ServerConfig.at(tmp_path / "root")
    (config.root / ".attribution").mkdir()  # where the job table lives
    (config.root / "good" / "raw").mkdir(parents=True)
    for must_exist in (True, False):
        with pytest.raises(WorkspaceError) as raised:
            config.locate(name, must_exist=must_exist)
        message = str(raised.value)
        assert "workspace name" in message, message
        assert reason in message, message
        # The rule is stated so the caller can fix the call.
        assert "letters, digits" in message, message
        # The name is shown escaped: a newline in it cannot forge a line of the reply.
        assert "\n" not in message and "\r" not in message and "\x00" not in message


@pytest.mark.parametrize("name", ["shop", "Shop_2024", "a-b.c", "w" * 64, "9"])
def test_plain_workspace_names_are_accepted(tmp_path, name):
    config = ServerConfig.at(tmp_path / "root")
    assert config.locate(name, must_exist=False) == config.root / name


@pytest.mark.anyio
async def test_odd_workspace_names_are_clean_tool_errors(tmp_path):
    server = build_server(ServerConfig.at(tmp_path / "root"))
    try:
        async with Client(server.mcp) as client:
            for name in ("good/raw", ".attribution", "x\ny"):
                result = await client.call_tool(
                    "simulate_workspace", {"workspace": name, "kind": "mta", "weeks": 52}
                )
                _clean_error(result, "is not a workspace name")
            assert not (tmp_path / "root" / "good").exists()
            assert not (tmp_path / "root" / ".attribution" / "raw").exists()
    finally:
        server.jobs.shutdown()


# ----- 2. limits below one -----------------------------------------------------------------------
LIMIT_FLAGS = [
    ("--max-jobs", "0"),
    ("--max-jobs", "-1"),
    ("--max-draws", "0"),
    ("--max-chains", "-3"),
    ("--max-rows", "0"),
    ("--max-input-bytes", "0"),
    ("--max-argument-bytes", "-1"),
    ("--session-idle-seconds", "0"),
    ("--port", "0"),
]


@pytest.mark.parametrize(("flag", "value"), LIMIT_FLAGS, ids=[" ".join(f) for f in LIMIT_FLAGS])
def test_limits_below_one_are_refused_at_startup(tmp_path, monkeypatch, capsys, flag, value):
    def started(*args, **kwargs):
        raise AssertionError("the server was built despite an invalid limit")

    monkeypatch.setattr(server_module, "build_server", started)
    with pytest.raises(SystemExit) as raised:
        server_module.main(["--workspace-root", str(tmp_path / "root"), flag, value])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "must be" in err, err
    assert not (tmp_path / "root").exists()  # refused before touching the disk


@pytest.mark.parametrize(
    "limit", ["max_draws", "max_chains", "max_rows", "max_jobs", "max_input_bytes"]
)
def test_server_config_refuses_limits_below_one(tmp_path, limit):
    for value in (0, -1):
        with pytest.raises(ValueError, match=f"{limit.replace('_', '-')} must be"):
            ServerConfig.at(tmp_path / "root", **{limit: value})


def test_max_jobs_zero_exits_2_with_a_message(tmp_path):
    done = subprocess.run(
        [*SERVER, "--workspace-root", str(tmp_path / "root"), "--max-jobs", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=_env(),
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "--max-jobs" in done.stderr and ">= 1" in done.stderr, done.stderr
    assert done.stdout == ""  # stdout is the stdio transport: nothing leaks there


# ----- 3. a failed job's progress ---------------------------------------------------------------
class _Pipe:
    def __init__(self, *messages):
        self.messages = list(messages)

    def recv(self):
        if not self.messages:
            raise EOFError
        message = self.messages.pop(0)
        if isinstance(message, BaseException):
            raise message
        return message


class _Ended:
    exitcode = 0

    def join(self, timeout=None):
        return None


def _job(manager: jobs.JobManager, job_id: str) -> jobs.Job:
    job = jobs.Job(
        job_id=job_id,
        tool="fit_mmm",
        workspace="w",
        status="running",
        created_at="2026-01-01",
        params={},
        process=_Ended(),
    )
    manager.jobs[job_id] = job
    with manager._db() as db:
        db.execute(
            "INSERT INTO jobs (job_id, tool, workspace, status, created_at, params_json) "
            "VALUES (?, 'fit_mmm', 'w', 'running', '2026-01-01', '{}')",
            (job_id,),
        )
    return job


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_a_job_that_did_not_succeed_never_reports_full_progress(tmp_path, outcome):
    manager = jobs.JobManager(tmp_path)
    # The sampler reported 'sampling done' (total/total), then writing the outputs failed.
    finished_phase = _job(manager, "j1")
    manager._watch(
        finished_phase,
        _Pipe(("progress", 400.0, 400.0, "sampling done"), (outcome, {"message": "boom"})),
    )
    assert finished_phase.status == outcome
    assert finished_phase.view()["progress"] is None
    # One that stopped part-way keeps the share it reached, in memory and after a restart.
    part_way = _job(manager, "j2")
    manager._watch(
        part_way, _Pipe(("progress", 1.0, 4.0, "sampling"), (outcome, {"message": "boom"}))
    )
    assert part_way.view()["progress"] == 0.25
    restarted = jobs.JobManager(tmp_path)
    assert restarted.get("j1").view()["progress"] is None
    assert restarted.get("j2").view()["progress"] == 0.25


def test_a_succeeded_job_reports_full_progress(tmp_path):
    manager = jobs.JobManager(tmp_path)
    job = _job(manager, "j3")
    manager._watch(job, _Pipe(("progress", 1.0, 4.0, "sampling"), ("succeeded", {"x": 1})))
    assert job.view()["progress"] == 1.0
    assert jobs.JobManager(tmp_path).get("j3").view()["progress"] == 1.0


def test_a_broken_pipe_still_ends_the_job(tmp_path):
    """Whatever the pipe raises, the watcher records an outcome: a job is never left
    'running' (holding a max-jobs slot) for ever."""
    manager = jobs.JobManager(tmp_path)
    job = _job(manager, "j4")
    manager._watch(job, _Pipe(("progress", 1.0, 4.0, "x"), OSError("pipe broke")))
    assert job.status == "failed"
    assert job.error["message"]
    assert manager.running() == 0


def test_a_huge_job_error_is_cut(tmp_path):
    manager = jobs.JobManager(tmp_path)
    job = _job(manager, "j5")
    manager._watch(job, _Pipe(("failed", {"message": "x" * 100_000, "problem": "y" * 100_000})))
    assert len(job.error["message"]) < MAX_ERROR_CHARS + 100
    assert len(job.error["problem"]) < MAX_ERROR_CHARS + 100
    assert "characters cut" in job.error["message"]
    assert len(json.dumps(jobs.JobManager(tmp_path).get("j5").error)) < 3 * MAX_ERROR_CHARS


# ----- 4. raw files too large, huge errors, huge arguments --------------------------------------
def _raw_workspace(root: Path, name: str, body: bytes) -> Path:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    (raw / "conversions.csv").write_bytes(body)
    (raw / "campaign_spend_google.csv").write_text(
        "date,channel,spend,impressions\n2024-01-01,search,10,100\n"
    )
    return raw


@pytest.mark.anyio
async def test_a_raw_file_over_the_byte_limit_is_refused_fast(tmp_path):
    config = ServerConfig.at(tmp_path / "root", max_input_bytes=1000)
    # 157 rows with one huge field, as reported (scaled down): few rows, many bytes.
    _raw_workspace(config.root, "w", b"date,conversions\n2024-01-01," + b"9" * 2000 + b"\n")
    server = build_server(config)
    try:
        async with Client(server.mcp) as client:
            for tool, arguments in (
                ("validate_data", {"workspace": "w"}),
                ("fit_mmm", {"workspace": "w", "quick": "map"}),
            ):
                started = time.monotonic()
                result = await client.call_tool(tool, arguments)
                assert time.monotonic() - started < 5
                text = _clean_error(
                    result, "raw/conversions.csv", "2,029 bytes", "1,000 bytes", "--max-input-bytes"
                )
                assert len(text) < 500, text
            assert _payload(await client.call_tool("list_jobs", {}))["jobs"] == []
    finally:
        server.jobs.shutdown()


@pytest.mark.anyio
async def test_a_raw_file_with_a_huge_line_is_refused_fast(tmp_path):
    """Under the byte limit but one 'row' of 2 MiB (a quote swallowed the file): refused
    after reading it once, before any parser holds it."""
    config = ServerConfig.at(tmp_path / "root")
    _raw_workspace(config.root, "w", b"date,conversions\n2024-01-01," + b"9" * (2 << 20) + b"\n")
    server = build_server(config)
    try:
        async with Client(server.mcp) as client:
            started = time.monotonic()
            result = await client.call_tool("validate_data", {"workspace": "w"})
            assert time.monotonic() - started < 5
            text = _clean_error(result, "raw/conversions.csv", "line 2", "bytes")
            assert len(text) < 500, text
    finally:
        server.jobs.shutdown()


def test_shorten_keeps_a_prefix_and_says_how_much_was_cut():
    assert shorten("short") == "short"
    cut = shorten("a" * 10_000, 2000)
    assert cut.startswith("a" * 2000)
    assert cut.endswith("… (8,000 characters cut)")


@pytest.mark.anyio
async def test_no_error_text_is_huge(tmp_path, monkeypatch):
    server = build_server(ServerConfig.at(tmp_path / "root"))

    def quoting(job_id):  # an error that quotes its input, as a parser's may
        raise ParameterError("the input holds " + "q" * 100_000, fix="f" * 100_000)

    monkeypatch.setattr(server.jobs, "cancel", quoting)
    try:
        async with Client(server.mcp) as client:
            # Errors that echo what the caller sent: a huge job id, a huge workspace name.
            for tool, arguments in (
                ("get_job", {"job_id": "x" * 50_000}),
                ("validate_data", {"workspace": "y" * 50_000}),
                ("list_runs", {"workspace": "z" * 50_000}),
                ("cancel_job", {"job_id": "abc"}),
            ):
                result = await client.call_tool(tool, arguments)
                text = _clean_error(result)
                assert 0 < len(text) <= MAX_ERROR_CHARS + 100, (tool, len(text))
            cut = _clean_error(await client.call_tool("cancel_job", {"job_id": "abc"}))
            assert cut.startswith("Error executing tool cancel_job: the input holds qqq")
            assert cut.endswith("characters cut)"), cut[-100:]
    finally:
        server.jobs.shutdown()


@pytest.mark.anyio
async def test_inline_arguments_over_the_cap_are_refused(tmp_path):
    server = build_server(ServerConfig.at(tmp_path / "root", max_argument_bytes=10_000))
    try:
        async with Client(server.mcp) as client:
            result = await client.call_tool(
                "validate_data", {"workspace": "w", "country": "r" * 20_000}
            )
            text = _clean_error(result, "10,000 bytes", "--max-argument-bytes")
            assert len(text) < 500, text
            # Under the cap, the same call goes on to the usual checks.
            small = await client.call_tool("validate_data", {"workspace": "w"})
            _clean_error(small, "does not exist")
    finally:
        server.jobs.shutdown()


# ----- 5. error texts are never empty ------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exception", "needle"),
    [
        (RuntimeError(), "RuntimeError"),
        (KeyError("jobs"), "KeyError: 'jobs'"),
        (OSError(28, "No space left on device"), "No space left on device"),
    ],
    ids=["empty", "key", "os"],
)
async def test_unexpected_errors_carry_a_message_and_log_the_traceback(
    tmp_path, monkeypatch, caplog, exception, needle
):
    server = build_server(ServerConfig.at(tmp_path / "root"))

    def broken(limit=50):
        raise exception

    monkeypatch.setattr(server.jobs, "recent", broken)
    try:
        with caplog.at_level(logging.ERROR):
            async with Client(server.mcp) as client:
                result = await client.call_tool("list_jobs", {})
        text = _clean_error(result, "list_jobs", type(exception).__name__, needle)
        assert text.strip().rstrip(":") != "Error executing tool list_jobs", text
        # The traceback went to the server's log (stderr), not to the client.
        logged = [r for r in caplog.records if r.exc_info and r.exc_info[1] is exception]
        assert logged, [r.getMessage() for r in caplog.records]
    finally:
        server.jobs.shutdown()


@pytest.mark.anyio
async def test_an_answer_that_breaks_its_schema_is_a_clean_error(tmp_path, monkeypatch):
    server = build_server(ServerConfig.at(tmp_path / "root"))
    monkeypatch.setattr(server.jobs, "recent", lambda limit=50: [{"bogus": 1}])
    try:
        async with Client(server.mcp) as client:
            result = await client.call_tool("list_jobs", {})
        text = _clean_error(result, "list_jobs", "internal error")
        assert len(text) <= MAX_ERROR_CHARS + 100
    finally:
        server.jobs.shutdown()


# ----- 6. HTTP: bearer token, binding, idle sessions --------------------------------------------
def _wait_for_port(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        assert time.monotonic() < deadline, "the HTTP server did not start in 60 s"
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "hardening-test", "version": "0"},
    },
}


def _post(url: str, body: dict, **headers: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.mark.anyio
async def test_streamable_http_requires_the_bearer_token(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *SERVER,
                "--transport",
                "streamable-http",
                "--port",
                str(port),
                "--workspace-root",
                str(tmp_path / "root"),
                "--session-idle-seconds",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(ATTRIBUTION_MCP_TOKEN=TOKEN),  # the token from the environment
        )
        try:
            _wait_for_port(process, port, log_path)
            if Path("/proc/net/tcp").exists():
                assert _listeners(port) == {"0100007F"}, _listeners(port)
            status, headers, _ = _post(url, INITIALIZE)
            assert status == 401
            assert headers.get("www-authenticate", "").startswith("Bearer")
            assert _post(url, INITIALIZE, Authorization=f"Bearer {TOKEN}x")[0] == 401
            assert _post(url, INITIALIZE, Authorization="Bearer")[0] == 401
            assert _post(url, INITIALIZE, Authorization="Bearer caf\u00e9")[0] == 401
            assert _post(url, INITIALIZE, Authorization=f"Basic {TOKEN}")[0] == 401

            # The right token: a real client session.
            http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                assert tools == set(HINTS)
                assert _payload(await client.call_tool("list_jobs", {})) == {"jobs": []}

            # A session left idle longer than --session-idle-seconds is closed and forgotten.
            auth = {"Authorization": f"Bearer {TOKEN}"}
            status, headers, body = _post(url, INITIALIZE, **auth)
            assert status == 200, body
            session = {k.lower(): v for k, v in headers.items()}["mcp-session-id"]
            ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
            session_headers = {
                **auth,
                "Mcp-Session-Id": session,
                "Mcp-Protocol-Version": "2025-06-18",
            }
            assert _post(url, ping, **session_headers)[0] == 200
            time.sleep(2.5)
            assert _post(url, ping, **session_headers)[0] == 404
        finally:
            _stop(process)
    assert "Traceback" not in log_path.read_text()


def test_binding_beyond_loopback_needs_a_token(tmp_path):
    host = "0.0.0.0"
    port = _free_port()
    done = subprocess.run(
        [
            *SERVER,
            "--transport",
            "streamable-http",
            "--host",
            host,
            "--port",
            str(port),
            "--workspace-root",
            str(tmp_path / "root"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=_env(),
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "--auth-token" in done.stderr and "ATTRIBUTION_MCP_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "root").exists()  # refused before anything was touched
    assert not _listeners(port)


@pytest.mark.parametrize("host", ["::", "192.0.2.1", "example.org", "[::]"])
def test_any_address_but_loopback_needs_a_token(tmp_path, monkeypatch, capsys, host):
    monkeypatch.delenv("ATTRIBUTION_MCP_TOKEN", raising=False)
    monkeypatch.setattr(server_module, "build_server", lambda *a, **k: pytest.fail("built"))
    with pytest.raises(SystemExit) as raised:
        server_module.main(
            [
                *("--workspace-root", str(tmp_path / "root")),
                *("--transport", "streamable-http", "--host", host),
            ]
        )
    assert raised.value.code == 2
    assert "ATTRIBUTION_MCP_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(host):
    assert server_module.is_loopback(host)


@pytest.mark.parametrize(
    ("token", "reason"),
    [("short", "at least 16 characters"), ("has space in it 0123456789", "spaces")],
)
def test_a_weak_or_malformed_token_is_refused(tmp_path, monkeypatch, capsys, token, reason):
    monkeypatch.setattr(server_module, "build_server", lambda *a, **k: pytest.fail("built"))
    with pytest.raises(SystemExit) as raised:
        server_module.main(
            [
                *("--workspace-root", str(tmp_path / "root")),
                *("--transport", "streamable-http", "--auth-token", token),
            ]
        )
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "token" in err and reason in err, err


def test_a_symlinked_internal_folder_under_the_server_root_is_refused(tmp_path):
    """The job table follows the workspace rule: no write outside the root through a
    symlinked .attribution."""
    from attribution_analysis.errors import WorkspaceError
    from attribution_analysis.server.jobs import JobManager

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / ".attribution").symlink_to(outside)
    with pytest.raises(WorkspaceError, match="symlink"):
        JobManager(root)
    assert list(outside.iterdir()) == []
