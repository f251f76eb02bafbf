"""Command-line spellings of bounds and scenarios, and the script's error contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from attribution_analysis.contracts.budget import AllocationScenario, ShiftScenario
from attribution_analysis.errors import DataValidationError, ParameterError
from attribution_analysis.optimize.inputs import parse_max_change, parse_scenario, read_bounds
from tests.conftest import REPO


def test_scenarios_parse_into_the_contract():
    shift = parse_scenario("shift:tv:search:0.2")
    assert isinstance(shift, ShiftScenario) and shift.fraction == 0.2
    assert parse_scenario("total:-0.1").change == -0.1
    plan = parse_scenario("plan:tv=100,search=50.5")
    assert isinstance(plan, AllocationScenario) and plan.allocation == {"tv": 100, "search": 50.5}
    with pytest.raises(ParameterError, match="shift:FROM:TO:FRACTION"):
        parse_scenario("move tv to search")
    with pytest.raises(ParameterError):
        parse_scenario("shift:tv:search:lots")


def test_max_change_accepts_none():
    assert parse_max_change("none") is None
    assert parse_max_change("0.5") == 0.5
    with pytest.raises(ParameterError, match="not a number"):
        parse_max_change("half")


def test_bounds_files_name_the_bad_row(tmp_path):
    good = tmp_path / "bounds.csv"
    good.write_text("channel,min_spend,max_spend,max_change\ntv,100,,\nsearch,,500,0.2\n")
    bounds = read_bounds(good)
    assert bounds[0].min_spend == 100 and bounds[0].max_spend is None
    assert bounds[1].max_change == 0.2
    bad = tmp_path / "bad.csv"
    bad.write_text("channel,min_spend,max_spend\ntv,100,50\n")
    with pytest.raises(DataValidationError, match="above max_spend") as caught:
        read_bounds(bad)
    assert caught.value.rows == [2] and caught.value.file == str(bad)
    unknown = tmp_path / "cols.csv"
    unknown.write_text("channel,minimum\ntv,1\n")
    with pytest.raises(DataValidationError, match="unexpected columns"):
        read_bounds(unknown)
    negative = tmp_path / "neg.json"
    negative.write_text('[{"channel": "tv", "min_spend": -5}]')
    with pytest.raises(DataValidationError, match="greater than or equal to 0"):
        read_bounds(negative)


def test_script_refuses_an_unvalidated_model_with_json_and_exit_2(simulated):
    root = simulated(kind="mmm", seed=3, weeks=52, channels=2)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "optimize_budget.py"),
            "--workspace",
            str(root),
            "--total-budget",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert payload["status"] == "error" and "total_budget" in payload["error"]["message"]
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "optimize_budget.py"), "--workspace", str(root)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "validated" in json.loads(result.stdout)["error"]["message"]
    assert not (root / "analysis" / "mmm_budget_optimization.json").exists()
