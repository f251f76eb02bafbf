"""Covariate specs -> design: reference levels, transforms, errors naming file/column/rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.allocation.covariates import build_design, parse_spec
from attribution_analysis.errors import DataValidationError, ParameterError

TABLE = pd.DataFrame(
    {
        "hcp_id": ["H1", "H2", "H3", "H4", "H5"],
        "specialty": ["GP", "CARDIO", "GP", "ONCO", "GP"],
        "seniority": ["5", "12", "0", "20", "8"],
        "potential": ["0.5", "1.5", "0.0", "2.0", "1.0"],
        "_line": [2, 3, 4, 5, 6],
    }
)
ENTITIES = ["H1", "H2", "H3", "H4", "H5"]


def test_text_columns_get_indicators_against_the_most_frequent_level():
    design = build_design(TABLE, "hcp_id", ENTITIES, ["specialty"], "raw/hcps.csv")
    assert design.names == ["intercept", "specialty[CARDIO]", "specialty[ONCO]"]
    assert design.categorical[0].reference == "GP"
    assert design.matrix[:, 1].tolist() == [0, 1, 0, 0, 0]
    assert np.linalg.matrix_rank(design.matrix) == design.matrix.shape[1]


def test_transforms_are_applied_and_rows_follow_the_entity_order():
    design = build_design(
        TABLE, "hcp_id", ["H3", "H1"], ["seniority/10", "log1p(potential)"], "raw/hcps.csv"
    )
    assert design.names == ["intercept", "seniority/10", "log1p(potential)"]
    assert np.allclose(design.matrix[:, 1], [0.0, 0.5])
    assert np.allclose(design.matrix[:, 2], np.log1p([0.0, 0.5]))


def test_a_covariate_column_that_does_not_exist_is_named_with_a_close_match():
    with pytest.raises(DataValidationError) as caught:
        build_design(TABLE, "hcp_id", ENTITIES, ["specialy"], "raw/hcps.csv")
    assert caught.value.column == "specialy" and caught.value.file == "raw/hcps.csv"
    assert "specialty" in caught.value.message


@pytest.mark.parametrize("empty", ["", "NaN", "nan"])
def test_an_empty_or_nan_covariate_is_refused_with_its_line(empty):
    table = TABLE.copy()
    table.loc[2, "potential"] = empty
    with pytest.raises(DataValidationError) as caught:
        build_design(table, "hcp_id", ENTITIES, ["potential"], "raw/hcps.csv")
    assert list(caught.value.rows) == [4] and caught.value.column == "potential"


def test_log_of_zero_is_refused_and_log1p_suggested():
    with pytest.raises(DataValidationError, match="log1p"):
        build_design(TABLE, "hcp_id", ENTITIES, ["log(potential)"], "raw/hcps.csv")


def test_an_entity_without_a_covariate_row_is_refused():
    with pytest.raises(DataValidationError, match="H9"):
        build_design(TABLE, "hcp_id", [*ENTITIES, "H9"], ["seniority"], "raw/hcps.csv")


def test_a_covariate_that_never_varies_is_refused():
    table = TABLE.assign(region="north")
    with pytest.raises(ParameterError, match="single level"):
        build_design(table, "hcp_id", ENTITIES, ["region"], "raw/hcps.csv")


def test_unparseable_specs_are_refused():
    with pytest.raises(ParameterError):
        parse_spec("exp(potential)")
    assert parse_spec("cat(seniority)").transform == "cat"
