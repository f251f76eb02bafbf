"""Lift tests checked against the prepared panel before any fit (#17 item 5): refusals name
the file, the test (rows = its position in the list) and the fix; kept-but-odd tests are
findings of the fit. (Bounds, intervals below zero, lift above the outcome and an empty list
are in tests/hardening/test_model_inputs.py; this file covers rows, flags and wording.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attribution_analysis.api import fit_mmm
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.errors import DataValidationError
from attribution_analysis.mmm.calibration import (
    LIFT_FILE,
    MAX_LIFT_PER_SPEND,
    lift_test_findings,
    lift_test_frame,
    read_lift_tests,
)
from attribution_analysis.mmm.panel import ModelData, load_model_data
from attribution_analysis.workspace import Workspace


@pytest.fixture
def validated(validated_with_lift_test) -> Path:
    return validated_with_lift_test


def _test(root: Path) -> dict:
    return json.loads((root / LIFT_FILE).read_text())[0]


def _write(root: Path, payload: object) -> None:
    (root / LIFT_FILE).write_text(json.dumps(payload))


def _data(root: Path) -> ModelData:
    return load_model_data(Workspace.open(root), None, True, True, True)


def _analysis(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "analysis").rglob("*")) if p.is_file()}


def _findings(root: Path):
    tests, _ = read_lift_tests(Workspace.open(root))
    data = _data(root)
    lift_test_frame(tests, data)  # kept: the frame is built
    return lift_test_findings(tests, data)


def test_a_plausible_lift_test_passes_without_findings(validated):
    assert _findings(validated) == []


def test_a_lift_above_the_outcome_names_the_test_as_its_row_and_writes_nothing(validated):
    test = _test(validated)
    total = float(_data(validated).y.sum())
    _write(validated, [test, {**test, "lift": 2 * total, "ci_lower": total, "ci_upper": 3 * total}])
    before = _analysis(validated)
    with pytest.raises(DataValidationError) as caught:
        fit_mmm(Workspace.open(validated), FitMMMParams(calibrate=True, method="ridge"))
    error = caught.value
    assert (error.file, error.column, list(error.rows)) == (LIFT_FILE, "lift", [1])
    assert "lift test 1" in error.message and "units" in error.fix
    assert _analysis(validated) == before


def test_a_negative_estimate_consistent_with_zero_is_kept_and_flagged(validated):
    test = _test(validated)
    _write(validated, [{**test, "lift": -50.0, "ci_lower": -400.0, "ci_upper": 300.0}])
    (finding,) = _findings(validated)
    assert (finding.code, finding.severity, finding.value) == ("negative_lift_kept", "warning", -50)
    assert LIFT_FILE in finding.message and "lift test 0" in finding.message


def test_an_implausible_return_is_flagged(validated):
    test = _test(validated)
    spend = 10.0
    lift = (MAX_LIFT_PER_SPEND + 50) * spend
    _write(
        validated, [{**test, "spend": spend, "lift": lift, "ci_lower": 0.0, "ci_upper": 2 * lift}]
    )
    codes = [f.code for f in _findings(validated)]
    assert "implausible_lift_per_spend" in codes


def test_a_test_whose_window_the_panel_spent_nothing_in_is_refused_or_flagged(validated):
    data = _data(validated)
    channel = data.channels[0]
    dark = data.X.loc[data.X[channel] == 0, "date"]
    if dark.empty:
        pytest.skip("the simulated channel spends every week")
    day = dark.iloc[0].date().isoformat()
    test = {**_test(validated), "channel": channel, "start": day, "end": day, "spend": None}
    test = {k: v for k, v in test.items() if v is not None}
    _write(validated, [test])
    with pytest.raises(DataValidationError) as caught:
        _findings(validated)
    assert (caught.value.column, list(caught.value.rows)) == ("spend", [0])
    _write(validated, [{**test, "spend": 100.0}])
    assert "lift_test_without_panel_spend" in [f.code for f in _findings(validated)]


def test_an_empty_list_says_there_are_no_lift_tests_in_mcp_words(validated):
    _write(validated, [])
    before = _analysis(validated)
    with pytest.raises(DataValidationError) as caught:
        fit_mmm(Workspace.open(validated), FitMMMParams(calibrate=True))
    error = caught.value
    assert error.code == "no_lift_tests" and "no lift tests to calibrate with" in error.problem
    mcp = error.render("mcp")
    assert "`calibrate`" in mcp and "--calibrate" not in mcp and "[[" not in mcp
    assert "--calibrate" in error.render("cli")
    assert _analysis(validated) == before


# ----- the same checks at validate_data, before any fit ------------------------------------
def _validated_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "analysis").rglob("*"))
        if p.is_file()
    }


def test_validate_data_refuses_a_lift_above_the_outcome_and_writes_nothing(validated):
    from attribution_analysis.api import validate_data

    test = _test(validated)
    total = float(_data(validated).y.sum())
    _write(validated, [{**test, "lift": 2 * total, "ci_lower": total, "ci_upper": 3 * total}])
    before = _validated_files(validated)
    with pytest.raises(DataValidationError) as caught:
        validate_data(Workspace.open(validated))
    assert (caught.value.file, caught.value.column, list(caught.value.rows)) == (
        LIFT_FILE,
        "lift",
        [0],
    )
    assert _validated_files(validated) == before  # the earlier validation is left as it was


def test_validate_data_reports_each_kept_lift_test_and_flags_odd_ones(validated):
    from attribution_analysis.api import validate_data

    test = _test(validated)
    spend = 10.0
    lift = (MAX_LIFT_PER_SPEND + 50) * spend
    _write(
        validated,
        [test, {**test, "spend": spend, "lift": lift, "ci_lower": 0.0, "ci_upper": 2 * lift}],
    )
    report = validate_data(Workspace.open(validated))
    checked = [n for n in report.notes if n.code == "lift_test_checked"]
    assert [n.subject.split(" (")[0] for n in checked] == ["lift test 0", "lift test 1"]
    assert checked[1].value == pytest.approx(lift / spend)
    assert "implausible_lift_per_spend" in [w.code for w in report.warnings]
    assert report.status == "passed_with_warnings"


def test_validate_data_reads_an_empty_list_as_no_lift_tests(validated):
    from attribution_analysis.api import validate_data

    _write(validated, [])
    report = validate_data(Workspace.open(validated))
    assert "no_lift_tests" in [n.code for n in report.notes]


def _geo_data(spend_by_geo: dict[str, list[float]]) -> ModelData:
    """A two-geo, four-week panel where each geo spends differently on one channel."""
    import pandas as pd

    dates = pd.date_range("2024-01-01", periods=4, freq="7D")
    rows = [
        {"date": d, "geo": geo, "tv": spend[k]}
        for geo, spend in spend_by_geo.items()
        for k, d in enumerate(dates)
    ]
    X = pd.DataFrame(rows)

    class _Report:  # the one field the window reads
        grain = "weekly"

    return ModelData(
        X=X,
        y=pd.Series(1e6, index=X.index, name="revenue"),
        channels=["tv"],
        controls=[],
        geo=True,
        target="revenue",
        report=_Report(),  # type: ignore[arg-type]
        input_hashes={},
        imputed_target=np.zeros(len(X), bool),
    )


def test_a_geo_lift_test_is_read_against_its_own_geos_spend():
    from attribution_analysis.contracts.inputs import IncrementalityResult

    data = _geo_data({"north": [100.0] * 4, "south": [900.0] * 4})
    test = IncrementalityResult.model_validate(
        {
            "channel": "tv",
            "geo": "north",
            "lift": 80.0,
            "ci_lower": 40.0,
            "ci_upper": 120.0,
            "start": "2024-01-01",
            "end": "2024-01-28",
        }
    )
    (row,) = lift_test_frame([test], data).to_dict("records")
    # North spent 100 a week over 4 weeks: the test's spend per period is north's alone
    # (summing both geos gave 1,000 a week, a tenfold understated return).
    assert row["geo"] == "north" and row["delta_x"] == pytest.approx(100.0)
    assert row["delta_y"] == pytest.approx(20.0)
    with pytest.raises(DataValidationError) as caught:
        lift_test_frame([test.model_copy(update={"geo": "east"})], data)
    assert caught.value.column == "geo" and "east" in caught.value.problem
