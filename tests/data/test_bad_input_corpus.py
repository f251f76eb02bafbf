"""Every broken workspace in tests/corpus fails with a specific error and writes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attribution_analysis.api import validate_data
from attribution_analysis.errors import AttributionError
from attribution_analysis.workspace import Workspace
from tests.conftest import CORPUS, REPO

CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expect.json").exists())
BROKEN = [c for c in CASES if c != "valid_base"]
PREVIOUS = b'{"previous": "good result"}\n'


def _prepare(case: str, tmp_path: Path) -> Path:
    root = tmp_path / case
    shutil.copytree(CORPUS / case, root, ignore=shutil.ignore_patterns("expect.json"))
    (root / "analysis").mkdir(exist_ok=True)
    (root / "analysis" / "data_validation.json").write_bytes(PREVIOUS)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".attribution" not in p.parts
    }


def test_the_corpus_has_every_case_the_foundation_issue_names():
    required = {
        "missing_spend_file",
        "missing_conversions",
        "empty_file",
        "missing_column",
        "unparseable_date",
        "duplicate_dates",
        "negative_spend",
        "negative_impressions",
        "nan_value",
        "inf_value",
        "non_utf8",
        "mixed_grains",
        "misaligned_ranges",
        "one_row",
        "channel_all_zeros",
        "channel_name_quotes",
        "channel_name_html",
        "channel_name_path",
    }
    assert required <= set(BROKEN)


def test_the_valid_base_of_the_corpus_passes(tmp_path):
    root = _prepare("valid_base", tmp_path)
    report = validate_data(Workspace.open(root))
    assert report.window.n_periods == 30
    assert [c.channel for c in report.channels] == ["search", "social", "tv"]


@pytest.mark.parametrize("case", BROKEN)
def test_broken_workspace_names_the_problem_and_leaves_outputs_untouched(case, tmp_path):
    expect = json.loads((CORPUS / case / "expect.json").read_text())
    root = _prepare(case, tmp_path)
    before = _snapshot(root)
    with pytest.raises(AttributionError) as caught:
        validate_data(Workspace.open(root))
    error = caught.value
    assert error.code == expect["code"], error.message
    for key in ("file", "column"):
        if key in expect:
            assert getattr(error, key) == expect[key], error.message
    if "rows" in expect:
        assert list(error.rows) == expect["rows"], error.message
    if "message_contains" in expect:
        # As a command-line user reads it: flags (--start) are worded per front end.
        assert expect["message_contains"] in error.render("cli")
    assert error.fix, "every input error says what to do"
    assert _snapshot(root) == before, "a failed validation must not write or change outputs"


@pytest.mark.parametrize(
    "case", ["non_utf8", "channel_name_html", "missing_spend_file", "mixed_grains"]
)
def test_the_script_exits_2_with_a_json_error_and_no_traceback(case, tmp_path):
    root = _prepare(case, tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "validate_data.py"),
            "--workspace",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    payload = json.loads(result.stdout)
    assert payload["status"] == "error"
    assert (
        payload["error"]["code"] == json.loads((CORPUS / case / "expect.json").read_text())["code"]
    )
    assert result.stderr.startswith("error: ")
