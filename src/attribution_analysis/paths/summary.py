"""The answer of ``attribute_paths`` (MCP tool, CLI, scripts): shares with intervals, removal
effects, the comparison with the MMM and findings; the details stay in the report file."""

from __future__ import annotations

from attribution_analysis.contracts.paths import (
    PathAttributionReport,
    PathsAnswer,
    ShapleyAnswer,
)

STEP = "attribute_paths"


def paths_answer(report: PathAttributionReport) -> PathsAnswer:
    """The step's answer from the content of ``analysis/path_attribution.json``."""
    shares = {m.method: {c.channel: round(c.share, 4) for c in m.credits} for m in report.methods}
    intervals = {
        m.method: {
            c.channel: (round(c.share_lower_90, 4), round(c.share_upper_90, 4))
            for c in m.credits
            if c.share_lower_90 is not None and c.share_upper_90 is not None
        }
        for m in report.methods
    }
    markov, shapley, reconciliation = report.markov, report.shapley, report.reconciliation
    return PathsAnswer(
        step=STEP,
        outputs=report.outputs,
        input=report.input,
        shares=shares,
        shares_interval_90={m: v for m, v in intervals.items() if v},
        removal_effects=None
        if markov is None
        else {r.channel: round(r.removal_effect, 6) for r in markov.removal_effects},
        removal_effects_interval_90=None
        if markov is None
        else {
            r.channel: (round(r.removal_effect_lower_90, 6), round(r.removal_effect_upper_90, 6))
            for r in markov.removal_effects
            if r.removal_effect_lower_90 is not None and r.removal_effect_upper_90 is not None
        },
        shapley=None
        if shapley is None
        else ShapleyAnswer(
            exact=shapley.exact,
            error_bound=shapley.error_bound,
            prior_journeys=shapley.prior_journeys,
            low_support_value_share=round(shapley.low_support_value_share, 4),
        ),
        reconciliation=None if reconciliation is None else reconciliation.channels,
        disagreements=None
        if reconciliation is None
        else {
            r.channel: r.disagreeing_methods
            for r in reconciliation.channels
            if r.disagreeing_methods
        },
        truth_mean_abs_error=None if report.truth is None else report.truth.mean_abs_error,
        findings=report.findings,
    )
