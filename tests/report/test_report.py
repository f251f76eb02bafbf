"""generate_report on a full simulated pipeline: opens in headless Chromium without console
errors, starts with the decision, every chart present, sections without input left out, no
command line anywhere, names escaped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from attribution_analysis.api import generate_report
from attribution_analysis.contracts.common import Interval
from attribution_analysis.contracts.report import GenerateReportParams
from attribution_analysis.report import fmt
from attribution_analysis.steps import STEPS
from attribution_analysis.workspace import Workspace
from tests.report.conftest import HOSTILE
from tests.report.decision_checks import PCT, check_sentence, decision_text, reads
from tests.report.edits import read_plan
from tests.report.faq_sources import visible_text

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SKIP_ENV = "ATTRIBUTION_SKIP_BROWSER_TESTS"
# Flags that keep a headless Chromium from reaching the network or a GPU (and let it run as
# root in a container): the report must render from the file alone.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]
# Every chart the report can draw: the demo-like workspace runs every step that feeds one
# (the budget step draws the last two); the path section is tables only.
EXPECTED_CHARTS = {
    "contribution_waterfall",
    "roas_mroas",
    "budget_reallocation",
    "response_curves",
    "campaign_allocation",
    "trace_plots",
    "ppc_coverage",
}

# A command line in any front end's spelling: python running a script or a module, a path
# into scripts/, the CLI with a step (either spelling), a flag. The report is read by people
# who run no command. ('python 3.12' among the library versions is not a command.)
STEP_NAMES = "|".join(
    sorted({n for spec in STEPS for n in (spec.name, spec.name.replace("_", "-"))}, key=len)[::-1]
)
COMMAND = re.compile(
    rf"\bpython3? +(?:-[mc]\b|\S+\.py)|scripts/|\battribution (?:{STEP_NAMES})\b|--[a-z][a-z-]*"
)


def first_block(dom: str) -> tuple[str, str]:
    """(id, visible text) of the first paragraph of the page: what a reader sees first
    under the title."""
    body = dom.split("<body", 1)[1]
    first = re.search(r'<p(?: id="([^"]*)")?[^>]*>.*?</p>', body, re.S)
    assert first, "no paragraph in the page"
    text = re.sub(r"\s+", " ", visible_text(first.group())).strip()
    return first.group(1) or "", text


def commands(dom: str) -> list[str]:
    return COMMAND.findall(visible_text(dom))


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{CHROMIUM} missing and {SKIP_ENV}=1 asks to skip browser tests")
    pytest.fail(
        f"{CHROMIUM} is missing. `make test` installs Debian's chromium through "
        f"tools/ensure-chromium (needs apt-get and root); install it with `apt-get install "
        f"chromium`, point CHROMIUM at a binary, or set {SKIP_ENV}=1 to skip this test."
    )


def _open_in_chromium(html: Path, screenshot: Path) -> tuple[str, list[str]]:
    """The DOM after load and the console messages, from one headless run."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                str(_chromium()),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--window-size=1280,2400",
                f"--screenshot={screenshot}",
                "--dump-dom",
                html.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def test_the_full_report_opens_in_chromium_with_every_chart_and_no_console_error(demo, tmp_path):
    result = generate_report(Workspace.open(demo))
    html_path = demo / result.report
    html = html_path.read_text()
    assert set(result.charts) == EXPECTED_CHARTS
    statuses = {s.name: s.status for s in result.sections}
    assert statuses.pop("paths") == "no_input"  # user journeys are another simulation kind
    assert set(statuses.values()) == {"rendered"}, statuses
    assert (result.plan, result.other_plans) == ("recommended", [])
    # self-contained: no external resource, no script at all
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html
    screenshot = tmp_path / "report.png"
    dom, console = _open_in_chromium(html_path, screenshot)
    assert console == [], console
    # it opens with the recommendation, whose numbers are the fields of the plan that
    # optimize_budget wrote (with its robustness check)
    assert first_block(dom)[0] == "decision"
    plan = read_plan(demo)
    check_sentence(decision_text(dom), plan)
    assert plan["robustness"] and 'id="robustness-table"' in dom
    assert 'data-section="paths"' not in dom and 'href="#paths"' not in dom
    assert commands(dom) == []
    for chart in EXPECTED_CHARTS:
        figure = re.search(rf'<figure class="chart" id="fig-{chart}".*?</figure>', dom, re.S)
        assert figure, f"chart {chart} missing from the rendered DOM"
        assert "<svg" in figure.group(0) and "<path" in figure.group(0)
        for suffix in ("png", "svg"):
            assert (demo / "reports" / "figures" / f"{chart}.{suffix}").stat().st_size > 1000
    for section in (
        "summary",
        "contributions",
        "roas",
        "budget",
        "campaigns",
        "diagnostics",
        "metadata",
    ):
        assert f'data-section="{section}"' in dom
    assert 'data-empty-section="response_curves"' not in dom
    assert screenshot.stat().st_size > 20_000  # a blank page is a few kB
    # the numbers are the outputs' numbers, with intervals
    contributions = json.loads((demo / "analysis" / "mmm_channel_contributions.json").read_text())
    base = contributions["base"]["total"]
    assert f"{base['mean']:,.0f}" in html and f"{base['hdi_90'][0]:,.0f}" in html
    lift = read_plan(demo)["outcome"]["lift"]
    # the bounds as the report's formatter writes them (one precision for mean and bounds)
    assert fmt.bounds(Interval.model_validate(lift)) in html
    assert "the total is causal, the split within a channel is model-based" in html.lower()
    # a recorded override (short chains) is shown as such
    diagnostics = json.loads((demo / "analysis" / "mmm_diagnostics.json").read_text())
    if not diagnostics["passed"]:
        assert "model failed" in html and "used anyway" in html


def test_without_campaigns_journeys_or_a_plan_those_sections_are_left_out(pipeline, tmp_path):
    """Opened in Chromium: the page starts with the main finding of the decomposition (its
    numbers the fields of the channels it names), and has no campaign, journey or budget
    section, no notice about them and no command line."""
    for name in ("allocation_summary.json", "mta_allocation.csv"):
        (pipeline / "analysis" / name).unlink()
    result = generate_report(Workspace.open(pipeline), GenerateReportParams(figures=False))
    sections = {s.name: s for s in result.sections}
    for name, path in (
        ("campaigns", "analysis/allocation_summary.json"),
        ("budget", "analysis/budget_plans/recommended.json"),
        ("paths", "analysis/path_attribution.json"),
    ):
        assert sections[name].status == "no_input"
        assert path in sections[name].message  # the agent is told which step writes it
    assert result.plan is None and result.other_plans == []
    assert "campaign_allocation" not in result.charts
    assert sections["contributions"].status == "rendered"
    assert result.figures == [] and not (pipeline / "reports" / "figures").exists()

    dom, console = _open_in_chromium(pipeline / result.report, tmp_path / "report.png")
    assert console == [], console
    for name in ("campaigns", "budget", "paths"):
        assert f'data-section="{name}"' not in dom and f'href="#{name}"' not in dom
    assert "data-empty-section" not in dom.replace('data-empty-section="prior_comparison"', "")
    assert "No input" not in dom and "does not exist yet" not in dom
    assert commands(dom) == []
    # negative control: the check finds a command in any front end's spelling
    for typed in (
        "run python scripts/allocate.py",
        "python -m attribution_analysis",
        "attribution fit-mmm",
        "add --workspace DIR",
    ):
        assert commands(f"<p>{typed}</p>"), typed

    block, text = first_block(dom)
    assert block == "decision" and text.startswith("Main finding"), text
    contributions = json.loads(
        (pipeline / "analysis" / "mmm_channel_contributions.json").read_text()
    )
    channels = contributions["channels"]
    lead = max(channels, key=lambda c: c["share_of_media"]["mean"])
    best = max(channels, key=lambda c: c["roas"]["mean"])
    share = re.search(
        rf"{lead['channel']} drives the largest share [^,]*, {PCT} \(90% HDI {PCT} to {PCT}\)", text
    )
    assert share, text
    for printed, value in zip(
        share.groups(),
        [lead["share_of_media"]["mean"], *lead["share_of_media"]["hdi_90"]],
        strict=True,
    ):
        assert reads(printed, value, 100), (printed, value)
    roas = re.search(
        r"returns the most per unit of spend, ROAS ([\d.]+) \(90% HDI ([\d.]+) to ([\d.]+)\)", text
    )
    named = text.split("returns the most")[0].split(";")[-1].strip()
    assert roas and named in (best["channel"], "it also" if best is lead else None), text
    for printed, value in zip(
        roas.groups(), [best["roas"]["mean"], *best["roas"]["hdi_90"]], strict=True
    ):
        assert reads(printed, value), (printed, value)
    assert "no reallocation recommendation" in text


def test_charts_are_saved_in_the_report_style(pipeline):
    """The style reaches the saved files, not only the drawing: labels stay SVG text, PNGs
    are 150 dpi, and the same inputs give the same SVG bytes (stable ids). Saving after the
    style's context had closed gave paths, 100 dpi and random ids."""
    from PIL import Image

    from attribution_analysis.report import charts

    generate_report(Workspace.open(pipeline), GenerateReportParams())
    figures = pipeline / "reports" / "figures"
    first = {p.name: p.read_bytes() for p in figures.glob("*.svg")}
    assert len(first) >= 5, sorted(first)
    for name, svg in first.items():
        assert b"<text" in svg, f"{name}: labels drawn as paths"
    for png in figures.glob("*.png"):
        with Image.open(png) as image:
            assert round(image.info["dpi"][0]) == charts.STYLE["savefig.dpi"], png.name
    charts._RENDERED.clear()  # draw again, not from the process's cache
    generate_report(Workspace.open(pipeline), GenerateReportParams())
    assert {p.name: p.read_bytes() for p in figures.glob("*.svg")} == first


def test_a_campaign_name_with_a_script_tag_is_escaped_everywhere(pipeline):
    result = generate_report(Workspace.open(pipeline), GenerateReportParams(top_campaigns=50))
    html = (pipeline / result.report).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE not in html
    svg = (pipeline / "reports" / "figures" / "campaign_allocation.svg").read_text()
    assert "&lt;script&gt;" in svg and "<script" not in svg


def test_a_channel_name_with_a_script_tag_is_escaped_by_the_templates(pipeline):
    """Channel names are validated upstream (no '<'); a crafted output file must still be
    rendered as text."""
    path = pipeline / "analysis" / "mmm_channel_contributions.json"
    payload = json.loads(path.read_text())
    original = payload["channels"][0]["channel"]
    payload["channels"][0]["channel"] = '<script>alert("channel")</script> & co'
    path.write_text(json.dumps(payload))
    result = generate_report(Workspace.open(pipeline))
    html = (pipeline / result.report).read_text()
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#34;channel&#34;)&lt;/script&gt; &amp; co" in html
    assert original in html  # the other channels are untouched


def test_an_output_that_breaks_its_contract_is_reported_not_rendered(pipeline):
    (pipeline / "analysis" / "budget_plans").mkdir()
    (pipeline / "analysis" / "budget_plans" / "recommended.json").write_text('{"surprise": 1}')
    result = generate_report(Workspace.open(pipeline), GenerateReportParams(figures=False))
    budget = next(s for s in result.sections if s.name == "budget")
    assert budget.status == "unreadable"
    assert "does not match its contract" in budget.message
    html = (pipeline / result.report).read_text()
    assert "does not match its contract" in html


def test_a_report_failure_leaves_the_previous_report_in_place(pipeline, monkeypatch):
    ws = Workspace.open(pipeline)
    first = generate_report(ws, GenerateReportParams(figures=False))
    before = (pipeline / first.report).read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Workspace, "commit", broken)
    with pytest.raises(RuntimeError):
        generate_report(ws, GenerateReportParams(figures=False, title="second"))
    assert (pipeline / first.report).read_bytes() == before
