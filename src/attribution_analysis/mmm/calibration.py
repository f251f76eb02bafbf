"""Lift tests -> PyMC-Marketing lift-test likelihood terms.

Each test in ``analysis/incrementality_results.json`` says: switching the channel's spend
on (or off) over ``[start, end]`` changed the outcome by ``lift``. PyMC-Marketing compares
the saturation curve at two spend levels per period, so a test becomes
x = 0, delta_x = spend per period during the test, delta_y = lift per period, and
sigma = the lift's standard error per period (from its interval and level). A go-dark test
(spend removed) is the same comparison read the other way round.

Plausibility, checked before any fit (an error's ``rows`` is the test's 0-based position in
the list, as in "lift test 0"):

- an empty list means "no lift tests": a calibrated fit is refused, saying so;
- a lift whose whole interval is below 0 is refused (media effects are non-negative); a
  negative estimate whose interval reaches 0 is kept (a null result is evidence, and dropping
  it would bias the calibration upwards) and flagged (``negative_lift_kept``);
- a lift larger than the whole outcome of its window (from the prepared panel) is refused;
- a test whose window holds no spend of the channel and gives no ``spend`` is refused; one
  that gives ``spend`` while the panel has none in its window is flagged
  (``lift_test_without_panel_spend``);
- an implied return (lift / spend of the channel in the window) above ``MAX_LIFT_PER_SPEND``
  (100 units of outcome per unit of spend) is flagged (``implausible_lift_per_spend``): the
  calibration would pull the channel's curve to it, so the units deserve a check, but a
  cheap channel measured in conversions per cent can be real, so it is not refused.
"""

from __future__ import annotations

import json
import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from attribution_analysis import layout
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.inputs import IncrementalityResult
from attribution_analysis.data.tables import (
    DATE_RANGE_HELP,
    MAX_ABS_TEXT,
    MAX_ABS_VALUE,
    MAX_DATE,
    MIN_DATE,
    read_input_bytes,
    shown_value,
)
from attribution_analysis.errors import DataValidationError, MissingInputError, arg
from attribution_analysis.mmm.panel import ModelData
from attribution_analysis.workspace import Workspace

LIFT_FILE = layout.LIFT_TESTS.path
MAX_LIFT_PER_SPEND = 100.0


def read_lift_tests(
    ws: Workspace, allow_empty: bool = False
) -> tuple[list[IncrementalityResult], str]:
    """The lift tests of ``LIFT_FILE`` and its sha256, each within bounds; at least one
    unless ``allow_empty`` (an empty list then reads as "no lift tests")."""
    path = ws.resolve(LIFT_FILE)
    if not path.exists():
        raise MissingInputError(
            f"{LIFT_FILE} is missing, so there is nothing to calibrate with.",
            fix="export lift-test results from the experimentation skill, or fit without "
            f"{arg('calibrate')}.",
            file=LIFT_FILE,
        )
    data = read_input_bytes(path, LIFT_FILE)
    try:
        payload = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else shown_value(exc, 200)
        raise DataValidationError(
            problem=f"the file is not valid JSON ({reason}).",
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
            problem=f"lift test {where}: {shown_value(first['msg'], 200)[1:-1]}.",
            fix="each test needs channel, lift, ci_lower <= lift <= ci_upper (and start <= end).",
            file=LIFT_FILE,
            rows=(first["loc"][0],) if first["loc"] and isinstance(first["loc"][0], int) else (),
            # A test-level rule (interval order) has the test's index as its last location.
            column=first["loc"][-1] if first["loc"] and isinstance(first["loc"][-1], str) else None,
            code="bad_lift_test",
        ) from None
    if not tests and not allow_empty:
        raise DataValidationError(
            problem="there are no lift tests to calibrate with: the file holds an empty list "
            "(no lift tests), and a calibrated fit needs at least one.",
            fix="add the lift tests ({channel, lift, ci_lower, ci_upper, start, end} each), or "
            f"fit without {arg('calibrate')}.",
            file=LIFT_FILE,
            code="no_lift_tests",
        )
    for i, test in enumerate(tests):
        _check_test_bounds(i, test)
    return tests, ws.sha256(path)


def _check_test_bounds(i: int, test: IncrementalityResult) -> None:
    """Numbers and dates the model can use: JSON's NaN/Infinity and 1e308 parse as floats,
    and a year 0001 or 2300 parses as a date, but none of them can be a real lift test."""
    for name in ("lift", "ci_lower", "ci_upper", "spend"):
        value = getattr(test, name)
        if value is not None and not (math.isfinite(value) and abs(value) <= MAX_ABS_VALUE):
            raise DataValidationError(
                problem=f"lift test {i} ({test.channel}) has {name} {value!r}: numbers must be "
                f"finite and at most {MAX_ABS_TEXT} in magnitude.",
                fix=f"write the test's real {name} (in the model's target units).",
                file=LIFT_FILE,
                rows=(i,),
                column=name,
                code="bad_lift_test",
            )
    for name in ("start", "end"):
        day = getattr(test, name)
        if day is not None and not (MIN_DATE.date() <= day <= MAX_DATE.date()):
            raise DataValidationError(
                problem=f"lift test {i} ({test.channel}) has {name} {day.isoformat()}, out of "
                f"range; {DATE_RANGE_HELP}.",
                fix=f"write the test's real {name} date as YYYY-MM-DD.",
                file=LIFT_FILE,
                rows=(i,),
                column=name,
                code="bad_lift_test",
            )
    if test.ci_upper < 0:
        # The model's media effects are non-negative: a test whose whole interval is below
        # zero cannot be fitted, and is most often a go-dark test written as a loss.
        raise DataValidationError(
            problem=f"lift test {i} ({test.channel}) says the channel lowered the outcome "
            f"(lift {test.lift:g}, interval [{test.ci_lower:g}, {test.ci_upper:g}] entirely "
            "below 0); the model's media effects cannot be negative.",
            fix="write lift as the outcome the channel's spend added (a go-dark test's lift is "
            "the outcome lost when the channel was switched off, a positive number); leave a "
            "test that truly found harm out of the calibration and report it separately.",
            file=LIFT_FILE,
            rows=(i,),
            column="lift",
            code="bad_lift_test",
        )


def _check_lift_below_outcome(
    i: int, test: IncrementalityResult, data: ModelData, inside: pd.Series
) -> None:
    """A channel cannot add more than the whole outcome of the periods the test ran in."""
    rows = inside.to_numpy(dtype=bool)  # the test's geo only, on a geo panel
    total = float(np.asarray(data.y, dtype=float)[rows].sum())
    if test.lift > total:
        where = f" in geo {test.geo}" if data.geo and test.geo else ""
        raise DataValidationError(
            problem=f"lift test {i} ({test.channel}) has lift {test.lift:g}, more than the whole "
            f"{data.target} of its window{where} ({total:g}, from the prepared panel); "
            "incremental outcome cannot exceed the outcome.",
            fix=f"check the lift's units (it must be in {data.target}, summed over the test "
            "window, not a percentage or a per-day rate read as a total) and the test's "
            "start/end dates.",
            file=LIFT_FILE,
            rows=(i,),
            column="lift",
            code="bad_lift_test",
        )


def standard_error(test: IncrementalityResult) -> float:
    """The lift's standard error over the whole test, from its interval and level."""
    # The standard library's normal quantile, not scipy.stats.norm: importing scipy.stats
    # costs 0.5-0.6 s, which was a quarter of validate_data's time from a fresh command line.
    z = NormalDist().inv_cdf(0.5 + test.ci_level / 2)
    return max((test.ci_upper - test.ci_lower) / (2 * z), 1e-9)


def lift_test_frame(tests: list[IncrementalityResult], data: ModelData) -> pd.DataFrame:
    """Rows for ``MMM.add_lift_test_measurements`` (channel, x, delta_x, delta_y, sigma)."""
    rows = []
    dates = data.X["date"]
    for i, test in enumerate(tests):
        if test.channel not in data.channels:
            raise DataValidationError(
                problem=f"lift test {i} is for channel '{test.channel}', which is not in the "
                f"model ({data.channels}).",
                fix="correct the channel name or remove the test.",
                file=LIFT_FILE,
                rows=(i,),
                column="channel",
                code="unknown_channel",
            )
        if test.metric is not None and test.metric != data.target:
            raise DataValidationError(
                problem=f"lift test {i} ({test.channel}) measures {shown_value(test.metric)} but "
                f"the model's target is '{data.target}'.",
                fix=f"give the lift in {data.target} (or fit the model on {test.metric}), or "
                "remove the test.",
                file=LIFT_FILE,
                rows=(i,),
                column="metric",
                code="bad_lift_test",
            )
        _check_geo(i, test, data)
        inside = _window(test, data)
        if test.start and test.end and not inside.any():
            raise DataValidationError(
                problem=f"lift test {i} ({test.channel}) ran {test.start} to {test.end}, "
                f"outside the model's window ({dates.min().date()} to {dates.max().date()}).",
                fix="remove the test, or validate and fit a window that contains it.",
                file=LIFT_FILE,
                rows=(i,),
                column="start",
                code="bad_lift_test",
            )
        _check_lift_below_outcome(i, test, data, inside)
        periods = max(1, int(data.X.loc[inside, "date"].nunique()))
        spend = test.spend if test.spend is not None else _panel_spend(test, data, inside)
        if spend <= 0:
            raise DataValidationError(
                problem=f"lift test {i} ({test.channel}) has no spend in its window, so it says "
                "nothing about the channel's response.",
                fix="give the test's 'spend', or check its start/end dates.",
                file=LIFT_FILE,
                rows=(i,),
                column="spend",
                code="bad_lift_test",
            )
        sigma = standard_error(test)
        row = {
            "channel": test.channel,
            "x": 0.0,
            "delta_x": spend / periods,
            "delta_y": test.lift / periods,
            "sigma": sigma / periods,
        }
        if data.geo:
            row["geo"] = test.geo
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["sigma"] = np.maximum(frame["sigma"], 1e-9)
    return frame


def _window(test: IncrementalityResult, data: ModelData) -> pd.Series:
    """Panel rows of the periods the test ran in (every period when it gives no dates), in
    the test's geo on a geo panel (a test in one geo says nothing of the others' spend)."""
    dates = data.X["date"]
    inside = pd.Series(True, index=dates.index)
    if test.start and test.end:
        step_days = 7 if data.report.grain == "weekly" else 1
        inside = (dates >= pd.Timestamp(test.start) - pd.Timedelta(days=step_days - 1)) & (
            dates <= pd.Timestamp(test.end)
        )
    if data.geo and test.geo:
        inside &= data.X["geo"] == test.geo
    return inside


def _check_geo(i: int, test: IncrementalityResult, data: ModelData) -> None:
    """On a geo panel every test names a geo of the panel."""
    if not data.geo:
        return
    geos = sorted(data.X["geo"].unique().tolist())
    if not test.geo or test.geo not in geos:
        raise DataValidationError(
            problem=f"lift test {i} ({test.channel}) "
            + (
                "has no geo but the model is a geo panel."
                if not test.geo
                else f"ran in geo {shown_value(test.geo)}, which the panel does not have."
            ),
            fix=f"give each test the geo it ran in, one of {geos[:10]}"
            + (" ..." if len(geos) > 10 else "")
            + ".",
            file=LIFT_FILE,
            rows=(i,),
            column="geo",
            code="bad_lift_test",
        )


def _panel_spend(test: IncrementalityResult, data: ModelData, inside: pd.Series) -> float:
    """The channel's spend in the panel over the test's window (as the likelihood term uses
    it when the test gives no ``spend``)."""
    return float(data.X.loc[inside, test.channel].sum())


def lift_test_findings(tests: list[IncrementalityResult], data: ModelData) -> list[Finding]:
    """What a calibrated fit must tell the user about tests it keeps: negative estimates,
    tests against a window without spend, implied returns above ``MAX_LIFT_PER_SPEND``.
    (Tests that cannot be used are refused by ``lift_test_frame``.)"""
    findings = []
    for i, test in enumerate(tests):
        if test.channel not in data.channels:
            continue  # refused by lift_test_frame
        subject = f"lift test {i} ({test.channel})"
        if test.lift < 0:
            findings.append(
                Finding(
                    code="negative_lift_kept",
                    severity="warning",
                    subject=subject,
                    value=test.lift,
                    threshold=0.0,
                    rule="lift < 0 with ci_upper >= 0",
                    message=f"{subject} in {LIFT_FILE} has a negative estimate ({test.lift:g}) "
                    f"but its interval [{test.ci_lower:g}, {test.ci_upper:g}] reaches 0: it is "
                    "kept as evidence that the channel did little (dropping it would bias the "
                    "calibration upwards). Tell the user.",
                )
            )
        inside = _window(test, data)
        panel_spend = _panel_spend(test, data, inside)
        if test.spend is not None and test.spend > 0 and panel_spend <= 0:
            findings.append(
                Finding(
                    code="lift_test_without_panel_spend",
                    severity="warning",
                    subject=subject,
                    value=0.0,
                    rule="channel spend in the test window = 0",
                    message=f"{subject} in {LIFT_FILE} gives spend {test.spend:g}, but the "
                    f"prepared panel has no {test.channel} spend in its window: check the "
                    "test's dates and channel with the user.",
                )
            )
        spend = test.spend if test.spend is not None else panel_spend
        if spend > 0 and test.lift / spend > MAX_LIFT_PER_SPEND:
            ratio = test.lift / spend
            findings.append(
                Finding(
                    code="implausible_lift_per_spend",
                    severity="warning",
                    subject=subject,
                    value=round(ratio, 6),
                    threshold=MAX_LIFT_PER_SPEND,
                    rule=f"lift / spend in the window > {MAX_LIFT_PER_SPEND:g}",
                    message=f"{subject} in {LIFT_FILE} implies {ratio:.3g} {data.target} per "
                    f"unit of spend (lift {test.lift:g} / spend {spend:g} in its window), above "
                    f"{MAX_LIFT_PER_SPEND:g}; the calibration pulls the channel towards it. "
                    "Check the lift's units (a total, not a percentage; the model's target) "
                    "and the test's dates with the user.",
                )
            )
    return findings


def check_lift_tests(
    tests: list[IncrementalityResult], data: ModelData
) -> tuple[list[Finding], list[Finding]]:
    """Every lift test against the prepared panel before any fit: the refusals a calibrated
    fit would raise (unknown channel, window outside the data, lift above the outcome, no
    spend), raised now; and (warnings, notes) for the tests kept: implausible returns and
    negative estimates as warnings, each test's implied return as a note."""
    lift_test_frame(tests, data)  # raises DataValidationError naming the test and column
    warnings = lift_test_findings(tests, data)
    notes = []
    for i, test in enumerate(tests):
        inside = _window(test, data)
        spend = test.spend if test.spend is not None else _panel_spend(test, data, inside)
        notes.append(
            Finding(
                code="lift_test_checked",
                severity="info",
                subject=f"lift test {i} ({test.channel})",
                value=round(test.lift / spend, 6) if spend > 0 else None,
                message=f"lift test {i} ({test.channel}{', ' + test.geo if test.geo else ''}): "
                f"lift {test.lift:g} on spend {spend:g} in its window, {test.lift / spend:.3g} "
                f"{data.target} per unit of spend; used when the model is fitted with "
                "calibration.",
            )
        )
    return warnings, notes


# ----- lift tests read through the model's own counterfactual -------------------------------
# PyMC-Marketing's lift likelihood (``add_lift_test_measurements``) reads a test as the
# saturation curve's rise from spend x to x + delta_x per period, at steady state, without
# carry-over: a 4-week go-dark test becomes 4 x (curve(spend) - curve(0)). A go-dark test does
# not take the channel's adstock to zero: the carry-in from before the test keeps part of the
# effect during it, and the spend's carry-over after it is lost too, so on a concave curve the
# test loses less than that. On the independent accuracy worlds (benchmarks/worlds.py, each
# world's own curves) the steady-state reading of the benchmark's tests is off the true loss
# by -3% to +14% on 25 of 35 channels and over-reads it by 20-69% on the other 10, all but one
# with long carry-over (retention 0.5-0.75 or a delayed peak); calibrating to it pulled those
# channels low (references/mmm_methodology.md, "With lift tests"). So a test
# whose window holds the channel's spend in the panel is compared with what the fitted model
# itself says the test removed: the channel's contribution over every period with the panel's
# spend, minus the same with the channel's spend set to 0 in the test's window (and geo),
# carry-over included, in the outcome's units. A test run on spend the panel does not hold
# keeps the steady-state term, the only reading its numbers allow.
COUNTERFACTUAL_LIKELIHOOD = "lift_measurements_counterfactual"
# Recorded in the fit's cache key: a calibrated fit made under another reading is refitted.
LIFT_READINGS = {
    "counterfactual": "model_counterfactual_v1",
    "steady_state": "pymc_marketing_steady_state_v1",
}


def has_panel_spend(test: IncrementalityResult, data: ModelData) -> bool:
    """Whether the channel spent in the panel within the test's window (and geo)."""
    return _panel_spend(test, data, _window(test, data)) > 0


def add_counterfactual_lift_tests(
    mmm: Any, tests: list[IncrementalityResult], data: ModelData
) -> None:
    """Add one normal likelihood term per test: observed lift ~ Normal(the model's lift for
    the test, the test's standard error). ``tests`` must each have panel spend in their window
    (``has_panel_spend``) and have passed ``lift_test_frame``'s checks."""
    import pymc as pm
    import pytensor.tensor as pt
    import pytensor.xtensor as ptx
    from pytensor.graph.replace import graph_replace

    model = mmm.model
    spend = model["channel_data"]
    contribution = model["channel_contribution"]
    dims = list(model.named_vars_to_dims["channel_data"])
    coords = {d: list(model.coords[d]) for d in dims}
    dates = pd.DatetimeIndex(pd.to_datetime(coords["date"]))
    shape = tuple(len(coords[d]) for d in dims)
    own = list(model.named_vars_to_dims.get("target_scale", ()))
    out_dims = list(model.named_vars_to_dims["channel_contribution"])
    scale = model["target_scale"].values.dimshuffle(
        [own.index(d) if d in own else "x" for d in out_dims]
    )
    # Channels (and geos) do not interact in adstock and saturation, so tests on different
    # (channel, geo) cells share one counterfactual: all of them dark at once, each test's lift
    # read from its own cell. A second test on the same cell needs a counterfactual of its
    # own (its window's carry-over reaches the other's). Each counterfactual costs one more
    # pass of the media graph per gradient.
    layers: list[dict[tuple[str, str | None], int]] = []
    for i, test in enumerate(tests):
        cell = (test.channel, test.geo if "geo" in dims else None)
        layer = next((la for la in layers if cell not in la), None)
        if layer is None:
            layer = {}
            layers.append(layer)
        layer[cell] = i
    lifts: list[Any] = [None] * len(tests)
    for layer in layers:
        keep = np.ones(shape)
        for i in layer.values():
            keep[np.ix_(*_dark_cells(tests[i], data, dims, coords, dates))] = 0.0
        dark = spend * ptx.as_xtensor(pt.constant(keep), dims=dims)
        without = graph_replace(contribution, {spend: dark}, strict=True)
        lost = (contribution.values - without.values) * scale
        for (channel, geo), i in layer.items():
            cell = [slice(None)] * len(out_dims)
            cell[out_dims.index("channel")] = coords["channel"].index(channel)
            if geo is not None:
                cell[out_dims.index("geo")] = coords["geo"].index(geo)
            lifts[i] = pt.sum(lost[tuple(cell)])
    with model:
        pm.Normal(
            COUNTERFACTUAL_LIKELIHOOD,
            mu=pt.stack(lifts),
            sigma=np.asarray([standard_error(test) for test in tests]),
            observed=np.asarray([test.lift for test in tests]),
        )


def _dark_cells(
    test: IncrementalityResult,
    data: ModelData,
    dims: list[str],
    coords: dict[str, list[Any]],
    dates: pd.DatetimeIndex,
) -> list[Any]:
    """Per dim of the spend tensor, the indices a test switches off: its window's dates, its
    channel, its geo (every geo for a test without one)."""
    index: list[Any] = []
    for d in dims:
        if d == "date":
            inside = _window(test, data)
            window = pd.DatetimeIndex(pd.to_datetime(data.X.loc[inside, "date"].unique()))
            index.append(np.flatnonzero(dates.isin(window)))
        elif d == "channel":
            index.append([coords[d].index(test.channel)])
        elif d == "geo" and test.geo:
            index.append([coords[d].index(test.geo)])
        else:
            index.append(np.arange(len(coords[d])))
    return index


def calibrate(
    mmm: Any,
    tests: list[IncrementalityResult],
    data: ModelData,
    reading: str = "counterfactual",
) -> None:
    """Add the lift tests' likelihood terms to a built model. ``reading="counterfactual"``:
    the model's own counterfactual for tests on spend the panel holds, PyMC-Marketing's
    steady-state term for the others; ``"steady_state"``: that term for every test. Every
    test is checked first (``lift_test_frame`` raises naming the bad one)."""
    import warnings

    if reading not in LIFT_READINGS:
        raise ValueError(f"unknown lift-test reading {reading!r}")
    frame = lift_test_frame(tests, data)
    in_panel = [reading == "counterfactual" and has_panel_spend(test, data) for test in tests]
    if any(in_panel):
        add_counterfactual_lift_tests(
            mmm, [t for t, inside in zip(tests, in_panel, strict=True) if inside], data
        )
    if not all(in_panel):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            mmm.add_lift_test_measurements(
                frame[[not inside for inside in in_panel]].reset_index(drop=True)
            )
