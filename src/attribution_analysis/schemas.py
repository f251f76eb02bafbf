"""Export the JSON Schemas of every contract to ``schemas/`` and detect drift.

Which models are exported is derived, not listed by hand: every step's parameters and answer
(from the step table), every workspace file that has a contract (from the layout
catalogue), and the row models of the tables (listed here: a CSV row has no file entry).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from attribution_analysis import layout
from attribution_analysis.contracts import allocation, inputs, paths

ROW_MODELS: dict[str, type[BaseModel]] = {
    "input.campaign_spend_row": inputs.CampaignSpendRow,
    "input.conversions_row": inputs.ConversionsRow,
    "input.external_factor_row": inputs.ExternalFactorRow,
    "input.campaign_metadata_row": inputs.CampaignMetadataRow,
    "input.brick_sales_row": inputs.BrickSalesRow,
    "input.hcp_brick_row": inputs.HcpBrickRow,
    "input.hcp_row": inputs.HcpRow,
    "input.incrementality_result": inputs.IncrementalityResult,
    "input.journey_row": paths.JourneyRow,
    "input.path_row": paths.PathRow,
    "input.contribution_row": allocation.ContributionRow,
    "output.mta_allocation_row": allocation.AllocationRecord,
}


def schema_models() -> dict[str, type[BaseModel]]:
    """``{file stem: model}`` of every exported contract."""
    from attribution_analysis.steps import STEPS

    models = dict(ROW_MODELS)
    for entry in layout.CATALOGUE:
        if entry.contract is not None:
            stem = entry.name.rsplit(".", 1)[0]
            if "{" in stem:  # a family of files, one per name: named after its folder
                stem = entry.path.rsplit("/", 2)[-2]
            models[f"output.{stem}"] = entry.contract
    for spec in STEPS:
        models[f"params.{spec.name}"] = spec.params
        models[f"answer.{spec.name}"] = spec.answer
    return models


def render_schemas() -> dict[str, str]:
    """``{file name: JSON text}`` for every exported contract."""
    rendered = {}
    for stem, model in schema_models().items():
        schema = model.model_json_schema()
        rendered[f"{stem}.schema.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return rendered


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def schema_drift(directory: Path) -> list[str]:
    """Names of schema files that are missing, stale or orphaned in ``directory``."""
    expected = render_schemas()
    problems = []
    for name, text in expected.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs from the model")
    for path in sorted(directory.glob("*.schema.json")):
        if path.name not in expected:
            problems.append(f"{path.name}: no model exports it any more")
    return problems
