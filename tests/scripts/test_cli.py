"""The command-line front ends at work: `attribution <step>` and `scripts/<step>.py` run the
steps with the same JSON answer, exit codes and wording (see test_generated_front_ends for
their options)."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from attribution_analysis.cli import app
from tests.conftest import REPO

runner = CliRunner()


def test_simulate_then_validate_through_the_attribution_command(tmp_path):
    root = tmp_path / "ws"
    result = runner.invoke(
        app,
        [
            "simulate_workspace",
            "--kind",
            "mta",
            "--workspace",
            str(root),
            "--weeks",
            "60",
            "--channels",
            "3",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate_data", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "ok" and "passed" in result.stdout
    assert (root / "analysis" / "data_validation.json").exists()
    result = runner.invoke(app, ["runs", "--workspace", str(root)])
    assert "validate_data" in result.output


def test_bad_parameters_exit_2_with_a_message(tmp_path):
    result = runner.invoke(
        app, ["simulate_workspace", "--kind", "nope", "--workspace", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert "--kind" in result.output
    result = runner.invoke(app, ["validate_data", "--workspace", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_the_validate_data_script_prints_ok_json(simulated):
    root = simulated(kind="mmm", seed=5, weeks=60, channels=2)
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "validate_data.py"), "--workspace", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok" and payload["window"]["n_periods"] == 60
    assert "analysis/prepared_panel.csv" in payload["outputs"]


def test_fitting_an_unvalidated_workspace_says_what_to_run_first(simulated):
    root = simulated(kind="mmm", seed=5, weeks=60, channels=2)
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "fit_mmm.py"), "--workspace", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert payload["error"]["code"] == "missing_input"
    assert "validate_data" in payload["error"]["fix"]


def test_schemas_check_command_reports_up_to_date():
    result = runner.invoke(app, ["schemas", "check", "--directory", str(REPO / "schemas")])
    assert result.exit_code == 0, result.output


def test_a_step_s_inputs_are_checked_before_it_runs(simulated):
    """The CLI shares the MCP server's pre-check (StepSpec.check): an allocation without
    the validation's campaign panel is refused before the step starts, so the run registry
    holds no failed allocate run for it."""
    root = simulated(kind="mta", seed=5, weeks=60, channels=2)
    result = runner.invoke(app, ["allocate", "--workspace", str(root)])
    assert result.exit_code == 2
    assert "analysis/prepared_campaign_panel.csv is missing" in result.output
    runs = runner.invoke(app, ["runs", "--workspace", str(root)])
    assert runs.exit_code == 0 and "allocate" not in runs.output
