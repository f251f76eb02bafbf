"""``saturation='auto'``: fit the Hill and the logistic curve, keep the one the data prefer.

Why: on worlds this project did not write the saturation family, not the priors, the
controls or the sampler, is what moves the media total most (``references/mmm_methodology.md``,
"Accuracy on worlds we did not write"), and neither family wins everywhere. Where the data
can tell the two apart, PSIS-LOO lets them decide; where they cannot, the default (Hill) is
kept and the gap between the two families' media totals is reported, because that gap is
model uncertainty the chosen fit's own intervals do not contain.

Each family is an ordinary ``fit_mmm`` fit (same seed, sampler, retry; stored under its own
cache key), so a later plain fit of either family reuses it, and the manifest records the
chosen family's parameters: every later step rebuilds exactly the model that was kept.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.mmm import FamilyCandidate, FitMMMParams, SaturationChoice
from attribution_analysis.mmm import store
from attribution_analysis.mmm.convergence import passes_gates
from attribution_analysis.mmm.fit import (
    SingleFit,
    answer_of,
    fit_files,
    fit_one,
    manifest_bytes,
    target_scale_of,
)
from attribution_analysis.progress import Progress, report
from attribution_analysis.summaries import interval, thin_draws

FAMILIES = ("hill", "logistic")
DEFAULT_FAMILY = "hill"
# Sivula, Magnusson, Matamoros and Vehtari (2022), "Uncertainty in Bayesian leave-one-out
# cross-validation based model comparison": a difference below about 4 is small whatever
# its SE, and the normal approximation of the difference is only trusted beyond ~2 SE.
MIN_ELPD_DIFFERENCE = 4.0
SE_MULTIPLE = 2.0
RULE = (
    f"keep the family whose PSIS-LOO elpd is higher by more than {MIN_ELPD_DIFFERENCE:g} and "
    f"by more than {SE_MULTIPLE:g} standard errors of the difference; otherwise keep "
    f"{DEFAULT_FAMILY}. A family that fails the convergence gates loses to one that passes."
)
# Above this relative gap between the two families' media totals, an undecided choice is a
# warning: the curve family moves the answer by more than the benchmark's accuracy target.
FAMILY_GAP_LIMIT = 0.15
MEDIA_DRAWS = 500


def compute_auto(ctx: StepContext, params: FitMMMParams) -> StepOutput:
    """Fit both families, compare them by PSIS-LOO, keep one (see the module docstring)."""
    # FitMMMParams refuses what auto cannot do (quick, ridge, one family's priors); checked
    # again here for parameters built without validation (model_copy).
    FitMMMParams.model_validate(params.model_dump(mode="json"))
    fits = [
        fit_one(ctx, _family_params(params, family), _part(ctx.progress, i, family))
        for i, family in enumerate(FAMILIES)
    ]
    report(ctx.progress, 1, 1, "comparing the curve families (PSIS-LOO)")
    loos = [_loo(fit) for fit in fits]
    choice = choose(fits, loos)
    chosen = fits[FAMILIES.index(choice.chosen)]
    result = chosen.result.model_copy(deep=True)
    result.saturation_choice = choice
    result.findings[:0] = choice_findings(choice)
    result.wall_seconds = round(sum(f.result.wall_seconds for f in fits), 3)
    sampled = [f.result.sampling_seconds for f in fits if f.result.sampling_seconds is not None]
    result.sampling_seconds = round(sum(sampled), 3) if sampled else None
    result.cached = not any(f.fresh for f in fits)
    result.remedies_tried = [
        f"{fit.params.config.saturation}: {remedy}"
        for fit in fits
        for remedy in fit.result.remedies_tried
    ]
    chosen.result = result
    files = fit_files(ctx, chosen)
    if layout.FIT.path not in files and not _manifest_records(ctx, choice):
        files[layout.FIT.path] = manifest_bytes(
            ctx.ws, chosen.params, chosen.data, result, chosen.hashes, ctx.run_id
        )
    for fit in fits:
        if fit is not chosen and fit.fresh:
            files[fit.relative] = store.tree_bytes(ctx.ws, fit.tree)
    return StepOutput(answer_of(result, files), files, chosen.hashes)


def _family_params(params: FitMMMParams, family: str) -> FitMMMParams:
    """One family's fit: the same request with the family named; no ridge fallback, since
    LOO compares posteriors and a ridge fit has none."""
    config = params.config.model_copy(update={"saturation": family})
    return params.model_copy(update={"config": config, "fallback_to_ridge": False})


def _part(progress: Progress | None, index: int, family: str) -> Progress | None:
    """Progress of one family's fit as its half of the whole."""
    if progress is None:
        return None

    def scaled(done: float, total: float, message: str) -> None:
        progress(index * total + done, len(FAMILIES) * total, f"{family}: {message}")

    return scaled


def _loo(fit: SingleFit) -> Any:
    import arviz_stats as azs

    from attribution_analysis.mmm.diagnostics import log_likelihood_tree

    tree = log_likelihood_tree(fit.tree, fit.mmm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return azs.loo(tree, pointwise=True)


def _media_total(fit: SingleFit) -> tuple[float, tuple[float, float]]:
    """Posterior mean and 90% HDI of the summed channel contribution, in target units."""
    import pymc as pm

    model = fit.mmm.model
    posterior = thin_draws(fit.tree["posterior"].to_dataset(), MEDIA_DRAWS)
    free = [v.name for v in model.free_RVs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = pm.compute_deterministics(
            posterior[free], model=model, var_names=["channel_contribution"], progressbar=False
        )
    contribution = values["channel_contribution"] * target_scale_of(fit.mmm)
    total = contribution.sum([d for d in contribution.dims if d not in ("chain", "draw")])
    summary = interval(np.asarray(total.values).ravel())
    return summary.mean, summary.hdi_90


def choose(fits: list[SingleFit], loos: list[Any]) -> SaturationChoice:
    """Apply the rule to the two fitted families (in ``FAMILIES`` order)."""
    import arviz_stats as azs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = azs.compare(dict(zip(FAMILIES, loos, strict=True)), round_to="none")
    candidates = []
    for family, fit, loo in zip(FAMILIES, fits, loos, strict=True):
        mean, hdi = _media_total(fit)
        candidates.append(
            FamilyCandidate(
                saturation=family,
                elpd_loo=float(loo.elpd),
                elpd_se=float(loo.se),
                p_loo=float(loo.p),
                max_pareto_k=float(np.nanmax(np.asarray(loo.pareto_k))),
                stacking_weight=float(np.clip(table.loc[family, "weight"], 0.0, 1.0)),
                passes_gates=passes_gates(fit.result.convergence),
                media_total_mean=mean,
                media_total_hdi_90=hdi,
                fit_key=fit.result.fit_key,
                model_path=fit.result.model_path,
            )
        )
    # The SE of the difference, from the pointwise differences (compare's dse).
    difference_se = float(table["dse"].max())
    chosen, decided_by = decide(candidates, difference_se)
    kept = candidates[FAMILIES.index(chosen)]
    other = candidates[1 - FAMILIES.index(chosen)]
    gap = abs(kept.media_total_mean - other.media_total_mean) / max(
        abs(kept.media_total_mean), 1e-12
    )
    return SaturationChoice(
        chosen=chosen,
        decided_by=decided_by,
        elpd_difference=kept.elpd_loo - other.elpd_loo,
        difference_se=difference_se,
        rule=RULE,
        media_total_gap=float(gap),
        family_uncertain=decided_by == "undecided_default" and gap > FAMILY_GAP_LIMIT,
        candidates=candidates,
    )


def decide(candidates: list[FamilyCandidate], difference_se: float) -> tuple[str, str]:
    """The family to keep and why ('gates', 'loo' or 'undecided_default')."""
    passing = [c for c in candidates if c.passes_gates]
    if len(passing) == 1:
        return passing[0].saturation, "gates"
    best, other = sorted(candidates, key=lambda c: c.elpd_loo, reverse=True)
    difference = best.elpd_loo - other.elpd_loo
    if difference > MIN_ELPD_DIFFERENCE and difference > SE_MULTIPLE * difference_se:
        return best.saturation, "loo"
    return DEFAULT_FAMILY, "undecided_default"


def choice_findings(choice: SaturationChoice) -> list[Finding]:
    by_name = {c.saturation: c for c in choice.candidates}
    totals = ", ".join(
        f"{c.saturation} {c.media_total_mean:,.0f} [{c.media_total_hdi_90[0]:,.0f}, "
        f"{c.media_total_hdi_90[1]:,.0f}]"
        for c in choice.candidates
    )
    comparison = (
        f"elpd difference {choice.elpd_difference:+.1f} (SE {choice.difference_se:.1f}); "
        f"media total by family (mean [90% HDI]): {totals}"
    )
    reason = {
        "loo": "leave-one-out cross-validation prefers it by a clear margin",
        "gates": "only it passed the convergence gates",
        "undecided_default": "the data do not tell the two families apart, so the default is kept",
    }[choice.decided_by]
    findings = [
        Finding(
            code="saturation_family_chosen",
            severity="info",
            value=choice.elpd_difference,
            rule=choice.rule,
            message=f"saturation 'auto' kept the {choice.chosen} curve: {reason} ({comparison}).",
        )
    ]
    unreliable = [c.saturation for c in by_name.values() if c.max_pareto_k > 0.7]
    if unreliable:
        findings.append(
            Finding(
                code="family_loo_unreliable",
                severity="warning",
                message=f"Pareto k above 0.7 for {', '.join(unreliable)}: some weeks dominate "
                "the LOO estimate, so the family comparison is less certain than its SE says.",
            )
        )
    if choice.family_uncertain:
        findings.append(
            Finding(
                code="saturation_family_uncertain",
                severity="warning",
                value=choice.media_total_gap,
                threshold=FAMILY_GAP_LIMIT,
                message=f"the data do not choose between the Hill and logistic curves, and the "
                f"two put the media total {choice.media_total_gap:.0%} apart ({totals}). The "
                "kept fit's intervals do not include this: quote the media total as uncertain "
                "by at least that much, and prefer a lift test to settle it.",
            )
        )
    return findings


def _manifest_records(ctx: StepContext, choice: SaturationChoice) -> bool:
    """Whether the current manifest already records this very choice."""
    try:
        recorded = store.read_manifest(ctx.ws)["result"].get("saturation_choice")
    except Exception:  # unreadable or missing: rewrite it
        return False
    return recorded == choice.model_dump(mode="json")
