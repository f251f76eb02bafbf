"""Output files of the MMM and allocation steps (canonical shapes other skills parse).

Fields may be added by the steps that write these files; the ones here are the contract.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from attribution_analysis.contracts.common import (
    Finding,
    Interval,
    Metadata,
    StepAnswer,
    StrictModel,
)

Target = Literal["conversions", "revenue"]
MMMMethod = Literal["bayesian_nuts", "bayesian_map", "bayesian_advi", "ridge_bootstrap"]


IdentificationVerdict = Literal["data_driven", "prior_driven", "not_separable", "unchecked"]


class ChannelIdentification(StrictModel):
    """Whether the data, rather than the priors or another channel, decided a channel's
    number (``mmm/identification.py``)."""

    channel: str = Field(description="Channel name.")
    verdict: IdentificationVerdict = Field(
        description="'data_driven'; 'prior_driven' (vague priors give another ROAS); "
        "'not_separable' (its total trades off against another channel's); 'unchecked' (no "
        "refit under vague priors was made)."
    )
    reason: str = Field(description="The measurement behind the verdict, in plain words.")
    trades_off_with: list[str] = Field(
        default_factory=list, description="Channels whose totals trade off against this one."
    )


# ----- analysis/mmm_channel_contributions.json ----------------------------------------------
class ChannelContribution(StrictModel):
    channel: str = Field(description="Channel name.")
    total_contribution: Interval = Field(description="Contribution over the window (target units).")
    share_of_media: Interval = Field(description="Share of total media contribution (0-1).")
    roas: Interval = Field(description="Contribution per unit of spend over the window.")
    mroas: Interval = Field(description="Marginal ROAS at current spend (next unit of spend).")
    spend: float = Field(description="Spend over the window.")
    identification: IdentificationVerdict | None = Field(
        default=None,
        description="Whether the data decided this channel's number (from validate_model): "
        "a 'prior_driven' or 'not_separable' figure is an assumption, not a finding.",
    )
    identification_reason: str | None = Field(
        default=None, description="Why: the measurement behind the verdict."
    )


class GeoChannelContribution(StrictModel):
    """One (geo, channel) cell of a geo panel's decomposition: sums over periods of the same
    draws whose sums over geos are the national figures."""

    geo: str = Field(description="Geo, as named in the inputs.")
    channel: str = Field(description="Channel name.")
    total_contribution: Interval = Field(description="Contribution over the window (target units).")
    share_of_geo_media: Interval = Field(description="Share of the geo's media contribution (0-1).")
    roas: Interval | None = Field(
        description="Contribution per unit of the geo's spend on the channel; null when the "
        "geo spent nothing on it."
    )
    spend: float = Field(description="The geo's spend on the channel over the window.")


class BaseContribution(StrictModel):
    total: Interval = Field(description="Intercept + trend + seasonality + controls.")


class ComponentContribution(StrictModel):
    """A non-media component the model gives its own effect: an organic series (carryover
    and saturation, no spend) or an event (one effect)."""

    name: str = Field(description="The series or event, as named in external_factors.csv.")
    kind: Literal["organic", "event"] = Field(description="'organic' series or 'event'.")
    total_contribution: Interval = Field(description="Contribution over the window (target units).")
    share_of_outcome: Interval = Field(
        description="Contribution as a share of the fitted outcome over the window (0-1)."
    )


class SumCheck(StrictModel):
    relative_error: float = Field(
        description="|base + media + components - fitted| / fitted, over the window."
    )
    tolerance: float = Field(default=0.02, description="Acceptance threshold (seed: 2%).")
    passed: bool = Field(description="relative_error <= tolerance.")


class ChannelContributions(StrictModel):
    """``analysis/mmm_channel_contributions.json``."""

    metadata: Metadata
    target: Target
    method: MMMMethod
    channels: list[ChannelContribution]
    base: BaseContribution
    components: list[ComponentContribution] = Field(
        default_factory=list,
        description="Organic series and events, each apart from media and from the base.",
    )
    geos: list[GeoChannelContribution] = Field(
        default_factory=list,
        description="Geo panels only: every (geo, channel) cell over the window, geo-major.",
    )
    sum_check: SumCheck
    weekly_table: str | None = Field(
        default=None,
        description="Path of the C(channel, period[, geo]) table the allocation step reads.",
    )
    draws_file: str | None = Field(
        default=None, description="NetCDF of C(channel, period[, geo]) posterior draws."
    )
    roas_unit: str | None = Field(default=None, description="Unit of ROAS and marginal ROAS.")
    findings: list[Finding] = Field(default_factory=list)


class DecomposeAnswer(StepAnswer):
    """What decompose_contributions answers: every figure the agent quotes, with intervals."""

    target: Target = Field(description="The outcome explained (revenue or conversions).")
    method: MMMMethod = Field(description="How the model was fitted (NUTS, quick, ridge).")
    roas_unit: str | None = Field(description="Unit of ROAS and marginal ROAS; quote it.")
    channels: list[ChannelContribution] = Field(
        description="Per channel: contribution, share of media, ROAS and marginal ROAS, each "
        "with its 90% and 95% intervals."
    )
    base: BaseContribution = Field(description="What is not media: intercept, season, controls.")
    components: list[ComponentContribution] = Field(
        default_factory=list,
        description="Organic series and events with their own effects (not media, not base), "
        "each with its 90% and 95% intervals; no ROAS (no spend).",
    )
    geos: list[GeoChannelContribution] = Field(
        default_factory=list,
        description="Geo panels only: per (geo, channel) contribution, share of the geo's "
        "media and ROAS on the geo's spend, with intervals. Geos share each channel's curve "
        "shape, and its effect size is partially pooled across geos: a small geo's figure is "
        "pulled towards the channel's mean over geos and rests on the other geos as well as "
        "its own data, so quote it with its interval.",
    )
    sum_check: SumCheck = Field(
        description="Whether base + channels + components add up to the fitted outcome "
        "(within tolerance)."
    )
    findings: list[Finding] = Field(
        description="What to say with the numbers (overrides, prior-driven channels, ...)."
    )


# ----- analysis/mmm_diagnostics.json ----------------------------------------------------------
class Criterion(StrictModel):
    name: str = Field(description="e.g. 'max_rhat', 'min_ess_bulk', 'ppc_coverage_90'.")
    value: float | None = Field(description="Measured value.")
    threshold: float = Field(description="Acceptance threshold.")
    rule: str = Field(description="e.g. 'R-hat < 1.05'.")
    passed: bool


class PriorComparisonRule(StrictModel):
    """The limits validate_model flags ``prior_comparison`` rows with, written beside them so
    a reader of the file (the report) quotes the rule that was applied, not the code's."""

    shift_limit: float = Field(
        gt=0, description="|relative shift of mean ROAS under vague priors| above this: flagged."
    )
    overlap_limit: float = Field(
        gt=0, le=1, description="Posterior overlap coefficient below this: flagged."
    )


class MMMDiagnostics(StrictModel):
    """``analysis/mmm_diagnostics.json``."""

    metadata: Metadata
    method: MMMMethod
    passed: bool = Field(description="All acceptance criteria passed.")
    criteria: list[Criterion]
    divergences: int = Field(ge=0)
    loo: dict[str, float | None] = Field(
        default_factory=dict, description="elpd_loo, se, p_loo, max Pareto k."
    )
    remedies_tried: list[str] = Field(default_factory=list)
    override: str | None = Field(
        default=None, description="Who overrode a failing model, and why (recorded)."
    )
    findings: list[Finding] = Field(default_factory=list)
    convergence: dict[str, float | int | None] = Field(
        default_factory=dict, description="max_rhat, min_ess_bulk, min_ess_tail, divergences."
    )
    ppc: dict[str, Any] = Field(
        default_factory=dict,
        description="Posterior predictive check: "
        "coverage_90, mape, r2 and the series for the coverage plot.",
    )
    loo_pit: dict[str, Any] = Field(
        default_factory=dict,
        description="LOO-PIT values and their KS distance from uniform (calibration).",
    )
    prior_sensitivity: list[dict[str, Any]] = Field(
        default_factory=list, description="Power-scaling sensitivity per parameter (psense)."
    )
    prior_comparison: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per channel: mean ROAS under the default and under "
        "vague priors, relative shift, posterior overlap, prior_dominates flag.",
    )
    identification: list[ChannelIdentification] = Field(
        default_factory=list,
        description="Per channel: did the data decide its number (data-driven, prior-driven, "
        "not separable from another channel, or unchecked)? The convergence criteria speak of "
        "the computation; this speaks of the estimate.",
    )
    prior_comparison_rule: PriorComparisonRule | None = Field(
        default=None,
        description="Limits that set prior_dominates in prior_comparison (null: a ridge fit, "
        "which has no priors, or a file written before the limits were recorded).",
    )
    backtest: dict[str, Any] | None = Field(
        default=None,
        description="Out-of-sample check on held-out final periods: MAPE and 90% coverage.",
    )
    trace: dict[str, Any] = Field(
        default_factory=dict, description="Thinned draws per chain for trace plots."
    )


class ValidateModelAnswer(StepAnswer):
    """What validate_model answers: the verdict, each criterion with its number, and what
    to say about priors and remedies (the series and trace are in the diagnostics file)."""

    method: MMMMethod = Field(description="Method of the fit that was checked.")
    passed: bool = Field(
        description="All acceptance criteria passed; when false, decomposition and "
        "optimization refuse the model unless given an override_reason."
    )
    failed_criteria: list[str] = Field(description="Names of the criteria that failed.")
    criteria: list[Criterion] = Field(description="Every criterion: value, threshold, rule.")
    divergences: int = Field(ge=0, description="Divergent transitions in the fit.")
    ppc_coverage_90: float | None = Field(
        description="Share of observed periods inside the 90% predictive interval."
    )
    loo: dict[str, float | None] = Field(
        description="elpd_loo, se, p_loo, max Pareto k (empty for quick and ridge fits)."
    )
    backtest: dict[str, Any] | None = Field(
        description="Out-of-sample check on held-out final periods: MAPE and 90% coverage "
        "(null when skipped)."
    )
    remedies_tried: list[str] = Field(
        description="What the fit tried when the sampler failed its gates; report them."
    )
    prior_comparison: list[dict[str, Any]] = Field(
        description="Per channel: mean ROAS under the default and under vague priors, relative "
        "shift, overlap, prior_dominates (the data alone cannot pin it down: propose a lift test)."
    )
    identification: list[ChannelIdentification] = Field(
        default_factory=list,
        description="Per channel: data_driven, prior_driven, not_separable or unchecked, with "
        "the reason. 'passed' speaks of the computation; this, of each channel's estimate: "
        "never present a prior-driven or not-separable number like a data-driven one.",
    )
    findings: list[Finding] = Field(
        description="What to tell the user (prior-dominated channels, Pareto k, quick fit, ...)."
    )
