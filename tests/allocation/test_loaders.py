"""Bad workspace input: the project's file / column / row errors, or explicit reports."""

from __future__ import annotations

import pytest

from attribution_analysis.allocation.step import ALLOCATION_PATH
from attribution_analysis.api import allocate
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.errors import (
    DataValidationError,
    MissingInputError,
    ParameterError,
    WorkspaceError,
)
from attribution_analysis.workspace import Workspace

FAST = AllocateParams(bootstrap=0)


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _line_of(path, prefix: str) -> int:
    return next(
        i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(prefix)
    )


def test_negative_brick_sales_name_the_file_column_and_line(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    path = root / "raw" / "brick_sales.csv"
    _edit(path, "B003,", "B003,-")
    with pytest.raises(DataValidationError) as caught:
        allocate(Workspace.open(root), FAST)
    err = caught.value
    assert (err.file, err.column) == ("raw/brick_sales.csv", "sales")
    assert list(err.rows) == [_line_of(path, "B003,")]
    assert not (root / ALLOCATION_PATH).exists()


def test_negative_visits_are_refused(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    path = root / "raw" / "hcp_brick.csv"
    lines = path.read_text().splitlines()
    lines[1] = ",".join([*lines[1].split(",")[:2], "-3"])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as caught:
        allocate(Workspace.open(root), FAST)
    assert (caught.value.column, list(caught.value.rows)) == ("visits", [2])


def test_duplicate_hcp_brick_rows_are_refused(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    path = root / "raw" / "hcp_brick.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[3]]) + "\n")
    with pytest.raises(DataValidationError) as caught:
        allocate(Workspace.open(root), FAST)
    assert caught.value.code == "duplicate_rows" and list(caught.value.rows) == [4, len(lines) + 1]


def test_a_brick_with_visits_but_no_sales_row_is_refused(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    path = root / "raw" / "brick_sales.csv"
    lines = path.read_text().splitlines()
    dropped = lines.pop(1).split(",")[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match=dropped) as caught:
        allocate(Workspace.open(root), FAST)
    assert caught.value.file == "raw/hcp_brick.csv" and caught.value.code == "unknown_group"


def test_a_brick_with_sales_but_no_exposure_is_listed_as_unallocated(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    with (root / "raw" / "brick_sales.csv").open("a") as handle:
        handle.write("B999,42.00\n")
    report = allocate(Workspace.open(root), FAST)
    assert [(g.group, g.total, g.reason) for g in report.unallocated_groups] == [
        ("B999", 42.0, "no_entities")
    ]
    assert any(f.code == "unallocated_total" and f.value == 42.0 for f in report.findings)


def test_an_hcp_in_no_brick_is_reported_and_predicted_from_covariates(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    with (root / "raw" / "hcps.csv").open("a") as handle:
        handle.write("H9999,ONCO,10,1.0\n")
    report = allocate(
        Workspace.open(root),
        AllocateParams(covariates=["specialty", "seniority", "log1p(potential)"], bootstrap=0),
    )
    assert any(f.code == "entities_in_no_group" for f in report.findings)
    idle = next(e for e in report.entities if e.entity == "H9999")
    assert idle.total_allocated == 0.0 and not idle.estimable and idle.cold_start
    assert idle.rate is not None and idle.rate > 0


def test_an_empty_covariate_value_names_its_line(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    path = root / "raw" / "hcps.csv"
    lines = path.read_text().splitlines()
    lines[0] += ",region"
    lines = [lines[0], *[line + ",north" for line in lines[1:]]]
    lines[5] = lines[5].rsplit(",", 1)[0] + ",NaN"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as caught:
        allocate(Workspace.open(root), AllocateParams(covariates=["region"], bootstrap=0))
    assert (caught.value.file, caught.value.column, list(caught.value.rows)) == (
        "raw/hcps.csv",
        "region",
        [6],
    )


def test_a_covariate_that_does_not_exist_is_refused_with_the_available_columns(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    with pytest.raises(DataValidationError, match="seniority") as caught:
        allocate(Workspace.open(root), AllocateParams(covariates=["senority"], bootstrap=0))
    assert caught.value.code == "missing_column"


def test_mta_without_the_validated_campaign_panel_asks_for_validation(simulated):
    root = simulated(kind="mta", seed=3, weeks=40, channels=2)
    with pytest.raises(MissingInputError, match="validate_data"):
        allocate(Workspace.open(root), FAST)


def test_negative_contributions_are_refused(validated_mta):
    root = validated_mta(seed=3, weeks=40, channels=2)
    (root / "analysis" / "c.csv").write_text(
        "date,channel,contribution\n2022-01-03,tv,5\n2022-01-10,tv,-2\n"
    )
    with pytest.raises(DataValidationError) as caught:
        allocate(Workspace.open(root), AllocateParams(contributions="analysis/c.csv"))
    assert (caught.value.file, caught.value.column, list(caught.value.rows)) == (
        "analysis/c.csv",
        "contribution",
        [3],
    )


def test_contributions_outside_the_workspace_are_refused(validated_mta):
    root = validated_mta(seed=3, weeks=40, channels=2)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        allocate(Workspace.open(root), AllocateParams(contributions="../elsewhere.csv"))


def test_poisson_bayes_with_fractional_totals_points_to_gamma(validated_mta):
    root = validated_mta(seed=3, weeks=40, channels=2)
    with pytest.raises(ParameterError, match="gamma"):
        allocate(Workspace.open(root), AllocateParams(method="bayes", bootstrap=0))


def _missing_from_both(root, params: AllocateParams) -> dict:
    """The error of the server/CLI pre-check and of the loaders for the same workspace: one
    presence check (loaders.require_inputs), so one wording."""
    from attribution_analysis.allocation.loaders import load_inputs
    from attribution_analysis.steps import step

    ws = Workspace.open(root)
    with pytest.raises(MissingInputError) as early:
        step("allocate").check(ws, params)
    with pytest.raises(MissingInputError) as late:
        load_inputs(ws, params)
    assert early.value.to_dict() == late.value.to_dict()
    return early.value.to_dict()


def test_a_missing_campaign_panel_is_worded_once(simulated):
    error = _missing_from_both(simulated(kind="mta", seed=3, weeks=40, channels=2), FAST)
    assert error["file"] == "analysis/prepared_campaign_panel.csv"
    assert "the `validate_data` step" in error["fix"]  # worded per front end (errors.render)


def test_missing_contributions_are_worded_once(validated_mta):
    root = validated_mta(seed=3, weeks=40, channels=2)
    given = _missing_from_both(root, AllocateParams(contributions="analysis/none.csv"))
    assert (given["file"], given["problem"]) == (
        "analysis/none.csv",
        "the file given as `contributions` does not exist.",
    )
    (root / "truth" / "contributions.csv").unlink()
    default = _missing_from_both(root, FAST)
    assert default["file"] == "analysis/mmm_contribution_draws.csv"
    assert "decompose_contributions" in default["fix"]


def test_missing_transforms_are_worded_once_and_name_the_mmm_file(validated_mta):
    root = validated_mta(seed=3, weeks=40, channels=2)
    given = _missing_from_both(root, AllocateParams(transforms_file="analysis/none.json"))
    assert (given["file"], given["problem"]) == (
        "analysis/none.json",
        "the file given as `transforms_file` does not exist.",
    )
    (root / "truth" / "parameters.json").unlink()
    # The MMM's decomposition writes its contributions with its transforms: contributions
    # from it without the transforms are a half-finished run, refused before the job.
    (root / "truth" / "contributions.csv").rename(root / "analysis" / "mmm_contribution_draws.csv")
    default = _missing_from_both(root, FAST)
    assert default["file"] == "analysis/mmm_transforms.json"
    assert "decompose_contributions" in default["fix"] and "transforms_file" in default["fix"]


def test_missing_brick_files_are_worded_once(simulated):
    root = simulated(kind="hcp-brick", seed=2)
    (root / "raw" / "hcp_brick.csv").unlink()
    error = _missing_from_both(root, FAST)
    assert error["file"] == "raw/hcp_brick.csv"
    assert "brick sales and HCP visits per brick" in error["problem"]
