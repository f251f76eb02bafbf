"""The MCP server as a client sees it: a subprocess on stdio, driven by the SDK's client.

One server process for the module; the pipeline runs through tool calls only, and each
error case must come back as a clean tool error (no traceback, the CLI's message).
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import anyio
import pandas as pd
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

pytestmark = pytest.mark.anyio

WS = "shop"
# 2 x 150 draws cannot reach the ESS > 400 gate: the fit is meant to fail validation.
FIT = {
    "sampler": {"draws": 150, "tune": 300, "chains": 2},
    "use_cache": False,
    "retry": False,
    "fallback_to_ridge": False,
}


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mcp-root")


def _params(root: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "attribution_analysis.server", "--workspace-root", str(root)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def _payload(result) -> dict:
    assert not result.is_error, _text(result)
    data = result.structured_content
    return data if isinstance(data, dict) else json.loads(_text(result))


def _text(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _clean_error(result, *needles: str) -> str:
    assert result.is_error
    text = _text(result)
    assert "Traceback" not in text and 'File "' not in text, text
    for needle in needles:
        assert needle in text, text
    return text


async def test_tool_listing_is_typed_and_documented(root):
    async with Client(_params(root)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        expected = {
            "simulate_workspace",
            "validate_data",
            "fit_mmm",
            "validate_model",
            "decompose_contributions",
            "build_effective_exposure",
            "allocate",
            "optimize_budget",
            "attribute_paths",
            "generate_report",
            "draft_faq",
            "get_job",
            "cancel_job",
            "list_jobs",
            "list_runs",
        }
        assert expected <= set(tools)
        for tool in tools.values():
            assert tool.title and tool.description and tool.annotations is not None
            for name, schema in tool.input_schema["properties"].items():
                assert schema.get("description"), (tool.name, name)
                assert {"type", "anyOf", "$ref", "allOf", "enum"} & set(schema), (tool.name, name)
        assert tools["get_job"].annotations.read_only_hint is True
        assert tools["fit_mmm"].annotations.read_only_hint is False
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert "attribution://skill" in resources
        assert {f"attribution://references/{p.stem}" for p in Path("references").glob("*.md")} <= (
            resources
        )
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert {"end_to_end_workflow", "explain_to_cmo"} <= prompts


async def test_pipeline_through_tool_calls_only(root):
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    async with Client(_params(root), read_timeout_seconds=600) as client:
        call = client.call_tool
        _payload(
            await call(
                "simulate_workspace",
                {"workspace": WS, "kind": "mta", "seed": 5, "weeks": 104, "channels": 3},
            )
        )
        validated = _payload(await call("validate_data", {"workspace": WS}))
        assert validated["validation_status"] in {"passed", "passed_with_warnings"}

        quick = _payload(
            await call("fit_mmm", {"workspace": WS, "quick": "map", "wait_seconds": 300})
        )
        assert quick["status"] == "succeeded" and quick["result"]["for_decisions"] is False

        started = _payload(await call("fit_mmm", {"workspace": WS, **FIT}))
        assert started["status"] == "running" and started["job_id"]
        # The server answers other calls while the fit runs.
        runs = _payload(await call("list_runs", {"workspace": WS}))
        assert any(r["step"] == "validate_data" for r in runs["runs"])
        done = _payload(
            await call(
                "get_job",
                {"job_id": started["job_id"], "wait_seconds": 600},
                progress_callback=on_progress,
            )
        )
        assert done["status"] == "succeeded", done
        assert len(progress) >= 2 and any("sampling" in (m or "") for _, _, m in progress)

        checked = _payload(
            await call(
                "validate_model",
                {
                    "workspace": WS,
                    "backtest_periods": 0,
                    "sensitivity_refit": False,
                    "wait_seconds": 600,
                },
            )
        )
        assert checked["status"] == "succeeded", checked
        assert checked["result"]["passed"] is False
        assert "min_ess_bulk" in checked["result"]["failed_criteria"]
        # A failed model is refused with the CLI's message; the override is recorded.
        _clean_error(
            await call("decompose_contributions", {"workspace": WS}),
            "failed its acceptance criteria",
        )
        override = {"override_reason": "test fit with 300 draws"}
        decomposed = _payload(await call("decompose_contributions", {"workspace": WS, **override}))
        assert decomposed["sum_check"]["passed"]
        exposure = _payload(await call("build_effective_exposure", {"workspace": WS}))
        assert exposure["transforms_source"] == "analysis/mmm_transforms.json"
        allocated = _payload(await call("allocate", {"workspace": WS, "wait_seconds": 300}))
        assert allocated["status"] == "succeeded", allocated
        # Campaign credit adds up to the decomposition's channel totals (one source of truth).
        credit = await client.read_resource(f"workspace://{WS}/analysis/mta_allocation.csv")
        by_channel = pd.read_csv(io.StringIO(credit.contents[0].text)).groupby("channel")
        for channel in decomposed["channels"]:
            total = by_channel["allocated"].sum()[channel["channel"]]
            assert total == pytest.approx(channel["total_contribution"]["mean"], rel=1e-6)
        plan = _payload(
            await call(
                "optimize_budget",
                {
                    "workspace": WS,
                    "scenarios": [{"kind": "total_change", "change": 0.1}],
                    **override,
                },
            )
        )
        assert plan["outcome"]["lift"]["hdi_90"][0] <= plan["outcome"]["lift"]["mean"]
        report = await client.read_resource(
            f"workspace://{WS}/analysis/mmm_budget_optimization.json"
        )
        assert json.loads(report.contents[0].text)["total_budget"] == plan["total_budget"]
        rendered = _payload(await call("generate_report", {"workspace": WS}))
        assert rendered["report"] == "reports/mmm_executive_summary.html"
        assert {s["name"]: s["status"] for s in rendered["sections"]}.get("budget") == "rendered"
        html = await client.read_resource(f"workspace://{WS}/reports/mmm_executive_summary.html")
        assert "<html" in html.contents[0].text.lower()
        faq = _payload(await call("draft_faq", {"workspace": WS, "audience": "cmo"}))
        assert faq["files"][0]["markdown"] == "reports/faq_cmo.md"
        escape = await call("list_runs", {"workspace": WS, "step": "optimize_budget"})
        assert _payload(escape)["runs"][0]["status"] == "succeeded"


async def test_cancel_a_running_job(root):
    async with Client(_params(root), read_timeout_seconds=600) as client:
        call = client.call_tool
        _payload(
            await call(
                "simulate_workspace",
                {"workspace": "cancel", "kind": "mmm", "weeks": 104, "channels": 3},
            )
        )
        _payload(await call("validate_data", {"workspace": "cancel"}))
        started = _payload(
            await call("fit_mmm", {"workspace": "cancel", "sampler": {"draws": 10000}})
        )
        await anyio.sleep(3)
        _payload(await call("cancel_job", {"job_id": started["job_id"]}))
        final = _payload(await call("get_job", {"job_id": started["job_id"], "wait_seconds": 60}))
        assert final["status"] == "cancelled", final
        assert not (root / "cancel" / "analysis" / "mmm_fit.json").exists()
        listed = _payload(await call("list_jobs", {}))
        assert any(j["job_id"] == started["job_id"] for j in listed["jobs"])


async def test_clean_errors(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    async with Client(_params(root)) as client:
        call = client.call_tool
        _clean_error(await call("validate_data", {"workspace": "../../etc/passwd"}), "outside")
        _clean_error(await call("validate_data", {"workspace": "/etc"}), "absolute path")
        _clean_error(await call("validate_data", {"workspace": "escape"}), "outside")
        _clean_error(await call("validate_data", {"workspace": "nowhere"}), "does not exist")
        _clean_error(
            await call("simulate_workspace", {"workspace": "typed", "seed": "seven"}), "seed"
        )
        _clean_error(
            await call("fit_mmm", {"workspace": "nowhere2", "sampler": {"draws": 10**6}}),
        )
        _clean_error(await call("get_job", {"job_id": "nope"}), "no job")
        (root / "bad" / "raw").mkdir(parents=True)
        (root / "bad" / "raw" / "spend.csv").write_text("date,channel,spend\n2024-01-01,tv,-5\n")
        _clean_error(await call("validate_data", {"workspace": "bad"}))
