"""Read the prepared panel written by validate_data, refusing stale or failed validations."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from attribution_analysis import layout
from attribution_analysis.contracts.validation import DataValidationReport
from attribution_analysis.errors import WorkspaceError, step_ref
from attribution_analysis.workspace import Workspace

if TYPE_CHECKING:  # require_validation (checked before a step starts) needs neither
    import numpy as np
    import pandas as pd


@dataclass
class ModelData:
    """The modelling table: X (date[, geo], channels, controls) and y, plus provenance."""

    X: pd.DataFrame
    y: pd.Series
    channels: list[str]
    controls: list[str]
    geo: bool
    target: str
    report: DataValidationReport
    input_hashes: dict[str, str]
    imputed_target: np.ndarray  # bool per panel row: outcome imputed by validation
    # Non-paid series with carryover and saturation, and event indicators: each its own
    # model component (columns of X, scaled like the controls), never a channel.
    organic: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def spend(self) -> pd.DataFrame:
        return self.X[self.channels]


def require_validation(ws: Workspace) -> Path:
    """The validation report every model step starts from, or the error that says to
    validate first (also checked before a fit job starts: see ``steps``)."""
    if not ws.resolve(layout.CONVERSIONS.path).is_file():
        return ws.require(
            layout.DATA_VALIDATION.path,
            "the workspace holds no data yet (raw/conversions.csv is missing), so there is "
            "nothing validated to model.",
            fix=f"bring the user's table in with {step_ref('import_data')}, then run "
            f"{step_ref('validate_data')}.",
        )
    return ws.require(
        layout.DATA_VALIDATION.path,
        f"{layout.DATA_VALIDATION.path} is missing: the data has not been validated.",
        fix=f"run {step_ref('validate_data')} first.",
    )


def load_model_data(
    ws: Workspace,
    target: str | None,
    use_trend: bool,
    use_holidays: bool,
    use_external_factors: bool,
) -> ModelData:
    import numpy as np
    import pandas as pd

    path = require_validation(ws)
    report = DataValidationReport.model_validate(json.loads(path.read_text()))
    current = ws.input_hashes(
        [ws.resolve(p) for p in report.metadata.input_hashes if ws.resolve(p).exists()]
    )
    # Files added to raw/ after validation are not inputs of this model; changed or removed
    # ones make the prepared panel stale.
    changed = sorted(p for p, h in report.metadata.input_hashes.items() if current.get(p) != h)
    if changed:
        raise WorkspaceError(
            f"raw files changed or disappeared since the data was validated ({changed}).",
            fix=f"validate again: run {step_ref('validate_data')}.",
            file=layout.DATA_VALIDATION.path,
        )
    target = target or report.target_default
    if target not in report.panel.target_columns:
        raise WorkspaceError(
            f"target '{target}' is not in the prepared panel ({report.panel.target_columns}).",
            fix="choose one of the outcome columns conversions.csv provides.",
        )
    panel = pd.read_csv(ws.resolve(report.panel.path), parse_dates=["date"])
    channels = report.panel.channels
    columns = {"date": panel["date"]}
    if report.panel.geo_column:
        columns["geo"] = panel[report.panel.geo_column].astype(str)
    for ch in channels:
        columns[ch] = panel[report.panel.spend_columns[ch]].astype(float)
    controls = []
    if use_trend:
        controls.append("trend")
    if use_holidays:
        controls += report.controls.holiday_columns
    if use_external_factors:
        controls += report.controls.external_factors
    organic = list(report.controls.organic_series) if use_external_factors else []
    events = list(report.controls.event_columns) if use_external_factors else []
    for group in (controls, organic, events):
        for name in list(group):
            values = panel[name].astype(float)
            scale = np.abs(values).max()
            if scale == 0 or values.nunique() <= 1:
                group.remove(name)  # constant: nothing to explain, would break identifiability
                continue
            # PyMC-Marketing leaves controls unscaled under one shared prior; put each on
            # [-1, 1] so that prior means the same thing for every control. Organic series
            # (non-negative) land on [0, 1] like the channels PyMC-Marketing scales by max.
            columns[name] = values / scale
    X = pd.DataFrame(columns)
    y = panel[target].astype(float).rename(target)
    imputed = panel["imputed_target"].astype(bool).to_numpy()
    return ModelData(
        X,
        y,
        channels,
        controls,
        bool(report.panel.geo_column),
        target,
        report,
        dict(report.metadata.input_hashes),
        imputed,
        organic,
        events,
    )
