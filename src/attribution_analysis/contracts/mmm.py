"""Parameters and results of the MMM steps: fit, validate, decompose."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

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
    # Compiling the model takes ~25 s on a first fit; 6,000 draws cost ~10 s more and give
    # every parameter a bulk ESS far above the seed's 400, so retries are rare.
    draws: int = Field(default=6000, ge=50, le=20_000, description="Draws per chain kept.")
    tune: int = Field(default=1000, ge=50, le=20_000, description="Warm-up draws per chain.")
    chains: int = Field(default=2, ge=1, le=16, description="Chains (run in parallel).")
    target_accept: float = Field(default=0.97, gt=0.5, lt=1, description="Target acceptance.")
    adaptation: Literal["diag", "low_rank"] = Field(
        default="low_rank", description="nutpie mass-matrix adaptation (ignored by pymc)."
    )

    def for_retry(self) -> SamplerSettings:
        """The one remedy a fit that fails its gates gets: twice the draws and warm-up, a
        smaller step (higher target accept). Here, not in the fit, so that the server can
        bound what a fit may sample without importing the model code."""
        return self.model_copy(
            update={
                "draws": self.draws * 2,
                "tune": self.tune * 2,
                "target_accept": max(self.target_accept, 0.99),
            }
        )


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
    saturation: Literal["hill", "logistic"] = Field(
        default="hill", description="Diminishing-returns curve."
    )
    yearly_seasonality: int = Field(
        default=2, ge=0, le=10, description="Fourier pairs of the yearly cycle."
    )
    use_trend: bool = Field(default=True, description="Linear trend control.")
    use_holidays: bool = Field(default=True, description="Holiday-days control.")
    use_external_factors: bool = Field(default=True, description="External factor controls.")
    priors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Prior overrides in pymc-extras Prior.to_dict() form, keyed by the "
        "model_config name (e.g. 'saturation_beta', 'adstock_alpha', 'intercept').",
    )


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
    channels: list[str]
    n_observations: int
    convergence: dict[str, float | int | None] = Field(
        default_factory=dict, description="max_rhat, min_ess_bulk, divergences (quick look)."
    )
    for_decisions: bool = Field(description="False for quick (MAP/ADVI) fits.")
    remedies_tried: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)


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
