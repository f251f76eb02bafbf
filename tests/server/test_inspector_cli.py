"""A third-party client: the official MCP inspector's CLI, run as the README shows.

Marked slow: npx fetches the inspector from the npm registry on a machine that has not run
it before. Skipped where npx is missing or the inspector cannot be fetched in time.
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


def _server() -> list[str]:
    """The console script beside this interpreter, as in the README; else the module."""
    script = Path(sys.executable).parent / "attribution-mcp"
    return (
        [str(script)] if script.exists() else [sys.executable, "-m", "attribution_analysis.server"]
    )


def _inspector(root: Path, *method: str) -> dict:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx is not installed")
    command = [npx, "--yes", INSPECTOR, "--cli", *_server(), "--workspace-root", str(root)]
    try:
        done = subprocess.run(
            [*command, *method],
            capture_output=True,
            text=True,
            timeout=FETCH_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"the inspector did not answer within {FETCH_SECONDS} s (fetching it?)")
    if done.returncode != 0 and ("npm error" in done.stderr or "ERR!" in done.stderr):
        pytest.skip(f"the inspector could not be fetched: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_inspector_lists_and_calls_the_tools(tmp_path):
    listed = _inspector(tmp_path, "--method", "tools/list")
    assert {tool["name"] for tool in listed["tools"]} == set(HINTS)
    called = _inspector(
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
