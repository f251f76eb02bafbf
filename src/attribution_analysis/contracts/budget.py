"""Budget optimization: parameters of ``optimize_budget`` and its named plans
``analysis/budget_plans/{name}.json``.

Every money amount is a total over the planning horizon (``horizon_periods`` periods of the
model's grain), never a per-period figure; the output states both so the two cannot be
confused (PyMC-Marketing's own optimizer takes a per-period budget, see PITFALLS.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from attribution_analysis.contracts.common import (
    Finding,
    Identifier,
    Interval,
    Metadata,
    StepAnswer,
    StrictModel,
)

# ----- parameters --------------------------------------------------------------------------

PLAN_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,59}$"
# A plan's name is also its file name: lowercase letters, digits, '_' and '-', 1-60 characters.
PlanName = Annotated[
    str,
    Field(
        pattern=PLAN_NAME_PATTERN,
        description="Plan name: lowercase letters, digits, '_' and '-', 1-60 characters.",
    ),
]
# Direction of a recommended change; 'hold' = within +-MOVE_TOLERANCE of current spend. The
# optimizer and the report both read this one value.
MOVE_TOLERANCE = 0.01
Direction = Literal["increase", "decrease", "hold"]


class ChannelBound(StrictModel):
    """Spend limits for one channel over the horizon: absolute, relative to current, or both
    (the tighter limit wins)."""

    channel: Identifier = Field(description="Channel name, as in the MMM.")
    min_spend: float | None = Field(
        default=None, ge=0, description="Lowest spend over the horizon (currency)."
    )
    max_spend: float | None = Field(
        default=None, ge=0, description="Highest spend over the horizon (currency)."
    )
    min_change: float | None = Field(
        default=None,
        ge=-1,
        description="Lowest spend as a change from current spend, e.g. -0.3 = at least 70% "
        "of current.",
    )
    max_change: float | None = Field(
        default=None,
        ge=-1,
        description="Highest spend as a change from current spend, e.g. 0.5 = at most 150% "
        "of current.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ChannelBound:
        if (
            self.min_spend is not None
            and self.max_spend is not None
            and self.min_spend > self.max_spend
        ):
            raise ValueError(
                f"channel {self.channel!r}: min_spend {self.min_spend:g} is above max_spend "
                f"{self.max_spend:g}; swap them or widen the range."
            )
        if (
            self.min_change is not None
            and self.max_change is not None
            and self.min_change > self.max_change
        ):
            raise ValueError(
                f"channel {self.channel!r}: min_change {self.min_change:g} is above "
                f"max_change {self.max_change:g}; swap them or widen the range."
            )
        return self


class GeoBound(StrictModel):
    """Spend limits in one geo over the horizon (``by_geo`` plans): on one channel there
    (``channel`` given) or on the geo's total over all channels (``channel`` omitted).
    Absolute, relative to the geo's current spend, or both (the tighter limit wins)."""

    geo: str = Field(min_length=1, max_length=200, description="Geo label, as in the data.")
    channel: Identifier | None = Field(
        default=None,
        description="Channel name, as in the MMM; omit it to limit the geo's total spend.",
    )
    min_spend: float | None = Field(
        default=None, ge=0, description="Lowest spend over the horizon (currency)."
    )
    max_spend: float | None = Field(
        default=None, ge=0, description="Highest spend over the horizon (currency)."
    )
    min_change: float | None = Field(
        default=None, ge=-1, description="Lowest spend as a change from current, e.g. -0.2."
    )
    max_change: float | None = Field(
        default=None, ge=-1, description="Highest spend as a change from current, e.g. 0.5."
    )

    @property
    def label(self) -> str:
        return f"geo {self.geo!r}" + (f", channel {self.channel!r}" if self.channel else "")

    @model_validator(mode="after")
    def _ordered(self) -> GeoBound:
        for low, high, name in (
            (self.min_spend, self.max_spend, "spend"),
            (self.min_change, self.max_change, "change"),
        ):
            if low is not None and high is not None and low > high:
                raise ValueError(
                    f"{self.label}: min_{name} {low:g} is above max_{name} {high:g}; swap "
                    "them or widen the range."
                )
        return self


class ShiftScenario(StrictModel):
    """Move a fraction of one channel's current spend to another channel."""

    kind: Literal["shift"] = "shift"
    name: str | None = Field(default=None, max_length=120, description="Label in the outputs.")
    from_channel: Identifier = Field(description="Channel that gives up spend.")
    to_channel: Identifier = Field(description="Channel that receives it.")
    fraction: float = Field(
        gt=0, le=1, description="Share of from_channel's current spend to move (0.2 = 20%)."
    )


class TotalChangeScenario(StrictModel):
    """Change the total budget and re-optimize the mix under the same bounds."""

    kind: Literal["total_change"] = "total_change"
    name: str | None = Field(default=None, max_length=120, description="Label in the outputs.")
    change: float = Field(
        gt=-1, le=10, description="Relative change of the total budget (0.1 = +10%, -0.2 = -20%)."
    )


class AllocationScenario(StrictModel):
    """Evaluate a spend plan given by the user (currency over the horizon per channel)."""

    kind: Literal["allocation"] = "allocation"
    name: str | None = Field(default=None, max_length=120, description="Label in the outputs.")
    allocation: dict[Identifier, Annotated[float, Field(ge=0)]] = Field(
        description="Spend per channel over the horizon; channels left out keep current spend."
    )


SCENARIO_SPELLINGS = (
    "'shift:FROM:TO:FRACTION' (e.g. shift:tv:search:0.2), 'total:CHANGE' (e.g. total:+0.1) "
    "or 'plan:CHANNEL=SPEND,CHANNEL=SPEND'"
)


def _spelled_scenario(value: Any) -> Any:
    """A scenario given in its short spelling (a string, as typed on a command line or in a
    chat) as the object it stands for; objects pass through unchanged."""
    if not isinstance(value, str):
        return value
    kind, _, rest = value.strip().partition(":")
    parts = rest.split(":")
    try:
        if kind == "shift" and len(parts) == 3:
            return {
                "kind": "shift",
                "from_channel": parts[0],
                "to_channel": parts[1],
                "fraction": float(parts[2]),
            }
        if kind == "total" and len(parts) == 1:
            return {"kind": "total_change", "change": float(parts[0])}
        if kind == "plan" and rest:
            pairs = [p.split("=", 1) for p in rest.split(",")]
            return {"kind": "allocation", "allocation": {k.strip(): float(v) for k, v in pairs}}
    except ValueError:
        pass
    raise ValueError(f"cannot read the scenario {value!r}: write it as {SCENARIO_SPELLINGS}")


Scenario = Annotated[
    ShiftScenario | TotalChangeScenario | AllocationScenario,
    Field(discriminator="kind"),
    BeforeValidator(_spelled_scenario),
]


class OptimizeBudgetParams(StrictModel):
    """Parameters of the ``optimize_budget`` step."""

    total_budget: float | None = Field(
        default=None,
        gt=0,
        description="Total spend over the whole horizon, all channels together (not per "
        "period). Default: current spend over the horizon (a pure reallocation).",
    )
    horizon_periods: int = Field(
        default=13,
        ge=1,
        le=520,
        description="Planning horizon in periods of the model's grain (weeks by default). "
        "Spend is spread evenly over it; its carry-over after the horizon is counted.",
    )
    current_basis_periods: int = Field(
        default=52,
        ge=1,
        le=1040,
        description="'Current spend' = mean spend per period over this many final periods of "
        "the data (all of them when fewer), times the horizon. A year smooths out flighted "
        "channels that are dark in the last few weeks.",
    )
    bounds: list[ChannelBound] = Field(
        default_factory=list, description="Per-channel spend limits (see ChannelBound)."
    )
    bounds_file: str | None = Field(
        default=None,
        description="Workspace-relative CSV (columns channel, min_spend, max_spend, "
        "min_change, max_change; blank = no limit) or JSON list of per-channel limits, "
        "added to `bounds`.",
    )
    max_change: float | None = Field(
        default=0.3,
        ge=0,
        description="Limit on the relative change of every channel without its own bounds: "
        "0.3 (default, as Meridian) keeps each within ±30% of current spend, where the "
        "curves rest on observed data; null lifts the limit (expect corner solutions and "
        "extrapolation).",
    )
    allow_extrapolation: bool = Field(
        default=False,
        description="By default every channel's spend per period is capped at the highest "
        "spend per period in the data: beyond it the response curves rest on the priors "
        "and the functional form, not on data (extrapolation), and the recommendations "
        "there are the least reliable. true lifts the cap; a recommendation above observed "
        "spend then comes with an 'extrapolated_spend' finding.",
    )
    objective: Literal["mean", "cvar"] = Field(
        default="mean",
        description="'mean': maximize expected outcome over posterior draws. 'cvar': "
        "maximize the mean of the worst `risk_level` share of draws (risk-averse).",
    )
    risk_level: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="Tail share for the 'cvar' objective (0.1 = worst 10% of draws).",
    )
    scenarios: list[Scenario] = Field(
        default_factory=list,
        description="What-if scenarios evaluated on every draw: objects, or the short "
        f"spellings {SCENARIO_SPELLINGS}.",
    )
    draws: int = Field(
        default=500,
        ge=20,
        le=20_000,
        description="Posterior draws used (evenly thinned); the recommended allocation, the "
        "lift and every interval are computed on these.",
    )
    curve_points: int = Field(
        default=25, ge=5, le=200, description="Points of each channel's response curve."
    )
    curve_max_multiple: float = Field(
        default=2.0,
        gt=0,
        le=10,
        description="Curves run from 0 to this multiple of max(current, recommended) spend.",
    )
    seed: int = Field(default=0, description="Seed of the optimizer's random restarts.")
    plan_name: PlanName = Field(
        default="recommended",
        description="The name to store the plan under, in lowercase letters, digits, '_' and "
        "'-' (1-60 characters), e.g. 'recommended' or 'tv_cut_20': it is saved as "
        "analysis/budget_plans/{name}.json. Re-using a name replaces that plan (a "
        "'plan_replaced' finding says so); give alternatives their own names to keep them "
        "side by side.",
    )
    margin: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Gross margin on the outcome's value (0.35 = 35%): a channel pays back "
        "when its ROAS is above 1/margin. Default: break-even at ROAS 1 (revenue covers "
        "the spend).",
    )
    value_per_conversion: float | None = Field(
        default=None,
        gt=0,
        description="Value of one conversion (currency): lets a conversions target have a "
        "break-even view. Without it, break-even is stated only for revenue targets.",
    )
    robustness: bool = Field(
        default=True,
        description="Re-optimize under the risk-averse objective, the other basis for "
        "current spend and wider/narrower limits, and say per channel whether the "
        "direction of the move holds in all of them. false skips it (faster).",
    )
    by_geo: bool = Field(
        default=False,
        description="Geo panels only: also plan spend per geo x channel (the `geo_plan` "
        "section), choosing how each channel's money splits over geos instead of keeping "
        "its current split; it spends the same total, within `geo_bounds`, the channel "
        "limits and, per geo x channel cell, `max_change` and the observed-spend cap. "
        "Implied by `geo_bounds`.",
    )
    geo_bounds: list[GeoBound] = Field(
        default_factory=list,
        description="Limits per geo (its total) or per geo x channel cell (see GeoBound); "
        "giving any turns `by_geo` on.",
    )
    override_reason: str | None = Field(
        default=None,
        max_length=500,
        description="Use a model that failed validation anyway; recorded in the output.",
    )

    @model_validator(mode="after")
    def _geo_bounds_plan_by_geo(self) -> OptimizeBudgetParams:
        if self.geo_bounds and not self.by_geo:
            self.by_geo = True
        return self


# ----- analysis/budget_plans/{name}.json ------------------------------------------------------


class SaturationStatus(StrictModel):
    """Where a channel's current spend sits on its response curve."""

    saturated: bool = Field(
        description="Marginal ROAS below `mroas_ratio_threshold` x average ROAS, or the "
        "saturation curve above `curve_fraction_threshold` of its ceiling."
    )
    mroas_to_roas: float = Field(description="Posterior-mean marginal ROAS / average ROAS.")
    mroas_ratio_threshold: float
    curve_fraction: Interval = Field(
        description="Saturation level at current spend in the steady state (0 = none, 1 = ceiling)."
    )
    curve_fraction_threshold: float
    reason: str = Field(description="Which rule fired, in plain language ('' if none).")


class BreakEven(StrictModel):
    """Whether a channel's spend pays back, in the finance sense: its ROAS against the
    ROAS needed to cover the spend (1/margin; for conversions 1/(value x margin))."""

    threshold_roas: float = Field(
        description="Outcome per unit of spend needed to pay back, in the outcome's unit "
        "(1/margin for revenue, 1/(value_per_conversion x margin) for conversions)."
    )
    basis: str = Field(description="How the threshold was set, in words.")
    roas_current: Interval = Field(
        description="Average ROAS at current spend, in the threshold's unit."
    )
    probability_below: float = Field(
        ge=0, le=1, description="P(average ROAS at current spend < threshold) over the draws."
    )
    marginal_probability_below: float = Field(
        ge=0,
        le=1,
        description="P(marginal ROAS at current spend < threshold): the next unit of spend "
        "does not pay back.",
    )
    verdict: Literal["loses_money", "pays_back", "uncertain"] = Field(
        description="'loses_money' when probability_below >= 0.9, 'pays_back' when <= 0.1, "
        "'uncertain' otherwise."
    )


class ChannelAllocation(StrictModel):
    channel: str
    current_spend: float = Field(description="Spend over the horizon at the current mix.")
    recommended_spend: float = Field(description="Optimized spend over the horizon.")
    change: float = Field(description="recommended - current (currency).")
    change_pct: float | None = Field(description="Relative change; null when current is 0.")
    min_spend: float = Field(description="Effective lower bound used (currency).")
    max_spend: float = Field(description="Effective upper bound used (currency).")
    bound_active: Literal["min", "max"] | None = Field(
        description="The bound the recommendation sits on, if any."
    )
    outcome_current: Interval = Field(description="Outcome from current spend.")
    outcome_recommended: Interval = Field(description="Outcome from recommended spend.")
    roas_current: Interval | None = Field(
        description="Outcome per unit of spend at current spend (null when current is 0)."
    )
    mroas_current: Interval = Field(description="Next-unit outcome per unit at current spend.")
    mroas_recommended: Interval = Field(description="Next-unit outcome at recommended spend.")
    saturation: SaturationStatus
    beyond_observed: bool = Field(
        description="Recommended spend per period exceeds the highest spend per period seen "
        "in the data: the curve is extrapolated there."
    )
    identification: Literal["data_driven", "prior_driven", "not_separable", "unchecked"] | (
        None
    ) = Field(
        default=None,
        description="validate_model's verdict on this channel: a move into a 'prior_driven' "
        "or 'not_separable' channel rests on assumptions (a finding says so).",
    )
    break_even: BreakEven | None = Field(
        default=None,
        description="Break-even view at current spend; null when the outcome has no value "
        "(conversions without value_per_conversion; see break_even_note) or current is 0.",
    )


class OutcomeSummary(StrictModel):
    current: Interval = Field(description="Media-driven outcome of the current mix.")
    recommended: Interval = Field(description="Media-driven outcome of the recommendation.")
    lift: Interval = Field(description="recommended - current, per draw.")
    lift_pct: Interval = Field(description="lift / current, per draw.")
    probability_better: float = Field(
        ge=0, le=1, description="Share of draws where the recommendation beats current."
    )
    total_outcome: Interval | None = Field(
        default=None,
        description="The whole outcome over the horizon (base + media + controls) at the "
        "current mix: the denominator a reader means by 'growth'.",
    )
    lift_pct_of_total: Interval | None = Field(
        default=None, description="lift / total_outcome, per draw where available."
    )
    total_outcome_basis: str = Field(
        default="", description="How total_outcome was obtained, in words."
    )


class OptimizerReport(StrictModel):
    method: str = Field(description="How the optimum was found.")
    objective: str
    objective_value: float = Field(description="Value of the objective at the optimum.")
    objective_at_current: float = Field(description="Objective at the current mix.")
    starts: int = Field(description="Starting points polished by SLSQP.")
    converged: bool
    message: str
    max_constraint_violation: float = Field(description="Largest bound/budget breach (currency).")
    seconds: float


class InfeasibleScenario(StrictModel):
    """A scenario that cannot be planned under the limits (e.g. a cut below the minimums);
    the other scenarios and the recommendation are still returned."""

    name: str
    kind: str
    description: str
    reason: str = Field(description="Why it cannot be planned, naming the conflicting limits.")
    fix: str = Field(description="What to change so that it can be.")


class ScenarioResult(StrictModel):
    name: str
    kind: str
    description: str
    allocation: dict[str, float] = Field(description="Spend per channel over the horizon.")
    total_spend: float
    outcome: Interval
    lift_vs_current: Interval
    probability_better: float = Field(ge=0, le=1)


class ResponseCurve(StrictModel):
    """Outcome and marginal ROAS against spend over the horizon, with 90% bands."""

    channel: str
    spend: list[float]
    outcome_mean: list[float]
    outcome_low: list[float]
    outcome_high: list[float]
    mroas_mean: list[float]
    mroas_low: list[float]
    mroas_high: list[float]
    current_spend: float
    recommended_spend: float


class RobustnessVariant(StrictModel):
    """The plan re-optimized under one changed assumption."""

    name: str = Field(
        description="'risk_averse', 'recent_basis', 'year_basis', 'wider_limits' or "
        "'narrower_limits'."
    )
    description: str = Field(description="What was changed, in words.")
    allocation: dict[str, float] | None = Field(
        description="Spend per channel over the horizon; null when infeasible."
    )
    directions: dict[str, Direction] | None = Field(
        description="Direction of each channel's change from its current spend (under this "
        "variant's basis)."
    )
    lift: Interval | None = Field(
        description="Outcome of this allocation minus the main plan's current mix, per draw."
    )
    probability_better: float | None = Field(
        description="Share of draws where this allocation beats the main plan's current mix."
    )
    infeasible: str | None = Field(
        default=None, description="Why this variant could not be planned ('' or null if it was)."
    )


class ChannelRobustness(StrictModel):
    """Whether one channel's recommended move survives the variants."""

    channel: str
    direction: Direction = Field(description="Direction of the recommendation's change.")
    holds_in: list[str] = Field(description="Variants where the direction is the same.")
    flips_in: list[str] = Field(description="Variants where it differs.")
    robust: bool = Field(description="The direction is the same in every feasible variant.")
    at_limit: Literal["min", "max"] | None = Field(
        description="The limit the recommendation sits on: the limit, not the data, set it."
    )


class Robustness(StrictModel):
    """The recommendation under changed assumptions, and which moves hold."""

    variants: list[RobustnessVariant]
    channels: list[ChannelRobustness]
    summary: str = Field(description="One plain sentence: which moves hold, which do not.")


class GeoCellAllocation(StrictModel):
    """One geo x channel cell of a ``by_geo`` plan (spend over the horizon)."""

    geo: str
    channel: str
    current_spend: float = Field(
        description="The channel's current spend at the planned budget x its current share "
        "in this geo."
    )
    recommended_spend: float
    change_pct: float | None = Field(description="Relative change; null when current is 0.")
    min_spend: float = Field(description="Effective lower limit of the cell (currency).")
    max_spend: float = Field(description="Effective upper limit of the cell (currency).")
    bound_active: Literal["min", "max"] | None = Field(
        description="The cell limit the recommendation sits on, if any."
    )
    outcome_current: Interval
    outcome_recommended: Interval
    mroas_recommended: Interval = Field(description="Next-unit outcome at recommended spend.")
    beyond_observed: bool = Field(
        description="Recommended spend per period above the most this cell ever spent in one."
    )


class GeoTotal(StrictModel):
    """One geo's total over its channels in a ``by_geo`` plan."""

    geo: str
    current_spend: float
    recommended_spend: float
    change_pct: float | None
    min_spend: float = Field(description="Effective lower limit of the geo's total.")
    max_spend: float = Field(description="Effective upper limit of the geo's total.")
    bound_active: Literal["min", "max"] | None = Field(
        description="The geo limit the recommendation sits on, if any."
    )
    outcome_current: Interval
    outcome_recommended: Interval


class GeoPlan(StrictModel):
    """Spend per geo x channel: the same budget, its split over geos chosen too."""

    geos: list[str]
    cells: list[GeoCellAllocation]
    geo_totals: list[GeoTotal]
    channel_totals: dict[str, float] = Field(
        description="Recommended spend per channel, summed over geos (within the channel "
        "limits of the national plan)."
    )
    outcome: OutcomeSummary = Field(description="Against the current geo x channel mix.")
    lift_vs_national_plan: Interval = Field(
        description="This plan's outcome minus the national plan's (which keeps each "
        "channel's current split over geos), per draw."
    )
    probability_better_than_national: float = Field(ge=0, le=1)
    optimizer: OptimizerReport
    limits: str = Field(description="Which limits applied, in words.")


class BudgetOptimization(StrictModel):
    """``analysis/budget_plans/{name}.json``: one named plan."""

    metadata: Metadata
    plan_name: str = Field(description="The name this plan is stored under.")
    target: str = Field(description="What the outcome counts (the MMM's target column).")
    outcome_unit: str = Field(description="Unit of outcomes and ROAS.")
    horizon_periods: int = Field(ge=1)
    grain: str
    total_budget: float = Field(gt=0, description="Total spend over the horizon.")
    budget_per_period: float = Field(gt=0, description="total_budget / horizon_periods.")
    current_basis: str = Field(description="Which data window defines 'current spend'.")
    convention: str = Field(description="How the horizon's response is computed.")
    draws: int = Field(description="Posterior draws every figure is computed on.")
    allocations: list[ChannelAllocation]
    outcome: OutcomeSummary
    optimizer: OptimizerReport
    scenarios: list[ScenarioResult] = Field(default_factory=list)
    infeasible_scenarios: list[InfeasibleScenario] = Field(
        default_factory=list,
        description="Scenarios that could not be planned under the limits, with the reason.",
    )
    curves: list[ResponseCurve] = Field(default_factory=list)
    break_even_note: str = Field(
        default="",
        description="Why break_even is absent (a conversions target without "
        "value_per_conversion), else ''.",
    )
    robustness: Robustness | None = Field(
        default=None, description="The plan under changed assumptions; null when skipped."
    )
    geo_plan: GeoPlan | None = Field(
        default=None, description="The plan per geo x channel (by_geo); null otherwise."
    )
    findings: list[Finding] = Field(default_factory=list)


# ----- the step's answer ------------------------------------------------------------------------


class AllocationAnswer(StrictModel):
    """One channel of the recommendation, compact (intervals per channel are in the file)."""

    channel: str = Field(description="Channel name, as in the MMM.")
    current_spend: float = Field(
        description="Spend over the horizon at the current mix, scaled to the planned budget "
        "(currency, rounded to cents)."
    )
    recommended_spend: float = Field(
        description="Recommended spend over the horizon (currency, rounded to cents)."
    )
    change_pct: float | None = Field(
        description="Relative change recommended vs current (0.1 = +10%); null when current "
        "spend is 0."
    )
    bound_active: Literal["min", "max"] | None = Field(
        description="The limit the recommendation sits on, if any: the optimum may lie beyond it."
    )
    saturated: bool = Field(
        description="Near saturation at current spend (a 'saturated_channel' finding says why)."
    )
    beyond_observed: bool = Field(
        description="Recommended spend per period above the highest seen in the data: the "
        "curve is extrapolated there ('extrapolated_spend' finding)."
    )
    robust: bool | None = Field(
        default=None,
        description="The direction of this channel's move holds in every robustness variant "
        "(null when robustness was skipped); a 'fragile_move' finding names the variants "
        "where it does not.",
    )
    break_even: Literal["loses_money", "pays_back", "uncertain"] | None = Field(
        default=None,
        description="Whether current spend pays back (null without a money value: see "
        "break_even_note).",
    )


class ScenarioAnswer(StrictModel):
    """One what-if scenario, compact (its allocation and outcome are in the file)."""

    name: str = Field(description="Scenario label.")
    kind: str = Field(description="'shift', 'total_change' or 'allocation'.")
    total_spend: float = Field(description="Total spend of the scenario over the horizon.")
    lift_vs_current: Interval = Field(
        description="Outcome of the scenario minus the current mix's, per draw."
    )
    probability_better: float = Field(
        ge=0, le=1, description="Share of draws where the scenario beats the current mix."
    )


class GeoTotalAnswer(StrictModel):
    """One geo's total in the plan per geo x channel, compact (cells are in the file)."""

    geo: str
    current_spend: float = Field(description="Current spend over the horizon (currency).")
    recommended_spend: float = Field(description="Recommended spend over the horizon.")
    change_pct: float | None = Field(description="Relative change; null when current is 0.")
    bound_active: Literal["min", "max"] | None = Field(
        description="The geo limit the recommendation sits on, if any."
    )


class GeoPlanAnswer(StrictModel):
    """The plan per geo x channel (by_geo), compact: per-geo totals and what it adds."""

    geo_totals: list[GeoTotalAnswer]
    channel_totals: dict[str, float] = Field(description="Recommended spend per channel.")
    lift: Interval = Field(description="Outcome minus the current geo x channel mix's.")
    probability_better: float = Field(ge=0, le=1)
    lift_vs_national_plan: Interval = Field(
        description="Outcome minus the national plan's (which keeps each channel's current "
        "split over geos): what choosing the split adds; quote it with its interval."
    )
    probability_better_than_national: float = Field(ge=0, le=1)


class BudgetAnswer(StepAnswer):
    """What optimize_budget answers: the decision with its uncertainty, not the curves."""

    target: str = Field(description="What the outcome counts (the MMM's target column).")
    outcome_unit: str = Field(description="Unit of the outcome and lift figures; quote it.")
    total_budget: float = Field(
        gt=0, description="Total spend over the whole horizon, all channels (not per period)."
    )
    budget_per_period: float = Field(
        gt=0,
        description="total_budget / horizon_periods: read it back to the user to confirm the "
        "unit of the budget.",
    )
    horizon_periods: int = Field(ge=1, description="Planning horizon in periods of `grain`.")
    grain: str = Field(description="Period grain of the model: 'weekly' or 'daily'.")
    current_basis: str = Field(description="Which data window defines 'current spend'.")
    allocations: list[AllocationAnswer] = Field(
        description="Current and recommended spend per channel."
    )
    outcome: OutcomeSummary = Field(
        description="Outcome of the current mix and of the recommendation, the lift with its "
        "intervals and probability_better (quote the lift interval and P(better), not only "
        "the mean)."
    )
    scenarios: list[ScenarioAnswer] = Field(description="The what-if scenarios evaluated.")
    infeasible_scenarios: list[InfeasibleScenario] = Field(
        description="Scenarios the limits rule out, with the reason and what to change."
    )
    robustness_summary: str = Field(
        default="",
        description="One sentence: which moves hold under the risk-averse objective, the other "
        "basis of current spend and wider/narrower limits, and which do not ('' when skipped).",
    )
    break_even_note: str = Field(
        default="", description="Why there is no break-even view, else ''."
    )
    geo_plan: GeoPlanAnswer | None = Field(
        default=None, description="The plan per geo x channel (by_geo); null otherwise."
    )
    plan_name: str = Field(description="The name the plan was stored under.")
    plans: list[str] = Field(
        description="Every plan now in the workspace (newest first); the report shows "
        "'recommended' unless asked for another."
    )
    findings: list[Finding] = Field(
        description="What to say with the numbers: saturated_channel, extrapolated_spend, "
        "limit_bound, fragile_move, budget_into_prior_driven, loses_money, "
        "budget_looks_per_period, budget_far_from_current, plan_replaced, override, ..."
    )


class ListBudgetPlansParams(StrictModel):
    """Parameters of the ``list_budget_plans`` step (none: it lists every plan)."""


class PlanListing(StrictModel):
    """One stored budget plan."""

    name: str = Field(description="Plan name.")
    created: str = Field(description="UTC time the plan was written (ISO 8601).")
    total_budget: float = Field(description="Total spend over the horizon.")
    objective: str = Field(description="The objective it was optimized for.")
    path: str = Field(description="Workspace-relative path of the plan file.")


class BudgetPlansAnswer(StepAnswer):
    """What list_budget_plans answers: the plans stored in the workspace."""

    plans: list[PlanListing] = Field(description="Stored plans, newest first.")
    default_plan: str = Field(description="The plan the report and FAQ show by default.")
