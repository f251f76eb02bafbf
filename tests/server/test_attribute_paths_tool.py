"""The attribute_paths tool through the MCP stdio client answers what the script prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from tests.conftest import REPO
from tests.server.test_stdio_pipeline import _params, _payload

pytestmark = pytest.mark.anyio

WS = "journeys"
PARAMS = {"method": "all", "order": 2, "bootstrap_replicates": 20, "seed": 3}


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


def _script(root: Path) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "attribute_paths.py"),
            "--workspace",
            str(root / WS),
            "--method",
            PARAMS["method"],
            "--order",
            str(PARAMS["order"]),
            "--bootstrap-replicates",
            str(PARAMS["bootstrap_replicates"]),
            "--seed",
            str(PARAMS["seed"]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_the_tool_payload_matches_the_script_json(tmp_path):
    async with Client(_params(tmp_path), read_timeout_seconds=300) as client:
        _payload(
            await client.call_tool(
                "simulate_workspace",
                {"workspace": WS, "kind": "journeys", "seed": 4, "n_users": 3000},
            )
        )
        tool = _payload(await client.call_tool("attribute_paths", {"workspace": WS, **PARAMS}))
        saved = json.loads((tmp_path / WS / "analysis" / "path_attribution.json").read_text())
    script = _script(tmp_path)
    assert script["status"] == "ok"
    methods = {
        "first_touch",
        "last_touch",
        "last_non_direct",
        "linear",
        "time_decay",
        "position_based",
        "markov_order_2",
        "shapley",
    }
    assert set(tool["shares"]) == methods
    for method in methods:
        assert tool["shares"][method] == script["shares"][method], method
        assert tool["shares_interval_90"][method] == script["shares_interval_90"][method], method
        # The payload is the file's content, rounded: the tool did write the report it answers.
        written = next(m for m in saved["methods"] if m["method"] == method)
        assert tool["shares"][method] == {
            c["channel"]: round(c["share"], 4) for c in written["credits"]
        }
    assert tool["removal_effects"] == script["removal_effects"]
    assert tool["input"] == script["input"]
    assert tool["outputs"] == script["outputs"]
    assert "analysis/path_campaign_credit.csv" in tool["outputs"]
