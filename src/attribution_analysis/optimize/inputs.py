"""Per-channel spend limits from a file (``bounds_file``): a CSV a planner fills in a
spreadsheet, or a JSON list; each row checked against ``ChannelBound``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from attribution_analysis.contracts.budget import ChannelBound
from attribution_analysis.errors import DataValidationError, ParameterError, arg

BOUND_COLUMNS = ("channel", "min_spend", "max_spend", "min_change", "max_change")


def read_bounds(path: Path, name: str | None = None) -> list[ChannelBound]:
    """Bounds from a CSV (columns: channel, min_spend, max_spend, min_change, max_change;
    blanks = no limit) or a JSON list of objects with those keys. ``name``: the path as the
    caller gave it (errors quote it)."""
    shown = name or str(path)
    if not path.is_file():
        raise ParameterError(
            f"the bounds file {shown} does not exist.",
            fix=f"give {arg('bounds_file')} as the workspace-relative path of a CSV or JSON file.",
            parameter="bounds_file",
        )
    if path.suffix.lower() == ".json":
        try:
            records = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataValidationError(
                f"not valid JSON ({exc.msg}, line {exc.lineno}).",
                fix="give a JSON list of {channel, min_spend, max_spend, ...} objects.",
                file=shown,
            ) from None
        if not isinstance(records, list):
            raise DataValidationError(
                "expected a JSON list of bound objects.",
                fix="wrap the objects in [...].",
                file=shown,
            )
    else:
        try:
            frame = pd.read_csv(path, dtype={"channel": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataValidationError(
                f"not a readable CSV ({str(exc).splitlines()[0][:200]}).",
                fix=f"save it as UTF-8 CSV with the columns {', '.join(BOUND_COLUMNS)}.",
                file=shown,
            ) from None
        unknown = [c for c in frame.columns if c not in BOUND_COLUMNS]
        if "channel" not in frame.columns or unknown:
            raise DataValidationError(
                f"unexpected columns {unknown}" if unknown else "no 'channel' column.",
                fix=f"use the columns {', '.join(BOUND_COLUMNS)} (blank = no limit).",
                file=shown,
            )
        records = [
            {k: v for k, v in row.items() if pd.notna(v)} for row in frame.to_dict("records")
        ]
    bounds = []
    for i, record in enumerate(records):
        try:
            bounds.append(ChannelBound.model_validate(record))
        except ValidationError as exc:
            first = exc.errors()[0]
            message = first["msg"].removeprefix("Value error, ").rstrip(".")
            raise DataValidationError(
                f"{message}.",
                fix="each bound needs a channel and non-negative limits with min <= max.",
                file=shown,
                column=".".join(str(p) for p in first["loc"]) or None,
                rows=[i + 2 if path.suffix.lower() != ".json" else i + 1],
            ) from None
    return bounds
