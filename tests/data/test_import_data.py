"""import_data: role inference on the Robyn, PyMC-Marketing and Meridian layouts, the write
run (then validate_data), refusals that leave the workspace as it was, and the inline limit."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.importing import MAX_INLINE_BYTES, ImportDataParams
from attribution_analysis.errors import AttributionError, ParameterError, WorkspaceError
from attribution_analysis.steps import execute, step
from attribution_analysis.workspace import Workspace
from tests.data import wide_tables

SPEC = step("import_data")


def _run(ws: Workspace, **params) -> dict:
    return execute(SPEC, ws, ImportDataParams(**params))


def _snapshot(root: Path) -> dict[str, str]:
    """Every file's hash, the run registry aside (it records refused runs too)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".attribution" not in p.relative_to(root).parts
    }


def _raw_files(ws: Workspace) -> list[str]:
    raw = ws.root / "raw"
    return sorted(p.name for p in raw.iterdir()) if raw.is_dir() else []


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


@pytest.mark.parametrize("layout_name", sorted(wide_tables.TABLES))
def test_dry_run_infers_the_roles_and_asks_the_rest(ws, layout_name):
    answer = _run(ws, content=wide_tables.TABLES[layout_name]())
    expected = wide_tables.EXPECTED[layout_name]
    got = {c["column"]: (c["role"], c["channel"]) for c in answer["columns"]}
    assert set(got) == set(expected)
    right = [c for c in expected if got[c] == expected[c]]
    assert len(right) / len(expected) >= 0.9, {c: got[c] for c in expected if c not in right}
    asked = {q["column"] for q in answer["questions"]}
    low = {c["column"] for c in answer["columns"] if c["confidence"] == "low"}
    assert {c for c in expected if c not in right} <= asked
    assert low <= asked  # every guess is put to the user
    codes = {q["code"] for q in answer["questions"]}
    assert wide_tables.QUESTIONS[layout_name] | {"country"} <= codes
    assert answer["dry_run"] is True and answer["outputs"] == []
    assert answer["roles"] is not None
    assert {f["path"] for f in answer["files"]} >= {
        "raw/campaign_spend_imported.csv",
        "raw/conversions.csv",
    }
    assert all(f["rows"] > 0 and f["head"] for f in answer["files"])
    assert not _raw_files(ws)  # a dry run writes nothing
    # The dry run already states the window and the geos, read here from the text itself.
    table = pd.read_csv(io.StringIO(wide_tables.TABLES[layout_name]()), dtype=str)
    date_column = next(c for c, (role, _) in expected.items() if role == "date")
    dates = pd.to_datetime(table[date_column])
    assert answer["source"]["start"] == str(dates.min().date())
    assert answer["source"]["end"] == str(dates.max().date())
    geo_column = next((c for c, (role, _) in expected.items() if role == "geo"), None)
    geos = sorted(table[geo_column].unique()) if geo_column else []
    assert answer["source"]["geos"] == geos


def test_robyn_pairs_exposure_with_spend_and_expands_event_labels(ws):
    answer = _run(ws, content=wide_tables.robyn())
    channels = answer["roles"]["channels"]
    assert channels["facebook"]["impressions"] == "facebook_I"
    assert channels["search"]["clicks"] == "search_clicks_P"
    assert channels["tv"]["impressions"] is None
    assert answer["roles"]["target_kind"] == "revenue"
    codes = [f["code"] for f in answer["findings"]]
    assert codes.count("spend_only_channel") == 4  # tv, ooh, print, search
    assert "event_labels_expanded" in codes and "organic_and_events_as_components" in codes
    assert answer["questions"] == [q for q in answer["questions"] if q["code"] == "country"]


@pytest.mark.parametrize("layout_name", sorted(wide_tables.TABLES))
def test_write_run_then_validate_data_passes(ws, layout_name):
    content = wide_tables.TABLES[layout_name]()
    roles = _run(ws, content=content)["roles"]
    answer = _run(ws, content=content, dry_run=False, roles=roles, country="US")
    assert "raw/import_mapping.json" in answer["outputs"]
    mapping = json.loads((ws.root / "raw" / "import_mapping.json").read_text())
    assert mapping["country"] == "US"
    assert mapping["source"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    assert mapping["roles"] == json.loads(json.dumps(roles))
    findings = {f["code"] for f in answer["findings"]}
    if roles["organic"] or roles["events"]:
        assert "organic_and_events_as_components" in findings
    report = validate_data(ws)
    # Organic series and events reach the validation as their own kinds, not as controls.
    organic = {f"ext_{c}" for c in roles["organic"]}
    assert organic <= set(report.controls.organic_series)
    assert not organic & set(report.controls.external_factors)
    assert not set(report.controls.event_columns) & set(report.controls.external_factors)
    if roles["events"]:
        assert report.controls.event_columns
    assert report.status in ("passed", "passed_with_warnings")
    # The country stated at import is the one validate_data uses; it is not asked twice.
    assert (report.controls.holiday_country, report.controls.holiday_country_source) == (
        "US",
        "import",
    )
    assert "raw/import_mapping.json" in report.metadata.input_hashes
    assert sorted(c.channel for c in report.channels) == sorted(roles["channels"])
    assert report.window.n_periods == wide_tables.WEEKS
    if roles["geo"]:
        assert len(report.window.geos) == 3
    spend_only = {f.subject for f in report.notes if f.code == "spend_only_channel"}
    expected_spend_only = {c for c, cols in roles["channels"].items() if not cols["impressions"]}
    assert spend_only == expected_spend_only
    for channel in report.channels:
        if channel.channel in expected_spend_only:
            assert channel.total_impressions is None  # unknown, not zero
        else:
            assert channel.total_impressions > 0


def test_write_run_from_a_workspace_file_and_reimport_replaces_its_own_files(ws):
    uploads = ws.root / "uploads"
    uploads.mkdir(exist_ok=True)
    (uploads / "marketing.csv").write_text(wide_tables.pymc())
    roles = _run(ws, path="uploads/marketing.csv")["roles"]
    _run(ws, path="uploads/marketing.csv", dry_run=False, roles=roles, country=None)
    assert (ws.root / "raw" / "external_factors.csv").exists()
    # a second import without events: the old factors file goes in the same commit
    roles2 = {**roles, "events": [], "ignored": [*roles["ignored"], "event_1", "event_2"]}
    answer = _run(ws, path="uploads/marketing.csv", dry_run=False, roles=roles2, country=None)
    assert "raw/external_factors.csv" not in answer["outputs"]
    assert not (ws.root / "raw" / "external_factors.csv").exists()
    assert json.loads((ws.root / "raw" / "import_mapping.json").read_text())["country"] is None


def test_import_refuses_to_mix_with_other_raw_files_unless_overwrite(ws):
    (ws.root / "raw").mkdir(exist_ok=True)
    other = ws.root / "raw" / "campaign_spend_google.csv"
    other.write_text("date,channel,spend,impressions\n2024-01-01,search,1,1\n")
    content = wide_tables.pymc()
    roles = _run(ws, content=content)["roles"]
    with pytest.raises(WorkspaceError, match="mix"):
        _run(ws, content=content, dry_run=False, roles=roles, country="US")
    assert other.exists()
    _run(ws, content=content, dry_run=False, roles=roles, country="US", overwrite=True)
    assert not other.exists()


def _bad(roles: dict, **change) -> dict:
    out = json.loads(json.dumps(roles))
    out.update(change)
    return out


def _robyn_rows(edit) -> str:
    lines = wide_tables.robyn().splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    edit(header, rows)
    return "\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n"


@pytest.mark.parametrize(
    ("case", "code", "column", "rows"),
    [
        ("missing_column", None, None, None),
        ("two_roles", None, None, None),
        ("non_numeric_spend", "not_a_number", "tv_S", [5]),
        ("negative_spend", "negative_value", "ooh_S", [7]),
        ("duplicate_date", "duplicate_rows", "date", [2, 3]),
        ("partial_impressions", "missing_value", "facebook_I", [4]),
        ("bad_date", "bad_date", "DATE", [6]),
    ],
)
def test_bad_roles_or_cells_are_refused_and_leave_the_workspace_as_it_was(
    ws, case, code, column, rows
):
    content = wide_tables.robyn()
    roles = _run(ws, content=content)["roles"]
    _run(ws, content=content, dry_run=False, roles=roles, country="DE")
    before = _snapshot(ws.root)

    def cell(row: int, name: str, value: str):
        def edit(header, data):
            data[row - 2][header.index(name)] = value

        return edit

    if case == "missing_column":
        roles = _bad(roles, target="sales")
    elif case == "two_roles":
        roles = _bad(roles, controls=[*roles["controls"], "tv_S"])
    elif case == "non_numeric_spend":
        content = _robyn_rows(cell(5, "tv_S", "12k"))
    elif case == "negative_spend":
        content = _robyn_rows(cell(7, "ooh_S", "-20"))
    elif case == "duplicate_date":
        content = _robyn_rows(cell(3, "DATE", wide_tables.robyn().splitlines()[1][:10]))
    elif case == "partial_impressions":
        content = _robyn_rows(cell(4, "facebook_I", ""))
    elif case == "bad_date":
        content = _robyn_rows(cell(6, "DATE", "03/01/2016"))
    with pytest.raises(AttributionError) as caught:
        _run(ws, content=content, dry_run=False, roles=roles, country="DE")
    error = caught.value
    assert error.fix
    if code is None:
        assert isinstance(error, ParameterError) and error.parameter == "roles"
        assert "[[arg:roles]]" in error.problem
    else:
        assert error.code == code
        assert error.file == "content"
        assert error.column == column
        assert list(error.rows)[: len(rows)] == rows
    assert _snapshot(ws.root) == before


def test_write_run_needs_roles_and_a_stated_country(ws):
    content = wide_tables.pymc()
    with pytest.raises(ParameterError) as caught:
        _run(ws, content=content, dry_run=False)
    assert caught.value.parameter == "roles"
    roles = _run(ws, content=content)["roles"]
    with pytest.raises(ParameterError) as caught:
        _run(ws, content=content, dry_run=False, roles=roles)
    assert caught.value.parameter == "country"
    assert not _raw_files(ws)
    stated = _run(ws, content=content, country=None)
    assert "country" not in {q["code"] for q in stated["questions"]}


def test_inline_content_over_the_limit_is_refused():
    header = "date,revenue,tv_S\n"
    row = "2024-01-01,100.5,20.25\n"
    big = header + row * (MAX_INLINE_BYTES // len(row) + 1)
    with pytest.raises(ValidationError, match="inline limit"):
        ImportDataParams(content=big)
    with pytest.raises(ValidationError, match="exactly one"):
        ImportDataParams()
    with pytest.raises(ValidationError, match="exactly one"):
        ImportDataParams(content=header, path="uploads/x.csv")


def test_path_outside_the_workspace_is_refused(ws):
    with pytest.raises(WorkspaceError):
        _run(ws, path="../marketing.csv")


def test_a_country_given_to_validate_data_wins_over_the_import(ws):
    content = wide_tables.TABLES["robyn"]()
    roles = _run(ws, content=content)["roles"]
    _run(ws, content=content, dry_run=False, roles=roles, country=None)
    from attribution_analysis.contracts.validation import ValidateDataParams

    imported = validate_data(ws)
    assert (imported.controls.holiday_country, imported.controls.holiday_country_source) == (
        None,
        "import",
    )
    given = validate_data(ws, ValidateDataParams(country="DE"))
    assert (given.controls.holiday_country, given.controls.holiday_country_source) == (
        "DE",
        "given",
    )


def test_answers_word_step_and_argument_names_for_the_caller(ws):
    """Markers never reach a caller: the MCP answer names the tool and the argument, the
    command line the subcommand and the flag (negative control: the raw marker text)."""
    content = wide_tables.TABLES["pymc"]()
    roles = _run(ws, content=content)["roles"]
    assert "dayofyear" in roles["ignored"]
    roles["ignored"] = [c for c in roles["ignored"] if c != "dayofyear"]  # leave one out
    params = ImportDataParams(content=content, dry_run=False, roles=roles, country="US")
    for front_end, step_words, arg_words in (
        ("mcp", "the `validate_data` tool", "`roles`"),
        ("cli", "`attribution validate_data --workspace DIR`", "--roles"),
    ):
        answer = execute(SPEC, ws, params, front_end=front_end)
        text = json.dumps(answer)
        assert "[[" not in text
        assert step_words in text
        assert any(f["code"] == "columns_left_out" for f in answer["findings"])
        assert arg_words in text
