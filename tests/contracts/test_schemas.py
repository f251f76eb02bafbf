"""schemas/ matches the pydantic contracts, and contracts document every field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from attribution_analysis.contracts.inputs import IncrementalityResult
from attribution_analysis.contracts.validation import DataValidationReport
from attribution_analysis.schemas import export_schemas, schema_drift, schema_models
from tests.conftest import REPO


def test_committed_schemas_match_the_models():
    problems = schema_drift(REPO / "schemas")
    assert not problems, f"{problems}: run `attribution schemas export`"


def test_drift_is_detected(tmp_path):
    export_schemas(tmp_path)
    target = tmp_path / "input.conversions_row.schema.json"
    target.write_text(target.read_text().replace("conversions", "conversion"))
    (tmp_path / "output.gone.schema.json").write_text("{}")
    problems = schema_drift(tmp_path)
    assert any("conversions_row" in p for p in problems)
    assert any("output.gone" in p for p in problems)


@pytest.mark.parametrize(
    "stem", [s for s in schema_models() if s.split(".")[0] in ("input", "params", "answer")]
)
def test_every_input_and_answer_field_is_described(stem):
    model = schema_models()[stem]
    undocumented = [name for name, f in model.model_fields.items() if not f.description]
    assert not undocumented


def test_unknown_keys_are_rejected():
    with pytest.raises(ValidationError):
        DataValidationReport.model_validate({"surprise": 1})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"channel": "tv", "lift": 10, "ci_lower": 12, "ci_upper": 8}, "swap them"),
        ({"channel": "tv", "lift": 20, "ci_lower": 5, "ci_upper": 15}, "outside its interval"),
        (
            {
                "channel": "tv",
                "lift": 10,
                "ci_lower": 5,
                "ci_upper": 15,
                "start": "2024-02-01",
                "end": "2024-01-01",
            },
            "after end",
        ),
        ({"channel": "<b>tv</b>", "lift": 10, "ci_lower": 5, "ci_upper": 15}, "pattern"),
    ],
)
def test_lift_test_records_are_checked(payload, message):
    with pytest.raises(ValidationError, match=message):
        IncrementalityResult.model_validate(payload)
