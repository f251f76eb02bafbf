"""draft_faq: every number in the answers is a field of an output, names are escaped, the
financial-services mode adds its notices and the audit trail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from attribution_analysis.contracts.report import AUDIENCES, DraftFaqParams
from attribution_analysis.registry import RunRegistry
from attribution_analysis.report import draft_faq
from attribution_analysis.workspace import Workspace
from tests.conftest import REPO

# Long arrays (trace draws, predictive series, LOO-PIT values) are left out of the pool of
# source numbers: with thousands of values, any printed number would find a match by chance.
MAX_ARRAY = 50
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
HEX = re.compile(r"\b[0-9a-f]{12,64}\b")
VERSION = re.compile(r"(?<![\w.])\d+\.\d+\.\d+(?:[.+-]?\w+)*")
NUMBER = re.compile(r"(?<![\w.])([-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?)(%?)(?![\w])")


def _walk(node: Any, numbers: list[float], strings: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            strings.append(str(key))
            _walk(value, numbers, strings)
    elif isinstance(node, list):
        if len(node) > MAX_ARRAY and all(isinstance(v, int | float | list) for v in node):
            return
        for value in node:
            _walk(value, numbers, strings)
    elif isinstance(node, bool) or node is None:
        return
    elif isinstance(node, int | float):
        numbers.append(float(node))
    else:
        strings.append(str(node))


def source_pool(root: Path) -> tuple[list[float], str]:
    """Numbers of every output JSON (and of the run registry, the audit trail's source), and
    their strings joined: numbers inside strings (finding messages, field names such as
    hdi_90) count as sources too."""
    numbers: list[float] = []
    strings: list[str] = []
    for path in sorted((root / "analysis").glob("*.json")):
        _walk(json.loads(path.read_text()), numbers, strings)
    _walk(RunRegistry(Workspace.open(root)).list_runs(limit=500), numbers, strings)
    text = "\n".join(strings)
    for token in re.findall(r"\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?", text):
        numbers.append(float(token.replace(",", "").rstrip(",") or 0))
    return numbers, text


def unmatched_numbers(markdown: str, numbers: list[float], strings: str) -> list[str]:
    missing = []
    for pattern in (TIMESTAMP, DATE, HEX, VERSION):
        for token in pattern.findall(markdown):
            if token not in strings:
                missing.append(token)
        markdown = pattern.sub(" ", markdown)
    for raw, percent in NUMBER.findall(markdown):
        text = raw.replace(",", "").lstrip("+")
        value = float(text)
        mantissa, _, exponent = text.lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        tolerance = 0.5 * 10.0 ** (-decimals) * 10.0 ** int(exponent or 0) * (1 + 1e-9)
        scale = 100.0 if percent else 1.0
        if not any(abs(v * scale - value) <= tolerance for v in numbers):
            missing.append(raw + percent)
    return missing


def test_every_number_in_every_faq_is_a_field_of_the_outputs(pipeline):
    result = draft_faq(
        Workspace.open(pipeline), DraftFaqParams(audience="all", financial_services=True)
    )
    assert {f.audience for f in result.files} == {*AUDIENCES, "all"}
    numbers, strings = source_pool(pipeline)
    checked = 0
    for file in result.files:
        markdown = (pipeline / file.markdown).read_text()
        assert file.questions >= 4
        checked += len(NUMBER.findall(markdown))
        assert unmatched_numbers(markdown, numbers, strings) == [], file.markdown
    assert checked > 100  # the answers do quote numbers


def test_the_number_check_catches_a_number_that_is_not_in_the_outputs(pipeline):
    """Negative control: a figure typed into an answer is found out."""
    numbers, strings = source_pool(pipeline)
    assert unmatched_numbers("ROAS 123.456 (90% HDI 0.5 to 7,777,777)", numbers, strings) != []


def test_financial_services_mode_adds_notices_fee_basis_and_audit_trail(pipeline):
    ws = Workspace.open(pipeline)
    plain = draft_faq(ws, DraftFaqParams(audience="legal"))
    text = (pipeline / plain.files[0].markdown).read_text()
    assert "SEC Marketing Rule" not in text and "Audit trail" not in text
    draft_faq(ws, DraftFaqParams(audience="legal", financial_services=True, fee_basis="gross"))
    text = (pipeline / "reports" / "faq_legal.md").read_text()
    assert "SEC Marketing Rule" in text and "gross of fees" in text
    assert "## Audit trail" in text
    fit = json.loads((pipeline / "analysis" / "mmm_fit.json").read_text())
    for path, digest in fit["metadata"]["input_hashes"].items():
        assert f"`{path}`: `{digest}`" in text
    for run in RunRegistry(ws).list_runs(step="fit_mmm"):
        assert run["run_id"] in text


def test_campaign_names_with_html_are_escaped_in_markdown_and_html(pipeline):
    draft_faq(Workspace.open(pipeline), DraftFaqParams(audience="marketing"))
    markdown = (pipeline / "reports" / "faq_marketing.md").read_text()
    html = (pipeline / "reports" / "faq_marketing.html").read_text()
    assert r"\<script>alert(1)\</script>" in markdown
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_missing_outputs_are_named_instead_of_numbers(pipeline):
    for name in ("allocation_summary.json", "mmm_channel_contributions.json"):
        (pipeline / "analysis" / name).unlink()
    result = draft_faq(Workspace.open(pipeline), DraftFaqParams(audience="cmo"))
    text = (pipeline / "reports" / "faq_cmo.md").read_text()
    assert "analysis/mmm_channel_contributions.json" in result.missing
    assert "*Not available yet:* `analysis/mmm_channel_contributions.json`" in text


def test_the_scripts_print_ok_json_and_exit_2_on_a_missing_workspace(pipeline, tmp_path):
    for script, extra in (("make_report.py", []), ("draft_faq.py", ["--audience", "finance"])):
        done = subprocess.run(
            [sys.executable, str(REPO / "scripts" / script), "--workspace", str(pipeline), *extra],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "ok"
        bad = subprocess.run(
            [sys.executable, str(REPO / "scripts" / script), "--workspace", str(tmp_path / "no")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert bad.returncode == 2
        assert json.loads(bad.stdout)["status"] == "error"
