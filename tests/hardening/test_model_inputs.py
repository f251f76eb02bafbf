"""Hostile model inputs: lift tests and prior overrides that cannot work are typed errors
naming the test or prior and the fix, before any sampling, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attribution_analysis.api import fit_mmm
from attribution_analysis.contracts.mmm import FitMMMParams, MMMConfig
from attribution_analysis.errors import DataValidationError, ParameterError
from attribution_analysis.mmm.build import build_mmm
from attribution_analysis.mmm.calibration import LIFT_FILE, lift_test_frame, read_lift_tests
from attribution_analysis.mmm.panel import ModelData, load_model_data
from attribution_analysis.workspace import Workspace


@pytest.fixture
def validated(validated_with_lift_test) -> Path:
    return validated_with_lift_test


def _tests(root: Path) -> list[dict]:
    return json.loads((root / LIFT_FILE).read_text())


def _write(root: Path, payload: object) -> None:
    (root / LIFT_FILE).write_text(json.dumps(payload))


def _data(root: Path) -> ModelData:
    return load_model_data(Workspace.open(root), None, True, True, True)


# ----- 3. lift tests ---------------------------------------------------------------------------
def test_an_empty_lift_test_list_is_refused_before_fitting(validated):
    _write(validated, [])
    with pytest.raises(DataValidationError) as caught:
        read_lift_tests(Workspace.open(validated))
    error = caught.value
    assert (error.code, error.file) == ("no_lift_tests", LIFT_FILE)
    assert "at least one" in error.message and "calibrate" in error.fix


def test_a_calibrated_fit_with_no_lift_test_fails_cleanly_and_writes_nothing(validated):
    _write(validated, {"results": []})
    with pytest.raises(DataValidationError, match="no lift test"):
        fit_mmm(Workspace.open(validated), FitMMMParams(calibrate=True))
    assert not (validated / "analysis" / "mmm_fit.json").exists()


def test_a_lift_test_entirely_below_zero_is_refused(validated):
    test = _tests(validated)[0]
    _write(validated, [{**test, "lift": -500.0, "ci_lower": -800.0, "ci_upper": -200.0}])
    with pytest.raises(DataValidationError) as caught:
        read_lift_tests(Workspace.open(validated))
    error = caught.value
    assert (error.code, error.column) == ("bad_lift_test", "lift")
    assert "lift test 0 (tv)" in error.message and "go-dark" in error.fix


def test_a_negative_estimate_whose_interval_reaches_zero_is_kept(validated):
    """A null result with a negative point estimate is evidence that the channel did little;
    dropping such tests would bias the calibration upwards."""
    test = _tests(validated)[0]
    _write(validated, [{**test, "lift": -50.0, "ci_lower": -400.0, "ci_upper": 300.0}])
    tests, _ = read_lift_tests(Workspace.open(validated))
    frame = lift_test_frame(tests, _data(validated))
    assert frame["delta_y"].iloc[0] < 0


def test_a_lift_above_the_whole_outcome_of_its_window_is_refused(validated):
    data = _data(validated)
    test = _tests(validated)[0]
    total = float(data.y.sum())  # the outcome of all periods, the window's is smaller still
    _write(validated, [{**test, "lift": 2 * total, "ci_lower": total, "ci_upper": 3 * total}])
    tests, _ = read_lift_tests(Workspace.open(validated))
    with pytest.raises(DataValidationError) as caught:
        lift_test_frame(tests, data)
    error = caught.value
    assert (error.code, error.column, error.file) == ("bad_lift_test", "lift", LIFT_FILE)
    assert "conversions of its window" in error.message and "units" in error.fix


def test_a_lift_test_outside_the_model_window_is_refused(validated):
    test = _tests(validated)[0]
    _write(validated, [{**test, "start": "2030-01-07", "end": "2030-02-03"}])
    tests, _ = read_lift_tests(Workspace.open(validated))
    with pytest.raises(DataValidationError, match="outside the model's window"):
        lift_test_frame(tests, _data(validated))


def test_a_lift_test_in_another_metric_is_refused(validated):
    test = _tests(validated)[0]
    _write(validated, [{**test, "metric": "revenue"}])
    tests, _ = read_lift_tests(Workspace.open(validated))
    with pytest.raises(DataValidationError) as caught:
        lift_test_frame(tests, _data(validated))
    assert caught.value.column == "metric"


@pytest.mark.parametrize(
    ("field", "text", "column"),
    [
        pytest.param("spend", "NaN", "spend", id="nan-spend"),
        pytest.param("ci_upper", "Infinity", "ci_upper", id="infinite-upper"),
        pytest.param("spend", "1e308", "spend", id="huge-spend"),
        pytest.param("start", '"0001-01-01"', "start", id="year-0001"),
        pytest.param("end", '"2300-01-01"', "end", id="year-2300"),
    ],
)
def test_lift_tests_with_numbers_or_dates_out_of_bounds_are_refused(validated, field, text, column):
    test = _tests(validated)[0]
    body = json.dumps([{**test, field: "@@"}]).replace('"@@"', text)
    (validated / LIFT_FILE).write_text(body)
    with pytest.raises(DataValidationError) as caught:
        read_lift_tests(Workspace.open(validated))
    error = caught.value
    assert (error.code, error.column) == ("bad_lift_test", column), error.message


def test_a_folder_in_place_of_the_lift_file_is_refused(validated):
    (validated / LIFT_FILE).unlink()
    (validated / LIFT_FILE).mkdir()
    with pytest.raises(DataValidationError) as caught:
        read_lift_tests(Workspace.open(validated))
    assert (caught.value.code, caught.value.file) == ("not_a_file", LIFT_FILE)


# ----- 4. prior overrides ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("priors", "words"),
    [
        pytest.param(
            {"saturation_kappa": {"dist": "LogNormal", "kwargs": {"mu": -0.5, "sigma": -0.8}}},
            "sigma=-0.8 must be positive",
            id="negative-sigma",
        ),
        pytest.param(
            {"adstock_alpha": {"dist": "Beta", "kwargs": {"alpha": 1.5, "beta": 0.0}}},
            "beta=0 must be positive",
            id="zero-beta",
        ),
        pytest.param(
            {
                "likelihood": {
                    "dist": "Normal",
                    "kwargs": {"sigma": {"dist": "HalfNormal", "kwargs": {"sigma": -2.0}}},
                    "dims": ["date"],
                }
            },
            "no valid value",
            id="negative-hyperprior-sigma",
        ),
        pytest.param(
            {
                "saturation_kappa": {
                    "dist": "LogNormal",
                    "kwargs": {"mu": -0.5, "sigma": 0.8},
                    "dims": ["foo"],
                }
            },
            "['foo']",
            id="unknown-dims",
        ),
        pytest.param(
            {
                "saturation_kappa": {
                    "dist": "LogNormal",
                    "kwargs": {"mu": -0.5, "sigma": 0.8},
                    "dims": ["geo", "channel"],
                }
            },
            "['geo']",
            id="geo-dims-in-a-national-model",
        ),
        pytest.param(
            {"intercept": {"dist": "Normal", "kwargs": {"mu": 0, "sigma": 1}, "dims": ["channel"]}},
            "['channel']",
            id="channel-dims-on-the-intercept",
        ),
    ],
)
def test_priors_that_cannot_work_are_refused_naming_the_prior(validated, priors, words):
    name = next(iter(priors))
    with pytest.raises(ParameterError) as caught:
        build_mmm(_data(validated), MMMConfig(priors=priors))
    message = caught.value.message
    assert f"prior '{name}'" in message and words in message, message
    assert caught.value.fix


def test_valid_prior_overrides_still_build(validated):
    priors = {
        "saturation_kappa": {
            "dist": "LogNormal",
            "kwargs": {"mu": -0.3, "sigma": 0.7},
            "dims": ["channel"],
        },
        "likelihood": {
            "dist": "Normal",
            "kwargs": {"sigma": {"dist": "HalfNormal", "kwargs": {"sigma": 1.5}}},
            "dims": ["date"],
        },
    }
    mmm = build_mmm(_data(validated), MMMConfig(priors=priors))
    assert "saturation_kappa" in mmm.model.named_vars
