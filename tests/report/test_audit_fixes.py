"""Audit fixes of the report and FAQ, on a copy of the demo-like workspace (every step up to
the budget; see conftest), each output edited to the case under test.

The report's numbers are checked against their source fields like the FAQ's; a refit flags
every output computed from the earlier fit; the prior-flag limits come from
mmm_diagnostics.json; the number check has no level or quoted-text loophole; fee and
likelihood wording follow the outcome; criteria read in the unit of their rule; spend says it
has no currency; a missing coefficient interval gets only the reason the summary supports.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from attribution_analysis.contracts.report import (
    DraftFaqParams,
    FeeBasis,
    GenerateReportParams,
)
from attribution_analysis.contributions import require_valid_model
from attribution_analysis.errors import ModelRejectedError
from attribution_analysis.report import draft_faq, generate_report
from attribution_analysis.workspace import Workspace
from tests.report.faq_sources import (
    REPORT_EXEMPT,
    count_numbers,
    faq_number_problems,
    number_problems,
    report_number_problems,
    visible_text,
)

FIT = "analysis/mmm_fit.json"
FROM_THE_FIT = [
    "analysis/mmm_diagnostics.json",
    "analysis/mmm_channel_contributions.json",
    "analysis/mmm_budget_optimization.json",
]


def _edit(root: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / "analysis" / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _report(root: Path, **params: Any) -> tuple[str, list[dict[str, Any]]]:
    result = generate_report(
        Workspace.open(root), GenerateReportParams.model_validate({"figures": False, **params})
    )
    sources = json.loads((root / result.sources).read_text())
    assert sources["report"] == result.report
    return (root / result.report).read_text(), sources["records"]


def _faq(root: Path, audience: str = "all", **params: Any) -> dict[str, str]:
    """Every FAQ file written, by audience, each checked against its sources."""
    result = draft_faq(
        Workspace.open(root), DraftFaqParams.model_validate({"audience": audience, **params})
    )
    files = {}
    for file in result.files:
        markdown = (root / file.markdown).read_text()
        records = json.loads((root / file.sources).read_text())["records"]
        assert faq_number_problems(markdown, records, root) == [], file.markdown
        files[file.audience] = markdown
    return files


def _between(text: str, start: str, end: str) -> str:
    at = text.index(start)
    return text[at : text.index(end, at)]


def _located(text: str, records: list[dict[str, Any]]) -> list[int]:
    """Where each record is printed, found the way the check finds it (in order)."""
    positions, pos = [], 0
    for record in records:
        at = text.find(record["text"], pos)
        assert at >= 0, record["text"]
        positions.append(at)
        pos = at + len(record["text"])
    return positions


# ----- the report's numbers -----------------------------------------------------------------


def test_every_number_in_the_report_is_the_value_of_its_recorded_field(demo):
    html, records = _report(demo, financial_services=True, fee_basis="net_of_fees")
    assert report_number_problems(html, records, demo) == []
    text = visible_text(html)
    assert count_numbers(text) > 300  # the report does quote numbers
    files = {fact["file"] for record in records for fact in record["facts"]}
    for name in ("mmm_channel_contributions", "mmm_budget_optimization", "mmm_diagnostics"):
        assert f"analysis/{name}.json" in files
    budget = json.loads((demo / "analysis" / "mmm_budget_optimization.json").read_text())
    lift = next(r for r in records if r["facts"][0]["path"][:3] == ["outcome", "lift", "mean"])
    assert lift["facts"][0]["value"] == budget["outcome"]["lift"]["mean"]


def test_a_made_up_number_in_the_report_is_found_out(demo):
    """Negative controls: a figure typed into the page, a printed figure that is not its
    field's value, a two-part 'version' (a decimal, so not exempt) and a percentage after a
    year in the title all fail; the report's own date, run id and three-part versions pass."""
    html, records = _report(demo, title="Review 2024")
    assert report_number_problems(html, records, demo) == []
    anchor = '<section id="budget" data-section="budget">'

    typed = html.replace(anchor, anchor + "<p>Up 12.3% on last year.</p>", 1)
    assert any("12.3" in p for p in report_number_problems(typed, records, demo))
    decimal = html.replace(anchor, anchor + "<p>Drawn with matplotlib 3.10.</p>", 1)
    assert any("3.10" in p for p in report_number_problems(decimal, records, demo))
    own = html.replace(anchor, anchor + "<p>Drawn with matplotlib 3.10.1 on 2025-01-31.</p>", 1)
    assert report_number_problems(own, records, demo) == []
    title, titled = _report(demo, title="Review 2024, up 12%")
    assert any("12%" in p for p in report_number_problems(title, titled, demo))

    text = visible_text(html)
    positions = _located(text, records)
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


# ----- a refit makes the outputs of the earlier fit out of date -----------------------------


def test_a_refit_flags_every_output_computed_from_the_earlier_fit(demo):
    digest = hashlib.sha256((demo / FIT).read_bytes()).hexdigest()
    for name in FROM_THE_FIT:
        recorded = json.loads((demo / name).read_text())["metadata"]["input_hashes"]
        assert recorded[FIT] == digest, name
    html, _ = _report(demo)
    assert 'id="stale-outputs"' not in html and "Out of date" not in html

    # A refit on the same data: same inputs, new manifest (run id, timestamp, model file).
    def refit(data: dict[str, Any]) -> None:
        data["metadata"]["run_id"] = "0123456789abcdef"

    _edit(demo, "mmm_fit.json", refit)
    html, records = _report(demo)
    banner = _between(html, 'id="stale-outputs"', "</div>")
    for name, producer in (
        ("analysis/mmm_diagnostics.json", "validate_model"),
        ("analysis/mmm_channel_contributions.json", "decompose_contributions"),
        ("analysis/mmm_budget_optimization.json", "optimize_budget"),
    ):
        item = _between(banner, f"<code>{name}</code>", "</li>")
        assert "computed from an earlier model fit (analysis/mmm_fit.json changed since)" in item
        assert f"Rerun {producer}" in item
    # the allocation split the decomposition of the earlier fit (read through its draws)
    allocation = _between(banner, "<code>analysis/allocation_summary.json</code>", "</li>")
    assert (
        "analysis/mmm_channel_contributions.json" in allocation and "Rerun allocate" in allocation
    )
    for section, name in (
        ("contributions", "analysis/mmm_channel_contributions.json"),
        ("budget", "analysis/mmm_budget_optimization.json"),
        ("diagnostics", "analysis/mmm_diagnostics.json"),
    ):
        body = _between(html, f'data-section="{section}"', "</section>")
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

    _edit(demo, "mmm_diagnostics.json", forget_fit)
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


# ----- prior-flag limits come from the diagnostics ------------------------------------------


def _prior_rule(shift: float | None, overlap: float | None) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["prior_comparison"] = [
            {  # inside the recorded shift limit, below the recorded overlap limit
                "channel": "display",
                "roas_informative": 0.1,
                "roas_vague": 0.125,
                "relative_shift": 0.25,
                "overlap": 0.35,
                "prior_dominates": True,
            }
        ]
        if shift is None:
            data.pop("prior_comparison_rule", None)
        else:
            data["prior_comparison_rule"] = {"shift_limit": shift, "overlap_limit": overlap}

    return change


def test_the_prior_flag_rule_is_quoted_from_the_diagnostics_file(demo):
    written = json.loads((demo / "analysis" / "mmm_diagnostics.json").read_text())
    assert set(written["prior_comparison_rule"]) == {"shift_limit", "overlap_limit"}
    _edit(demo, "mmm_diagnostics.json", _prior_rule(0.3, 0.4))
    html, records = _report(demo)
    assert report_number_problems(html, records, demo) == []
    assert "mean ROAS shift beyond 30.0% or posterior overlap below 0.400" in html
    display = _between(html, '<li data-channel="display">', "</li>")
    assert "flagged by the overlap" in display  # 25% < 30%: not by the shift
    sources = {
        tuple(f["path"])
        for r in records
        for f in r["facts"]
        if f["file"] == "analysis/mmm_diagnostics.json"
    }
    assert ("prior_comparison_rule", "shift_limit") in sources
    science = _faq(demo, "data_science")["data_science"]
    assert "moves by more than 30.0% or its two posteriors overlap less than 0.400" in science
    assert "flagged by the overlap" in science

    _edit(demo, "mmm_diagnostics.json", _prior_rule(None, None))  # written before the field
    html, records = _report(demo)
    assert report_number_problems(html, records, demo) == []
    assert "The flag rule is not recorded in this diagnostics file" in html
    assert "flagged by validate_model" in _between(html, '<li data-channel="display">', "</li>")
    science = _faq(demo, "data_science")["data_science"]
    assert "are not recorded in this diagnostics file" in science
    assert "A channel is flagged when" not in science


# ----- the number check has no loophole -----------------------------------------------------


def test_interval_labels_pass_only_for_levels_the_outputs_record(demo, tmp_path):
    markdown = _faq(demo, "cmo")["cmo"]
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
    markdown = _faq(demo, "marketing")["marketing"]
    records = json.loads((demo / "reports" / "faq_marketing.sources.json").read_text())["records"]
    k = next(i for i, r in enumerate(records) if r["facts"][0]["path"][-1] == "entity")
    old = records[k]["text"]
    padded = f"{old} 7"  # a digit that occurs in the name elsewhere is still not the name
    lying = [dict(r) for r in records]
    lying[k] = {**records[k], "text": padded}
    at = _located(markdown, records)[k]
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


# ----- wording ------------------------------------------------------------------------------


def _to_revenue(data: dict[str, Any]) -> None:
    data["target"] = "revenue"


@pytest.mark.parametrize("basis", ["gross", "net_of_fees", "not_stated"])
def test_no_rendered_faq_runs_two_sentences_together(demo, basis: FeeBasis):
    for financial in (True, False):
        for audience, markdown in _faq(demo, financial_services=financial, fee_basis=basis).items():
            prose = re.sub(r"`[^`]*`", "", markdown)  # code spans: file names, ids
            glued = re.search(r".{0,30}[.!?][A-Z].{0,30}", prose)
            assert glued is None, (audience, glued.group() if glued else "")


def test_fee_wording_follows_the_outcome_and_never_credits_the_input_data(demo):
    contributions = json.loads((demo / "analysis" / "mmm_channel_contributions.json").read_text())
    assert contributions["target"] == "conversions"
    result = draft_faq(
        Workspace.open(demo),
        DraftFaqParams(audience="all", financial_services=True, fee_basis="net_of_fees"),
    )
    assert result.fee_basis == "net_of_fees"
    sources = json.loads((demo / "reports" / "faq_finance.sources.json").read_text())
    assert sources["params"]["fee_basis"] == "net_of_fees"
    html, _ = _report(demo, financial_services=True, fee_basis="net_of_fees")
    report_sources = json.loads(
        (demo / "reports" / "mmm_executive_summary.sources.json").read_text()
    )
    assert report_sources["params"]["fee_basis"] == "net_of_fees"
    everything = (demo / "reports" / "faq_all.md").read_text()
    for text in (html, everything):
        assert "as provided in the input data" not in text
        assert "fees do not apply to conversion counts" in text
        assert "Revenue figures" not in text
    finance = (demo / "reports" / "faq_finance.md").read_text()
    split = _between(finance, "The campaign split uses", "\n")
    assert "not whole counts" in split and "currency" not in split

    _edit(demo, "mmm_channel_contributions.json", _to_revenue)
    html, records = _report(demo, financial_services=True, fee_basis="net_of_fees")
    assert report_number_problems(html, records, demo) == []
    files = _faq(demo, financial_services=True, fee_basis="net_of_fees")
    for text in (html, files["all"]):
        assert "Revenue figures are" in text and "net of fees" in text
        assert "conversion counts" not in text and "as provided in the input data" not in text
    split = _between(files["finance"], "The campaign split uses", "\n")
    assert "currency amounts" in split


# ----- report content -----------------------------------------------------------------------


def _cells(table: str, name: str) -> list[str]:
    row = _between(table, f"<td>{name}</td>", "</tr>")
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    return [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def test_criteria_are_shown_in_the_unit_of_their_rule(demo):
    diagnostics = json.loads((demo / "analysis" / "mmm_diagnostics.json").read_text())
    html, _ = _report(demo)
    table = _between(html, 'id="criteria-table"', "</table>")
    for criterion in diagnostics["criteria"]:
        _, rule, measured, threshold = _cells(table, criterion["name"])[:4]
        operator = re.search(r"<=|>=|<|>", rule).group()  # type: ignore[union-attr]
        shown_operator, shown_threshold = threshold.split(" ", 1)
        assert shown_operator == {"<=": "≤", ">=": "≥"}.get(operator, operator)
        scale = 100.0 if "%" in rule else 1.0
        for text, value in (
            (measured, criterion["value"]),
            (shown_threshold, criterion["threshold"]),
        ):
            assert text.endswith("%") == (scale == 100.0), (criterion["name"], text)
            number = float(text.rstrip("%").replace(",", ""))
            assert number == pytest.approx(value * scale, abs=0.051 * max(1.0, abs(number))), text
    coverage = next(c for c in diagnostics["criteria"] if c["name"] == "ppc_coverage_90")
    assert _cells(table, "ppc_coverage_90")[3].startswith("≥ 90")
    assert _cells(table, "ppc_coverage_90")[2] == f"{100 * coverage['value']:.1f}%"


def test_spend_is_labelled_as_input_units(demo):
    html, _ = _report(demo)
    for table in ("contributions-table", "roas-table", "budget-table", "data-channels"):
        head = _between(html, f'id="{table}"', "</thead>")
        assert "spend (input units)" in head, table
    finance = _faq(demo, "finance")["finance"]
    assert "| channel | spend (input units) |" in finance


def _coefficients(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        for c in data["coefficients"]:
            change(c)

    return edit


def test_a_coefficient_without_interval_gets_only_the_reason_the_summary_supports(demo):
    def older(c: dict[str, Any]) -> None:  # written before the allocation computed intervals
        for key in ("std_error", "lower_90", "upper_90"):
            c.pop(key, None)

    _edit(demo, "allocation_summary.json", _coefficients(older))
    html, records = _report(demo)
    assert report_number_problems(html, records, demo) == []
    table = _between(html, 'id="productivity-drivers"', "</table>")
    assert "predates coefficient intervals; rerun allocate" in table
    assert "too few groups" not in html
    science = _faq(demo, "data_science")["data_science"]
    assert "predates coefficient intervals (rerun allocate" in science
    assert "too few groups" not in science

    def unexplained(c: dict[str, Any]) -> None:  # fields there, empty, no finding says why
        c.update(std_error=None, lower_90=None, upper_90=None)

    _edit(demo, "allocation_summary.json", _coefficients(unexplained))
    html, _ = _report(demo)
    table = _between(html, 'id="productivity-drivers"', "</table>")
    assert "no interval recorded (the allocation summary does not say why)" in table
    assert "predates" not in table and "too few groups" not in html


def test_both_sources_files_carry_the_metadata_of_the_page(tmp_path):
    """The report's and the FAQ's sources files are output JSONs like any other: they carry
    metadata (time, versions, run id) and the hashes of the outputs the page was read from."""
    from attribution_analysis.contracts.simulation import SimulationParams
    from attribution_analysis.data.validate import validate_data
    from attribution_analysis.simulate import simulate_workspace

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
