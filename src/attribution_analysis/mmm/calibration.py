"""Lift tests -> PyMC-Marketing lift-test likelihood terms.

Each test in ``analysis/incrementality_results.json`` says: switching the channel's spend
on (or off) over ``[start, end]`` changed the outcome by ``lift``. PyMC-Marketing compares
the saturation curve at two spend levels per period, so a test becomes
x = 0, delta_x = spend per period during the test, delta_y = lift per period, and
sigma = the lift's standard error per period (from its interval and level). A go-dark test
(spend removed) is the same comparison read the other way round.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError
from scipy.stats import norm

from attribution_analysis.contracts.inputs import IncrementalityResult
from attribution_analysis.errors import DataValidationError, MissingInputError
from attribution_analysis.mmm.panel import ModelData
from attribution_analysis.workspace import Workspace

LIFT_FILE = "analysis/incrementality_results.json"


def read_lift_tests(ws: Workspace) -> tuple[list[IncrementalityResult], str]:
    path = ws.resolve(LIFT_FILE)
    if not path.exists():
        raise MissingInputError(
            f"{LIFT_FILE} is missing, so there is nothing to calibrate with.",
            fix="export lift-test results from the experimentation skill, or fit without "
            "--calibrate.",
            file=LIFT_FILE,
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(
            problem=f"the file is not valid JSON ({exc}).",
            fix="write a JSON list of lift-test objects.",
            file=LIFT_FILE,
            code="bad_json",
        ) from None
    if isinstance(payload, dict) and "results" in payload:
        payload = payload["results"]
    try:
        tests = TypeAdapter(list[IncrementalityResult]).validate_python(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DataValidationError(
            problem=f"lift test {where}: {first['msg']}.",
            fix="each test needs channel, lift, ci_lower <= lift <= ci_upper (and start <= end).",
            file=LIFT_FILE,
            column=str(first["loc"][-1]) if first["loc"] else None,
            code="bad_lift_test",
        ) from None
    return tests, ws.sha256(path)


def lift_test_frame(tests: list[IncrementalityResult], data: ModelData) -> pd.DataFrame:
    """Rows for ``MMM.add_lift_test_measurements`` (channel, x, delta_x, delta_y, sigma)."""
    rows = []
    dates = data.X["date"]
    step_days = 7 if data.report.grain == "weekly" else 1
    for i, test in enumerate(tests):
        if test.channel not in data.channels:
            raise DataValidationError(
                problem=f"lift test {i} is for channel '{test.channel}', which is not in the "
                f"model ({data.channels}).",
                fix="correct the channel name or remove the test.",
                file=LIFT_FILE,
                column="channel",
                code="unknown_channel",
            )
        if test.start and test.end:
            inside = (dates >= pd.Timestamp(test.start) - pd.Timedelta(days=step_days - 1)) & (
                dates <= pd.Timestamp(test.end)
            )
        else:
            inside = pd.Series(True, index=dates.index)
        periods = max(1, int(inside.sum()) // (data.X["geo"].nunique() if data.geo else 1))
        spend = (
            test.spend if test.spend is not None else float(data.X.loc[inside, test.channel].sum())
        )
        if spend <= 0:
            raise DataValidationError(
                problem=f"lift test {i} ({test.channel}) has no spend in its window, so it says "
                "nothing about the channel's response.",
                fix="give the test's 'spend', or check its start/end dates.",
                file=LIFT_FILE,
                column="spend",
                code="bad_lift_test",
            )
        z = norm.ppf(0.5 + test.ci_level / 2)
        sigma = max((test.ci_upper - test.ci_lower) / (2 * z), 1e-9)
        row = {
            "channel": test.channel,
            "x": 0.0,
            "delta_x": spend / periods,
            "delta_y": test.lift / periods,
            "sigma": sigma / periods,
        }
        if data.geo:
            if not test.geo:
                raise DataValidationError(
                    problem=f"lift test {i} has no geo but the model is a geo panel.",
                    fix="give each test the geo it ran in.",
                    file=LIFT_FILE,
                    column="geo",
                    code="bad_lift_test",
                )
            row["geo"] = test.geo
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["sigma"] = np.maximum(frame["sigma"], 1e-9)
    return frame
