"""A user's own table, start to finish, through MCP tool calls only (#17): no shell, no
shared disk. The CSV goes inline; the dry run proposes roles; the write run records them;
then validation, a quick fit, the model check, the decomposition, the budget and the report.

The table has Robyn's layout: a spend-only channel (tv_S, no exposure column), an organic
series (newsletter) and events (text labels, one 0/1 factor each). Each must come out as
what it is: the spend-only channel as a channel with ROAS, the newsletter and the events as
components of their own (not media, not base) in the decomposition and the report, and the
budget plan over the paid channels only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from tests.data import wide_tables
from tests.server.stdio_client import payload, server_params, validate_quickly

pytestmark = pytest.mark.anyio
WS = "robyn"


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


async def test_own_table_to_report_with_organic_series_events_and_a_spend_only_channel(
    tmp_path: Path,
):
    content = wide_tables.robyn()
    async with Client(server_params(tmp_path), read_timeout_seconds=900) as client:
        call = client.call_tool
        dry = payload(await call("import_data", {"workspace": WS, "content": content}))
        roles = dry["roles"]
        assert roles["channels"]["tv"]["impressions"] is None  # spend only
        assert roles["organic"] == ["newsletter"] and roles["events"] == ["events"]
        written = payload(
            await call(
                "import_data",
                {
                    "workspace": WS,
                    "content": content,
                    "dry_run": False,
                    "roles": roles,
                    "country": "US",
                },
            )
        )
        assert "raw/external_factors.csv" in written["outputs"]
        factors = await client.read_resource(f"workspace://{WS}/raw/external_factors.csv")
        header = factors.contents[0].text.splitlines()[0].split(",")
        assert "kind" in header

        validated = payload(await call("validate_data", {"workspace": WS}))
        assert validated["validation_status"] in {"passed", "passed_with_warnings"}

        fitted = payload(
            await call("fit_mmm", {"workspace": WS, "quick": "map", "wait_seconds": 600})
        )
        assert fitted["status"] == "succeeded", fitted
        assert fitted["result"]["for_decisions"] is False  # a quick fit says so
        checked = await validate_quickly(call, WS)
        assert checked["status"] == "succeeded", checked
        override = {"override_reason": "quick fit in a plumbing test"}

        decomposed = payload(await call("decompose_contributions", {"workspace": WS, **override}))
        components = {(c["name"], c["kind"]) for c in decomposed["components"]}
        assert ("newsletter", "organic") in components
        assert {n for n, k in components if k == "event"} == {"events_event1", "events_event2"}
        channels = {c["channel"] for c in decomposed["channels"]}
        assert "tv" in channels and "newsletter" not in channels  # spend-only: a channel
        assert decomposed["sum_check"]["passed"]

        budget = payload(await call("optimize_budget", {"workspace": WS, **override}))
        planned = {a["channel"] for a in budget["allocations"]}
        assert planned == channels  # the organic series is not given a budget

        report = payload(await call("generate_report", {"workspace": WS}))
        html_path = next(p for p in report["outputs"] if p.endswith(".html"))
        html = (await client.read_resource(f"workspace://{WS}/{html_path}")).contents[0].text
        assert 'id="components-summary"' in html
        assert 'data-component="organic"' in html and "newsletter" in html
        assert html.count('data-component="event"') == 2

        faq = payload(await call("draft_faq", {"workspace": WS, "audience": "cmo"}))
        markdown_path = next(p for p in faq["outputs"] if p.endswith(".md"))
        markdown = (await client.read_resource(f"workspace://{WS}/{markdown_path}")).contents
        text = markdown[0].text
        assert "**newsletter** (organic series, with carry-over)" in text
        assert "**events_event1** (event)" in text
