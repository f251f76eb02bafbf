"""The ``validate_model`` step: convergence, predictive checks, LOO, sensitivity, backtest."""

from __future__ import annotations

import warnings
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.mmm import FitMMMParams, ValidateModelParams
from attribution_analysis.contracts.outputs import (
    ChannelIdentification,
    Criterion,
    MMMDiagnostics,
    PriorComparisonRule,
    ValidateModelAnswer,
)
from attribution_analysis.mmm.convergence import (
    DIVERGENCE_RULE,
    DIVERGENCE_SHARE_LIMIT,
    ESS_LIMIT,
    ESS_RULE,
    RHAT_LIMIT,
    RHAT_RULE,
    convergence_summary,
)
from attribution_analysis.mmm.identification import channel_verdicts
from attribution_analysis.mmm.loaded import FittedModel, open_fit
from attribution_analysis.mmm.panel import ModelData
from attribution_analysis.mmm.sensitivity import (
    OVERLAP_LIMIT,
    SHIFT_LIMIT,
    compare_with_vague_priors,
)
from attribution_analysis.progress import report
from attribution_analysis.provenance import build_metadata
from attribution_analysis.summaries import band_90, thin_draws
from attribution_analysis.workspace import Workspace, json_bytes

STEP = "validate_model"
COVERAGE_LIMIT = 0.90
PPC_DRAWS = 1000
PARETO_K_LIMIT = 0.7
TRACE_DRAWS = 200


def compute(ctx: StepContext, params: ValidateModelParams) -> StepOutput:
    """The validate_model step: the acceptance criteria of the current fit."""
    fitted = open_fit(ctx.ws)
    if fitted.method == "ridge_bootstrap":
        diagnostics = _validate_ridge(fitted, params.seed, ctx.run_id)
    else:
        diagnostics = _validate_bayes(ctx, fitted, params)
    files = {layout.DIAGNOSTICS.path: json_bytes(diagnostics.model_dump(mode="json"))}
    return StepOutput(_answer(diagnostics, files), files, fitted.input_hashes)


def _answer(diagnostics: MMMDiagnostics, files: dict[str, bytes]) -> ValidateModelAnswer:
    return ValidateModelAnswer(
        step=STEP,
        outputs=list(files),
        method=diagnostics.method,
        passed=diagnostics.passed,
        failed_criteria=[c.name for c in diagnostics.criteria if not c.passed],
        criteria=diagnostics.criteria,
        divergences=diagnostics.divergences,
        ppc_coverage_90=diagnostics.ppc.get("coverage_90"),
        loo=diagnostics.loo,
        backtest=diagnostics.backtest,
        remedies_tried=diagnostics.remedies_tried,
        prior_comparison=diagnostics.prior_comparison,
        identification=diagnostics.identification,
        findings=diagnostics.findings,
    )


def _validate_bayes(
    ctx: StepContext, fitted: FittedModel, params: ValidateModelParams
) -> MMMDiagnostics:
    """Convergence, predictive checks, LOO, prior sensitivity and backtest of a PyMC fit."""
    progress, seed = ctx.progress, params.seed
    report(progress, 0, 4, "convergence")
    tree = fitted.tree
    quick = fitted.method != "bayesian_nuts"
    summary = convergence_summary(tree) if not quick else {}
    report(progress, 1, 4, "posterior predictive checks")
    ppc = posterior_predictive_check(fitted, seed)
    report(progress, 2, 4, "LOO and prior sensitivity")
    if quick:
        loo, loo_pit, findings, sensitivity = {}, {}, [], []
    else:
        scored = with_log_likelihood(fitted)
        loo, loo_pit, findings = loo_checks(fitted, scored, ppc["draws"])
        sensitivity = prior_sensitivity(fitted, scored)
    comparison = (
        compare_with_vague_priors(fitted, seed) if params.sensitivity_refit and not quick else []
    )
    findings += _prior_dominance_findings(comparison)
    report(progress, 3, 4, "backtest")
    periods = params.backtest_periods or None
    backtest = run_backtest(ctx.ws, fitted, periods, seed) if periods and not quick else None
    criteria = _criteria(summary, ppc["coverage_90"], quick)
    findings += _sensitivity_findings(sensitivity)
    identification = channel_verdicts(
        fitted.data.channels,
        None if quick else _channel_totals(fitted),
        comparison,
        sensitivity,
        refit_made=params.sensitivity_refit and not quick,
    )
    findings += _identification_findings(identification)
    if quick:
        findings.append(
            Finding(
                code="quick_fit",
                severity="error",
                message="a quick (MAP/ADVI) fit cannot pass the convergence "
                "criteria; fit with NUTS before deciding anything.",
            )
        )
    diagnostics = MMMDiagnostics(
        metadata=build_metadata(
            step=STEP,
            input_hashes=fitted.input_hashes,
            data_range=fitted.data.report.window,
            seed=seed,
            sampler=fitted.params.sampler.model_dump(mode="json"),
            run_id=ctx.run_id,
        ),
        method=fitted.method,
        passed=all(c.passed for c in criteria),
        criteria=criteria,
        divergences=int(summary.get("divergences", 0) or 0),
        loo=loo,
        remedies_tried=fitted.manifest["result"].get("remedies_tried", []),
        findings=findings,
        ppc=_drop(ppc, "draws"),
        loo_pit=loo_pit,
        prior_sensitivity=sensitivity,
        prior_comparison=comparison,
        identification=identification,
        # The rule travels with the rows it flagged: the report quotes it from here.
        prior_comparison_rule=PriorComparisonRule(
            shift_limit=SHIFT_LIMIT, overlap_limit=OVERLAP_LIMIT
        ),
        backtest=backtest,
        trace=_trace(tree),
        convergence=summary,
    )
    report(progress, 4, 4, "done")
    return diagnostics


def _channel_totals(fitted: FittedModel) -> np.ndarray:
    """(sample, channel) draws of each channel's total over the window."""
    from attribution_analysis.mmm.decompose import GROUP
    from attribution_analysis.mmm.posterior_contributions import contribution_draws

    if GROUP in fitted.tree.children:  # evaluated by fit_mmm
        channel = fitted.tree[GROUP]["channel_total"]
    else:
        channel = contribution_draws(fitted)["channel"]
    totals = channel.sum([d for d in channel.dims if d not in ("sample", "channel")])
    return totals.transpose("sample", "channel").values


def _identification_findings(verdicts: list[ChannelIdentification]) -> list[Finding]:
    """A warning per channel that cannot be told apart from another (prior-driven channels
    already have theirs: ``prior_dominates``)."""
    return [
        Finding(
            code="channel_not_separable",
            severity="warning",
            subject=v.channel,
            message=f"{v.channel} is not separable: {v.reason}",
        )
        for v in verdicts
        if v.verdict == "not_separable"
    ]


def _prior_dominance_findings(comparison: list[dict[str, Any]]) -> list[Finding]:
    return [
        Finding(
            code="prior_dominates",
            severity="warning",
            subject=row["channel"],
            value=round(row["relative_shift"], 4),
            threshold=SHIFT_LIMIT,
            rule=f"|ROAS shift| > {SHIFT_LIMIT:.0%} or posterior overlap < "
            f"{OVERLAP_LIMIT} under vague priors",
            message=f"{row['channel']}: ROAS moves by {row['relative_shift']:+.0%} "
            f"(overlap {row['overlap']:.2f}) with vague priors; the data alone do not "
            "pin it down. A lift test on this channel would.",
        )
        for row in comparison
        if row["prior_dominates"]
    ]


def _validate_ridge(fitted: FittedModel, seed: int, run_id: str) -> MMMDiagnostics:
    """The ridge fallback has no sampler to diagnose: predictive coverage and hold-out fit."""
    boot = fitted.tree["bootstrap"].to_dataset()
    hyper = fitted.tree["hyperparameters"].to_dataset()
    predictive = boot["y_predictive"]
    low, high = band_90(predictive, "sample")
    observed = fitted.data.y.to_numpy()
    keep = ~fitted.data.imputed_target
    coverage = float(((observed >= low) & (observed <= high))[keep].mean())
    mean = predictive.mean("sample").values
    criteria = [_coverage_criterion(coverage, "bootstrap")]
    findings = [
        Finding(
            code="ridge_fallback",
            severity="warning",
            message="ridge_bootstrap model: R-hat, ESS and LOO do not apply; intervals are "
            "bootstrap intervals with the tuned transforms held fixed (narrower than a posterior).",
        )
    ]
    return MMMDiagnostics(
        metadata=build_metadata(
            step=STEP,
            input_hashes=fitted.input_hashes,
            data_range=fitted.data.report.window,
            seed=seed,
            run_id=run_id,
        ),
        method="ridge_bootstrap",
        passed=coverage >= COVERAGE_LIMIT,
        criteria=criteria,
        divergences=0,
        remedies_tried=fitted.manifest["result"].get("remedies_tried", []),
        findings=findings,
        ppc={
            "coverage_90": coverage,
            "mape": float(np.mean(np.abs(mean - observed)[keep] / np.abs(observed)[keep])),
            "series": {
                "observed": observed[keep].tolist(),
                "mean": mean[keep].tolist(),
                "lower_90": low[keep].tolist(),
                "upper_90": high[keep].tolist(),
            },
        },
        backtest={
            "tuning_objective": float(hyper["objective"]),
            "note": "hold-out NRMSE (last 20% of periods) + DECOMP.RSSD, used to tune "
            "the transforms",
        },
    )


def _drop(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def _coverage_criterion(coverage: float, source: str) -> Criterion:
    return Criterion(
        name="ppc_coverage_90",
        value=coverage,
        threshold=COVERAGE_LIMIT,
        rule=f">= 90% of observations inside the 90% {source} predictive interval",
        passed=coverage >= COVERAGE_LIMIT,
    )


def _criteria(summary: dict[str, Any], coverage: float, quick: bool) -> list[Criterion]:
    rhat = summary.get("max_rhat")
    ess = summary.get("min_ess_bulk")
    draws = summary.get("draws") or 1
    share = (summary.get("divergences") or 0) / draws
    return [
        Criterion(
            name="max_rhat",
            value=rhat,
            threshold=RHAT_LIMIT,
            rule=RHAT_RULE,
            passed=not quick and rhat is not None and rhat < RHAT_LIMIT,
        ),
        Criterion(
            name="min_ess_bulk",
            value=ess,
            threshold=ESS_LIMIT,
            rule=ESS_RULE,
            passed=not quick and ess is not None and ess > ESS_LIMIT,
        ),
        _coverage_criterion(coverage, "posterior"),
        Criterion(
            name="divergence_share",
            value=share if not quick else None,
            threshold=DIVERGENCE_SHARE_LIMIT,
            rule=DIVERGENCE_RULE,
            passed=not quick and share <= DIVERGENCE_SHARE_LIMIT,
        ),
    ]


def posterior_predictive_check(fitted: FittedModel, seed: int) -> dict[str, Any]:
    """Share of observed periods inside the 90% predictive interval, in original units."""
    import pymc as pm

    posterior = thin_draws(fitted.tree["posterior"].to_dataset(), PPC_DRAWS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictive = pm.sample_posterior_predictive(
            posterior,
            model=fitted.mmm.model,
            var_names=[fitted.mmm.output_var],
            random_seed=seed,
            progressbar=False,
        )
    draws = predictive["posterior_predictive"][fitted.mmm.output_var] * fitted.target_scale
    observed = _observed_original(fitted)
    low, high = band_90(draws, ("chain", "draw"))
    inside = ((observed.values >= low) & (observed.values <= high)).ravel()
    keep = ~_imputed_mask(fitted)
    mean = draws.mean(("chain", "draw")).values.ravel()[keep]
    obs = observed.values.ravel()[keep]
    return {
        "coverage_90": float(inside[keep].mean()),
        "n_observations": int(keep.sum()),
        "excluded_imputed": int((~keep).sum()),
        "mape": float(np.mean(np.abs(mean - obs) / np.maximum(np.abs(obs), 1e-9))),
        "r2": float(1 - np.sum((obs - mean) ** 2) / np.sum((obs - obs.mean()) ** 2)),
        "series": {
            "observed": obs.tolist(),
            "mean": mean.tolist(),
            "lower_90": low.ravel()[keep].tolist(),
            "upper_90": high.ravel()[keep].tolist(),
        },
        "draws": predictive,
    }


def _observed_original(fitted: FittedModel) -> xr.DataArray:
    observed = fitted.tree["observed_data"].to_dataset()[fitted.mmm.output_var]
    return observed * fitted.target_scale


def _imputed_mask(fitted: FittedModel) -> np.ndarray:
    """Imputed outcome cells, in the model's (date[, geo]) order."""
    flags = fitted.data.imputed_target
    if fitted.data.geo:  # the panel is geo-major; the model's target is (date, geo)
        flags = flags.reshape(fitted.data.X["geo"].nunique(), -1).T.ravel()
    return flags


def with_log_likelihood(fitted: FittedModel) -> xr.DataTree:
    """The posterior tree plus its pointwise log-likelihood (for LOO and power-scaling)."""
    return log_likelihood_tree(fitted.tree, fitted.mmm)


def log_likelihood_tree(tree: xr.DataTree, mmm: Any) -> xr.DataTree:
    """A copy of ``tree`` with the pointwise log-likelihood of ``mmm``'s outcome."""
    import pymc as pm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pm.stats.compute_log_likelihood(
            tree.copy(),
            model=mmm.model,
            var_names=[mmm.output_var],
            extend_inferencedata=True,
            progressbar=False,
        )


def loo_checks(
    fitted: FittedModel, tree: xr.DataTree, predictive: Any
) -> tuple[dict[str, float | None], dict[str, Any], list[Finding]]:
    findings: list[Finding] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = azs.loo(tree)
    pareto_k = np.asarray(result.pareto_k).ravel()
    bad = int((pareto_k > PARETO_K_LIMIT).sum())
    if bad:
        findings.append(
            Finding(
                code="high_pareto_k",
                severity="warning",
                value=bad,
                threshold=PARETO_K_LIMIT,
                rule="Pareto k > 0.7",
                message=f"{bad} observations have Pareto k > 0.7: LOO is unreliable there "
                "(outliers or highly influential weeks); look at those weeks before comparing "
                "models.",
            )
        )
    loo = {
        "elpd_loo": float(result.elpd),
        "se": float(result.se),
        "p_loo": float(result.p),
        "max_pareto_k": float(np.nanmax(pareto_k)),
        "n_pareto_k_above_0_7": bad,
    }
    loo_pit = _loo_pit(tree, predictive, fitted)
    if loo_pit.get("ks_distance", 0) > loo_pit.get("ks_critical_95", 1):
        findings.append(
            Finding(
                code="loo_pit_miscalibrated",
                severity="warning",
                value=loo_pit["ks_distance"],
                threshold=loo_pit["ks_critical_95"],
                rule="KS distance of LOO-PIT from uniform",
                message="the leave-one-out predictive distribution is miscalibrated (LOO-PIT not "
                "uniform): intervals are too narrow or too wide.",
            )
        )
    return loo, loo_pit, findings


def _loo_pit(tree: xr.DataTree, predictive: Any, fitted: FittedModel) -> dict[str, Any]:
    name = fitted.mmm.output_var
    thin = thin_draws(tree["posterior"].to_dataset(), PPC_DRAWS)
    log_lik = thin_draws(tree["log_likelihood"].to_dataset(), PPC_DRAWS)
    combined = xr.DataTree.from_dict(
        {
            "/posterior": thin,
            "/log_likelihood": log_lik,
            "/posterior_predictive": predictive["posterior_predictive"].to_dataset(),
            "/observed_data": tree["observed_data"].to_dataset(),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pit = azs.loo_pit(combined, var_names=[name])
    values = np.sort(np.asarray(pit[name]).ravel())
    n = len(values)
    ecdf = np.arange(1, n + 1) / n
    distance = float(np.max(np.abs(ecdf - values)))
    return {
        "ks_distance": distance,
        "ks_critical_95": float(1.36 / np.sqrt(n)),
        "values": values.tolist(),
    }


def prior_sensitivity(fitted: FittedModel, tree: xr.DataTree) -> list[dict[str, Any]]:
    """Power-scaling sensitivity (no refit): flags prior-data conflict or a weak likelihood."""
    import pymc as pm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = pm.stats.compute_log_prior(tree, model=fitted.mmm.model, extend_inferencedata=True)
        names = [v.name for v in fitted.mmm.model.free_RVs]
        table = azs.psense_summary(tree, var_names=names)
    rows = []
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    for label, row in frame.iterrows():
        rows.append(
            {
                "parameter": str(label),
                "prior": float(row["prior"]),
                "likelihood": float(row["likelihood"]),
                "diagnosis": str(row["diagnosis"]),
            }
        )
    return rows


def _sensitivity_findings(rows: list[dict[str, Any]]) -> list[Finding]:
    flagged = [r for r in rows if r["diagnosis"].startswith("potential")]
    if not flagged:
        return []
    names = ", ".join(f"{r['parameter']} ({r['diagnosis']})" for r in flagged[:8])
    return [
        Finding(
            code="prior_sensitivity",
            severity="warning",
            value=len(flagged),
            rule="power-scaling sensitivity > 0.05",
            message=f"power-scaling flags {names}; see prior_comparison for what that does to "
            "each channel's ROAS, and consider a lift test where the prior dominates.",
        )
    ]


def backtest_split(
    fitted: FittedModel, periods: int
) -> tuple[ModelData, np.datetime64, pd.Series] | str:
    """(training data, cutoff date, training-row mask) of a backtest holding out the last
    ``periods`` periods, or why it is skipped."""
    data = fitted.data
    dates = np.sort(data.X["date"].unique())
    if len(dates) <= periods * 3:
        return f"only {len(dates)} periods: too few to hold out {periods}"
    cutoff = dates[-periods]
    train = data.X["date"] < cutoff
    train_data = ModelData(
        X=data.X[train].reset_index(drop=True),
        y=data.y[train].reset_index(drop=True),
        channels=data.channels,
        controls=data.controls,
        geo=data.geo,
        target=data.target,
        report=data.report,
        input_hashes=data.input_hashes,
        imputed_target=data.imputed_target[train.to_numpy()],
    )
    return train_data, cutoff, train


def run_backtest(ws: Workspace, fitted: FittedModel, periods: int, seed: int) -> dict[str, Any]:
    """Refit on all but the last ``periods`` periods, predict them, score the forecast."""
    from attribution_analysis.mmm.build import build_mmm
    from attribution_analysis.mmm.refits import BACKTEST, refit_key
    from attribution_analysis.mmm.sampling import attach_posterior, sample_posterior

    data = fitted.data
    split = backtest_split(fitted, periods)
    if isinstance(split, str):
        return {"skipped": split}
    train_data, cutoff, train = split
    params: FitMMMParams = fitted.params
    mmm = build_mmm(train_data, params.config)
    # A one-off fit (a later backtest has other weeks): compiled with its data frozen in, or
    # ahead of this step by the job worker (mmm/refits.py).
    outcome = sample_posterior(
        mmm, params.sampler, seed, None, one_off=refit_key(fitted, BACKTEST, periods)
    )
    attach_posterior(mmm, outcome.idata)
    holdout = data.X[~train].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = mmm.sample_posterior_predictive(
            holdout,
            include_last_observations=True,
            extend_idata=False,
            progressbar=False,
            random_seed=seed,
        )
    draws = predicted[mmm.output_var]
    if "sample" not in draws.dims:
        draws = draws.stack(sample=[d for d in ("chain", "draw") if d in draws.dims])
    # Predictions come on the model's scaled target; the training fit's scale maps them back.
    draws = to_target_units(draws, mmm.model["target_scale"].get_value())
    # Match the panel's row order (geo-major) used by data.y.
    draws = draws.transpose(*(["geo", "date"] if data.geo else ["date"]), "sample")
    actual = data.y[~train].to_numpy()
    mean = draws.mean("sample").values.ravel()
    low, high = (bound.ravel() for bound in band_90(draws, "sample"))
    return {
        "holdout_periods": periods,
        "cutoff": str(pd.Timestamp(cutoff).date()),
        "mape": float(np.mean(np.abs(mean - actual) / np.maximum(np.abs(actual), 1e-9))),
        "coverage_90": float(np.mean((actual >= low) & (actual <= high))),
        "train_min_ess_bulk": convergence_summary(mmm.idata)["min_ess_bulk"],
    }


def to_target_units(draws: xr.DataArray, target_scale: Any) -> xr.DataArray:
    """Scaled predictions back in the target's units: a national model's scale is one number
    (0-d); a geo panel's is one per geo (1-d, in the model's geo order; ``build.GEO_SCALING``),
    applied to each geo's draws. (PyMC-Marketing's own default, one maximum over dates and
    geos, is 0-d too.)"""
    scale = np.asarray(target_scale, dtype=float)
    if scale.ndim == 0:
        return draws * float(scale)
    return draws * xr.DataArray(scale, dims=("geo",), coords={"geo": draws["geo"].values})


def _trace(tree: xr.DataTree) -> dict[str, Any]:
    """Thinned draws per chain of each scalar or per-channel parameter, for trace plots."""
    posterior = tree["posterior"].to_dataset()
    step = max(1, posterior.sizes["draw"] // TRACE_DRAWS)
    out: dict[str, Any] = {}
    for name, var in posterior.data_vars.items():
        if "date" in var.dims or var.ndim > 3:
            continue
        thin = var.isel(draw=slice(None, None, step))
        extra = [d for d in thin.dims if d not in ("chain", "draw")]
        if not extra:
            out[name] = thin.values.round(6).tolist()
        else:
            flat = thin.stack(item=extra)
            out[name] = {
                "/".join(str(v) for v in np.atleast_1d(flat["item"].values[i])): flat.isel(item=i)
                .values.round(6)
                .tolist()
                for i in range(flat.sizes["item"])
            }
    return out
