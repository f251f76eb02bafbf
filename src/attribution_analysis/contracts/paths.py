"""Contracts of the ``attribute_paths`` step: the two journey inputs, its parameters and
``analysis/path_attribution.json``.

Path attribution reads user journeys, not the weekly panel: either the long form
``raw/journeys.csv`` (one row per touchpoint) or the aggregated form ``raw/paths.csv`` that
most tools export (one row per distinct path string with its conversion and null counts).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self

from pydantic import Field, model_validator

from attribution_analysis.contracts.common import (
    Finding,
    Identifier,
    Label,
    Metadata,
    StepAnswer,
    StrictModel,
)

PathMethod = Literal["heuristics", "markov", "shapley", "all"]
PathSource = Literal["auto", "journeys", "paths"]
ShapleyValue = Literal["subset_sum", "rate_within"]
CalibrationMethod = Literal[
    "markov", "shapley", "linear", "first_touch", "last_touch", "position_based"
]
HEURISTICS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
)


def _kind(kind: str) -> dict[str, str]:
    return {"x-kind": kind}


# ----- inputs ----------------------------------------------------------------------------------
class JourneyRow(StrictModel):
    """One touchpoint of ``raw/journeys.csv`` (long format: one row per touch).

    A journey converts when any of its rows says ``converted = 1`` (exports put the flag on
    every row or only on the converting one); its value is the largest ``conversion_value``
    of its rows, for the same reason.
    """

    journey_id: Label = Field(
        description="User or journey id; rows with one id form one journey.",
        json_schema_extra=_kind("label"),
    )
    timestamp: dt.datetime = Field(
        description="When the touch happened (ISO 8601 date or date-time); orders the touches "
        "of a journey and feeds time decay.",
        json_schema_extra=_kind("label"),
    )
    channel: Identifier = Field(
        description="Channel of the touch; it may not contain the path separator '>'.",
        json_schema_extra=_kind("identifier"),
    )
    converted: int = Field(
        ge=0,
        le=1,
        description="1 if the journey ended in a conversion, else 0 (every journey needs it).",
        json_schema_extra=_kind("number"),
    )
    campaign: Label | None = Field(
        default=None,
        description="Campaign of the touch (enables the MMM-calibrated campaign split).",
        json_schema_extra=_kind("label"),
    )
    conversion_value: float | None = Field(
        default=None,
        ge=0,
        description="Value of the journey's conversion (0 when it did not convert).",
        json_schema_extra=_kind("number"),
    )


class PathRow(StrictModel):
    """One row of ``raw/paths.csv``: a distinct path with its outcome counts."""

    path: str = Field(
        description="Channels in order, separated by '>' (e.g. 'search > social > email').",
        json_schema_extra=_kind("path"),
    )
    conversions: float = Field(
        ge=0,
        description="Journeys with this path that converted.",
        json_schema_extra=_kind("number"),
    )
    value: float | None = Field(
        default=None,
        ge=0,
        description="Total conversion value of those journeys.",
        json_schema_extra=_kind("number"),
    )
    nulls: float | None = Field(
        default=None,
        ge=0,
        description="Journeys with this path that did not convert (absent: 0, which makes "
        "every path convert and the Markov model meaningless; export them).",
        json_schema_extra=_kind("number"),
    )


# ----- parameters ------------------------------------------------------------------------------
class AttributePathsParams(StrictModel):
    """Parameters of the ``attribute_paths`` step."""

    method: PathMethod = Field(
        default="all", description="Which credits to compute: heuristics, markov, shapley or all."
    )
    source: PathSource = Field(
        default="auto",
        description="'journeys' (raw/journeys.csv), 'paths' (raw/paths.csv) or 'auto' "
        "(journeys when that file exists, else paths).",
    )
    order: int = Field(
        default=1,
        ge=1,
        le=4,
        description="Markov order k: a state is the last k channels of the path.",
    )
    collapse_repeats: bool = Field(
        default=True,
        description="Markov: read 'a > a > b' as 'a > b' (as ChannelAttribution does); "
        "heuristics always see every touch.",
    )
    half_life_days: float = Field(
        default=7.0,
        gt=0,
        le=3650,
        description="Time decay: a touch this many days before the journey's last touch gets "
        "half the weight of the last one (journeys.csv only: paths.csv has no timestamps).",
    )
    position_first: float = Field(
        default=0.4, ge=0, le=1, description="Position-based: share of the first touch."
    )
    position_last: float = Field(
        default=0.4, ge=0, le=1, description="Position-based: share of the last touch."
    )
    direct_channels: list[str] = Field(
        default_factory=lambda: ["direct"],
        description="Channels skipped by last-non-direct (case-insensitive); a journey with "
        "only these keeps its last touch.",
    )
    shapley_value: ShapleyValue = Field(
        default="subset_sum",
        description="Coalition worth: 'subset_sum' v(S) = sum of the conversion rates of "
        "observed channel sets inside S (closed form, exact for any channel count); "
        "'rate_within' v(S) = conversion rate of journeys whose channels all lie in S (exact "
        "up to shapley_exact_max_channels, Monte Carlo permutations above).",
    )
    shapley_exact_max_channels: int = Field(
        default=16,
        ge=1,
        le=22,
        description="rate_within: most channels for the exact sum over all 2^n coalitions.",
    )
    shapley_permutations: int = Field(
        default=2000,
        ge=100,
        le=200_000,
        description="rate_within above the threshold: sampled channel orderings.",
    )
    shapley_prior_journeys: float = Field(
        default=100.0,
        ge=0,
        le=1_000_000,
        description="Shapley: each channel set's conversion rate is shrunk toward the overall "
        "rate with a Beta prior worth this many pseudo-journeys, (conversions + k p0) / "
        "(journeys + k), so a set seen on 1 journey that converted does not weigh like a "
        "million journeys at 100%. 0 gives the raw rates. Default 100: on the journeys "
        "simulator it halves the game value held by sets with < 20 journeys and moves shares "
        "on 165k journeys by < 1 point, while on 4k journeys it lowers the error against the "
        "true shares (10.5 -> 8.9 points); much larger values pull every channel toward an "
        "equal split.",
    )
    bootstrap_replicates: int = Field(
        default=200,
        ge=0,
        le=5000,
        description="Bootstrap replicates for the 90% intervals of every share and removal "
        "effect (journeys resampled as a multinomial over the distinct paths); 0 skips them.",
    )
    seed: int = Field(
        default=0, ge=0, description="Seed of the Shapley permutation sampler and bootstrap."
    )
    journeys_partitions: str | None = Field(
        default=None,
        description="Journeys too large for memory: workspace-relative folder, glob or file "
        "of touch-level partitions (Parquet or CSV) with journeys.csv's columns, read "
        "instead of raw/journeys.csv. The touches are counted into the path table (on Dask "
        "at or above dask_min_rows touches, in pandas below; the findings name the engine "
        "and why); campaigns and touch ages are not kept, as with raw/paths.csv.",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of the Dask scheduler to run on (tcp://HOST:8786, started with "
        "`dask scheduler`); empty: a LocalCluster on this machine. Used when the Dask "
        "engine runs (journeys_partitions at or above dask_min_rows touches).",
    )
    dask_min_rows: int = Field(
        default=20_000_000,
        ge=1,
        description="Touches of journeys_partitions at or above which they are counted on "
        "Dask (out of core); below, in pandas.",
    )
    reconcile: bool = Field(
        default=True,
        description="Compare with analysis/mmm_channel_contributions.json when it exists.",
    )
    mmm_file: str = Field(
        default="analysis/mmm_channel_contributions.json",
        description="Workspace-relative MMM contributions file to reconcile with.",
    )
    channel_map: dict[str, str] = Field(
        default_factory=dict,
        description="Path channel -> MMM channel, for names that differ (several path "
        "channels may map to one MMM channel; unmapped names are matched as they are).",
    )
    calibration_method: CalibrationMethod = Field(
        default="markov",
        description="Path method whose campaign credit splits the MMM channel totals.",
    )

    @model_validator(mode="after")
    def _position_shares(self) -> Self:
        if self.position_first + self.position_last > 1:
            raise ValueError(
                f"position_first + position_last = {self.position_first + self.position_last:g} "
                "exceeds 1; the middle touches would get negative credit"
            )
        return self


# ----- analysis/path_attribution.json ----------------------------------------------------------
class ChannelCredit(StrictModel):
    channel: str = Field(description="Channel.")
    conversions: float = Field(description="Conversions credited to the channel.")
    value: float | None = Field(description="Conversion value credited (null without values).")
    share: float = Field(description="Share of all credited conversions (0-1).")
    share_lower_90: float | None = Field(
        default=None, description="Bootstrap 5th percentile of the share (null: not run)."
    )
    share_upper_90: float | None = Field(
        default=None, description="Bootstrap 95th percentile of the share (null: not run)."
    )


class MethodCredit(StrictModel):
    method: str = Field(
        description="first_touch, last_touch, last_non_direct, linear, time_decay, "
        "position_based, markov_order_K or shapley."
    )
    family: Literal["heuristic", "markov", "shapley"] = Field(description="Kind of method.")
    rule: str = Field(description="How credit is assigned, in one sentence.")
    credits: list[ChannelCredit] = Field(description="Credit per channel.")


class RemovalEffect(StrictModel):
    channel: str = Field(description="Channel removed.")
    removal_effect: float = Field(
        description="1 - P(conversion without the channel) / P(conversion)."
    )
    p_conversion_without: float = Field(
        description="P(conversion) when every state holding the channel leads to null."
    )
    removal_effect_value: float | None = Field(
        description="The same on expected conversion value (null without values)."
    )
    removal_effect_lower_90: float | None = Field(
        default=None, description="Bootstrap 5th percentile of the removal effect."
    )
    removal_effect_upper_90: float | None = Field(
        default=None, description="Bootstrap 95th percentile of the removal effect."
    )


class Transition(StrictModel):
    source: str = Field(description="From state: '(start)' or channels joined by ' > '.")
    target: str = Field(description="To state, '(conversion)' or '(null)'.")
    count: float = Field(description="Journeys making this transition.")
    probability: float = Field(description="Row-normalised transition probability.")


class MarkovSummary(StrictModel):
    order: int = Field(description="Markov order k.")
    collapse_repeats: bool = Field(description="Consecutive repeated channels merged.")
    n_states: int = Field(description="Transient states observed (start excluded).")
    n_transitions: int = Field(description="Non-zero entries of the transition matrix.")
    p_conversion: float = Field(description="P(start reaches conversion) = conversion rate.")
    removal_effects: list[RemovalEffect] = Field(description="Per channel, exact (linear solve).")
    transitions: list[Transition] = Field(
        description="Largest transitions by count (all of them when few)."
    )
    transitions_truncated: bool = Field(description="Whether transitions is a top-N extract.")
    solver: str = Field(description="How absorption probabilities were computed.")


class Coalition(StrictModel):
    channels: list[str] = Field(description="Channels of the set (order ignored).")
    journeys: float = Field(description="Journeys whose channel set is exactly this one.")
    conversions: float = Field(description="Their conversions.")
    raw_rate: float = Field(description="conversions / journeys.")
    shrunk_rate: float = Field(description="Rate shrunk toward the overall rate (the one used).")


class ShapleySummary(StrictModel):
    value_function: ShapleyValue = Field(description="Coalition worth used.")
    n_coalitions: int = Field(description="Distinct observed channel sets.")
    exact: bool = Field(description="False when Monte Carlo permutations were used.")
    permutations: int | None = Field(description="Sampled orderings (Monte Carlo only).")
    raw_values: dict[str, float] = Field(
        description="Shapley value per channel before scaling to conversions."
    )
    standard_errors: dict[str, float] | None = Field(
        description="Monte Carlo standard error per channel (raw scale)."
    )
    error_bound: float | None = Field(
        description="Monte Carlo: Hoeffding bound on |estimate - exact| of the raw values, "
        "all channels at once (union bound), with 95% probability."
    )
    share_error_bounds: dict[str, float] | None = Field(
        default=None,
        description="Monte Carlo: bound on |shown share - exact share| per channel implied "
        "by error_bound through clipping and renormalisation (same 95% event); multiply by "
        "the total conversions for the credited conversions.",
    )
    prior_journeys: float = Field(
        default=0.0, description="Pseudo-journeys of the Beta prior shrinking each set's rate."
    )
    prior_rate: float = Field(default=0.0, description="Rate shrunk toward (overall rate).")
    low_support_threshold: int = Field(
        default=20, description="A set with fewer journeys than this is low-support."
    )
    n_low_support_coalitions: int = Field(default=0, description="Low-support sets.")
    low_support_journey_share: float = Field(
        default=0.0, description="Share of journeys in low-support sets."
    )
    low_support_value_share: float = Field(
        default=0.0,
        description="Share of the grand coalition's worth v(N) that low-support sets carry.",
    )
    coalitions: list[Coalition] = Field(
        default_factory=list, description="Observed sets with their support, most journeys first."
    )
    coalitions_truncated: bool = Field(default=False, description="coalitions is a top-N.")
    rule: str = Field(description="Formula, in words.")


class ReconciledChannel(StrictModel):
    channel: str = Field(description="MMM channel.")
    path_channels: list[str] = Field(description="Path channels mapped to it.")
    mmm_share: float = Field(description="MMM posterior mean share of media contribution.")
    mmm_share_lower_90: float = Field(description="Lower end of the MMM 90% HDI of the share.")
    mmm_share_upper_90: float = Field(description="Upper end of the MMM 90% HDI of the share.")
    mmm_contribution: float = Field(description="MMM mean contribution over its window.")
    path_shares: dict[str, float] = Field(
        description="Per path method: share among the channels both sources know."
    )
    disagreeing_methods: list[str] = Field(
        description="Methods whose share falls outside the MMM 90% interval."
    )


class CalibratedSplit(StrictModel):
    file: str = Field(description="CSV written (channel, campaign, omega, calibrated credit).")
    method: str = Field(description="Path method whose campaign credit gives omega.")
    rule: str = Field(description="How the MMM totals are split.")
    omega_source: str = Field(
        description="What the omega column is: the campaign's share of its channel's path "
        "credit over the whole journey window (the allocation step's path-based ω is the "
        "same credit by conversion day, campaign_credit)."
    )
    n_campaigns: int = Field(description="Campaign rows written.")
    channels_without_campaign_credit: list[str] = Field(
        description="MMM channels with no campaign touches in the journeys (left out)."
    )


class CampaignCreditSummary(StrictModel):
    """Path credit per campaign and conversion day: the allocation step's path-based ω."""

    file: str = Field(
        description="CSV written: mmm_channel, channel, campaign, date (conversion day), credit."
    )
    method: str = Field(description="Path method whose campaign credit was used.")
    omega_source: str = Field(
        description="How the allocation records this ω: 'path_credit:<method>'."
    )
    rule: str = Field(description="How the credit is dated, in words.")
    sha256: str = Field(
        description="sha256 of the CSV as written; the allocation refuses a CSV that differs "
        "(changed, or written by another run)."
    )
    n_rows: int = Field(ge=0, description="(campaign, day) rows with positive credit.")
    n_campaigns: int = Field(ge=0, description="(channel, campaign) pairs with dated credit.")
    first_date: dt.date | None = Field(description="Earliest conversion day with credit.")
    last_date: dt.date | None = Field(description="Latest conversion day with credit.")
    total_credit: float = Field(description="Campaign credit under the method, all campaigns.")
    undated_credit: float = Field(
        description="Credit of campaigns on no converting journey (Shapley's shrunk rates "
        "only): no conversion day, so not in the CSV."
    )


class Reconciliation(StrictModel):
    mmm_file: str = Field(description="MMM contributions file read.")
    mmm_method: str = Field(description="How the MMM was fitted.")
    rule: str = Field(description="Disagreement rule.")
    mmm_shares_renormalised: bool = Field(
        default=False,
        description="MMM shares rescaled to the channels both sources know (some MMM "
        "channels have no journeys).",
    )
    mmm_start: dt.date | None = Field(default=None, description="MMM data window start.")
    mmm_end: dt.date | None = Field(default=None, description="MMM data window end.")
    dates_overlap: bool | None = Field(
        default=None,
        description="Whether the journeys' dates overlap the MMM window (null: a side has "
        "no dates).",
    )
    channels: list[ReconciledChannel] = Field(description="Per matched MMM channel.")
    path_channels_not_in_mmm: list[str] = Field(description="Path-only channels (left out).")
    mmm_channels_not_in_paths: list[str] = Field(
        description="MMM channels that no journey touches (untracked media, e.g. TV)."
    )
    calibrated_split: CalibratedSplit | None = Field(
        description="MMM-calibrated campaign split (needs campaigns in journeys.csv)."
    )


class TruthComparison(StrictModel):
    """Simulated workspaces only: comparison with truth/ (never used by the methods)."""

    true_shares: dict[str, float] = Field(description="True incremental share per channel.")
    mean_abs_error: dict[str, float] = Field(
        description="Per method: mean |share - true share| over channels."
    )
    bottom_funnel_overcredit: dict[str, float] = Field(
        description="Per method: share given to the bottom-funnel channels minus their true "
        "incremental share."
    )


class PathInputSummary(StrictModel):
    kind: Literal["journeys", "paths"] = Field(description="Which input form was read.")
    file: str = Field(description="Workspace-relative input file.")
    n_journeys: float = Field(description="Journeys (paths x their counts).")
    n_distinct_paths: int = Field(description="Distinct channel sequences.")
    n_touches: int = Field(description="Touchpoint rows (journeys) or path steps (paths).")
    channels: list[str] = Field(description="Channels seen, sorted.")
    total_conversions: float = Field(description="Conversions in the input.")
    total_value: float | None = Field(description="Conversion value in the input, if given.")
    conversion_rate: float = Field(description="Conversions / journeys.")
    has_campaigns: bool = Field(description="Campaign column present.")
    has_timestamps: bool = Field(description="Touch timestamps present (time decay).")
    first_date: dt.date | None = Field(default=None, description="Earliest touch (journeys).")
    last_date: dt.date | None = Field(default=None, description="Latest touch (journeys).")
    max_path_length: int = Field(default=0, description="Most touches in one journey/path.")


class BootstrapSummary(StrictModel):
    replicates: int = Field(description="Bootstrap replicates.")
    seed: int = Field(description="Seed of the resampling.")
    level: float = Field(description="Interval level (0.9: 5th to 95th percentile).")
    rule: str = Field(description="How journeys were resampled.")


class PathAttributionReport(StrictModel):
    """``analysis/path_attribution.json``."""

    metadata: Metadata
    input: PathInputSummary
    methods: list[MethodCredit] = Field(description="Credits per channel per method.")
    markov: MarkovSummary | None = Field(description="Markov details, when run.")
    shapley: ShapleySummary | None = Field(description="Shapley details, when run.")
    reconciliation: Reconciliation | None = Field(
        description="Path credits beside the MMM, when its contributions file exists."
    )
    campaign_credit: CampaignCreditSummary | None = Field(
        default=None,
        description="Campaign credit by conversion day (journeys.csv with a campaign column), "
        "read by the allocation step with omega_source='path_credit'.",
    )
    bootstrap: BootstrapSummary | None = Field(
        default=None, description="How the share and removal-effect intervals were made."
    )
    truth: TruthComparison | None = Field(
        default=None, description="Simulated workspaces: comparison with the true shares."
    )
    caveats: list[str] = Field(description="What path data cannot tell, for every reader.")
    findings: list[Finding] = Field(default_factory=list)
    outputs: list[str] = Field(description="Files written by the step.")


# ----- the step's answer ------------------------------------------------------------------------
Band = tuple[float, float]


class ShapleyAnswer(StrictModel):
    """How far to trust the Shapley credit."""

    exact: bool = Field(description="False when Monte Carlo permutations were used.")
    error_bound: float | None = Field(
        description="Monte Carlo: 95% bound on |estimate - exact| of the raw values (null "
        "when exact)."
    )
    prior_journeys: float = Field(
        description="Pseudo-journeys of the prior shrinking each channel set's rate."
    )
    low_support_value_share: float = Field(
        description="Share of the game's worth carried by sets with few journeys (a "
        "'shapley_low_support' warning above 0.2); rounded to 4 decimals."
    )


class PathsAnswer(StepAnswer):
    """What attribute_paths answers: shares per method with their 90% intervals, removal
    effects, the comparison with the MMM, findings. Path credit is correlational: present it
    beside the MMM, never instead of it."""

    input: PathInputSummary = Field(description="What was read: journeys, paths, conversions.")
    shares: dict[str, dict[str, float]] = Field(
        description="Per method, per channel: share of credited conversions (0-1, rounded to "
        "4 decimals)."
    )
    shares_interval_90: dict[str, dict[str, Band]] = Field(
        description="Per method, per channel: bootstrap 90% interval of the share [low, high] "
        "(methods without one are left out; empty when the bootstrap was skipped)."
    )
    removal_effects: dict[str, float] | None = Field(
        description="Markov removal effect per channel (rounded to 6 decimals); null when "
        "Markov did not run."
    )
    removal_effects_interval_90: dict[str, Band] | None = Field(
        description="Bootstrap 90% interval of each removal effect; null when Markov did not run."
    )
    shapley: ShapleyAnswer | None = Field(description="Shapley reliability; null when not run.")
    reconciliation: list[ReconciledChannel] | None = Field(
        description="Per MMM channel: the MMM share with its 90% interval beside every path "
        "method's share; null without the MMM contributions file."
    )
    disagreements: dict[str, list[str]] | None = Field(
        description="MMM channel -> path methods whose share falls outside the MMM 90% "
        "interval; null without the MMM."
    )
    truth_mean_abs_error: dict[str, float] | None = Field(
        description="Simulated workspaces only: per method, mean |share - true share|."
    )
    findings: list[Finding] = Field(
        description="What to say with the numbers: path_mmm_disagreement, "
        "zero_removal_effect, shapley_low_support, extreme_path_length, ..."
    )
