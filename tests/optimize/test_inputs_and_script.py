"""Command-line spellings of bounds and scenarios, and the script's error contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from attribution_analysis.contracts.budget import AllocationScenario, ShiftScenario
from attribution_analysis.errors import DataValidationError, ParameterError
from attribution_analysis.optimize.inputs import (
    params_from_flags,
    parse_max_change,
    parse_scenario,
    read_bounds,
)
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


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "optimize_budget.py"), *args],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("flags", "named", "fix"),
    [
        (["--total-budget", "0"], "--total-budget 0.0", "leave the flag out"),
        (["--total-budget", "-5000"], "--total-budget -5000.0", "not per week"),
        (["--horizon-weeks", "0"], "--horizon-weeks 0", "--horizon-weeks 13"),
        (["--risk-level", "1.5"], "--risk-level 1.5", "between 0 and 1"),
    ],
)
def test_script_names_the_flag_the_user_typed(simulated, flags, named, fix):
    """Refused values are reported under their command-line flag, with what to type, before
    the workspace is even looked at (an unfitted one here)."""
    root = simulated(kind="mmm", seed=3, weeks=52, channels=2)
    result = _script("--workspace", str(root), *flags)
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert named in error["problem"]
    assert "horizon_periods" not in error["problem"] and "total_budget" not in error["problem"]
    assert fix in error["fix"]
    assert not (root / "analysis" / "mmm_budget_optimization.json").exists()


def test_flags_map_onto_the_contract():
    params = params_from_flags({"total_budget": 1e5, "horizon_periods": 4, "objective": "cvar"})
    assert (params.total_budget, params.horizon_periods, params.objective) == (1e5, 4, "cvar")
    with pytest.raises(ParameterError, match="--draws 5 is refused") as caught:
        params_from_flags({"draws": 5})
    assert "20 and 20000" in caught.value.fix


def test_script_refuses_an_unvalidated_model_with_json_and_exit_2(simulated):
    root = simulated(kind="mmm", seed=3, weeks=52, channels=2)
    result = _script("--workspace", str(root))
    assert result.returncode == 2
    assert "validated" in json.loads(result.stdout)["error"]["message"]
    assert not (root / "analysis" / "mmm_budget_optimization.json").exists()
