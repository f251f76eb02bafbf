"""The script and the `attribute_paths` command run the same step and print its JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from attribution_analysis.cli import app
from tests.conftest import REPO


def test_simulate_journeys_then_attribute_through_the_command(tmp_path):
    runner = CliRunner()
    root = tmp_path / "ws"
    result = runner.invoke(
        app,
        ["simulate_workspace", "--kind", "journeys", "--workspace", str(root), "--n-users", "2000"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["attribute_paths", "--workspace", str(root), "--method", "markov", "--order", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "markov_order_2" in json.loads(result.stdout)["shares"]


def test_the_script_prints_ok_json_with_shares_per_method(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "paths.csv").write_text("path,conversions,nulls\na > b,1,0\na,0,1\nb,1,1\n")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "attribute_paths.py"),
            "--workspace",
            str(tmp_path),
            "--method",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok"
    assert payload["shares"]["markov_order_1"] == {"a": 0.25, "b": 0.75}
    assert payload["outputs"] == ["analysis/path_attribution.json"]
