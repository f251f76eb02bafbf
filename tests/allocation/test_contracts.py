"""The allocation contracts document every field and refuse unknown keys."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel, ValidationError

from attribution_analysis.contracts import allocation
from attribution_analysis.contracts.allocation import AllocateParams

MODELS = [
    m
    for _, m in inspect.getmembers(allocation, inspect.isclass)
    if issubclass(m, BaseModel) and m.__module__ == allocation.__name__
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_has_a_description(model):
    assert [name for name, f in model.model_fields.items() if not f.description] == []


def test_unknown_parameters_are_refused_and_two_transform_sources_too():
    with pytest.raises(ValidationError):
        AllocateParams.model_validate({"methd": "em"})
    with pytest.raises(ValidationError, match="not both"):
        AllocateParams(transforms={}, transforms_file="analysis/t.json")
