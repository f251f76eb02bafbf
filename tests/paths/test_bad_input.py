"""Bad journey input: one clear error naming file, column and rows; analysis/ untouched."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from attribution_analysis.api import attribute_paths
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.errors import AttributionError
from tests.conftest import REPO
from tests.paths.helpers import workspace_with

GOOD_JOURNEYS = "journey_id,timestamp,channel,converted\nj1,2024-01-01,social,1\n"
SENTINEL = '{"earlier": "result"}\n'

CASES = [
    pytest.param(
        "raw/journeys.csv",
        "journey_id,timestamp,channel,converted\nj1,2024-01-01,social,0\n"
        "j2,2024-01-01,search>brand,1\n",
        ("separator_in_name", "channel", [3], "path separator"),
        id="separator-in-channel-name",
    ),
    pytest.param(
        "raw/paths.csv",
        "path,conversions,nulls\nsocial > email,1,3\n,2,1\n",
        ("empty_path", "path", [3], "path is empty"),
        id="empty-path",
    ),
    pytest.param(
        "raw/paths.csv",
        "path,conversions,nulls\nsocial > email,1,3\nsocial >  > email,2,1\n",
        ("empty_path", "path", [3], "empty step"),
        id="empty-step-in-path",
    ),
    pytest.param(
        "raw/paths.csv",
        "path,conversions,nulls\nsocial > email,1,3\nemail,-2,1\n",
        ("negative_value", "conversions", [3], "negative"),
        id="negative-conversions",
    ),
    pytest.param(
        "raw/paths.csv",
        "path,conversions,nulls\nsocial,1,-3\n",
        ("negative_value", "nulls", [2], "negative"),
        id="negative-nulls",
    ),
    pytest.param(
        "raw/journeys.csv",
        "journey_id,timestamp,channel,converted\nj1,2024-01-01,social,1\nj2,2024-01-02,email,\n",
        ("missing_conversion_flag", "converted", [3], "without a conversion flag"),
        id="journey-without-conversion-flag",
    ),
    pytest.param(
        "raw/journeys.csv",
        "journey_id,timestamp,channel\nj1,2024-01-01,social\n",
        ("missing_column", "converted", [1], "missing"),
        id="missing-converted-column",
    ),
    pytest.param(
        "raw/paths.csv",
        "route,conversions\nsocial,1\n",
        ("missing_column", "path", [1], "missing"),
        id="missing-path-column",
    ),
    pytest.param(
        "raw/journeys.csv",
        "journey_id,timestamp,channel,converted\nj1,2024-01-01,social,2\n",
        ("bad_flag", "converted", [2], "0 or 1"),
        id="conversion-flag-not-0-or-1",
    ),
    pytest.param(
        "raw/journeys.csv",
        "journey_id,timestamp,channel,converted\nj1,yesterday,social,1\n",
        ("bad_date", "timestamp", [2], "ISO 8601"),
        id="bad-timestamp",
    ),
    pytest.param(
        "raw/paths.csv",
        "path,conversions,nulls\na > b,1,1\na>b,2,2\n",
        ("duplicate_rows", "path", [2, 3], "more than once"),
        id="duplicate-path",
    ),
    pytest.param(
        "raw/paths.csv",
        "path,conversions,nulls\nsearch,0,0\nemail,0,0\n",
        ("no_journeys", "conversions", [2, 3], "holds no journeys"),
        id="every-row-zero",
    ),
    pytest.param(
        "raw/paths.csv",
        "path,conversions,nulls\nsearch,0,5\nemail > search,0,2\n",
        ("no_conversions", "conversions", [], "nothing to attribute"),
        id="no-conversions-paths",
    ),
    pytest.param(
        "raw/journeys.csv",
        "journey_id,timestamp,channel,converted\nj1,2024-01-01,social,0\nj2,2024-01-02,email,0\n",
        ("no_conversions", "converted", [], "nothing to attribute"),
        id="no-conversions-journeys",
    ),
    pytest.param(
        "raw/paths.csv",
        "path,conversions,nulls\nsearch \u2192 email,1,2\n",
        ("foreign_separator", "path", [2], "arrow-like separator"),
        id="unicode-arrow-separator",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES)
def test_bad_input_names_file_column_rows_and_leaves_analysis_unchanged(
    tmp_path, name, text, expected
):
    code, column, rows, words = expected
    ws = workspace_with(tmp_path, {name: text, "analysis/path_attribution.json": SENTINEL})
    with pytest.raises(AttributionError) as info:
        attribute_paths(ws, AttributePathsParams())
    error = info.value
    assert (error.code, error.file, error.column, list(error.rows)) == (code, name, column, rows)
    assert words in error.message and error.fix
    assert (tmp_path / "analysis" / "path_attribution.json").read_text() == SENTINEL
    assert sorted(p.name for p in (tmp_path / "analysis").iterdir()) == ["path_attribution.json"]


def test_no_journey_file_is_a_missing_input_error(tmp_path):
    ws = workspace_with(tmp_path, {})
    with pytest.raises(AttributionError, match=r"neither raw/journeys\.csv nor raw/paths\.csv"):
        attribute_paths(ws)


def test_a_corrupt_mmm_file_fails_before_anything_is_written(tmp_path):
    ws = workspace_with(
        tmp_path,
        {
            "raw/journeys.csv": GOOD_JOURNEYS,
            "analysis/mmm_channel_contributions.json": '{"channels": 3}',
        },
    )
    with pytest.raises(AttributionError) as info:
        attribute_paths(ws)
    assert info.value.file == "analysis/mmm_channel_contributions.json"
    assert not (tmp_path / "analysis" / "path_attribution.json").exists()


def test_the_script_exits_2_with_the_error_json(tmp_path):
    workspace_with(
        tmp_path,
        {"raw/paths.csv": "path,conversions,nulls\nsocial > email,1,3\nemail,-2,1\n"},
    )
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "attribute_paths.py"),
            "--workspace",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert payload["status"] == "error"
    assert payload["error"]["file"] == "raw/paths.csv" and payload["error"]["rows"] == [3]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "analysis" / "path_attribution.json").exists()


def test_journeys_with_mixed_conversion_flags_are_counted_once_and_reported(tmp_path):
    # J1 flags only its converting touch, J3 the other way round; J2 never converts.
    text = (
        "journey_id,timestamp,channel,converted\n"
        "J1,2024-01-01,social,0\nJ1,2024-01-02,email,0\nJ1,2024-01-03,search,1\n"
        "J2,2024-01-01,social,0\nJ2,2024-01-02,display,0\n"
        "J3,2024-01-04,search,1\nJ3,2024-01-05,social,0\n"
    )
    ws = workspace_with(tmp_path, {"raw/journeys.csv": text})
    report = attribute_paths(ws, AttributePathsParams(method="heuristics"))
    assert report.input.n_journeys == 3 and report.input.total_conversions == 2
    linear = next(m for m in report.methods if m.method == "linear")
    credit = {c.channel: c.conversions for c in linear.credits if c.conversions}
    # J1: three touches, a third each; J3: two touches, a half each.
    assert credit == pytest.approx(
        {"social": 1 / 3 + 1 / 2, "email": 1 / 3, "search": 1 / 3 + 1 / 2}
    )
    found = [f for f in report.findings if f.code == "mixed_conversion_flags"]
    assert len(found) == 1 and found[0].severity == "info" and found[0].value == 2
    assert found[0].subject == "J1, J3"
    assert "counted as one converted journey" in found[0].message
