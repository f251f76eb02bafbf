"""Every tool publishes what it answers, and what it answers is what it published.

The step table declares each step's answer model once; the server publishes it as the
tool's output schema (a background step: as its job's ``result``), and the SDK's client
checks each reply against the schema it listed (``Client.validate_tool_result``), so every
tool call in the pipeline tests is also a schema check. Here: the published schemas are the
declared models, every step is on the runner with a closed answer model, and a reply that
breaks its schema is caught (the negative control for that client-side check).
"""

from __future__ import annotations

import os
import sys

import jsonschema
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from attribution_analysis.contracts.common import StepAnswer
from attribution_analysis.steps import STEPS

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
async def tools(tmp_path_factory):
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "attribution_analysis.server",
            "--workspace-root",
            str(tmp_path_factory.mktemp("schemas")),
        ],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    async with Client(params) as client:
        yield {t.name: t for t in (await client.list_tools()).tools}


def _answer_schema(tool) -> dict:
    """The schema of the step's own answer inside the tool's output schema."""
    schema = tool.output_schema
    result = schema["properties"].get("result")
    if result is None:  # an inline step: the answer is the reply
        return schema
    (ref,) = [s["$ref"] for s in result["anyOf"] if "$ref" in s]
    return schema["$defs"][ref.rsplit("/", 1)[-1]]


def test_every_step_is_on_the_runner_with_a_closed_answer():
    for spec in STEPS:
        assert callable(spec.compute_function()), spec.name
        assert issubclass(spec.answer, StepAnswer) and spec.answer is not StepAnswer, spec.name
        assert spec.answer.model_config.get("extra") == "forbid", spec.name
        # A step writes files, or is a query that changes nothing (list_budget_plans).
        assert spec.writes or spec.query, f"{spec.name} declares no file it writes"


async def test_each_tool_publishes_its_steps_answer_model(tools):
    for spec in STEPS:
        tool = tools[spec.name]
        published = _answer_schema(tool)
        declared = spec.answer.model_json_schema(by_alias=True)
        assert set(published["properties"]) == set(declared["properties"]), spec.name
        assert set(published.get("required", [])) == set(declared.get("required", [])), spec.name
        assert published.get("additionalProperties") is False, spec.name
        for path in (f.path for f in spec.writes):
            assert path in tool.description, (spec.name, path)


async def test_the_decomposition_reply_carries_the_roas_unit_and_findings(tools):
    answer = _answer_schema(tools["decompose_contributions"])
    assert {"roas_unit", "findings", "channels", "base", "sum_check"} <= set(answer["required"])


async def test_a_reply_that_breaks_its_schema_is_caught(tools):
    """Negative control for the client's check: a reply missing a required field, or with
    a field the model does not declare, fails the published schema."""
    schema = tools["decompose_contributions"].output_schema
    validator = jsonschema.Draft202012Validator(schema)
    reply = {"step": "decompose_contributions", "outputs": []}
    assert any("required" in e.message for e in validator.iter_errors(reply))
    job_schema = tools["fit_mmm"].output_schema
    errors = list(jsonschema.Draft202012Validator(job_schema).iter_errors({"surprise": 1}))
    assert errors
