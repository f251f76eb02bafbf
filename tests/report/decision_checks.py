"""Checks of the report's decision sentence against the plan it is built from: every number
of it read back from the page and compared with the plan's own field (not with the report's
formatter)."""

from __future__ import annotations

import re
from typing import Any

from tests.report.edits import direction
from tests.report.faq_sources import visible_text

# '+2.1%', '-30%', '0.64%'
PCT = r"([-+]?\d+(?:\.\d+)?)%"


def decision_text(html: str) -> str:
    block = re.search(r'<p id="decision".*?</p>', html, re.S)
    assert block, "no decision sentence"
    return re.sub(r"\s+", " ", visible_text(block.group()).replace(" ,", ",")).strip()


def reads(printed: str, value: float, scale: float = 1.0) -> bool:
    """A printed figure is the value, rounded to the decimals printed."""
    digits = printed.replace(",", "").lstrip("+")
    decimals = len(digits.partition(".")[2])
    return abs(float(digits) - value * scale) <= 0.5 * 10.0**-decimals + 1e-12


def named_moves(plan: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(decreases, increases) the sentence must name: the plan's moves, robust ones first,
    then by the size of the change; two a side."""
    checks = {c["channel"]: c for c in (plan["robustness"] or {}).get("channels", [])}
    moves = []
    for a in plan["allocations"]:
        check = checks.get(a["channel"])
        way = check["direction"] if check else direction(a)
        if way != "hold":
            robust = check["robust"] if check else None
            moves.append((robust is False, -abs(a["change"]), a["channel"], way))
    moves.sort()
    ways = {w: [m[2] for m in moves if m[3] == w][:2] for w in ("decrease", "increase")}
    return ways["decrease"], ways["increase"]


def check_sentence(text: str, plan: dict[str, Any]) -> None:
    """Every number of the recommendation sentence is the plan's field, rounded."""
    assert text.startswith(f"Recommendation (budget plan “{plan['plan_name']}”)"), text
    decreases, increases = named_moves(plan)
    said = re.findall(rf"(\w+) \({PCT}\)", text)
    assert [c for c, _ in said] == decreases + increases, (said, decreases, increases)
    change = {a["channel"]: a["change_pct"] for a in plan["allocations"]}
    for channel, pct in said:
        assert reads(pct, change[channel], 100), (channel, pct, change[channel])
    outcome = plan["outcome"]
    share = outcome["lift_pct_of_total"]
    if share is not None:  # the effect as a share of total outcome, then of media-driven
        total = re.search(rf"{PCT} \(90% HDI {PCT} to {PCT}\) of total", text)
        assert total, text
        for printed, value in zip(total.groups(), [share["mean"], *share["hdi_90"]], strict=True):
            assert reads(printed, value, 100), (printed, value)
        media = re.search(rf"which is {PCT} of the media-driven", text)
        assert media and reads(media.group(1), outcome["lift_pct"]["mean"], 100), text
    else:  # only the share of media-driven outcome, and a word on why
        media = re.search(rf"{PCT} \(90% HDI {PCT} to {PCT}\) of the media-driven", text)
        assert media and "share of total" in text and "not known" in text, text
        lift_pct = outcome["lift_pct"]
        for printed, value in zip(
            media.groups(), [lift_pct["mean"], *lift_pct["hdi_90"]], strict=True
        ):
            assert reads(printed, value, 100), (printed, value)
    lift = re.search(r"\(([-+][\d,.]+)( thousand| million)? \w+[);]", text)
    scale = {None: 1.0, " thousand": 1e-3, " million": 1e-6}[lift.group(2)] if lift else 0
    assert lift and reads(lift.group(1), outcome["lift"]["mean"], scale), text
    p = outcome["probability_better"]
    probability = re.search(r"beats the current mix: ([<>]?) ?([\d.]+)%", text)
    assert probability, text
    bound, shown = probability.group(1), float(probability.group(2))
    if bound == ">":
        assert 100 * p > shown
    elif bound == "<":
        assert 100 * p < shown
    else:
        assert reads(probability.group(2), p, 100)
