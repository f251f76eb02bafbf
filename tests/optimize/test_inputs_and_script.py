"""Short spellings of scenarios, bounds files, and the script's error contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from attribution_analysis.contracts.budget import (
    AllocationScenario,
    OptimizeBudgetParams,
    ShiftScenario,
)
from attribution_analysis.errors import DataValidationError
from attribution_analysis.optimize.inputs import read_bounds
from tests.conftest import REPO


def test_scenarios_in_their_short_spelling_parse_into_the_contract():
    """Every front end (MCP, CLI, scripts) takes the short spellings, since the contract
    does: an agent relaying 'move 20% of tv to search' need not build the object."""
    params = OptimizeBudgetParams.model_validate(
        {"scenarios": ["shift:tv:search:0.2", "total:-0.1", "plan:tv=100,search=50.5"]}
    )
    shift, total, plan = params.scenarios
    assert isinstance(shift, ShiftScenario) and shift.fraction == 0.2
    assert total.change == -0.1
    assert isinstance(plan, AllocationScenario) and plan.allocation == {"tv": 100, "search": 50.5}
    objects = OptimizeBudgetParams.model_validate(
        {"scenarios": [{"kind": "total_change", "change": 0.1}]}
    )
    assert objects.scenarios[0].change == 0.1
    for wrong in ("move tv to search", "shift:tv:search:lots"):
        with pytest.raises(ValidationError, match="shift:FROM:TO:FRACTION"):
            OptimizeBudgetParams.model_validate({"scenarios": [wrong]})


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
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"channel,min_spend\n\xff\xfe,1\n")
    with pytest.raises(DataValidationError, match="not a readable CSV"):
        read_bounds(broken, "plans/broken.csv")
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
        (["--total-budget", "0"], "--total-budget 0", "Default: current spend"),
        (["--total-budget", "-5000"], "--total-budget '-5000'", "not per period"),
        (["--horizon-periods", "0"], "--horizon-periods '0'", "--horizon-periods is"),
        (["--risk-level", "1.5"], "--risk-level '1.5'", "worst 10% of draws"),
    ],
)
def test_script_names_the_flag_the_user_typed(simulated, flags, named, fix):
    """Refused values are reported under their command-line flag, with the value and what
    the parameter means (from the contract's own description), before the workspace is
    even looked at (an unfitted one here)."""
    root = simulated(kind="mmm", seed=3, weeks=52, channels=2)
    result = _script("--workspace", str(root), *flags)
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert named.split()[0] in error["problem"] and named.split()[1].strip("'") in error["problem"]
    assert "horizon_periods" not in error["problem"] and "total_budget" not in error["problem"]
    assert fix in error["fix"]
    assert not (root / "analysis" / "budget_plans").exists()


def test_a_missing_bounds_file_is_refused_before_any_work(simulated):
    root = simulated(kind="mmm", seed=3, weeks=52, channels=2)
    result = _script("--workspace", str(root), "--bounds-file", "plans/limits.csv")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert "--bounds-file" in error["message"] and "plans/limits.csv" in error["message"]


def test_script_refuses_an_unvalidated_model_with_json_and_exit_2(simulated):
    root = simulated(kind="mmm", seed=3, weeks=52, channels=2)
    result = _script("--workspace", str(root))
    assert result.returncode == 2
    assert "validated" in json.loads(result.stdout)["error"]["message"]
    assert not (root / "analysis" / "budget_plans").exists()
