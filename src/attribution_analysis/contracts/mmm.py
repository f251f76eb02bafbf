"""Parameters and results of the MMM steps: fit, validate, decompose."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from attribution_analysis.contracts.common import Finding, StepAnswer, StrictModel
from attribution_analysis.contracts.outputs import MMMMethod

Backend = Literal["nutpie", "pymc", "numpyro"]
QuickMethod = Literal["map", "advi"]


class SamplerSettings(StrictModel):
    """NUTS settings. The defaults pass the seed's gates on the simulated panels (see the
    README's Performance section): nutpie with a low-rank mass matrix needs about five
    times fewer gradient evaluations per draw than a diagonal one on MMM posteriors, whose
    saturation parameters are strongly correlated."""

    backend: Backend = Field(default="nutpie", description="NUTS implementation.")
    # With stop_at_gates (the default) this is a cap: sampling stops at the first check
    # where the gates are met with a margin, which on 156 weeks x 4 channels is typically
    # well before 6,000 draws; without it, every chain samples exactly this many.
    draws: int = Field(
        default=6000,
        ge=50,
        le=20_000,
        description="Draws per chain kept; the most a chain may sample when stop_at_gates.",
    )
    tune: int = Field(default=1000, ge=50, le=20_000, description="Warm-up draws per chain.")
    chains: int = Field(default=2, ge=1, le=16, description="Chains (run in parallel).")
    target_accept: float = Field(default=0.97, gt=0.5, lt=1, description="Target acceptance.")
    adaptation: Literal["diag", "low_rank"] = Field(
        default="low_rank", description="nutpie mass-matrix adaptation (ignored by pymc)."
    )
    stop_at_gates: bool = Field(
        default=True,
        description="nutpie only: check R-hat and bulk ESS every check_every draws per chain "
        "and stop once R-hat passes its gate and every bulk ESS reaches the gate times "
        "ess_margin (draws is then the cap). The stopping point depends on the draws only, "
        "never on wall time, so a seed always stops at the same draw.",
    )
    check_every: int = Field(
        default=250,
        ge=50,
        le=5000,
        description="Draws per chain between two convergence checks (stop_at_gates).",
    )
    ess_margin: float = Field(
        default=1.25,
        ge=1.0,
        le=5.0,
        description="Stop when the smallest bulk ESS reaches the ESS gate times this margin.",
    )

    def for_retry(self, divergences_only: bool = False) -> SamplerSettings:
        """The one remedy a fit that fails its gates gets: a smaller step (higher target
        accept) and, unless only divergences failed, twice the draws and warm-up. Divergences
        with ESS and R-hat passing call for a smaller step, not for more draws (PITFALLS.md).
        Here, not in the fit, so that the server can bound what a fit may sample without
        importing the model code; the server bounds the worse case (doubled draws)."""
        # Halve the rejection rate, at least to 0.99: 0.97 -> 0.99, 0.99 -> 0.995.
        target_accept = max(0.99, 1 - (1 - self.target_accept) / 2)
        if divergences_only:
            return self.model_copy(update={"target_accept": target_accept})
        return self.model_copy(
            update={"draws": self.draws * 2, "tune": self.tune * 2, "target_accept": target_accept}
        )


# Prior names each saturation family has alone (PyMC-Marketing's model_config names).
FAMILY_ONLY_PRIORS: dict[str, tuple[str, ...]] = {
    "hill": ("saturation_kappa", "saturation_slope"),
    "logistic": ("saturation_lam",),
}


class RoiPrior(StrictModel):
    """LogNormal prior on each channel's return on spend over the fitted window (revenue
    outcomes only). The defaults are Meridian's: median 1.22, 90% between 0.28 and 5.4."""

    mu: float = Field(default=0.2, ge=-5, le=5, description="Mean of log ROI.")
    sigma: float = Field(default=0.9, gt=0, le=5, description="Standard deviation of log ROI.")


class MMMConfig(StrictModel):
    """Model specification. Everything that changes the model's structure is here."""

    target: Literal["conversions", "revenue"] | None = Field(
        default=None, description="Outcome to model; default: the validation report's choice."
    )
    adstock: Literal["geometric", "weibull"] = Field(
        default="geometric", description="Carry-over shape."
    )
    l_max: int = Field(default=8, ge=1, le=104, description="Longest carry-over, in periods.")
    financial_services: bool = Field(
        default=False, description="Long sales cycles: l_max defaults to 26 weeks."
    )
    saturation: Literal["hill", "logistic", "auto"] = Field(
        default="hill",
        description="Diminishing-returns curve. 'auto' fits both Hill and logistic and keeps "
        "the one leave-one-out cross-validation (PSIS-LOO) prefers by a clear margin, else "
        "Hill; the answer's saturation_choice says which and why (costs a second fit).",
    )
    roi_prior: RoiPrior | Literal["auto"] | None = Field(
        default="auto",
        description="A prior on each channel's revenue per unit of spend over the window, "
        "added to the curve priors; keeps an always-on channel's total from drifting with the "
        "intercept. 'auto' (default): Meridian's LogNormal(0.2, 0.9) when the outcome is "
        "revenue, none for conversions; {mu, sigma}: that prior (revenue outcomes only); "
        "null: none.",
    )
    yearly_seasonality: int = Field(
        default=2, ge=0, le=10, description="Fourier pairs of the yearly cycle."
    )
    intercept_sampled_as: Literal["level", "intercept"] = Field(
        default="level",
        description="What the sampler moves for the baseline (the same likelihood either "
        "way). 'level' (default): the mean fitted level, intercept plus the mean weekly media "
        "contribution, with the intercept derived from it; an always-on channel then no "
        "longer trades against the intercept along the sampler's axes, which mixes several "
        "times faster. The 'intercept' prior states that level, so a prior meant to keep "
        "the intercept itself positive (HalfNormal...) keeps the level positive instead: "
        "use 'intercept' for that. 'intercept': PyMC-Marketing's own parametrisation, the "
        "prior on the intercept itself.",
    )
    use_trend: bool = Field(default=True, description="Linear trend control.")
    use_holidays: bool = Field(default=True, description="Holiday-days control.")
    use_external_factors: bool = Field(default=True, description="External factor controls.")
    priors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Prior overrides in pymc-extras Prior.to_dict() form, keyed by the "
        "model_config name (e.g. 'saturation_beta', 'adstock_alpha', 'intercept'). On a geo "
        "panel, {'dist': 'GeoEffect', 'kwargs': {'width': W}} is the default pooled geo "
        "effect with its prior scales times W.",
    )


QUICK_LABEL = "not for decisions"


class QuickChannelEstimate(StrictModel):
    """One channel's figures from a quick fit's point estimate (see ``QuickEstimates``)."""

    channel: str = Field(description="Channel name.")
    spend: float = Field(description="Spend over the modelled window, in input units.")
    contribution: float = Field(
        description="Media contribution over the window, in the target's units: the MAP "
        "point estimate, or the mean over ADVI's approximate draws."
    )
    share_of_media: float = Field(
        description="Share of the summed media contribution (0-1), from the same estimate."
    )
    roas: float | None = Field(
        description="contribution / spend, in roas_unit (null for a channel without spend)."
    )
    share_of_media_hdi_90: tuple[float, float] | None = Field(
        default=None,
        description="ADVI only: 90% HDI over the approximation's draws; approximate (ADVI "
        "understates posterior spread). Null for MAP, which has no interval.",
    )
    roas_hdi_90: tuple[float, float] | None = Field(
        default=None, description="ADVI only: approximate 90% HDI of ROAS (null for MAP)."
    )


class QuickEstimates(StrictModel):
    """Channel shares and ROAS from a quick (MAP/ADVI) fit: a first look, not for decisions.
    Computed from the fitted model's own channel contributions at the point estimate (MAP)
    or over the approximation's draws (ADVI), in original units."""

    label: Literal["not for decisions"] = Field(
        default=QUICK_LABEL,
        description="Always 'not for decisions': quote it with every figure below.",
    )
    estimate: Literal["map_point_estimate", "advi_approximation"] = Field(
        description="What the figures are: one MAP point (no intervals exist) or the mean "
        "of ADVI's draws (intervals approximate)."
    )
    basis: str = Field(description="How the figures were obtained and what they lack, in words.")
    roas_unit: str = Field(description="Unit of roas, e.g. 'revenue per unit of spend'.")
    draws: int = Field(ge=1, description="Draws the figures summarise (1 for MAP).")
    channels: list[QuickChannelEstimate] = Field(description="One row per channel.")


class FitMMMParams(StrictModel):
    config: MMMConfig = Field(
        default_factory=MMMConfig,
        description="Model specification: target, adstock, saturation, l_max, seasonality, "
        "controls and priors (defaults are the project's, see references/mmm_methodology.md).",
    )
    sampler: SamplerSettings = Field(
        default_factory=SamplerSettings,
        description="NUTS settings: backend, draws and tune per chain, chains, target_accept.",
    )
    seed: int = Field(default=20261126, ge=0, description="Random seed.")
    calibrate: bool = Field(
        default=False,
        description="Use analysis/incrementality_results.json lift tests as likelihood terms.",
    )
    lift_reading: Literal["counterfactual", "steady_state"] = Field(
        default="counterfactual",
        description="With calibrate: how a lift test is compared with the model. "
        "'counterfactual' (default): the model's own loss when the channel goes dark in the "
        "test's window, carry-over included. 'steady_state': PyMC-Marketing's "
        "add_lift_test_measurements, the curve's rise from 0 to the test's spend per period "
        "times its periods (references/incrementality_calibration.md compares the two).",
    )
    quick: QuickMethod | None = Field(
        default=None,
        description="'map' or 'advi': a first answer in seconds, labelled not for decisions.",
    )
    method: Literal["nuts", "ridge"] = Field(
        default="nuts",
        description="'ridge': the Robyn-style fallback (tuned transforms, "
        "ridge, bootstrap intervals) on request.",
    )
    fallback_to_ridge: bool = Field(
        default=True,
        description="Fit the ridge fallback when NUTS is unavailable or fails "
        "the gates after its retry (national panels).",
    )
    use_cache: bool = Field(
        default=True, description="Reuse a stored fit of the same data and configuration."
    )
    retry: bool = Field(
        default=True,
        description="Refit once with longer, more careful sampling"
        " when the convergence gates fail.",
    )

    def compiles_one_model(self) -> bool:
        """Whether this fit compiles one nutpie model (``mmm.sampling.COMPILED``), which a
        job worker may compile ahead of it (``mmm.fit.precompile``): not ridge, not a quick
        fit, not another backend, not both families."""
        return (
            self.method == "nuts"
            and not self.quick
            and self.sampler.backend == "nutpie"
            and self.config.saturation != "auto"
        )

    @model_validator(mode="after")
    def _auto_needs_posteriors(self) -> FitMMMParams:
        """saturation='auto' compares full posteriors fitted with the same priors: refused
        here, before any job starts, where it cannot."""
        if self.config.saturation != "auto":
            return self
        if self.quick or self.method == "ridge":
            what = f"quick={self.quick!r}" if self.quick else "method='ridge'"
            raise ValueError(
                "saturation 'auto' compares the two curve families by leave-one-out "
                f"cross-validation of full posteriors, which {what} does not give; drop "
                f"{what.split('=')[0]}, or choose saturation 'hill' or 'logistic'"
            )
        for family, names in FAMILY_ONLY_PRIORS.items():
            given = sorted(set(names) & set(self.config.priors))
            if given:
                raise ValueError(
                    f"priors name {given}, which only the {family} curve has, but saturation "
                    f"'auto' fits both families with the same priors; choose saturation "
                    f"'{family}' to keep them, or give only priors both families share "
                    "(adstock_alpha, saturation_beta, intercept, ...)"
                )
        return self


class FamilyCandidate(StrictModel):
    """One saturation family fitted for ``saturation='auto'``."""

    saturation: Literal["hill", "logistic"] = Field(description="The family.")
    elpd_loo: float = Field(description="PSIS-LOO expected log predictive density.")
    elpd_se: float = Field(ge=0, description="Standard error of elpd_loo.")
    p_loo: float = Field(description="Effective number of parameters.")
    max_pareto_k: float = Field(description="Largest Pareto k (above 0.7: LOO unreliable).")
    stacking_weight: float = Field(
        ge=0, le=1, description="Stacking weight of this family's predictive distribution."
    )
    passes_gates: bool = Field(description="Its sampler passed the convergence gates.")
    media_total_mean: float = Field(
        description="Posterior mean of all channels' contribution over the window, in the "
        "target's units."
    )
    media_total_hdi_90: tuple[float, float] = Field(description="90% HDI of that total.")
    fit_key: str = Field(description="Cache key of this family's fit.")
    model_path: str = Field(description="Workspace path of this family's posterior.")


class SaturationChoice(StrictModel):
    """How ``saturation='auto'`` chose the curve family: both fitted, compared by PSIS-LOO."""

    chosen: Literal["hill", "logistic"] = Field(description="The family the fit uses.")
    decided_by: Literal["loo", "gates", "undecided_default"] = Field(
        description="'loo': the data preferred it by the rule's margin; 'gates': only it "
        "passed the convergence gates; 'undecided_default': LOO could not tell the families "
        "apart and the default (Hill) was kept."
    )
    elpd_difference: float = Field(
        description="elpd_loo of the chosen family minus the other's (negative when the "
        "default was kept against a small difference)."
    )
    difference_se: float = Field(ge=0, description="Standard error of that difference.")
    rule: str = Field(description="The decision rule, in words.")
    media_total_gap: float = Field(
        description="Relative gap between the two families' media totals: |a - b| / the "
        "chosen family's total. Large with an undecided choice = the curve family is a real "
        "source of uncertainty that the chosen fit's intervals do not include."
    )
    family_uncertain: bool = Field(
        description="Undecided and media_total_gap above 15%: the curve family moves the "
        "media total by more than the kept fit's own intervals show; say so with the total."
    )
    candidates: list[FamilyCandidate] = Field(description="Both families, Hill first.")


class FitMMMResult(StrictModel):
    method: str = Field(
        description="bayesian_nuts, bayesian_map, bayesian_advi or ridge_bootstrap."
    )
    model_path: str = Field(description="Workspace path of the stored posterior (NetCDF).")
    fit_key: str = Field(description="Hash of data + configuration; the cache key.")
    cached: bool = Field(description="True when the stored fit was reused without sampling.")
    wall_seconds: float = Field(description="Seconds spent in this call.")
    sampling_seconds: float | None = Field(default=None, description="Seconds of sampling.")
    compile_reused: bool = Field(default=False, description="A compiled model was reused.")
    draws_per_chain: int | None = Field(
        default=None, description="Draws per chain kept (null for quick and ridge fits)."
    )
    stopped_at_gates: bool = Field(
        default=False, description="Sampling stopped before the draws cap: the gates were met."
    )
    channels: list[str]
    n_observations: int
    convergence: dict[str, float | int | None] = Field(
        default_factory=dict, description="max_rhat, min_ess_bulk, divergences (quick look)."
    )
    for_decisions: bool = Field(description="False for quick (MAP/ADVI) fits.")
    remedies_tried: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    quick_estimates: QuickEstimates | None = Field(
        default=None,
        description="Quick fits only: channel shares and ROAS from the point estimate, "
        "labelled not for decisions.",
    )
    saturation_choice: SaturationChoice | None = Field(
        default=None,
        description="saturation='auto' only: both families' LOO and media totals, and which "
        "was kept.",
    )
    roi_prior_applied: RoiPrior | None = Field(
        default=None,
        description="The ROI prior the model carries (roi_prior resolved for this outcome), "
        "or null.",
    )


class FitMMMAnswer(StepAnswer):
    """What fit_mmm answers: which model was fitted, whether it may be used for decisions,
    its convergence at a glance and what was tried when the sampler struggled."""

    method: MMMMethod = Field(
        description="bayesian_nuts, bayesian_map, bayesian_advi (quick, not for decisions) or "
        "ridge_bootstrap (fallback: bootstrap intervals, not posterior ones)."
    )
    model_path: str = Field(description="Workspace path of the stored posterior (NetCDF).")
    fit_key: str = Field(description="Hash of data + configuration; the cache key.")
    cached: bool = Field(description="True when the stored fit was reused without sampling.")
    wall_seconds: float = Field(ge=0, description="Seconds spent in this call.")
    sampling_seconds: float | None = Field(
        description="Seconds of sampling (null: nothing was sampled in this call)."
    )
    compile_reused: bool = Field(description="A compiled model was reused.")
    draws_per_chain: int | None = Field(
        description="Draws per chain kept in the posterior (null for quick and ridge fits): "
        "with stop_at_gates, where sampling stopped."
    )
    stopped_at_gates: bool = Field(
        description="True when sampling stopped before the draws cap because R-hat and bulk "
        "ESS met their gates with the margin."
    )
    channels: list[str] = Field(description="Channels in the model.")
    n_observations: int = Field(ge=0, description="Rows (periods x geos) the model was fitted on.")
    convergence: dict[str, float | int | None] = Field(
        description="max_rhat, min_ess_bulk, min_ess_tail, divergences, draws (empty for quick "
        "and ridge fits); validate_model applies the acceptance gates."
    )
    for_decisions: bool = Field(
        description="False for quick (MAP/ADVI) fits and fits that failed the convergence gates."
    )
    remedies_tried: list[str] = Field(
        description="What was done when the sampler failed its gates (retry, ridge fallback)."
    )
    findings: list[Finding] = Field(
        description="What to tell the user: quick fit, ridge fallback, failed gates."
    )
    quick_estimates: QuickEstimates | None = Field(
        default=None,
        description="Quick (MAP/ADVI) fits only: channel shares of media contribution and "
        "ROAS from the point estimate (MAP: no intervals; ADVI: approximate ones), labelled "
        "'not for decisions'. Quote them as a first look only; refit with NUTS for decisions. "
        "Null for NUTS and ridge fits (decompose_contributions gives their figures).",
    )
    saturation_choice: SaturationChoice | None = Field(
        default=None,
        description="Only with saturation='auto': both families' PSIS-LOO, stacking weights and "
        "media totals, and which family the fit kept and why. Quote the chosen family; when "
        "decided_by is 'undecided_default' and media_total_gap is large, say that the curve "
        "family moves the media total by that much.",
    )
    roi_prior_applied: RoiPrior | None = Field(
        default=None,
        description="The prior on each channel's revenue per unit of spend that the model "
        "carries (roi_prior resolved for this outcome: 'auto' gives Meridian's LogNormal(0.2, "
        "0.9) on revenue, none on conversions), or null. Say it was used when you quote ROAS.",
    )


class ValidateModelParams(StrictModel):
    """Parameters of ``validate_model`` (the acceptance gates of the current fit)."""

    backtest_periods: int | None = Field(
        default=13,
        ge=0,
        le=104,
        description="Hold out the last periods, refit and score the forecast (0 or null skips; "
        "costs one more fit).",
    )
    sensitivity_refit: bool = Field(
        default=True,
        description="Refit with vague priors and compare each channel's ROAS (costs one fit).",
    )
    seed: int = Field(default=1, description="Seed of the refits and predictive draws.")


class DecomposeParams(StrictModel):
    """Parameters of ``decompose_contributions``."""

    override_reason: str | None = Field(
        default=None,
        max_length=500,
        description="Use a model that failed validation anyway; recorded in every output.",
    )


def recorded_fit_params(params: dict[str, Any]) -> FitMMMParams:
    """The parameters a fit manifest records. A manifest written before ``roi_prior``
    existed describes a model without one: read so (the field's default, 'auto', would
    describe another model on a revenue outcome)."""
    config = params.get("config")
    if isinstance(config, dict) and "roi_prior" not in config:
        params = {**params, "config": {**config, "roi_prior": None}}
    return FitMMMParams.model_validate(params)
