"""Command-line spellings of bounds and scenarios, turned into the typed contract.

Shared by ``scripts/optimize_budget.py`` and ``attribution optimize`` so both accept the
same text; the MCP tool takes the typed JSON directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from attribution_analysis.contracts.budget import ChannelBound, OptimizeBudgetParams, Scenario
from attribution_analysis.errors import DataValidationError, ParameterError

BOUND_COLUMNS = ("channel", "min_spend", "max_spend", "min_change", "max_change")
# The command-line flag behind each parameter, and what to type instead when it is refused:
# users read the flag they typed, not the contract's field name.
FLAGS: dict[str, tuple[str, str]] = {
    "total_budget": (
        "--total-budget",
        "pass a positive total for all channels over the whole horizon (not per week), or "
        "leave the flag out to reallocate current spend",
    ),
    "horizon_periods": (
        "--horizon-weeks",
        "pass the number of periods to plan, at least 1 (e.g. --horizon-weeks 13 for a "
        "quarter of weekly data)",
    ),
    "risk_level": ("--risk-level", "pass a share strictly between 0 and 1, e.g. 0.1"),
    "draws": ("--draws", "pass between 20 and 20000 posterior draws, e.g. 500"),
    "objective": ("--objective", "pass 'mean' or 'cvar'"),
    "max_change": ("--max-change", "pass a non-negative share such as 0.3, or 'none'"),
}
SCENARIO_HELP = (
    "'shift:FROM:TO:FRACTION' (e.g. shift:tv:search:0.2), 'total:CHANGE' (e.g. total:+0.1) "
    "or 'plan:CHANNEL=SPEND,CHANNEL=SPEND'"
)


def read_bounds(path: Path) -> list[ChannelBound]:
    """Bounds from a CSV (columns: channel, min_spend, max_spend, min_change, max_change;
    blanks = no limit) or a JSON list of objects with those keys."""
    if not path.exists():
        raise ParameterError(f"the constraints file {path} does not exist.", fix="check the path.")
    if path.suffix.lower() == ".json":
        try:
            records = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataValidationError(
                f"not valid JSON ({exc.msg}, line {exc.lineno}).",
                fix="give a JSON list of {channel, min_spend, max_spend, ...} objects.",
                file=str(path),
            ) from None
        if not isinstance(records, list):
            raise DataValidationError(
                "expected a JSON list of bound objects.",
                fix="wrap the objects in [...].",
                file=str(path),
            )
    else:
        frame = pd.read_csv(path, dtype={"channel": str})
        unknown = [c for c in frame.columns if c not in BOUND_COLUMNS]
        if "channel" not in frame.columns or unknown:
            raise DataValidationError(
                f"unexpected columns {unknown}" if unknown else "no 'channel' column.",
                fix=f"use the columns {', '.join(BOUND_COLUMNS)} (blank = no limit).",
                file=str(path),
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
                file=str(path),
                column=".".join(str(p) for p in first["loc"]) or None,
                rows=[i + 2 if path.suffix.lower() != ".json" else i + 1],
            ) from None
    return bounds


def parse_scenario(text: str) -> Scenario:
    """One scenario from its command-line spelling (see SCENARIO_HELP)."""
    kind, _, rest = text.partition(":")
    parts = rest.split(":")
    try:
        if kind == "shift" and len(parts) == 3:
            record = {
                "kind": "shift",
                "from_channel": parts[0],
                "to_channel": parts[1],
                "fraction": float(parts[2]),
            }
        elif kind == "total" and len(parts) == 1:
            record = {"kind": "total_change", "change": float(parts[0])}
        elif kind == "plan" and rest:
            pairs = [p.split("=", 1) for p in rest.split(",")]
            record = {"kind": "allocation", "allocation": {k.strip(): float(v) for k, v in pairs}}
        else:
            raise ValueError("unknown form")
    except ValueError:
        raise ParameterError(
            f"cannot read the scenario {text!r}.", fix=f"write it as {SCENARIO_HELP}."
        ) from None
    return TypeAdapter(Scenario).validate_python(record)


def parse_max_change(text: str | None) -> float | None:
    """'none' lifts the default limit; otherwise a non-negative fraction."""
    if text is None or text.strip().lower() in {"none", "off", ""}:
        return None
    try:
        return float(text)
    except ValueError:
        raise ParameterError(
            f"--max-change {text!r} is not a number.", fix="give e.g. 0.3, or 'none'."
        ) from None


def params_from_flags(record: dict[str, object]) -> OptimizeBudgetParams:
    """The step's parameters from command-line values; a refused value is reported under the
    flag the user typed (``--horizon-weeks``), not the contract's field (``horizon_periods``)."""
    try:
        return OptimizeBudgetParams.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        flag, fix = FLAGS.get(field, (field, "correct this value"))
        value = record.get(field)
        message = first["msg"].removeprefix("Value error, ").rstrip(".")
        raise ParameterError(f"{flag} {value!r} is refused: {message}.", fix=f"{fix}.") from None
