"""Entity covariates -> design matrix for the GLM M-step and the Bayesian model.

A covariate spec is a column name, optionally transformed: ``log(col)``, ``log1p(col)``,
``sqrt(col)``, ``col/NUMBER`` (rescaling), or ``cat(col)`` to force a numeric-looking column
to be categorical. Text columns are categorical: one indicator per level except a reference
level, the most frequent one (ties: alphabetical first), so intercept + indicators is a full
rank design without relying on the ridge. The Bayesian model uses the same categories as
hierarchical group effects over *all* levels instead.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attribution_analysis.errors import DataValidationError, ParameterError

LINE = "_line"
_SPEC = re.compile(
    r"^\s*(?:(?P<fn>log1p|log|sqrt|cat)\(\s*(?P<inner>[^()]+?)\s*\)"
    r"|(?P<col>[^()/]+?)\s*/\s*(?P<div>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<plain>[^()/]+?))\s*$"
)


@dataclass(frozen=True)
class Categorical:
    name: str  # column
    levels: list[str]  # all levels, sorted
    codes: np.ndarray  # (H,) int level index
    reference: str  # level without an indicator in the design


@dataclass(frozen=True)
class Design:
    """The design for H entities, intercept first."""

    names: list[str]
    matrix: np.ndarray  # (H, p)
    specs: list[str]
    numeric_names: list[str]
    numeric: np.ndarray  # (H, q) transformed numeric covariates
    categorical: list[Categorical]


@dataclass(frozen=True)
class CovariateSpec:
    text: str
    column: str
    transform: str | None  # log, log1p, sqrt, cat, div
    divisor: float = 1.0


def parse_spec(text: str) -> CovariateSpec:
    match = _SPEC.match(text)
    if not match or not text.strip():
        raise ParameterError(
            f"covariate '{text}' is not a column name or a supported transform.",
            fix="use col, log(col), log1p(col), sqrt(col), col/NUMBER or cat(col).",
        )
    if match["fn"]:
        return CovariateSpec(text.strip(), match["inner"].strip().lower(), match["fn"])
    if match["col"]:
        divisor = float(match["div"])
        if divisor == 0:
            raise ParameterError(f"covariate '{text}' divides by zero.", fix="use a nonzero scale.")
        return CovariateSpec(text.strip(), match["col"].strip().lower(), "div", divisor)
    return CovariateSpec(text.strip(), match["plain"].strip().lower(), None)


def _apply(spec: CovariateSpec, values: np.ndarray) -> np.ndarray:
    if spec.transform == "log":
        return np.log(values)
    if spec.transform == "log1p":
        return np.log1p(values)
    if spec.transform == "sqrt":
        return np.sqrt(values)
    if spec.transform == "div":
        return values / spec.divisor
    return values


def _rows(frame: pd.DataFrame, mask: np.ndarray) -> list[int]:
    if LINE in frame:
        return [int(x) for x in frame.loc[mask, LINE]]
    return [int(x) for x in np.flatnonzero(mask)]


def _numeric(values: pd.Series) -> np.ndarray | None:
    converted = pd.to_numeric(values, errors="coerce")
    return None if converted.isna().any() else converted.to_numpy(dtype=float)


def build_design(
    table: pd.DataFrame,
    key: str,
    entities: Sequence[str],
    specs: Sequence[str],
    file: str | None = None,
) -> Design:
    """Design matrix for ``entities`` from ``table`` (one row per entity, keyed by ``key``).

    Raises
    ------
    DataValidationError
        A covariate column that does not exist, empty or non-finite values, values a
        transform cannot take (log of 0), or an entity missing from the table.
    ParameterError
        A spec that cannot be parsed, or a covariate that does not vary across entities.
    """
    frame = table.copy()
    frame.columns = [c if c == LINE else str(c).strip().lower() for c in frame.columns]
    keys = frame[key].astype(str).str.strip()
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(
            problem=f"{key} '{keys[dup].iloc[0]}' appears more than once.",
            fix=f"keep one row per {key}.",
            file=file,
            column=key,
            rows=_rows(frame, dup),
            code="duplicate_rows",
        )
    position = pd.Index(keys).get_indexer(pd.Index([str(e) for e in entities]))
    if (position < 0).any():
        missing = [str(e) for e, p in zip(entities, position, strict=True) if p < 0]
        raise DataValidationError(
            problem=f"{len(missing)} entities have exposure but no covariate row, e.g. "
            f"{key} '{missing[0]}'.",
            fix=f"add a row per {key} with its covariates, or drop the covariates.",
            file=file,
            column=key,
            code="missing_entity",
        )
    rows = frame.iloc[position].reset_index(drop=True)
    available = [c for c in frame.columns if c not in (LINE, key)]
    names = ["intercept"]
    columns = [np.ones(len(rows))]
    numeric_names: list[str] = []
    numeric_columns: list[np.ndarray] = []
    categoricals: list[Categorical] = []
    for text in specs:
        spec = parse_spec(text)
        if spec.column not in frame.columns or spec.column in (LINE, key):
            close = difflib.get_close_matches(spec.column, available, n=1, cutoff=0.6)
            raise DataValidationError(
                problem=f"covariate column '{spec.column}' does not exist; the columns are "
                f"{available}." + (f" ('{close[0]}' looks close)" if close else ""),
                fix="name an existing column (case does not matter).",
                file=file,
                column=spec.column,
                rows=(1,),
                code="missing_column",
            )
        raw = rows[spec.column].astype(str).str.strip()
        empty = raw.str.lower().isin({"", "nan", "na", "n/a", "null", "none", "#n/a"}).to_numpy()
        if empty.any():
            raise DataValidationError(
                problem=f"covariate '{spec.column}' is empty or NaN.",
                fix="fill it in for every entity (or drop the covariate).",
                file=file,
                column=spec.column,
                rows=_rows(rows, empty),
                code="missing_value",
            )
        values = _numeric(raw)
        if spec.transform == "cat" or (values is None and spec.transform is None):
            levels, codes = np.unique(raw.to_numpy(dtype=str), return_inverse=True)
            if len(levels) < 2:
                raise ParameterError(
                    f"covariate '{spec.column}' has a single level ({levels[0]}); it cannot "
                    "explain differences between entities.",
                    fix="drop it.",
                )
            counts = np.bincount(codes, minlength=len(levels))
            reference = int(np.argmax(counts))  # first maximum: alphabetical among ties
            categoricals.append(Categorical(spec.column, levels.tolist(), codes, levels[reference]))
            for j, level in enumerate(levels):
                if j != reference:
                    names.append(f"{spec.column}[{level}]")
                    columns.append((codes == j).astype(float))
            continue
        if values is None:
            bad = pd.to_numeric(raw, errors="coerce").isna().to_numpy()
            raise DataValidationError(
                problem=f"covariate '{spec.column}' has text values (e.g. "
                f"'{raw[bad].iloc[0]}') but {spec.transform}() needs numbers.",
                fix=f"use '{spec.column}' alone to treat it as categorical, or fix the values.",
                file=file,
                column=spec.column,
                rows=_rows(rows, bad),
                code="not_a_number",
            )
        bad = ~np.isfinite(values)
        if spec.transform == "log":
            bad |= values <= 0
        elif spec.transform == "log1p":
            bad |= values <= -1
        elif spec.transform == "sqrt":
            bad |= values < 0
        if bad.any():
            raise DataValidationError(
                problem=f"covariate '{spec.text}' cannot be computed for value {values[bad][0]:g}.",
                fix="use a transform defined for these values (log1p for zeros) or fix them.",
                file=file,
                column=spec.column,
                rows=_rows(rows, bad),
                code="bad_covariate",
            )
        transformed = _apply(spec, values)
        if np.ptp(transformed) == 0:
            raise ParameterError(
                f"covariate '{spec.text}' is the same for every entity; it cannot explain "
                "differences between them.",
                fix="drop it.",
            )
        names.append(spec.text)
        columns.append(transformed)
        numeric_names.append(spec.text)
        numeric_columns.append(transformed)
    return Design(
        names=names,
        matrix=np.column_stack(columns),
        specs=list(specs),
        numeric_names=numeric_names,
        numeric=np.column_stack(numeric_columns) if numeric_columns else np.zeros((len(rows), 0)),
        categorical=categoricals,
    )
