"""The long exposure table: codes, checks that name file/column/rows, reported gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.problem import Origin, build_problem, problem_from_arrays
from attribution_analysis.errors import DataValidationError

ORIGIN = Origin(
    totals_file="raw/brick_sales.csv",
    total_column="sales",
    group_column="brick_id",
    pairs_file="raw/hcp_brick.csv",
    entity_column="hcp_id",
    exposure_column="visits",
)


def frames(sales=(10.0, 5.0, 0.0), visits=(2.0, 1.0, 3.0, 1.0)):
    totals = pd.DataFrame({"brick_id": ["B1", "B2", "B3"], "sales": sales, "_line": [2, 3, 4]})
    pairs = pd.DataFrame(
        {
            "hcp_id": ["H1", "H2", "H2", "H3"],
            "brick_id": ["B1", "B1", "B2", "B2"],
            "visits": visits,
            "_line": [2, 3, 4, 5],
        }
    )
    return totals, pairs


def test_codes_follow_the_group_table_and_sorted_entity_labels():
    totals, pairs = frames()
    problem = build_problem(totals, pairs, origin=ORIGIN)
    assert list(problem.group_labels) == ["B1", "B2", "B3"]
    assert list(problem.entity_labels) == ["H1", "H2", "H3"]
    assert problem.group.tolist() == [0, 0, 1, 1]
    assert problem.entity.tolist() == [0, 1, 1, 2]
    assert problem.group.dtype == np.int32 and problem.exposure.dtype == np.float64
    assert problem.matrix.toarray().tolist() == [[2, 1, 0], [0, 3, 1], [0, 0, 0]]


def test_a_negative_total_is_refused_naming_file_column_and_row():
    totals, pairs = frames(sales=(10.0, -5.0, 0.0))
    with pytest.raises(DataValidationError) as caught:
        build_problem(totals, pairs, origin=ORIGIN)
    err = caught.value
    assert (err.file, err.column, list(err.rows)) == ("raw/brick_sales.csv", "sales", [3])
    assert "negative" in err.message and err.fix


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_a_negative_or_non_finite_exposure_is_refused(bad):
    totals, pairs = frames(visits=(2.0, bad, 3.0, 1.0))
    with pytest.raises(DataValidationError) as caught:
        build_problem(totals, pairs, origin=ORIGIN)
    assert (caught.value.file, caught.value.column) == ("raw/hcp_brick.csv", "visits")
    assert list(caught.value.rows) == [3]


def test_duplicate_group_entity_rows_are_refused_naming_both_lines():
    totals, pairs = frames()
    pairs = pd.concat([pairs, pairs.iloc[[2]].assign(_line=6)], ignore_index=True)
    with pytest.raises(DataValidationError) as caught:
        build_problem(totals, pairs, origin=ORIGIN)
    assert caught.value.code == "duplicate_rows"
    assert sorted(caught.value.rows) == [4, 6]
    assert "B2" in caught.value.message and "H2" in caught.value.message


def test_exposure_for_a_group_without_a_total_is_refused():
    totals, pairs = frames()
    pairs.loc[3, "brick_id"] = "B9"
    with pytest.raises(DataValidationError) as caught:
        build_problem(totals, pairs, origin=ORIGIN)
    assert caught.value.code == "unknown_group" and list(caught.value.rows) == [5]
    assert "B9" in caught.value.message


def test_groups_without_exposure_and_entities_without_groups_are_reported_not_dropped():
    totals, pairs = frames()
    pairs.loc[3, "visits"] = 0.0  # B2 keeps H2's exposure; H3 has a row but zero exposure
    pairs.loc[2, "visits"] = 0.0  # now B2 has rows but zero total exposure
    problem = build_problem(totals, pairs, entities=["H1", "H2", "H3", "H4"], origin=ORIGIN)
    issues = problem.issues()
    assert problem.group_labels[issues.groups_without_entities].tolist() == ["B3"]
    assert problem.group_labels[issues.groups_zero_exposure].tolist() == ["B2"]
    assert problem.entity_labels[issues.entities_without_exposure].tolist() == ["H3", "H4"]
    assert problem.n_entities == 4 and problem.n_groups == 3


def test_blocks_separate_entities_that_never_share_a_group():
    problem = problem_from_arrays(
        totals=[1.0, 2.0, 3.0], group=[0, 0, 1, 2], entity=[0, 1, 1, 2], exposure=[1, 1, 1, 1]
    )
    count, group_block, entity_block = problem.blocks
    assert count == 2
    assert group_block[0] == group_block[1] != group_block[2]
    assert entity_block[0] == entity_block[1] != entity_block[2]


def test_arrays_with_negative_values_are_refused():
    with pytest.raises(DataValidationError):
        problem_from_arrays([1.0, -2.0], [0, 1], [0, 0], [1.0, 1.0])
