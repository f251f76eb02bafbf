"""The path-attribution section: intervals, unmatched channels, Shapley's exactness, the
calibrated split, and a file that breaks its contract reported as unreadable."""

from __future__ import annotations

import json
import shutil

from attribution_analysis.api import attribute_paths, generate_report, simulate_workspace
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.contracts.report import GenerateReportParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.workspace import Workspace
from tests.report.faq_sources import report_number_problems

PATHS = "analysis/path_attribution.json"


def _paths_output(pipeline, tmp_path):
    journeys = tmp_path / "journeys"
    simulate_workspace(journeys, SimulationParams(kind="journeys", seed=3, n_users=5000))
    contributions = pipeline / "analysis" / "mmm_channel_contributions.json"
    shutil.copy(contributions, journeys / "analysis")
    params = AttributePathsParams(
        bootstrap_replicates=30,
        shapley_value="rate_within",
        shapley_exact_max_channels=2,
        shapley_permutations=300,
    )
    report = attribute_paths(Workspace.open(journeys), params)
    shutil.copy(journeys / PATHS, pipeline / "analysis")
    return report


def test_the_path_section_shows_intervals_unmatched_channels_and_shapley_sampling(
    pipeline, tmp_path
):
    report = _paths_output(pipeline, tmp_path)
    result = generate_report(Workspace.open(pipeline), GenerateReportParams(figures=False))
    html = (pipeline / result.report).read_text()
    assert {s.name: s.status for s in result.sections}["paths"] == "rendered"
    records = json.loads((pipeline / result.sources).read_text())["records"]
    assert report_number_problems(html, records, pipeline) == []
    section = html[html.index('<section id="paths"') : html.index('<section id="diagnostics"')]
    assert "90% bootstrap intervals" in section and "30 replicates" in section
    assert "removal effect (90% bootstrap interval)" in section
    first = report.methods[0].credits[0]
    assert first.share_lower_90 is not None
    assert section.count(" to ") > len(report.methods) * len(report.input.channels)
    rec = report.reconciliation
    assert rec.mmm_shares_renormalised == bool(rec.mmm_channels_not_in_paths)
    if rec.mmm_shares_renormalised:
        assert "MMM share among channels in both (90% HDI)" in section
    assert "Path-only channels" in section and "MMM-only channels" in section
    for name in rec.path_channels_not_in_mmm + rec.mmm_channels_not_in_paths:
        assert name in section
    assert "sampled over 300 orderings" in section and "Hoeffding" in section
    if rec.dates_overlap is False:
        assert "cover different periods" in section


def test_a_path_file_that_breaks_its_contract_is_unreadable_not_rendered(pipeline):
    (pipeline / PATHS).write_text(json.dumps({"methods": [], "input": {"kind": "x"}}))
    result = generate_report(Workspace.open(pipeline), GenerateReportParams(figures=False))
    section = {s.name: s for s in result.sections}["paths"]
    assert section.status == "unreadable"
    assert "does not match its contract" in section.message and "field(s)" in section.message
    html = (pipeline / result.report).read_text()
    assert 'data-empty-section="paths"' in html
