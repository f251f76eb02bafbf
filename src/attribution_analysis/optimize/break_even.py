"""Break-even per channel: does the spend pay back, in the finance sense?

A channel pays back when its outcome per unit of spend (ROAS) is worth at least the spend:
for a revenue target, ROAS >= 1/margin (1 when no margin is given: revenue covers the spend);
for a conversions target, conversions per unit of spend >= 1/(value per conversion x
margin). Without a value per conversion a conversions target has no money value, so there is
no break-even to state, and the plan says why instead of guessing one.

Probabilities are shares of the posterior draws; the verdict uses the same 90%/10% cut-offs
the reader sees on every other probability of the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribution_analysis.contracts.budget import BreakEven, ChannelAllocation
from attribution_analysis.contracts.common import Finding
from attribution_analysis.errors import arg, render
from attribution_analysis.summaries import interval

LOSES_MONEY_PROBABILITY = 0.9  # P(ROAS < threshold) at or above this: loses money
PAYS_BACK_PROBABILITY = 0.1  # at or below this: pays back


@dataclass(frozen=True)
class Threshold:
    """The ROAS a channel needs to pay back, in the outcome's own unit per unit of spend."""

    roas: float
    basis: str


def threshold(
    target: str, margin: float | None, value_per_conversion: float | None
) -> tuple[Threshold | None, str]:
    """(threshold, note): the break-even ROAS for this target, or None with the reason."""
    margin_text = f" x margin {margin:g}" if margin is not None else " (no margin given)"
    kept = 1.0 if margin is None else margin
    if target == "revenue":
        return (
            Threshold(
                roas=1.0 / kept,
                basis=f"revenue ROAS against {1.0 / kept:.4g} = 1 / (revenue{margin_text}); "
                "revenue and spend in the same currency",
            ),
            "",
        )
    if value_per_conversion is not None:
        value = value_per_conversion * kept
        return (
            Threshold(
                roas=1.0 / value,
                basis=f"{target} per unit of spend against {1.0 / value:.4g} = 1 / (value "
                f"per conversion {value_per_conversion:g}{margin_text})",
            ),
            "",
        )
    # Rendered now: the plan file is read by every front end (the answer re-renders nothing).
    note = render(
        f"no break-even view: the outcome counts {target}, which have no money value here. "
        f"Give {arg('value_per_conversion')} (and {arg('margin')} if the value is revenue "
        "rather than profit) to see which channels pay back."
    )
    return None, note


def channel_break_even(roas: np.ndarray, mroas: np.ndarray, needed: Threshold) -> BreakEven:
    """One channel's view from its per-draw average and marginal ROAS at current spend."""
    below = float((roas < needed.roas).mean())
    if below >= LOSES_MONEY_PROBABILITY:
        verdict = "loses_money"
    elif below <= PAYS_BACK_PROBABILITY:
        verdict = "pays_back"
    else:
        verdict = "uncertain"
    return BreakEven(
        threshold_roas=needed.roas,
        basis=needed.basis,
        roas_current=interval(roas),
        probability_below=below,
        marginal_probability_below=float((mroas < needed.roas).mean()),
        verdict=verdict,
    )


def break_even_findings(allocations: list[ChannelAllocation], note: str) -> list[Finding]:
    """'loses_money' per channel whose current spend does not pay back (P >= 90%), or one
    'break_even_unavailable' note when the target has no money value."""
    if note:
        return [Finding(code="break_even_unavailable", severity="info", message=note)]
    findings = []
    for a in allocations:
        view = a.break_even
        if view is None or view.verdict != "loses_money":
            continue
        findings.append(
            Finding(
                code="loses_money",
                severity="warning",
                subject=a.channel,
                value=round(view.probability_below, 4),
                threshold=LOSES_MONEY_PROBABILITY,
                rule=f"P(ROAS < {view.threshold_roas:.4g}) >= {LOSES_MONEY_PROBABILITY:.0%}",
                message=f"{a.channel} does not pay back at current spend: its ROAS is "
                f"{view.roas_current.mean:.3g} (90% interval {view.roas_current.hdi_90[0]:.3g} "
                f"to {view.roas_current.hdi_90[1]:.3g}) against a break-even of "
                f"{view.threshold_roas:.3g}, below it in {view.probability_below:.0%} of the "
                "draws. Each unit spent there returns less than it costs: cut it, or check "
                "the margin and the model (a lift test) before defending it.",
            )
        )
    return findings


def with_break_even(
    allocations: list[ChannelAllocation],
    outcome: np.ndarray,
    gradient: np.ndarray,
    needed: Threshold | None,
) -> list[ChannelAllocation]:
    """``allocations`` with each channel's break-even view; ``outcome`` and ``gradient`` are
    the per-draw (S, C) outcome and marginal ROAS at current spend."""
    if needed is None:
        return allocations
    return [
        a
        if a.current_spend <= 0
        else a.model_copy(
            update={
                "break_even": channel_break_even(
                    outcome[:, c] / a.current_spend, gradient[:, c], needed
                )
            }
        )
        for c, a in enumerate(allocations)
    ]
