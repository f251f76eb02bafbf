"""A third-party client: the official MCP inspector's CLI, run as the README shows.

Marked slow: npx fetches the inspector from the npm registry on a machine that has not run
it before. Skipped where npx is missing or the inspector cannot be fetched; once it is
fetched, a call that fails or hangs fails the test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.test_stdio_pipeline import HINTS

pytestmark = pytest.mark.slow

INSPECTOR = "@modelcontextprotocol/inspector"
FETCH_SECONDS = 240
CALL_SECONDS = 120  # once fetched, the inspector and a server that works answer in seconds


def _server() -> list[str]:
    """The console script beside this interpreter, as in the README; else the module."""
    script = Path(sys.executable).parent / "attribution-mcp"
    return (
        [str(script)] if script.exists() else [sys.executable, "-m", "attribution_analysis.server"]
    )


@pytest.fixture(scope="module")
def npx() -> str:
    """npx with the inspector in its cache. Only this step may skip (no npx, no registry):
    once the inspector is here, a call that hangs or fails is the server's fault."""
    found = shutil.which("npx")
    if found is None:
        pytest.skip("npx is not installed")
    try:
        fetched = subprocess.run(
            [found, "--yes", "-p", INSPECTOR, "true"],
            capture_output=True,
            text=True,
            timeout=FETCH_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"the inspector could not be fetched within {FETCH_SECONDS} s")
    if fetched.returncode != 0:
        pytest.skip(f"the inspector could not be fetched: {fetched.stderr.strip()[-300:]}")
    return found


def _inspector(npx: str, root: Path, *method: str) -> dict:
    command = [npx, "--yes", INSPECTOR, "--cli", *_server(), "--workspace-root", str(root)]
    done = subprocess.run(
        [*command, *method],
        capture_output=True,
        text=True,
        timeout=CALL_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_inspector_lists_and_calls_the_tools(npx, tmp_path):
    listed = _inspector(npx, tmp_path, "--method", "tools/list")
    assert {tool["name"] for tool in listed["tools"]} == set(HINTS)
    called = _inspector(
        npx,
        tmp_path,
        "--method",
        "tools/call",
        "--tool-name",
        "simulate_workspace",
        "--tool-arg",
        "workspace=demo",
        "--tool-arg",
        "kind=mta",
        "--tool-arg",
        "weeks=52",
    )
    assert not called.get("isError"), called
    assert "raw/conversions.csv" in called["structuredContent"]["outputs"]
    assert (tmp_path / "demo" / "raw" / "conversions.csv").is_file()
