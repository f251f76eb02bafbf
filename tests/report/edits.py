"""Helpers of the report tests that edit an output of the demo-like workspace (see conftest)
and render the report or the FAQ from it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attribution_analysis.api import draft_faq, generate_report
from attribution_analysis.contracts.report import DraftFaqParams, GenerateReportParams
from attribution_analysis.workspace import Workspace
from tests.report.faq_sources import faq_number_problems


def edit(root: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / "analysis" / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def report_with_records(root: Path, **params: Any) -> tuple[str, list[dict[str, Any]]]:
    result = generate_report(
        Workspace.open(root), GenerateReportParams.model_validate({"figures": False, **params})
    )
    sources = json.loads((root / result.sources).read_text())
    assert sources["report"] == result.report
    return (root / result.report).read_text(), sources["records"]


def faqs_checked(root: Path, audience: str = "all", **params: Any) -> dict[str, str]:
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


def between(text: str, start: str, end: str) -> str:
    at = text.index(start)
    return text[at : text.index(end, at)]


def located(text: str, records: list[dict[str, Any]]) -> list[int]:
    """Where each record is printed, found the way the check finds it (in order)."""
    positions, pos = [], 0
    for record in records:
        at = text.find(record["text"], pos)
        assert at >= 0, record["text"]
        positions.append(at)
        pos = at + len(record["text"])
    return positions


def report_body(root: Path) -> str:
    result = generate_report(Workspace.open(root), GenerateReportParams(figures=False))
    return (root / result.report).read_text().split("</style>", 1)[1]


def faq_checked(root: Path, audience: str) -> str:
    draft_faq(Workspace.open(root), DraftFaqParams(audience=audience))  # type: ignore[arg-type]
    markdown = (root / "reports" / f"faq_{audience}.md").read_text()
    records = json.loads((root / "reports" / f"faq_{audience}.sources.json").read_text())
    assert faq_number_problems(markdown, records["records"], root) == []
    return markdown


def roas(root: Path, channel: str) -> float:
    contributions = json.loads((root / "analysis" / "mmm_channel_contributions.json").read_text())
    return next(c["roas"]["mean"] for c in contributions["channels"] if c["channel"] == channel)


def prior_rows(root: Path) -> Callable[[dict[str, Any]], None]:
    """Vague-prior rows whose informative ROAS is this fit's own (so its interval applies)."""
    paid, display = roas(root, "paid_search"), roas(root, "display")

    def change(data: dict[str, Any]) -> None:
        data["prior_comparison"] = prior_comparison_rows(paid, display)

    return change


def prior_comparison_rows(paid: float, display: float) -> list[dict[str, Any]]:
    return [
        {  # calibrated by a lift test in the demo; flagged by the overlap only
            "channel": "paid_search",
            "roas_informative": paid,
            "roas_vague": paid * 1.0422769,
            "relative_shift": 0.04227690847154408,
            "overlap": 0.37925,
            "prior_dominates": True,
        },
        {  # no lift test; flagged by the shift only
            "channel": "display",
            "roas_informative": display,
            "roas_vague": display * 0.508118,
            "relative_shift": -0.491881978070152,
            "overlap": 0.5715,
            "prior_dominates": True,
        },
        {
            "channel": "tv",
            "roas_informative": 0.5,  # not the decomposition's fit: no interval to borrow
            "roas_vague": 0.49,
            "relative_shift": -0.02,
            "overlap": 0.9,
            "prior_dominates": False,
        },
    ]


DRIFT = 0.94  # the allocation's display total 6% below the decomposition's


def display_total(root: Path) -> float:
    contributions = json.loads((root / "analysis" / "mmm_channel_contributions.json").read_text())
    return next(
        c["total_contribution"]["mean"]
        for c in contributions["channels"]
        if c["channel"] == "display"
    )


def drift_display(root: Path) -> Callable[[dict[str, Any]], None]:
    drifted = display_total(root) * DRIFT

    def change(data: dict[str, Any]) -> None:
        for block in data["block_totals"]:
            if block["block"] == "display":
                block["total"] = block["allocated"] = drifted

    return change


def match_decomposition(root: Path) -> None:
    contributions = json.loads((root / "analysis" / "mmm_channel_contributions.json").read_text())
    means = {c["channel"]: c["total_contribution"]["mean"] for c in contributions["channels"]}

    def change(data: dict[str, Any]) -> None:
        for block in data["block_totals"]:
            block["total"] = block["allocated"] = means[block["block"]] * 1.004

    edit(root, "allocation_summary.json", change)


# ----- budget plans --------------------------------------------------------------------------
# Stand-ins for the fields optimize_budget computes for a plan (robustness, break-even, the
# total outcome), set to known values so a test knows what the report must say. The numbers
# of the plan itself (allocations, lift, probability) stay the optimizer's.
VARIANTS = ("risk_averse", "recent_basis", "year_basis", "wider_limits", "narrower_limits")
HOLD = 0.01  # the optimizer's tolerance for 'hold'
MARGIN = 0.35  # gross margin of the break-even stand-in: break-even ROAS 1/0.35
# P(ROAS below break-even) per channel, in allocation order: one verdict of each kind.
BELOW = (0.95, 0.04, 0.5)


def plan_path(root: Path, name: str = "recommended") -> Path:
    return root / "analysis" / "budget_plans" / f"{name}.json"


def read_plan(root: Path, name: str = "recommended") -> dict[str, Any]:
    return json.loads(plan_path(root, name).read_text())


def edit_plan(root: Path, change: Callable[[dict[str, Any]], None], name: str = "recommended"):
    path = plan_path(root, name)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def direction(allocation: dict[str, Any]) -> str:
    change = allocation["change_pct"]
    if change is None:
        return "increase" if allocation["recommended_spend"] > 0 else "hold"
    return "increase" if change > HOLD else "decrease" if change < -HOLD else "hold"


def interval(mean: float, low: float, high: float) -> dict[str, Any]:
    return {"mean": mean, "median": mean, "hdi_90": [low, high], "hdi_95": [low, high]}


def decided(fragile: str | None = None) -> Callable[[dict[str, Any]], None]:
    """A plan with a robustness check (``fragile``'s direction flips under the risk-averse
    objective; every other channel holds), a break-even view and the total outcome."""

    def change(data: dict[str, Any]) -> None:
        lift = data["outcome"]["lift"]
        total = 20 * data["outcome"]["current"]["mean"]
        data["outcome"]["total_outcome"] = interval(total, 0.9 * total, 1.1 * total)
        data["outcome"]["lift_pct_of_total"] = interval(
            lift["mean"] / total, lift["hdi_90"][0] / total, lift["hdi_90"][1] / total
        )
        data["outcome"]["total_outcome_basis"] = "base and media over the horizon"
        channels, directions = [], {}
        for a in data["allocations"]:
            directions[a["channel"]] = direction(a)
            flips = ["risk_averse"] if a["channel"] == fragile else []
            channels.append(
                {
                    "channel": a["channel"],
                    "direction": directions[a["channel"]],
                    "holds_in": [v for v in VARIANTS if v not in flips],
                    "flips_in": flips,
                    "robust": not flips,
                    "at_limit": a["bound_active"],
                }
            )
        data["robustness"] = {
            "variants": [
                {
                    "name": name,
                    "description": f"the plan re-optimized with {name.replace('_', ' ')}",
                    "allocation": {
                        a["channel"]: a["recommended_spend"] for a in data["allocations"]
                    },
                    "directions": directions,
                    "lift": lift,
                    "probability_better": data["outcome"]["probability_better"],
                    "infeasible": None,
                }
                for name in VARIANTS
            ],
            "channels": channels,
            "summary": "Every move holds in every variant."
            if fragile is None
            else f"Every move holds except {fragile}'s, which flips when risk-averse.",
        }
        for k, a in enumerate(data["allocations"]):
            below = BELOW[k] if k < len(BELOW) else BELOW[-1]
            verdict = (
                "loses_money" if below >= 0.9 else "pays_back" if below <= 0.1 else "uncertain"
            )
            a["break_even"] = {
                "threshold_roas": 1 / MARGIN,
                "basis": "revenue ROAS against 1/margin",
                "roas_current": a["roas_current"],
                "probability_below": below,
                "marginal_probability_below": min(1.0, below + 0.03),
                "verdict": verdict,
            }
        data["break_even_note"] = ""

    return change
