"""Export the JSON Schemas of every contract to ``schemas/`` and detect drift."""

from __future__ import annotations

import json
from pathlib import Path

from attribution_analysis.contracts.registry import SCHEMA_MODELS


def render_schemas() -> dict[str, str]:
    """``{file name: JSON text}`` for every registered contract."""
    rendered = {}
    for stem, model in SCHEMA_MODELS.items():
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
