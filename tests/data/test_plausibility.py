"""Plausibility before any fit (#17 item 4-5): an outcome with nothing to explain, values
that only exceed the ceiling once aggregated, spend so small that a ROAS would overflow, and
a holiday country that is never silent. Each refusal names file, column, rows and the fix,
and leaves analysis/ byte-identical."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from attribution_analysis.api import validate_data
from attribution_analysis.contracts.validation import ValidateDataParams
from attribution_analysis.errors import DataValidationError, ParameterError
from attribution_analysis.runner import run_step
from attribution_analysis.steps import step
from attribution_analysis.workspace import Workspace
from tests.conftest import CORPUS, REPO

PREVIOUS = b'{"previous": "good result"}\n'
CONVERSIONS = "raw/conversions.csv"
TV = "raw/campaign_spend_tv.csv"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(CORPUS / "valid_base", root, ignore=shutil.ignore_patterns("expect.json"))
    (root / "analysis").mkdir()
    (root / "analysis" / "data_validation.json").write_bytes(PREVIOUS)
    return root


def _edit(root: Path, relative: str, column: str, values) -> None:
    path = root / relative
    frame = pd.read_csv(path, dtype=str)
    frame[column] = values if isinstance(values, str) else [str(v) for v in values]
    frame.to_csv(path, index=False)


def _analysis(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "analysis").iterdir())}


def _refused(root: Path) -> DataValidationError:
    before = _analysis(root)
    with pytest.raises(DataValidationError) as caught:
        validate_data(Workspace.open(root))
    assert _analysis(root) == before  # nothing written
    return caught.value


def _rows(root: Path, relative: str) -> int:
    return len(pd.read_csv(root / relative))


# ----- the outcome ---------------------------------------------------------------------------
def test_an_all_zero_outcome_is_refused_with_file_column_rows_and_fix(base):
    _edit(base, CONVERSIONS, "conversions", "0")
    error = _refused(base)
    assert (error.code, error.file, error.column) == (
        "outcome_all_zero",
        CONVERSIONS,
        "conversions",
    )
    assert list(error.rows[:2]) == [2, 3] and len(error.rows) == _rows(base, CONVERSIONS)
    assert "0 in every period" in error.problem
    assert "revenue" in error.fix  # the other outcome can still be modelled


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(lambda n: [7.0] * n, id="constant"),
        # 1e15, 1e15 - 1, ...: varies, but by 1e-15 of its size, which max-abs scaling rounds away
        pytest.param(lambda n: [1e15 - i for i in range(n)], id="spread-below-1e-9"),
    ],
)
def test_a_constant_outcome_is_refused(base, values):
    n = _rows(base, CONVERSIONS)
    _edit(base, CONVERSIONS, "revenue", [f"{v:.1f}" for v in values(n)])
    error = _refused(base)
    assert (error.code, error.file, error.column) == ("outcome_constant", CONVERSIONS, "revenue")
    assert error.rows and "1e-09 of its largest value" in error.problem


# ----- ceilings on what the model sees -------------------------------------------------------
def test_campaign_rows_summing_above_the_ceiling_in_a_period_are_refused(base):
    """Every row is at most 1e15, but two campaigns of one channel add up to 1.2e15."""
    path = base / TV
    frame = pd.read_csv(path)
    frame["campaign"] = "a"
    frame["spend"] = 6e14
    frame.loc[0, "spend"] = 6e14
    twin = frame.copy()
    twin["campaign"] = "b"
    pd.concat([frame, twin]).to_csv(path, index=False)
    error = _refused(base)
    assert (error.code, error.file, error.column) == ("out_of_range", TV, "spend")
    assert list(error.rows) == [2, len(frame) + 2]  # the two rows of the first week
    assert "1.2e+15" in error.problem and "same ceiling as a row (1e15)" in error.problem
    assert "micros" in error.fix


def test_a_spend_so_small_that_its_roas_would_overflow_is_refused(base):
    n = _rows(base, TV)
    _edit(base, TV, "spend", ["1e-300"] * n)
    error = _refused(base)
    assert (error.code, error.file, error.column) == ("implausible_spend", TV, "spend")
    assert len(error.rows) == n and "1e12 of outcome per unit of spend" in error.problem


def test_one_refusal_exits_2_on_the_command_line(base):
    _edit(base, CONVERSIONS, "conversions", "0")
    before = _analysis(base)
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "validate_data.py"), "--workspace", str(base)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    text = done.stdout + done.stderr
    assert "raw/conversions.csv" in text and "column 'conversions'" in text and "row" in text
    assert "Fix:" in text or "fix" in text
    assert _analysis(base) == before


# ----- the holiday country -------------------------------------------------------------------
def _answer(root: Path, params: ValidateDataParams):
    return run_step(step("validate_data"), Workspace.open(root), params)


def test_a_defaulted_country_is_stated_and_asks_for_confirmation(base):
    answer = _answer(base, ValidateDataParams())
    assert (answer.holiday_country, answer.holiday_country_source) == ("US", "default")
    (note,) = [n for n in answer.notes if n.code == "holiday_country_default"]
    assert note.severity == "warning" and "Confirm the country with the user" in note.message
    assert "[[" not in note.message  # findings are not rendered per front end: plain words
    report = json.loads((base / "analysis" / "data_validation.json").read_text())
    assert report["controls"]["holiday_country_source"] == "default"


@pytest.mark.parametrize(
    ("country", "shown", "source"),
    [("gb", "GB", "given"), ("US", "US", "given"), (None, None, "none")],
)
def test_a_given_country_or_none_is_stated_without_a_warning(base, country, shown, source):
    answer = _answer(base, ValidateDataParams(country=country))
    assert (answer.holiday_country, answer.holiday_country_source) == (shown, source)
    assert not [n for n in answer.notes if n.code == "holiday_country_default"]


def test_the_country_codes_are_the_packages_own_list():
    """The fast code list (the holidays registry's table) equals the package's public
    list_supported_countries(), aliases included (UK); a constant of the package such as JAN
    is not a country."""
    import holidays

    from attribution_analysis.data.controls import country_codes

    assert country_codes() == set(holidays.list_supported_countries())
    assert {"US", "GB", "UK", "DEU"} <= country_codes() and "JAN" not in country_codes()


@pytest.mark.parametrize("country", ["XX", "jan", "public"])
def test_an_unknown_country_is_refused_by_name(base, country):
    with pytest.raises(ParameterError, match=f"holiday country '{country}'"):
        _answer(base, ValidateDataParams(country=country))


# ----- negative control ----------------------------------------------------------------------
def test_a_plausible_workspace_passes_without_plausibility_findings(base):
    answer = _answer(base, ValidateDataParams(country="US"))
    codes = {f.code for f in [*answer.warnings, *answer.notes]}
    assert not codes & {"holiday_country_default", "outcome_all_zero", "outcome_constant"}
    assert answer.holiday_country_source == "given"


# ----- spend that never moves ----------------------------------------------------------------
def test_constant_spend_is_flagged_as_prior_driven_and_varying_spend_is_not(base):
    report = validate_data(Workspace.open(base))
    assert "constant_spend" not in {w.code for w in report.warnings}  # negative control
    _edit(base, TV, "spend", "1500.00")
    report = validate_data(Workspace.open(base))
    (flag,) = [w for w in report.warnings if w.code == "constant_spend"]
    assert flag.subject == "tv" and flag.value == 0.0
    assert "lift test" in flag.message and "priors" in flag.message


# ----- the kind of an external factor ----------------------------------------------------------
FACTORS = "raw/external_factors.csv"


def _factors(root: Path, kinds: list[str]) -> None:
    dates = pd.read_csv(root / CONVERSIONS)["date"]
    rows = [
        {"date": d, "factor_name": "newsletter", "value": float(10 + (i % 5)), "kind": kinds[i]}
        for i, d in enumerate(dates)
    ]
    pd.DataFrame(rows).to_csv(root / FACTORS, index=False)


def test_factor_kinds_reach_the_validation_report(base):
    n = _rows(base, CONVERSIONS)
    _factors(base, ["organic"] * n)
    report = validate_data(Workspace.open(base))
    assert report.controls.organic_series == ["ext_newsletter"]
    assert report.controls.external_factors == []
    _factors(base, [""] * n)  # blank: a control, as before the kind column existed
    report = validate_data(Workspace.open(base))
    assert report.controls.external_factors == ["ext_newsletter"]
    assert report.controls.organic_series == []


@pytest.mark.parametrize(
    ("kinds", "needle"),
    [
        pytest.param(lambda n: ["organic"] * (n - 1) + ["paid"], "'paid'", id="unknown"),
        pytest.param(lambda n: ["organic"] * (n - 1) + ["event"], "more than one", id="mixed"),
    ],
)
def test_a_bad_factor_kind_is_refused_with_its_row(base, kinds, needle):
    n = _rows(base, CONVERSIONS)
    _factors(base, kinds(n))
    error = _refused(base)
    assert (error.file, error.column, list(error.rows)) == (FACTORS, "kind", [n + 1])
    assert needle in error.problem and "organic" in error.fix
