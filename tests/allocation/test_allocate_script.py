"""scripts/allocate.py: one JSON object with a status, exit 0 or 2, nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "allocate.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def test_hcp_brick_allocation_prints_ok_json_and_writes_both_outputs(simulated):
    root = simulated(kind="hcp-brick", seed=3)
    result = _run(
        "--workspace",
        str(root),
        "--covariates",
        '["specialty", "seniority/10", "log1p(potential)"]',  # list parameters take JSON
        "--bootstrap",
        "5",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok" and payload["m_step"] == "glm" and payload["converged"]
    assert payload["outputs"] == ["analysis/mta_allocation.csv", "analysis/allocation_summary.json"]
    assert payload["mass_conservation_max_rel_error"] < 1e-9
    assert (root / "analysis" / "mta_allocation.csv").exists()
    summary = json.loads((root / "analysis" / "allocation_summary.json").read_text())
    assert summary["metadata"]["input_hashes"]["raw/brick_sales.csv"]
    assert summary["convergence"]["monotone"] is True


def test_bad_input_exits_2_with_the_error_json_and_writes_nothing(simulated):
    root = simulated(kind="hcp-brick", seed=3)
    path = root / "raw" / "hcp_brick.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")  # a duplicate pair
    result = _run("--workspace", str(root))
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert payload["status"] == "error" and payload["error"]["code"] == "duplicate_rows"
    assert payload["error"]["file"] == "raw/hcp_brick.csv" and payload["error"]["rows"]
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert not (root / "analysis" / "mta_allocation.csv").exists()


def test_an_unknown_covariate_is_an_input_error_not_a_traceback(simulated):
    root = simulated(kind="hcp-brick", seed=3)
    result = _run("--workspace", str(root), "--covariates", '["age"]')
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["column"] == "age"
