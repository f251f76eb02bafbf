"""Every number the report and the FAQ print is the value of a recorded source field: the
check finds a made-up number, an interval level no output records and a misquoted string;
the sources files carry the metadata of their page. On a copy of the demo-like workspace
(see conftest), each output edited to the case under test."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from attribution_analysis.api import draft_faq, generate_report
from attribution_analysis.contracts.report import DraftFaqParams, GenerateReportParams
from attribution_analysis.workspace import Workspace
from tests.report.edits import (
    decided,
    drift_display,
    edit,
    edit_plan,
    faq_checked,
    faqs_checked,
    located,
    prior_rows,
    read_plan,
    report_with_records,
)
from tests.report.faq_sources import (
    REPORT_EXEMPT,
    count_numbers,
    faq_number_problems,
    number_problems,
    report_number_problems,
    visible_text,
)


def test_every_number_in_the_report_is_the_value_of_its_recorded_field(demo):
    """Including the decision sentence, the robustness and break-even tables, and the
    executive summary's rounded figures ('319 thousand'), each traced to its unrounded field."""
    fragile = read_plan(demo)["allocations"][0]["channel"]
    edit_plan(demo, decided(fragile))
    html, records = report_with_records(demo, financial_services=True, fee_basis="net_of_fees")
    assert report_number_problems(html, records, demo) == []
    text = visible_text(html)
    assert count_numbers(text) > 300  # the report does quote numbers
    files = {fact["file"] for record in records for fact in record["facts"]}
    plan_file = "analysis/budget_plans/recommended.json"
    for name in ("analysis/mmm_channel_contributions.json", plan_file):
        assert name in files
    assert "analysis/mmm_diagnostics.json" in files
    plan = read_plan(demo)
    lift = next(r for r in records if r["facts"][0]["path"][:3] == ["outcome", "lift", "mean"])
    assert lift["facts"][0]["value"] == plan["outcome"]["lift"]["mean"]
    # every new field of the plan is quoted from its own place
    quoted = {tuple(f["path"]) for r in records for f in r["facts"] if f["file"] == plan_file}
    assert ("outcome", "lift_pct_of_total", "hdi_90", 1) in quoted
    assert ("allocations", 0, "break_even", "probability_below") in quoted
    assert ("robustness", "variants", 0, "probability_better") in quoted

    # Executive rounding: the summary's figures in words are their fields' unrounded values
    # times the word's scale, rounded; the same field in the tables prints in full.
    contributions = json.loads((demo / "analysis" / "mmm_channel_contributions.json").read_text())
    base = contributions["base"]["total"]["mean"]
    rounded = [
        (r, f)
        for r in records
        for f in r["facts"]
        if f["path"] == ["base", "total", "mean"] and f["scale"] < 1
    ]
    assert rounded, "the base is not rounded in the summary"
    record, fact = rounded[0]
    assert fact["value"] == base and fact["scale"] in (1e-3, 1e-6)
    word = " thousand" if fact["scale"] == 1e-3 else " million"
    decimals = len(fact["shown"].partition(".")[2])
    assert fact["shown"] == f"{base * fact['scale']:,.{decimals}f}"
    assert record["text"].endswith(word + ")")
    assert f"{base:,.0f}" in text  # the contributions table keeps the full figure
    # negative control: an executive figure that is not its field's value is found out
    k = records.index(record)
    at = located(text, records)[k]
    shown = fact["shown"]
    wrong = record["text"].replace(shown, shown[:-1] + str((int(shown[-1]) + 3) % 10), 1)
    lying = [dict(r) for r in records]
    lying[k] = {**record, "text": wrong}
    shifted = text[:at] + wrong + text[at + len(record["text"]) :]
    problems = number_problems(shifted, lying, demo, REPORT_EXEMPT)
    assert any("does not read" in p for p in problems), problems


def test_a_made_up_number_in_the_report_is_found_out(demo):
    """Negative controls: a figure typed into the page, a printed figure that is not its
    field's value, a two-part 'version' (a decimal, so not exempt) and a percentage after a
    year in the title all fail; the report's own date, run id and three-part versions pass."""
    html, records = report_with_records(demo, title="Review 2024")
    assert report_number_problems(html, records, demo) == []
    anchor = '<section id="budget" data-section="budget">'

    typed = html.replace(anchor, anchor + "<p>Up 12.3% on last year.</p>", 1)
    assert any("12.3" in p for p in report_number_problems(typed, records, demo))
    decimal = html.replace(anchor, anchor + "<p>Drawn with matplotlib 3.10.</p>", 1)
    assert any("3.10" in p for p in report_number_problems(decimal, records, demo))
    own = html.replace(anchor, anchor + "<p>Drawn with matplotlib 3.10.1 on 2025-01-31.</p>", 1)
    assert report_number_problems(own, records, demo) == []
    title, titled = report_with_records(demo, title="Review 2024, up 12%")
    assert any("12%" in p for p in report_number_problems(title, titled, demo))

    text = visible_text(html)
    positions = located(text, records)
    k = next(
        i
        for i, r in enumerate(records)
        if r["facts"][0]["relation"] == "~" and r["text"][-1].isdigit()
    )
    old = records[k]["text"]
    bumped = old[:-1] + str((int(old[-1]) + 3) % 10)
    lying = [dict(r) for r in records]
    lying[k] = {**records[k], "text": bumped}
    shifted = text[: positions[k]] + bumped + text[positions[k] + len(old) :]
    problems = number_problems(shifted, lying, demo, REPORT_EXEMPT)
    assert any("does not read" in p for p in problems), problems


def test_interval_labels_pass_only_for_levels_the_outputs_record(demo, tmp_path):
    markdown = faqs_checked(demo, "cmo")["cmo"]
    records = json.loads((demo / "reports" / "faq_cmo.sources.json").read_text())["records"]
    for label, ok in (("90% HDI", True), ("95% HDI", True), ("80% interval", False)):
        text = markdown.replace("### Is this causal?\n", f"### Is this causal?\n\nA {label}.\n")
        assert (faq_number_problems(text, records, demo) == []) is ok, label

    only_90 = tmp_path / "only_90"
    (only_90 / "analysis").mkdir(parents=True)
    (only_90 / "analysis" / "x.json").write_text(json.dumps({"hdi_90": [0, 1]}))
    assert number_problems("a 90% HDI", [], only_90) == []
    assert number_problems("a 95% HDI", [], only_90) != []


def test_a_quoted_string_must_be_printed_verbatim_and_its_numbers_match_a_field(demo, tmp_path):
    markdown = faqs_checked(demo, "marketing")["marketing"]
    records = json.loads((demo / "reports" / "faq_marketing.sources.json").read_text())["records"]
    k = next(i for i, r in enumerate(records) if r["facts"][0]["path"][-1] == "entity")
    old = records[k]["text"]
    padded = f"{old} 7"  # a digit that occurs in the name elsewhere is still not the name
    lying = [dict(r) for r in records]
    lying[k] = {**records[k], "text": padded}
    at = located(markdown, records)[k]
    text = markdown[:at] + padded + markdown[at + len(old) :]
    assert any("in none of its fields" in p for p in faq_number_problems(text, lying, demo))

    # a string field that is neither an identifier nor a step's prose: its number must be
    # the value of a numeric field beside it
    root = tmp_path / "ws"
    (root / "analysis").mkdir(parents=True)
    (root / "analysis" / "x.json").write_text(
        json.dumps({"row": {"label": "about 42", "count": 42.0}, "other": {"label": "about 41"}})
    )

    def record(where: str) -> dict[str, Any]:
        value = json.loads((root / "analysis" / "x.json").read_text())[where]["label"]
        fact = {
            "shown": value,
            "file": "analysis/x.json",
            "path": [where, "label"],
            "value": value,
            "relation": "text",
            "scale": 1.0,
        }
        return {"text": value, "facts": [fact]}

    assert number_problems("about 42", [record("row")], root) == []
    problems = number_problems("about 41", [record("other")], root)
    assert any("matches no numeric field" in p for p in problems), problems


def test_every_faq_of_the_demo_passes_the_strict_number_check(demo):
    edit(demo, "mmm_diagnostics.json", prior_rows(demo))
    edit(demo, "allocation_summary.json", drift_display(demo))
    for audience in ("cmo", "data_science", "finance", "marketing", "legal", "all"):
        faq_checked(demo, audience)


def test_both_sources_files_carry_the_metadata_of_the_page(tmp_path):
    """The report's and the FAQ's sources files are output JSONs like any other: they carry
    metadata (time, versions, run id) and the hashes of the outputs the page was read from."""
    from attribution_analysis.api import simulate_workspace, validate_data
    from attribution_analysis.contracts.simulation import SimulationParams

    root = tmp_path / "ws"
    simulate_workspace(root, SimulationParams(kind="mta", seed=5, weeks=30, channels=2))
    ws = Workspace.open(root)
    validate_data(ws)
    validation = "analysis/data_validation.json"
    digest = hashlib.sha256((root / validation).read_bytes()).hexdigest()

    report = generate_report(ws, GenerateReportParams(figures=False))
    faq = draft_faq(ws, DraftFaqParams(audience="cmo"))
    written = [(report.sources, report.run_id, "generate_report")]
    written += [(file.sources, faq.run_id, "draft_faq") for file in faq.files]
    for path, run_id, step in written:
        sources = json.loads((root / path).read_text())
        metadata = sources["metadata"]
        assert (metadata["step"], metadata["run_id"]) == (step, run_id), path
        assert metadata["timestamp"] and metadata["package_version"], path
        assert metadata["library_versions"]["python"], path
        assert metadata["input_hashes"][validation] == digest, path
        assert {"params", "records"} <= set(sources), path
    assert json.loads((root / report.sources).read_text())["report"] == report.report
    assert json.loads((root / faq.files[0].sources).read_text())["markdown"] == (
        faq.files[0].markdown
    )
