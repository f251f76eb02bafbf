"""Contracts of the ``allocate`` step: its parameters, the media transforms it applies to
campaign impressions, the optional contributions table it reads, and the two files it writes
(``analysis/mta_allocation.csv`` rows and ``analysis/allocation_summary.json``).

The output models extend the canonical shapes sketched in ``contracts/outputs.py`` (same
core field names: group, entity, allocated, lower_90, upper_90; method, family, covariates,
coefficients, entities, converged, iterations, mass_conservation_max_rel_error, findings).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, model_validator

from attribution_analysis.contracts.common import (
    Finding,
    Identifier,
    Metadata,
    StepAnswer,
    StrictModel,
)

Family = Literal["poisson", "gamma"]
Method = Literal["em", "bayes"]
Source = Literal["auto", "hcp-brick", "mta"]
SaturationOn = Literal["channel_total", "campaign"]
OmegaSource = Literal["exposure", "path_credit"]
ExposureMetric = Literal["impressions", "reach", "clicks", "spend"]
# Any other numeric column of the campaign spend files, named by the user.
ColumnName = Annotated[str, Field(min_length=1, max_length=200)]
PlatformSignal = Literal["none", "clicks", "conversions", "reach"]
Pooling = Literal["channel", "none"]


def _kind(kind: str) -> dict[str, str]:
    return {"x-kind": kind}


# ----- media transforms (effective exposure) ---------------------------------------------------
class HillSaturation(StrictModel):
    """Hill curve x^slope / (x^slope + kappa^slope) on adstocked impressions / channel max."""

    kind: Literal["hill"] = Field(default="hill", description="Saturation family: Hill.")
    slope: float = Field(gt=0, description="Hill slope (shape); > 1 gives an S-curve.")
    kappa: float = Field(gt=0, description="Half-saturation point, in units of the channel max.")


class LogisticSaturation(StrictModel):
    """Logistic saturation (1 - e^{-lam x}) / (1 + e^{-lam x}), as in PyMC-Marketing."""

    kind: Literal["logistic"] = Field(
        default="logistic", description="Saturation family: logistic."
    )
    lam: float = Field(gt=0, description="Logistic steepness, in units of 1 / channel max.")


Saturation = Annotated[HillSaturation | LogisticSaturation, Field(discriminator="kind")]


class ChannelTransform(StrictModel):
    """One channel's media transforms, as plain numbers (from the MMM fit or the simulator)."""

    alpha: float = Field(ge=0, lt=1, description="Geometric adstock retention rate per period.")
    l_max: int = Field(ge=1, le=104, description="Adstock window in periods (weights normalised).")
    saturation: Saturation | None = Field(
        default=None,
        description="Saturation curve; null applies adstock only (the split is then the same "
        "as with saturation on the channel total).",
    )


# ----- the contributions table (MMM output or an explicit CSV) ---------------------------------
class ContributionRow(StrictModel):
    """One row of the contributions CSV read by the MTA allocation: C(channel, period[, geo]).

    With a ``draw`` column the file holds posterior draws (one row per draw and cell); the
    point allocation uses their mean and every draw is re-split for the intervals.
    """

    date: dt.date = Field(
        description="Period of the contribution (ISO 8601): the day (daily contributions) or "
        "the first day of the week (weekly). The allocation runs at this grain.",
        json_schema_extra=_kind("date"),
    )
    channel: Identifier = Field(
        description="Channel, as in the campaign spend files.",
        json_schema_extra=_kind("identifier"),
    )
    contribution: float = Field(
        ge=0,
        description="Incremental outcome the MMM credits to the channel in this cell.",
        json_schema_extra=_kind("number"),
    )
    geo: Identifier | None = Field(
        default=None,
        description="Geo of the cell, for geo models.",
        json_schema_extra=_kind("identifier"),
    )
    draw: float | None = Field(
        default=None,
        ge=0,
        description="Posterior draw index, when the file holds draws.",
        json_schema_extra=_kind("number"),
    )


# ----- step parameters -------------------------------------------------------------------------
class AllocateParams(StrictModel):
    """Parameters of the ``allocate`` step."""

    source: Source = Field(
        default="auto",
        description="'hcp-brick' (raw/brick_sales.csv, raw/hcp_brick.csv, raw/hcps.csv), 'mta' "
        "(channel contributions split across campaigns) or 'auto' (hcp-brick when "
        "raw/brick_sales.csv exists, else mta).",
    )
    method: Method = Field(
        default="em", description="'em' (maximum likelihood) or 'bayes' (hierarchical, NUTS)."
    )
    family: Family = Field(
        default="poisson",
        description="'poisson' for units (and as quasi-likelihood for contributions); 'gamma' for "
        "currency (common shape). The split rule is the same; the fit of the rates differs.",
    )
    covariates: list[str] = Field(
        default_factory=list,
        description="Entity covariates for a log-link GLM of the rates: column names of "
        "raw/hcps.csv or raw/campaign_metadata.csv, optionally wrapped as log(col), log1p(col), "
        "sqrt(col), col/NUMBER or cat(col). Text columns become indicators against their most "
        "frequent level. Empty: one free rate per entity.",
    )
    pooling: Pooling = Field(
        default="channel",
        description="em with free rates (no covariates): 'channel' (default) partial pooling, "
        "each entity's rate shrinks toward the mean of its block (the channel, for campaigns) "
        "with a strength estimated from the data, so a few periods cannot overfit; 'none' "
        "fits free maximum-likelihood rates (flagged when periods per rate are few). Ignored "
        "with covariates (the ridge pools the coefficients).",
    )
    ridge: float = Field(
        default=0.1,
        ge=0,
        description="Ridge penalty on standardised covariate coefficients (not the intercept), "
        "in units of the information of one average group. Keeps collinear designs solvable; "
        "larger values bias the coefficients and their intervals under-cover.",
    )
    tol: float = Field(
        default=1e-8,
        gt=0,
        lt=1,
        description="Relative tolerance on the change of the objective and of the rates.",
    )
    max_iter: int = Field(default=10_000, ge=1, description="Most EM passes over the table.")
    accelerate: bool = Field(
        default=True, description="SQUAREM acceleration with a monotonicity safeguard."
    )
    zero_visit_exposure: float = Field(
        default=0.5,
        ge=0,
        description="hcp-brick: exposure given to a listed HCP-brick pair with 0 visits (an HCP "
        "assigned to a brick prescribes there between visits). 0 gives such pairs no credit.",
    )
    contributions: str | None = Field(
        default=None,
        description="mta: workspace-relative CSV of contributions (date, channel, [geo], "
        "contribution[, draw]). Default: truth/contributions.csv of a simulated workspace.",
    )
    exposure: ExposureMetric | ColumnName = Field(
        default="impressions",
        description="mta: the delivery metric each campaign is weighed by within its channel "
        "and period: 'impressions' (default; a channel that reports none is weighed by spend, "
        "stated as a finding), 'reach' (summed over the days and creatives of a period), "
        "'clicks', 'spend', or the name of any other numeric column of the campaign spend "
        "files (raw/campaign_spend_*.csv, e.g. 'video_views'). A channel that lacks the "
        "chosen metric is refused.",
    )
    signal: PlatformSignal | ColumnName = Field(
        default="none",
        description="em with pooled free rates (mta): a campaign-level platform signal used as "
        "evidence on the campaign rates: 'clicks', 'conversions' (platform-reported), 'reach', "
        "or the name of any other numeric column of the campaign spend files. The rates' "
        "prior mean moves with the log of the campaign's signal per unit of exposure, with a "
        "weight (beta) estimated from the data together with the pooling: beta near 0 means "
        "the MMM's period-to-period co-movement decides the split alone. Platform signals "
        "are correlational (a campaign's clicks can overstate its incrementality): read the "
        "estimated weight in the answer. 'none' (default): no signal.",
    )
    transforms: dict[str, ChannelTransform] | None = Field(
        default=None,
        description="mta: adstock/saturation per channel, at the grain of the contributions. "
        "Default: the MMM's analysis/mmm_transforms.json (or a simulated workspace's "
        "truth/parameters.json) when the contributions are at the MMM's grain; otherwise none: "
        "no carryover, campaigns weighed by their delivery in the period (stated as a finding).",
    )
    transforms_file: str | None = Field(
        default=None,
        description="mta: workspace-relative JSON file {channel: {alpha, l_max, saturation}} "
        "(or the simulator's keys adstock_alpha, l_max, hill_slope, hill_kappa).",
    )
    saturation_on: SaturationOn = Field(
        default="channel_total",
        description="mta: saturate the channel's adstocked total and share it pro rata "
        "('channel_total', the MMM's own view) or saturate each campaign alone ('campaign').",
    )
    omega_source: OmegaSource = Field(
        default="exposure",
        description="mta: the weight ω of a campaign within its (channel, period[, geo]) cell. "
        "'exposure': effective exposure (impressions through the MMM's adstock and "
        "saturation). 'path_credit': the path credit the campaign earned on that period's "
        "conversions (analysis/path_campaign_credit.csv from attribute_paths, which must be "
        "run first on journeys with a campaign column); periods without dated credit use the "
        "campaign's mean path credit per period over the journey window, for campaigns live "
        "that period. Path credit is correlational: the channel totals stay the MMM's.",
    )
    bootstrap: int = Field(
        default=50,
        ge=0,
        le=2000,
        description="Bootstrap replicates (groups resampled) for the stability of the "
        "productivity ranking; 0 skips it.",
    )
    seed: int = Field(default=0, ge=0, description="Seed of the bootstrap and the sampler.")
    pairs_parquet: str | None = Field(
        default=None,
        description="hcp-brick tables too large for memory: workspace-relative Parquet file, "
        "folder or glob of the HCP-brick pairs (brick_id, hcp_id, exposure), read instead of "
        "raw/hcp_brick.csv, each brick's rows in one file; totals from raw/brick_sales.csv. "
        "Fits free rates by EM (method 'em', pooling 'none', no covariates), on Dask at or "
        "above dask_min_rows rows (counted from the Parquet footers), in memory below; the "
        "summary names the engine and why, and carries each HCP's rate and credit (the "
        "row-level split is not written).",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of the Dask scheduler to run on (tcp://HOST:8786, started with "
        "`dask scheduler`); empty: a LocalCluster on this machine. Used when the Dask "
        "engine runs (pairs_parquet at or above dask_min_rows).",
    )
    dask_min_rows: int = Field(
        default=20_000_000,
        ge=1,
        description="Rows of pairs_parquet at or above which the EM runs on Dask (out of "
        "core); below, in memory (faster at that size).",
    )
    draws: int = Field(default=1000, ge=50, description="bayes: posterior draws per chain.")
    tune: int = Field(default=1000, ge=50, description="bayes: tuning steps per chain.")
    chains: int = Field(default=2, ge=1, le=16, description="bayes: chains.")
    target_accept: float = Field(
        default=0.9, gt=0.5, lt=1, description="bayes: NUTS target acceptance rate."
    )

    @model_validator(mode="after")
    def _one_transform_source(self) -> AllocateParams:
        if self.transforms is not None and self.transforms_file is not None:
            raise ValueError("give transforms or transforms_file, not both")
        return self


# ----- analysis/mta_allocation.csv -------------------------------------------------------------
class AllocationRecord(StrictModel):
    """One row of ``analysis/mta_allocation.csv``: an entity's credit in a group."""

    group: str = Field(description="Group id: brick, or 'channel|date[|geo]' cell.")
    entity: str = Field(description="Entity id: HCP, or campaign.")
    block: str = Field(
        description="Connected block of groups and entities (the channel for campaigns); rates "
        "are compared within a block."
    )
    date: dt.date | None = Field(default=None, description="mta: period of the cell.")
    channel: str | None = Field(default=None, description="mta: channel of the cell.")
    geo: str | None = Field(default=None, description="mta: geo of the cell, for geo models.")
    exposure: float = Field(
        ge=0,
        description="Weight ω used: visits, effective impressions, or path credit "
        "(omega_source='path_credit').",
    )
    share: float = Field(ge=0, le=1, description="Share of the group total credited to the entity.")
    allocated: float = Field(ge=0, description="Credit: group total x share.")
    lower_90: float | None = Field(
        default=None, description="5% quantile of the credit (bayes, or contribution draws)."
    )
    upper_90: float | None = Field(
        default=None, description="95% quantile of the credit (bayes, or contribution draws)."
    )
    identified: bool = Field(
        description="False when the entity's exposure profile is proportional to another's: the "
        "data cannot split their credit_set, only its total."
    )
    credit_set: str | None = Field(
        default=None, description="Id of the set of entities that share credit, if any."
    )


# ----- analysis/allocation_summary.json --------------------------------------------------------
class Coefficient(StrictModel):
    name: str = Field(description="Covariate column of the design (intercept first).")
    estimate: float = Field(description="Coefficient on log productivity, original units.")
    std_error: float | None = Field(
        default=None,
        description="em: robust standard error from the observed-data likelihood of the group "
        "totals (sandwich clustered by group and by entity, leverage-scaled); bayes: "
        "posterior sd.",
    )
    lower_90: float | None = Field(
        default=None,
        description="5% bound: posterior quantile (bayes) or estimate - 1.645 std_error (em).",
    )
    upper_90: float | None = Field(
        default=None,
        description="95% bound: posterior quantile (bayes) or estimate + 1.645 std_error (em).",
    )


class EntityResult(StrictModel):
    entity: str = Field(description="Entity id.")
    block: str = Field(description="Connected block (channel for campaigns).")
    rate: float | None = Field(
        description="Fitted rate: outcome per unit of exposure (null: no exposure and no "
        "covariates to predict it)."
    )
    productivity: float | None = Field(
        description="Rate relative to the block: arithmetic mean of the block's estimable rates "
        "is 1."
    )
    productivity_lower_90: float | None = Field(
        default=None, description="bayes: 5% quantile of the relative productivity."
    )
    productivity_upper_90: float | None = Field(
        default=None, description="bayes: 95% quantile of the relative productivity."
    )
    total_allocated: float = Field(ge=0, description="Credit summed over the entity's groups.")
    total_allocated_lower_90: float | None = Field(
        default=None, description="5% quantile of the credit total (bayes or draws)."
    )
    total_allocated_upper_90: float | None = Field(
        default=None, description="95% quantile of the credit total (bayes or draws)."
    )
    total_exposure: float = Field(ge=0, description="Exposure summed over the entity's groups.")
    n_groups: int = Field(ge=0, description="Groups where the entity has positive exposure.")
    estimable: bool = Field(
        description="Whether the data inform this entity's rate (positive exposure somewhere)."
    )
    cold_start: bool = Field(description="Little exposure or few groups: see cold_start.")
    credit_set: str | None = Field(
        default=None, description="Set of non-separable entities it belongs to, if any."
    )
    rank_lower_90: int | None = Field(
        default=None, description="Bootstrap 5% quantile of its productivity rank in its block."
    )
    rank_upper_90: int | None = Field(
        default=None, description="Bootstrap 95% quantile of its productivity rank in its block."
    )
    data_weight: float | None = Field(
        default=None,
        description="em, pooled rates: weight of the entity's own data in its rate (0: the "
        "block's mean, 1: its own free estimate), the credibility Z of the pooled fit.",
    )


class UnallocatedGroup(StrictModel):
    group: str = Field(description="Group id.")
    total: float = Field(description="Its observed total, left unallocated.")
    reason: Literal["no_entities", "zero_exposure"] = Field(
        description="No entity rows at all, or entity rows whose exposures are all zero."
    )


class ConvergenceReport(StrictModel):
    converged: bool = Field(description="Both tolerances met before max_iter.")
    iterations: int = Field(ge=0, description="EM passes over the table (fixed-point maps).")
    cycles: int = Field(ge=0, description="Accepted iterates (SQUAREM cycles, or EM passes).")
    accelerated: bool = Field(description="SQUAREM used.")
    rejected_extrapolations: int = Field(
        ge=0, description="SQUAREM steps refused by the monotonicity safeguard."
    )
    tolerance: float = Field(description="Relative tolerance used.")
    objective: str = Field(description="What the trace measures, in words.")
    loglik: float = Field(description="Observed log-likelihood at the estimate.")
    penalized_objective: float = Field(description="Objective maximised (loglik - ridge penalty).")
    trace: list[float] = Field(description="Objective at each accepted iterate (never decreases).")
    monotone: bool = Field(description="No decrease beyond 1e-9 relative in the trace.")
    max_relative_decrease: float = Field(description="Largest relative decrease seen in the trace.")
    gamma_shape: float | None = Field(
        default=None, description="gamma: common shape estimated at the end (ML)."
    )


class SignalReport(StrictModel):
    """em with pooled free rates and a platform signal: how much the signal counted."""

    column: str = Field(description="Column of the campaign spend files used as the signal.")
    beta: float = Field(
        description="Elasticity of the campaign rate to the campaign's signal per unit of "
        "exposure in the rates' prior mean (log rate ~ channel mean + beta log(signal / "
        "exposure)); 0: the signal carries no weight, 1: rates proportional to it."
    )
    std_error: float | None = Field(
        default=None,
        description="Standard error of beta (the marginal likelihood's curvature, pooling "
        "strength held); null when the campaigns' signals do not differ.",
    )
    lower_90: float | None = Field(default=None, description="beta - 1.645 std_error.")
    upper_90: float | None = Field(default=None, description="beta + 1.645 std_error.")
    explained: float = Field(
        ge=0,
        le=1,
        description="Share of the spread of the campaigns' log rates (within their channel) "
        "that the signal accounts for: beta^2 var(s) / (beta^2 var(s) + tau^2); the rest is "
        "decided by the co-movement of the contributions with each campaign's delivery.",
    )


class PoolingReport(StrictModel):
    """em with free rates: how far each rate was shrunk toward its block's mean."""

    pooling: Pooling = Field(description="'channel' (partial pooling) or 'none' (free rates).")
    pooling_sd: float | None = Field(
        default=None,
        description="tau, the spread of log rates around their block's mean estimated from "
        "the data: near 0 the data cannot tell entities apart (exposure alone splits).",
    )
    dispersion: float | None = Field(
        default=None, description="Quasi-likelihood dispersion phi (design effect included)."
    )
    design_effect: float | None = Field(
        default=None,
        description="Factor in phi for errors shared by the days of a week (daily cells).",
    )
    effective_rates: float | None = Field(
        default=None, description="Effective number of rates (trace of the hat matrix)."
    )
    converged: bool = Field(description="The pooling strength settled.")
    signal: SignalReport | None = Field(
        default=None,
        description="The platform signal's estimated weight in the rates (null: no signal).",
    )


class CreditSet(StrictModel):
    credit_set: str = Field(description="Set id, used in the allocation CSV.")
    entities: list[str] = Field(description="Entities whose exposure profiles are proportional.")
    min_cosine: float = Field(description="Smallest cosine similarity of their exposure profiles.")
    combined_credit: float = Field(description="Credit of the set as a whole (identified).")
    split_rule: str = Field(description="How the set's credit is divided in the CSV, and why.")


class BlockCondition(StrictModel):
    block: str = Field(description="Block (channel) of groups and entities.")
    n_groups: int = Field(description="Groups in the block.")
    n_entities: int = Field(description="Entities in the block.")
    condition_number: float | None = Field(
        description="Condition number of its column-normalised exposure matrix (null: singular, "
        "more entities than groups, or too large to compute densely)."
    )


class ProductivityEvidence(StrictModel):
    block: str | None = Field(
        description="Block tested (free rates), or null for one test of the covariate model."
    )
    statistic: float = Field(description="F statistic: fitted rates vs equal rates per block.")
    df: int = Field(description="Numerator degrees of freedom (extra rate parameters).")
    residual_df: int = Field(description="Denominator degrees of freedom (groups - parameters).")
    p_value: float = Field(
        description="Small: the totals do show productivity differences. Large: the ranking is "
        "indistinguishable from noise."
    )


class IdentifiabilityReport(StrictModel):
    credit_sets: list[CreditSet] = Field(description="Entities the data cannot separate.")
    blocks: list[BlockCondition] = Field(description="Per-block exposure conditioning.")
    design_condition_number: float | None = Field(
        default=None,
        description="Condition number of the standardised group-level covariate design "
        "(exposure x covariates), when covariates are used.",
    )
    evidence: list[ProductivityEvidence] = Field(
        default_factory=list,
        description="em: do the totals carry information about differences in productivity? "
        "(quasi-likelihood F test with dispersion estimated from Pearson residuals)",
    )
    free_rates_identified: bool = Field(
        description="Whether one free rate per entity is identified: every block has at least as "
        "many groups as entities and a finite condition number."
    )
    rule: str = Field(description="Thresholds used.")


class ColdStartEntity(StrictModel):
    entity: str = Field(description="Entity id.")
    n_groups: int = Field(description="Groups with positive exposure.")
    total_exposure: float = Field(description="Exposure summed over groups.")
    reason: str = Field(description="Which rule flagged it.")


class BootstrapStability(StrictModel):
    replicates: int = Field(description="Bootstrap replicates (groups resampled with replacement).")
    spearman_median: float = Field(
        description="Median Spearman correlation of replicate vs full-data productivity ranks."
    )
    spearman_p05: float = Field(description="5% quantile of that correlation.")
    rule: str = Field(description="What 'stable' means here.")


class BlockTotal(StrictModel):
    block: str = Field(description="Channel.")
    total: float = Field(description="Sum of the channel's group totals (MMM contribution).")
    allocated: float = Field(description="Sum of the campaigns' credit.")
    unallocated: float = Field(description="Total of its unallocatable groups.")
    relative_error: float = Field(description="|total - allocated - unallocated| / total.")


class TruthRecovery(StrictModel):
    """Simulated workspaces only: comparison with truth/ (never used by the fit)."""

    allocated_corr: float | None = Field(description="corr(credit, true z) over pairs.")
    allocated_rmse: float | None = Field(description="RMSE of credit vs true z.")
    oracle_allocated_corr: float | None = Field(
        default=None, description="corr of the split made with the true rates (the ceiling)."
    )
    naive_allocated_corr: float | None = Field(
        default=None, description="corr of the split by exposure (ω) share alone (the floor)."
    )
    log_rate_corr: float | None = Field(description="corr(log rate, true log rate), estimable.")
    log_rate_rmse: float | None = Field(
        description="RMSE of log rate vs true log rate, both centred within block (scale fixed)."
    )
    rank_spearman: float | None = Field(
        default=None,
        description="Spearman of productivity vs true productivity, pooled over blocks, "
        "identified entities only.",
    )
    interval_coverage: float | None = Field(
        default=None, description="Share of pairs whose true z lies in the 90% interval."
    )
    n_pairs: int = Field(description="Pairs compared.")


class PairProbability(StrictModel):
    a: str = Field(description="Entity A.")
    b: str = Field(description="Entity B.")
    probability: float = Field(ge=0, le=1, description="Posterior P(rate A > rate B).")


class BayesReport(StrictModel):
    sampler: str = Field(description="NUTS implementation used.")
    chains: int = Field(description="Chains.")
    draws: int = Field(description="Draws per chain.")
    tune: int = Field(description="Tuning steps per chain.")
    max_rhat: float | None = Field(description="Largest R-hat over the hyperparameters.")
    min_ess_bulk: float | None = Field(description="Smallest bulk ESS over the hyperparameters.")
    divergences: int = Field(description="Divergent transitions after tuning.")
    sigma_entity: float = Field(description="Posterior mean of the entity-level log-rate sd.")
    top_pairs: list[PairProbability] = Field(
        description="P(A > B) for consecutive entities of the top of each block's ranking."
    )


class OmegaRecord(StrictModel):
    """Where the allocation weight ω came from (mta: exposure or path credit)."""

    source: str = Field(
        description="'visits' / 'exposure' (hcp-brick), 'effective_exposure' (mta), or "
        "'path_credit:<method>' (mta with omega_source='path_credit')."
    )
    rule: str = Field(description="How ω was built, in words.")
    exposure_metric: ExposureMetric | ColumnName | None = Field(
        default=None,
        description="mta effective exposure: the delivery metric campaigns were weighed by.",
    )
    transforms_source: str | None = Field(
        default=None,
        description="mta effective exposure: where the adstock/saturation came from (a file, or "
        "'parameters given in the call'); null: none, no carryover.",
    )
    path_attribution_file: str | None = Field(
        default=None, description="path_credit: the path attribution report read."
    )
    path_attribution_sha256: str | None = Field(
        default=None, description="path_credit: sha256 of that report."
    )
    credit_file: str | None = Field(
        default=None, description="path_credit: the dated campaign credit CSV read."
    )
    method: str | None = Field(
        default=None, description="path_credit: path method whose campaign credit is ω."
    )
    groups_dated: int = Field(
        default=0, description="path_credit: cells weighted by the credit of their own period."
    )
    groups_fallback: int = Field(
        default=0,
        description="path_credit: cells with no dated credit, weighted by each live campaign's "
        "mean path credit per period.",
    )
    groups_without_credit: int = Field(
        default=0,
        description="path_credit: cells whose live campaigns have no path credit at all "
        "(listed as unallocated when their total is positive).",
    )
    total_share_dated: float | None = Field(
        default=None, description="path_credit: share of the channel totals in dated cells."
    )
    total_share_fallback: float | None = Field(
        default=None, description="path_credit: share of the channel totals in fallback cells."
    )
    credit_outside_window: float = Field(
        default=0.0,
        description="path_credit: campaign credit on conversion days outside the allocated "
        "periods (not used).",
    )
    credit_unmatched: float = Field(
        default=0.0,
        description="path_credit: credit of path campaigns absent from the campaign panel "
        "(not used).",
    )


class AllocationReport(StrictModel):
    """``analysis/allocation_summary.json``."""

    metadata: Metadata = Field(description="Provenance of this output.")
    source: Literal["hcp-brick", "mta"] = Field(description="Input layout allocated.")
    method: Method = Field(description="'em' or 'bayes'.")
    family: Family = Field(description="'poisson' or 'gamma'.")
    m_step: Literal["free", "glm", "bayes"] = Field(
        description="Rates: one free rate per entity, log-link GLM on covariates, or Bayesian."
    )
    covariates: list[str] = Field(description="Covariate specs used.")
    coefficients: list[Coefficient] = Field(description="GLM or posterior coefficients.")
    reference_levels: dict[str, str] = Field(
        default_factory=dict,
        description="em: the level of each categorical covariate that has no coefficient; the "
        "other levels' coefficients are relative to it (bayes has every level, pooled).",
    )
    scale: str = Field(description="How the scale of the rates is fixed.")
    zero_exposure_rule: str | None = Field(
        default=None, description="How zero visits / zero impressions were handled."
    )
    omega: OmegaRecord | None = Field(
        default=None,
        description="Source of the allocation weight ω (exposure or path credit) and, for path "
        "credit, the report it came from with its hash (null in files written before it "
        "was recorded).",
    )
    n_groups: int = Field(description="Groups (bricks, or channel-period cells).")
    n_entities: int = Field(description="Entities (HCPs, or campaigns).")
    n_pairs: int = Field(description="Rows of the exposure table.")
    entities: list[EntityResult] = Field(description="Per-entity rates and credit.")
    unallocated_groups: list[UnallocatedGroup] = Field(
        description="Groups whose total cannot be split (listed, never dropped silently)."
    )
    mass_conservation_max_rel_error: float = Field(
        description="max over allocatable groups of |sum of credit - total| / total."
    )
    convergence: ConvergenceReport | None = Field(description="EM convergence (null for bayes).")
    pooling: PoolingReport | None = Field(
        default=None, description="em with free rates: the partial pooling of the rates."
    )
    identifiability: IdentifiabilityReport = Field(description="What the data can separate.")
    cold_start: list[ColdStartEntity] = Field(description="Entities with little information.")
    bootstrap: BootstrapStability | None = Field(
        default=None, description="Ranking stability under resampled groups (em)."
    )
    block_totals: list[BlockTotal] = Field(
        default_factory=list, description="mta: campaign credit vs channel contribution."
    )
    bayes: BayesReport | None = Field(default=None, description="Sampler report (bayes).")
    truth_recovery: TruthRecovery | None = Field(
        default=None, description="Simulated workspaces only: recovery of the truth."
    )
    findings: list[Finding] = Field(description="Warnings and notes, with their numbers.")
    outputs: list[str] = Field(description="Workspace-relative paths written.")


class AllocateAnswer(StepAnswer):
    """What ``allocate`` answers: the settings used, what the data can separate, the few
    numbers the agent quotes (coefficients with their 90% intervals, P(A > B) for bayes) and
    every finding. Per-entity rates and credit are in the summary file and the CSV."""

    source: Literal["hcp-brick", "mta"] = Field(description="Input layout allocated.")
    method: Method = Field(description="'em' or 'bayes'.")
    family: Family = Field(description="'poisson' or 'gamma'.")
    m_step: Literal["free", "glm", "bayes"] = Field(
        description="Rates: one free rate per entity, log-link GLM on covariates, or Bayesian."
    )
    n_groups: int = Field(ge=0, description="Groups (bricks, or channel-period cells).")
    n_entities: int = Field(ge=0, description="Entities (HCPs, or campaigns).")
    n_pairs: int = Field(ge=0, description="Rows of the exposure table.")
    omega_source: str | None = Field(
        description="Source of the allocation weight ω: 'visits' / 'exposure' (hcp-brick), "
        "'effective_exposure' or 'path_credit:<method>' (mta); say which when quoting a split."
    )
    grain: Literal["daily", "weekly"] | None = Field(
        default=None,
        description="mta: the grain of the contributions split (the allocation runs at it).",
    )
    pooling: PoolingReport | None = Field(
        default=None,
        description="em with free rates: partial pooling used and its estimated strength.",
    )
    exposure_metric: ExposureMetric | ColumnName | None = Field(
        default=None,
        description="mta effective exposure: the delivery metric campaigns were weighed by.",
    )
    transforms_source: str | None = Field(
        default=None,
        description="mta effective exposure: where adstock/saturation came from; null: none "
        "(no carryover).",
    )
    mass_conservation_max_rel_error: float = Field(
        ge=0, description="max over allocatable groups of |sum of credit - total| / total."
    )
    unallocated_groups: int = Field(
        ge=0,
        description="Number of groups whose total could not be split (listed in the summary "
        "file's unallocated_groups, never dropped silently).",
    )
    credit_sets: list[list[str]] = Field(
        description="Sets of entities the data cannot separate: report each set's combined "
        "credit, never a split inside it."
    )
    coefficients: list[Coefficient] = Field(
        description="Covariate effects on log productivity with 90% intervals (empty without "
        "covariates); one whose interval spans 0 has no established direction."
    )
    converged: bool | None = Field(description="em: both tolerances met (null for bayes).")
    iterations: int | None = Field(ge=0, description="em: passes over the table (null for bayes).")
    bayes: BayesReport | None = Field(
        description="bayes: sampler facts (R-hat, ESS, divergences) and P(A > B) for the top "
        "entities of each block (null for em)."
    )
    truth_recovery: TruthRecovery | None = Field(
        description="Simulated workspaces only: how close the split came to the truth."
    )
    warnings: list[Finding] = Field(
        description="The findings of severity warning or error (read them before any ranking)."
    )
    findings: list[Finding] = Field(description="Every finding, notes included.")
