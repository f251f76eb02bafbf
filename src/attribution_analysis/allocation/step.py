"""The ``allocate`` step: workspace inputs -> analysis/mta_allocation.csv + summary JSON.

Reads the HCP-brick or MTA inputs (:mod:`.loaders`), fits the rates (EM or Bayes), checks
what the data can separate (:mod:`.diagnostics`), and hands both outputs and its answer to
the step runner (:func:`attribution_analysis.runner.run_step`), which records the run and
commits the files all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.allocation import diagnostics, summary
from attribution_analysis.allocation.bayes import BayesFit, fit_bayes
from attribution_analysis.allocation.covariates import Design, build_design
from attribution_analysis.allocation.em import EMFit, fit_em
from attribution_analysis.allocation.loaders import LoadedInputs, load_inputs
from attribution_analysis.allocation.pooling import split_with_rate_uncertainty
from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.allocation.summary import optional
from attribution_analysis.allocation.topdown import split_draws
from attribution_analysis.allocation.truth import Truth, load_truth, recovery_report
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.allocation import (
    AllocateParams,
    AllocationReport,
    BlockCondition,
    BootstrapStability,
    ColdStartEntity,
    CreditSet,
    EntityResult,
    IdentifiabilityReport,
    ProductivityEvidence,
    TruthRecovery,
    UnallocatedGroup,
)
from attribution_analysis.contracts.common import Finding, Metadata
from attribution_analysis.provenance import build_metadata
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

STEP = "allocate"
ALLOCATION_PATH = layout.ALLOCATION.path
SUMMARY_PATH = layout.ALLOCATION_SUMMARY.path
BOOTSTRAP_TOL = 1e-6  # refits in the bootstrap need ranks, not 1e-8 rates
SCALE_RULE = (
    "rate = outcome per unit of exposure, its level fixed by the likelihood in each block; "
    "productivity = rate / arithmetic mean of the block's estimable rates (mean 1 per block)"
)

__all__ = ["ALLOCATION_PATH", "STEP", "SUMMARY_PATH", "compute"]


@dataclass
class _Fitted:
    """What both methods hand to the writers."""

    em: EMFit | None
    bayes: BayesFit | None
    share: np.ndarray
    allocated: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    rate: np.ndarray  # NaN where unknown
    rate_draws: np.ndarray | None
    total_lower: np.ndarray | None
    total_upper: np.ndarray | None
    mass_error: float


@dataclass
class _Estimate:
    """The fit and what follows from it per entity."""

    design: Design | None
    block_code: np.ndarray  # (H,) block index of each entity
    sets: list[diagnostics.ProportionalSet]
    tied: list[np.ndarray]
    fitted: _Fitted
    productivity: np.ndarray
    prod_low: np.ndarray | None
    prod_high: np.ndarray | None
    entity_credit: np.ndarray

    @property
    def modelled(self) -> bool:
        """Rates come from a model (covariates or the prior), not free per entity."""
        return self.design is not None or self.fitted.bayes is not None


@dataclass
class _Diagnosis:
    """What the data can separate, and the findings."""

    set_records: list[CreditSet]
    set_of_entity: np.ndarray  # (H,) credit-set label or None
    cold_reason: dict[int, str]
    blocks: list[BlockCondition]
    free_identified: bool
    evidence: list[ProductivityEvidence]
    stability: diagnostics.Stability | None
    unallocated: list[UnallocatedGroup]
    findings: list[Finding]


def compute(ctx: StepContext, params: AllocateParams) -> StepOutput:
    """The allocate step: the allocation CSV, the summary and the answer (writes nothing)."""
    if params.pairs_parquet is not None:
        # Partitioned pairs: EM in memory or on Dask by size (allocation/scale_step.py).
        from attribution_analysis.allocation import scale_step

        return scale_step.compute(ctx, params)
    inputs = load_inputs(ctx.ws, params)
    hashes = ctx.ws.input_hashes(inputs.files)
    estimate = _estimate(inputs, params)
    diagnosis = _diagnose(inputs, params, estimate)
    truth, recovery = _recovery(ctx.ws, inputs, params, estimate, diagnosis)
    metadata = _metadata(inputs, params, estimate, truth, ctx.run_id, hashes)
    report = _summary(inputs, params, estimate, diagnosis, recovery, metadata)
    files = {
        ALLOCATION_PATH: csv_bytes(_table(inputs, estimate, diagnosis), float_format="%.12g"),
        SUMMARY_PATH: json_bytes(report.model_dump(mode="json")),
    }
    return StepOutput(summary.answer(report), files, hashes)


def _design(inputs: LoadedInputs, params: AllocateParams) -> Design | None:
    specs = list(params.covariates)
    if not specs:
        return None
    if inputs.source == "mta" and len(set(inputs.entity_block)) > 1 and "channel" not in specs:
        # Rates are outcome per effective impression of *that* channel: a common level across
        # channels would be wrong, so the channel always enters as a categorical covariate.
        specs = ["channel", *specs]
    return build_design(
        inputs.covariate_table,
        inputs.covariate_key,
        list(inputs.problem.entity_labels),
        specs,
        inputs.covariate_file,
    )


def _em(
    inputs: LoadedInputs,
    params: AllocateParams,
    design: Design | None,
    tied: list[np.ndarray],
    **overrides: object,
) -> EMFit:
    options: dict[str, object] = {
        "family": params.family,
        "design": None if design is None else design.matrix,
        "design_names": None if design is None else design.names,
        "ridge": params.ridge,
        "tol": params.tol,
        "max_iter": params.max_iter,
        "accelerate": params.accelerate,
        "tied": tied if design is None else (),
        "pooling": params.pooling,
        "group_clusters": inputs.group_clusters,
    }
    options.update(overrides)
    if inputs.platform_signal is not None and options["pooling"] != "none" and design is None:
        # The signal informs the pooled rates' prior (not the equal-rates model's fit).
        options["platform_signal"] = inputs.platform_signal
    problem = options.pop("problem", inputs.problem)
    return fit_em(problem, **options)  # type: ignore[arg-type]


def _fit(
    inputs: LoadedInputs, params: AllocateParams, design: Design | None, tied: list[np.ndarray]
) -> _Fitted:
    problem = inputs.problem
    if params.method == "bayes":
        bayes = fit_bayes(
            problem,
            design,
            family=params.family,
            draws=params.draws,
            tune=params.tune,
            chains=params.chains,
            seed=params.seed,
            target_accept=params.target_accept,
        )
        return _Fitted(
            em=None,
            bayes=bayes,
            share=bayes.share,
            allocated=bayes.allocated,
            lower=bayes.lower,
            upper=bayes.upper,
            rate=bayes.rate_draws.mean(axis=0),
            rate_draws=bayes.rate_draws,
            total_lower=bayes.entity_total_lower,
            total_upper=bayes.entity_total_upper,
            mass_error=bayes.mass_error,
        )
    em = _em(inputs, params, design, tied)
    lower = upper = total_lower = total_upper = None
    drawn = None
    if em.log_rate_covariance is not None:
        # Pooled rates carry their Laplace covariance: the intervals combine the rates'
        # uncertainty with the contribution draws' (each refitted with this call's options),
        # or carry the rates' alone when the totals are given as points.
        drawn = split_with_rate_uncertainty(
            problem,
            em,
            inputs.draws,
            seed=params.seed,
            block_of_group=inputs.group_block,
            refit=lambda drawn_problem, start: _em(
                inputs,
                params,
                design,
                tied,
                problem=drawn_problem,
                start=start,
                standard_errors=False,
                hold_pooling=True,
            ),
        )
    elif inputs.draws is not None:
        drawn = split_draws(problem, em.share, inputs.draws, inputs.group_block)
    if drawn is not None:
        lower, upper = drawn.lower, drawn.upper
        total_lower, total_upper = drawn.entity_lower, drawn.entity_upper
    return _Fitted(
        em=em,
        bayes=None,
        share=em.share,
        allocated=em.allocated,
        lower=lower,
        upper=upper,
        rate=em.rate,
        rate_draws=None,
        total_lower=total_lower,
        total_upper=total_upper,
        mass_error=em.mass_error,
    )


def _estimate(inputs: LoadedInputs, params: AllocateParams) -> _Estimate:
    """Fit the rates; each entity's relative productivity (with its 90% band for bayes) and
    credit."""
    problem = inputs.problem
    design = _design(inputs, params)
    block_names, block_code = np.unique(inputs.entity_block.astype(str), return_inverse=True)
    n_blocks = len(block_names)
    sets = diagnostics.proportional_sets(problem)
    tied = [s.members for s in sets]
    fitted = _fit(inputs, params, design, tied)
    estimable = problem.entity_exposure > 0
    productivity = diagnostics.relative_productivity(
        fitted.rate, estimable & np.isfinite(fitted.rate), block_code, n_blocks
    )
    prod_low = prod_high = None
    if fitted.rate_draws is not None:
        per_draw = diagnostics.relative_productivity(
            fitted.rate_draws, estimable, block_code, n_blocks
        )
        prod_low, prod_high = diagnostics.band(per_draw)
    entity_credit = np.bincount(problem.entity, fitted.allocated, problem.n_entities)
    return _Estimate(
        design, block_code, sets, tied, fitted, productivity, prod_low, prod_high, entity_credit
    )


def _diagnose(inputs: LoadedInputs, params: AllocateParams, est: _Estimate) -> _Diagnosis:
    """Credit sets, cold starts, block conditioning, the EM's evidence and stability, the
    unallocated groups, and every finding (in the order the summary lists them)."""
    problem = inputs.problem
    findings = list(inputs.findings)
    set_records, set_of_entity = summary.credit_sets(
        problem, est.sets, est.entity_credit, est.modelled
    )
    findings += summary.credit_set_findings(set_records, est.modelled)
    cold = diagnostics.cold_start(problem)
    findings += summary.data_findings(problem, params.family, cold, est.modelled)
    blocks, free_identified = summary.block_conditions(problem, inputs.entity_block)
    evidence: list[ProductivityEvidence] = []
    stability = None
    em, bayes = est.fitted.em, est.fitted.bayes
    if em is not None:
        stability, evidence, em_findings = _em_diagnostics(
            inputs, params, est.design, est.tied, em, blocks, free_identified
        )
        findings += em_findings
        findings += summary.signal_findings(em, inputs.signal_column)
    if bayes is not None:
        findings += summary.bayes_findings(bayes, inputs.draws is not None)
    unallocated, unallocated_findings = summary.unallocated_groups(problem)
    findings += unallocated_findings
    return _Diagnosis(
        set_records=set_records,
        set_of_entity=set_of_entity,
        cold_reason=dict(zip(np.flatnonzero(cold.mask).tolist(), cold.reasons, strict=True)),
        blocks=blocks,
        free_identified=free_identified,
        evidence=evidence,
        stability=stability,
        unallocated=unallocated,
        findings=findings,
    )


def _recovery(
    ws: Workspace,
    inputs: LoadedInputs,
    params: AllocateParams,
    est: _Estimate,
    diagnosis: _Diagnosis,
) -> tuple[Truth | None, TruthRecovery | None]:
    """Simulated workspaces: the truth read (after the fit) and how close the split came."""
    truth = load_truth(ws, inputs.source, inputs.problem)
    if truth is None:
        return None, None
    return truth, recovery_report(
        inputs.problem,
        truth,
        est.fitted.allocated,
        est.fitted.rate,
        est.productivity,
        est.block_code,
        identified=np.asarray(pd.isna(diagnosis.set_of_entity), dtype=bool),
        lower=est.fitted.lower,
        upper=est.fitted.upper,
        compare_credit=inputs.source == "hcp-brick" or params.contributions is None,
    )


def _metadata(
    inputs: LoadedInputs,
    params: AllocateParams,
    est: _Estimate,
    truth: Truth | None,
    run_id: str,
    hashes: dict[str, str],
) -> Metadata:
    omega = inputs.omega
    return build_metadata(
        step=STEP,
        input_hashes=hashes,
        data_range=inputs.data_range,
        seed=params.seed,
        sampler=_sampler(est.fitted.bayes, params),
        run_id=run_id,
        extra={
            "params": params.model_dump(mode="json"),
            "truth_files_compared": {} if truth is None else truth.files,
            "inputs_from_truth": inputs.truth_inputs,
            "omega_source": None if omega is None else omega.source,
            "path_attribution_sha256": None if omega is None else omega.path_attribution_sha256,
        },
    )


def _summary(
    inputs: LoadedInputs,
    params: AllocateParams,
    est: _Estimate,
    diagnosis: _Diagnosis,
    recovery: TruthRecovery | None,
    metadata: Metadata,
) -> AllocationReport:
    """The content of ``analysis/allocation_summary.json``."""
    problem, design = inputs.problem, est.design
    em, bayes = est.fitted.em, est.fitted.bayes
    return AllocationReport(
        metadata=metadata,
        source=inputs.source,  # type: ignore[arg-type]
        method=params.method,
        family=params.family,
        m_step="bayes" if bayes else ("free" if design is None else "glm"),
        covariates=[] if design is None else design.specs,
        coefficients=summary.coefficients(em, bayes),
        reference_levels=(
            {c.name: c.reference for c in design.categorical} if design and em else {}
        ),
        scale=SCALE_RULE,
        zero_exposure_rule=inputs.zero_exposure_rule,
        omega=inputs.omega,
        n_groups=problem.n_groups,
        n_entities=problem.n_entities,
        n_pairs=problem.n_rows,
        entities=_entities(inputs, est, diagnosis),
        unallocated_groups=diagnosis.unallocated,
        mass_conservation_max_rel_error=est.fitted.mass_error,
        convergence=None if em is None else summary.convergence(em),
        pooling=None if em is None else summary.pooling(em, inputs.signal_column),
        identifiability=_identifiability(problem, design, diagnosis),
        cold_start=_cold_start(problem, diagnosis.cold_reason),
        bootstrap=_bootstrap(diagnosis.stability),
        block_totals=summary.block_totals(
            problem, inputs.group_block, inputs.entity_block, est.entity_credit
        )
        if inputs.source == "mta"
        else [],
        bayes=None
        if bayes is None
        else summary.bayes_report(bayes, problem, est.block_code, est.productivity),
        truth_recovery=recovery,
        findings=diagnosis.findings,
        outputs=[ALLOCATION_PATH, SUMMARY_PATH],
    )


def _identifiability(
    problem: AllocationProblem, design: Design | None, diagnosis: _Diagnosis
) -> IdentifiabilityReport:
    return IdentifiabilityReport(
        credit_sets=diagnosis.set_records,
        blocks=diagnosis.blocks,
        design_condition_number=None
        if design is None
        else diagnostics.design_condition(problem, design.matrix),
        evidence=diagnosis.evidence,
        free_rates_identified=diagnosis.free_identified,
        rule=f"proportional: cosine >= {diagnostics.PROPORTIONAL_COSINE}; singular: smallest "
        f"/ largest singular value <= {diagnostics.SINGULAR_RATIO:g}",
    )


def _cold_start(problem: AllocationProblem, cold_reason: dict[int, str]) -> list[ColdStartEntity]:
    return [
        ColdStartEntity(
            entity=str(problem.entity_labels[h]),
            n_groups=int(problem.entity_groups[h]),
            total_exposure=float(problem.entity_exposure[h]),
            reason=reason,
        )
        for h, reason in cold_reason.items()
    ]


def _table(inputs: LoadedInputs, est: _Estimate, diagnosis: _Diagnosis) -> pd.DataFrame:
    """Rows of ``analysis/mta_allocation.csv``."""
    return summary.allocation_table(
        inputs.problem,
        inputs.entity_block,
        inputs.group_columns,
        est.fitted.share,
        est.fitted.allocated,
        est.fitted.lower,
        est.fitted.upper,
        diagnosis.set_of_entity,
    )


def _em_diagnostics(
    inputs: LoadedInputs,
    params: AllocateParams,
    design: Design | None,
    tied: list[np.ndarray],
    em: EMFit,
    blocks: list[BlockCondition],
    free_identified: bool,
) -> tuple[diagnostics.Stability | None, list[ProductivityEvidence], list[Finding]]:
    """Bootstrap stability, the F test against equal rates, and the EM findings."""
    problem = inputs.problem
    stability = None
    if params.bootstrap > 0:
        stability = diagnostics.bootstrap_stability(
            problem,
            em,
            lambda weights, start: _em(
                inputs,
                params,
                design,
                tied,
                tol=max(params.tol, BOOTSTRAP_TOL),
                accelerate=True,
                group_weights=weights,
                start=start,
                standard_errors=False,
                hold_pooling=True,
            ),
            params.bootstrap,
            params.seed,
        )
    # One rate per block: nothing left to pool.
    equal = _em(inputs, params, None, _block_ties(problem), pooling="none")
    n_params = (
        design.matrix.shape[1]
        if design is not None
        else int(np.unique(em.parameter_of_entity[problem.entity_exposure > 0]).size)
    )
    tests = diagnostics.productivity_evidence(problem, em, equal, n_params)
    records, findings = summary.evidence(problem, tests, inputs.entity_block)
    findings += summary.em_findings(problem, em, blocks, free_identified, stability)
    return stability, records, findings


def _block_ties(problem: AllocationProblem) -> list[np.ndarray]:
    """Every connected block's entities tied to one rate (the 'equal productivity' model)."""
    entity_block = problem.blocks[2]
    order = np.argsort(entity_block, kind="stable")
    bounds = np.flatnonzero(np.diff(entity_block[order])) + 1
    return [part for part in np.split(order, bounds) if len(part) > 1]


def _sampler(bayes: BayesFit | None, params: AllocateParams) -> dict[str, object]:
    if bayes is None:
        return {}
    return {
        "backend": bayes.sampler,
        "chains": bayes.chains,
        "draws": bayes.draws,
        "tune": bayes.tune,
        "target_accept": params.target_accept,
    }


def _bootstrap(stability: diagnostics.Stability | None) -> BootstrapStability | None:
    if stability is None or not len(stability.spearman):
        return None
    return BootstrapStability(
        replicates=stability.replicates,
        spearman_median=float(np.median(stability.spearman)),
        spearman_p05=float(np.quantile(stability.spearman, 0.05)),
        rule=f"groups resampled with replacement, rates refitted (tolerance {BOOTSTRAP_TOL:g}); "
        "Spearman of block-relative productivities of entities estimable in both fits",
    )


def _entities(inputs: LoadedInputs, est: _Estimate, diagnosis: _Diagnosis) -> list[EntityResult]:
    problem, fitted = inputs.problem, est.fitted

    def at(values: np.ndarray | None, h: int) -> float | None:
        return None if values is None else optional(values[h])

    def rank(values: np.ndarray | None, h: int, rounding) -> int | None:
        if values is None or not np.isfinite(values[h]):
            return None
        return int(rounding(values[h]))

    stability = diagnosis.stability
    low = None if stability is None else stability.rank_low
    high = None if stability is None else stability.rank_high
    return [
        EntityResult(
            entity=str(problem.entity_labels[h]),
            block=str(inputs.entity_block[h]),
            rate=optional(fitted.rate[h]),
            productivity=optional(est.productivity[h]),
            productivity_lower_90=at(est.prod_low, h),
            productivity_upper_90=at(est.prod_high, h),
            total_allocated=float(est.entity_credit[h]),
            total_allocated_lower_90=at(fitted.total_lower, h),
            total_allocated_upper_90=at(fitted.total_upper, h),
            total_exposure=float(problem.entity_exposure[h]),
            n_groups=int(problem.entity_groups[h]),
            estimable=bool(problem.entity_exposure[h] > 0),
            cold_start=h in diagnosis.cold_reason,
            credit_set=diagnosis.set_of_entity[h],
            rank_lower_90=rank(low, h, np.floor),
            rank_upper_90=rank(high, h, np.ceil),
            data_weight=None
            if fitted.em is None or fitted.em.data_weight is None
            else optional(fitted.em.data_weight[h]),
        )
        for h in range(problem.n_entities)
    ]
