"""The MCP server as a client sees it: a subprocess on stdio, driven by the SDK's client.

One server process for the module; the pipeline runs through tool calls only, and each
error case must come back as a clean tool error (no traceback, the CLI's message).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import anyio
import pandas as pd
import pytest
from mcp import Client

from tests.conftest import REPO
from tests.server.stdio_client import payload, server_params, text, validate_quickly

pytestmark = pytest.mark.anyio

WS = "shop"
# 2 x 150 draws cannot reach the ESS > 400 gate: the fit is meant to fail validation.
# 2 chains x 50 draws: ArviZ caps a bulk ESS at N log10(N) = 200 for N = 100 draws, so this fit
# fails the ESS gate (400) whatever its draws, and the override path below is forced.
FIT = {
    "sampler": {"draws": 50, "tune": 300, "chains": 2},
    "use_cache": False,
    "retry": False,
    "fallback_to_ridge": False,
}
# What every tool does to files, and so its hints: (read-only, destructive, idempotent).
# Steps replace their earlier outputs of the same name (destructive) and, with the same inputs
# and seed, write the same ones (idempotent); the job and registry tools write no output.
HINTS = {
    "import_data": (False, True, True),  # raw/ from one wide table (nothing on a dry run)
    "simulate_workspace": (False, True, True),  # writes raw/, truth/ (replaced on overwrite)
    "validate_data": (False, True, True),  # analysis/data_validation.json, prepared panels
    "fit_mmm": (False, True, True),  # analysis/mmm_fit.json, analysis/model/mmm_<key>.nc
    "fit_many": (False, True, True),  # each member's fit, analysis/portfolio_fits.json
    "validate_model": (False, True, True),  # analysis/mmm_diagnostics.json
    "decompose_contributions": (False, True, True),  # analysis/mmm_channel_contributions.json
    "build_effective_exposure": (False, True, True),  # analysis/effective_exposure.*
    "allocate": (False, True, True),  # analysis/mta_allocation.csv, allocation_summary.json
    "downscale_intraday": (False, True, True),  # analysis/mta_allocation_hourly.csv
    "optimize_budget": (False, True, True),  # analysis/budget_plans/<plan_name>.json
    "list_budget_plans": (True, False, True),  # reads the stored plans, writes nothing
    "attribute_paths": (False, True, True),  # analysis/path_attribution.json
    "generate_report": (False, True, True),  # reports/mmm_executive_summary.html, figures
    "draft_faq": (False, True, True),  # reports/faq_<audience>.md and .html
    "get_job": (True, False, True),  # reads the job table
    "cancel_job": (False, False, True),  # stops a job's process; no output is written
    "list_jobs": (True, False, True),  # reads the job table
    "list_runs": (True, False, True),  # reads the run registry
}
BACKGROUND = {"fit_mmm", "fit_many", "validate_model", "allocate"}


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mcp-root")


_params = server_params
_payload = payload
_text = text


def _clean_error(result, *needles: str) -> str:
    assert result.is_error
    text = _text(result)
    assert "Traceback" not in text and 'File "' not in text, text
    # pydantic's raw report (model name 'xArguments', documentation links) is never shown.
    assert "errors.pydantic.dev" not in text and "Arguments" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


async def test_tool_listing_is_typed_and_documented(root):
    async with Client(_params(root)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == set(HINTS)
        for tool in tools.values():
            assert tool.title and tool.description and tool.annotations is not None
            assert tool.input_schema.get("additionalProperties") is False, tool.name
            for name, schema in tool.input_schema["properties"].items():
                assert schema.get("description"), (tool.name, name)
                assert {"type", "anyOf", "$ref", "allOf", "enum"} & set(schema), (tool.name, name)
            hints = tool.annotations
            assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (
                HINTS[tool.name]
            ), tool.name
            assert tool.output_schema is not None, tool.name
            answer = set(tool.output_schema["properties"])
            if tool.name in BACKGROUND | {"get_job", "cancel_job"}:
                assert {"job_id", "status", "progress", "result", "error"} <= answer, tool.name
            elif not HINTS[tool.name][0]:  # a step run inline: the common envelope
                assert "outputs" in answer, tool.name
        assert set(tools["list_jobs"].output_schema["properties"]) == {"jobs"}
        assert set(tools["list_runs"].output_schema["properties"]) == {"runs"}
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert "attribution://skill" in resources
        references = sorted((REPO / "references").glob("*.md"))
        assert references
        assert {f"attribution://references/{p.stem}" for p in references} <= resources
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

        # (A quick MAP fit through the tool: tests/server/test_mcp_own_data.py.)
        started = _payload(await call("fit_mmm", {"workspace": WS, **FIT}))
        assert started["status"] == "running" and started["job_id"]
        # The server answers other calls while the fit runs, and the fit is still running then.
        runs = _payload(await call("list_runs", {"workspace": WS}))
        assert any(r["step"] == "validate_data" for r in runs["runs"])
        meanwhile = _payload(await call("get_job", {"job_id": started["job_id"]}))
        assert meanwhile["status"] == "running", meanwhile
        done = _payload(
            await call(
                "get_job",
                {"job_id": started["job_id"], "wait_seconds": 600},
                progress_callback=on_progress,
            )
        )
        assert done["status"] == "succeeded", done
        assert len(progress) >= 2 and any("sampling" in (m or "") for _, _, m in progress)

        checked = await validate_quickly(call, WS)
        assert checked["status"] == "succeeded", checked
        assert checked["result"]["passed"] is False
        assert "min_ess_bulk" in checked["result"]["failed_criteria"]
        # A failed model is refused with the CLI's message; the override is recorded.
        _clean_error(
            await call("decompose_contributions", {"workspace": WS}),
            "failed its acceptance criteria",
        )
        override = {"override_reason": "test fit with 100 draws"}
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
        # (The Bayesian allocation runs through the same step: tests/allocation/test_bayes.py.)
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
            f"workspace://{WS}/analysis/budget_plans/recommended.json"
        )
        assert json.loads(report.contents[0].text)["total_budget"] == plan["total_budget"]
        rendered = _payload(await call("generate_report", {"workspace": WS}))
        assert rendered["report"] == "reports/mmm_executive_summary.html"
        assert {s["name"]: s["status"] for s in rendered["sections"]}.get("budget") == "rendered"
        html = await client.read_resource(f"workspace://{WS}/reports/mmm_executive_summary.html")
        assert "<html" in html.contents[0].text.lower()
        # Figures live in a subfolder (reports/figures/); the resource template spans it.
        figure = next(f for f in rendered["figures"] if f.endswith(".svg"))
        assert figure.startswith("reports/figures/")
        drawn = await client.read_resource(f"workspace://{WS}/{figure}")
        assert "<svg" in drawn.contents[0].text
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
        # Wrong types: field by field (nested ones with their path), with the value refused.
        _clean_error(
            await call("simulate_workspace", {"workspace": "typed", "seed": "seven"}),
            "seed 'seven' is refused: Input should be a valid integer",
        )
        _clean_error(
            await call("fit_mmm", {"workspace": "typed", "sampler": {"draws": "many"}}),
            "sampler.draws 'many' is refused: Input should be a valid integer",
        )
        # A misspelled argument is refused by name, at the top level as below it.
        _clean_error(
            await call("validate_data", {"workspace": "typed", "bogus_flag": 1}),
            "bogus_flag 1 is refused: Extra inputs are not permitted",
        )
        _clean_error(
            await call("fit_mmm", {"workspace": "typed", "sampler": {"drawz": 100}}),
            "sampler.drawz 100 is refused: Extra inputs are not permitted",
        )
        _clean_error(
            await call("fit_mmm", {"workspace": "nowhere2", "sampler": {"draws": 10**6}}),
            "sampler.draws 1000000 is refused: Input should be less than or equal to 20000",
        )
        _clean_error(await call("get_job", {"job_id": "nope"}), "no job")
        # A data error names the file, the column and the row (the header is row 1).
        (root / "bad" / "raw").mkdir(parents=True)
        (root / "bad" / "raw" / "campaign_spend_google_ads.csv").write_text(
            "date,channel,spend,impressions\n2024-01-01,tv,10,100\n2024-01-08,tv,-5,100\n"
        )
        (root / "bad" / "raw" / "conversions.csv").write_text(
            "date,conversions\n2024-01-01,5\n2024-01-08,6\n"
        )
        _clean_error(
            await call("validate_data", {"workspace": "bad"}),
            "raw/campaign_spend_google_ads.csv, column 'spend', row 3: value -5 is negative",
        )


async def test_background_tools_check_paths_and_inputs_before_starting(root):
    async with Client(_params(root)) as client:
        call = client.call_tool
        _payload(
            await call(
                "simulate_workspace",
                {"workspace": "early", "kind": "mta", "weeks": 52, "channels": 2},
            )
        )
        before = len(_payload(await call("list_jobs", {"limit": 500}))["jobs"])
        # Not validated yet: every background step is refused at once, naming what is missing.
        _clean_error(
            await call("fit_mmm", {"workspace": "early", "quick": "map"}),
            "analysis/data_validation.json is missing",
        )
        _clean_error(
            await call("validate_model", {"workspace": "early"}),
            "analysis/data_validation.json is missing",
        )
        _clean_error(
            await call("allocate", {"workspace": "early"}),
            "analysis/prepared_campaign_panel.csv is missing",
        )
        _payload(await call("validate_data", {"workspace": "early"}))
        _clean_error(
            await call("validate_model", {"workspace": "early"}),
            "analysis/mmm_fit.json is missing",
        )
        _clean_error(
            await call("fit_mmm", {"workspace": "early", "calibrate": True}),
            "analysis/incrementality_results.json is missing",
        )
        # Path arguments are resolved inside the workspace before a job could start.
        _clean_error(
            await call("allocate", {"workspace": "early", "contributions": "../../../etc/passwd"}),
            "outside the workspace",
        )
        _clean_error(
            await call("allocate", {"workspace": "early", "transforms_file": "/etc/passwd"}),
            "is absolute",
        )
        _clean_error(
            await call("allocate", {"workspace": "early", "contributions": "analysis/none.csv"}),
            "analysis/none.csv: the file given as `contributions` does not exist",
        )
        after = len(_payload(await call("list_jobs", {"limit": 500}))["jobs"])
        assert after == before  # no job was started for any of them


async def test_a_users_table_comes_in_through_the_import_tool(root):
    """An agent that shares no disk with the server: the CSV inline, a dry run that asks,
    the write run with the confirmed roles, then validation with the country stated at
    import. Every reply is checked by the SDK client against the tool's output schema."""
    from tests.data import wide_tables

    content = wide_tables.TABLES["pymc"]()
    async with Client(_params(root)) as client:
        call = client.call_tool
        dry = _payload(await call("import_data", {"workspace": "own", "content": content}))
        assert {q["code"] for q in dry["questions"]} >= {"country"}
        assert dry["outputs"] == [] and not list((root / "own" / "raw").glob("*"))
        roles = dry["roles"]
        roles["target_kind"] = "revenue"
        written = _payload(
            await call(
                "import_data",
                {
                    "workspace": "own",
                    "content": content,
                    "dry_run": False,
                    "roles": roles,
                    "country": "GB",
                },
            )
        )
        assert "raw/import_mapping.json" in written["outputs"]
        text = json.dumps(written)
        assert "[[" not in text and "the `validate_data` tool" in text
        validated = _payload(await call("validate_data", {"workspace": "own"}))
        assert (validated["holiday_country"], validated["holiday_country_source"]) == (
            "GB",
            "import",
        )
        mapping = await client.read_resource("workspace://own/raw/import_mapping.json")
        assert json.loads(mapping.contents[0].text)["country"] == "GB"
