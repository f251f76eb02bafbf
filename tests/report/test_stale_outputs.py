"""A refit makes every output computed from the earlier fit out of date (the report flags
them); diagnostics that name no fit are not taken for the current one; a damaged fit manifest
is a clean error before any step."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from attribution_analysis.errors import ModelRejectedError
from attribution_analysis.mmm.gate import require_valid_model
from attribution_analysis.workspace import Workspace
from tests.report.edits import between, edit, report_with_records
from tests.report.faq_sources import report_number_problems

FIT = "analysis/mmm_fit.json"


FROM_THE_FIT = [
    "analysis/mmm_diagnostics.json",
    "analysis/mmm_channel_contributions.json",
    "analysis/budget_plans/recommended.json",
]


def test_a_refit_flags_every_output_computed_from_the_earlier_fit(demo):
    digest = hashlib.sha256((demo / FIT).read_bytes()).hexdigest()
    for name in FROM_THE_FIT:
        recorded = json.loads((demo / name).read_text())["metadata"]["input_hashes"]
        assert recorded[FIT] == digest, name
    html, _ = report_with_records(demo)
    assert 'id="stale-outputs"' not in html and "Out of date" not in html

    # A refit on the same data: same inputs, new manifest (run id, timestamp, model file).
    def refit(data: dict[str, Any]) -> None:
        data["metadata"]["run_id"] = "0123456789abcdef"

    edit(demo, "mmm_fit.json", refit)
    html, records = report_with_records(demo)
    banner = between(html, 'id="stale-outputs"', "</div>")
    for name, producer in (
        ("analysis/mmm_diagnostics.json", "validate_model"),
        ("analysis/mmm_channel_contributions.json", "decompose_contributions"),
        ("analysis/budget_plans/recommended.json", "optimize_budget"),
    ):
        item = between(banner, f"<code>{name}</code>", "</li>")
        assert "computed from an earlier model fit (analysis/mmm_fit.json changed since)" in item
        assert f"Rerun the `{producer}` step" in item
    # the allocation split the decomposition of the earlier fit (read through its draws)
    allocation = between(banner, "<code>analysis/allocation_summary.json</code>", "</li>")
    assert (
        "analysis/mmm_channel_contributions.json" in allocation
        and "Rerun the `allocate` step" in allocation
    )
    for section, name in (
        ("contributions", "analysis/mmm_channel_contributions.json"),
        ("budget", "analysis/budget_plans/recommended.json"),
        ("diagnostics", "analysis/mmm_diagnostics.json"),
    ):
        body = between(html, f'data-section="{section}"', "</section>")
        assert f"Out of date: {name}: " in body
    assert report_number_problems(html, records, demo) == []
    # and the decomposition no longer accepts the diagnostics of the earlier fit
    with pytest.raises(ModelRejectedError, match="earlier fit"):
        require_valid_model(Workspace.open(demo), "override")


def test_diagnostics_that_name_no_fit_are_not_taken_for_the_current_one(demo):
    # Diagnostics written before they recorded the fit's digest cannot be tied to a fit.
    require_valid_model(Workspace.open(demo), "override")  # the current ones pass

    def forget_fit(data: dict[str, Any]) -> None:
        data["metadata"]["input_hashes"].pop(FIT)

    edit(demo, "mmm_diagnostics.json", forget_fit)
    with pytest.raises(ModelRejectedError, match="earlier fit"):
        require_valid_model(Workspace.open(demo), "override")


def test_a_damaged_manifest_is_a_clean_error_before_any_step(demo):
    from attribution_analysis.errors import WorkspaceError
    from attribution_analysis.steps import step

    (demo / FIT).write_text('{"result": {}}')
    params = step("validate_model").params()
    with pytest.raises(WorkspaceError, match="cannot be read") as caught:
        step("validate_model").check(Workspace.open(demo), params)
    assert "fit_mmm" in caught.value.fix
