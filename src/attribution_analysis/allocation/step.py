"""The ``allocate`` step: workspace inputs -> analysis/mta_allocation.csv + summary JSON.

Reads the HCP-brick or MTA inputs (:mod:`.loaders`), fits the rates (EM or Bayes), checks
what the data can separate (:mod:`.diagnostics`), and writes both outputs through
:meth:`Workspace.commit` (all or nothing), recording the run in the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from attribution_analysis.allocation import diagnostics, report
from attribution_analysis.allocation.bayes import BayesFit, fit_bayes
from attribution_analysis.allocation.covariates import Design, build_design
from attribution_analysis.allocation.em import EMFit, fit_em
from attribution_analysis.allocation.loaders import LoadedInputs, load_inputs
from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.allocation.report import optional, summary_payload
from attribution_analysis.allocation.topdown import split_draws
from attribution_analysis.allocation.truth import load_truth, recovery_report
from attribution_analysis.contracts.allocation import (
    AllocateParams,
    AllocationReport,
    BlockCondition,
    BootstrapStability,
    ColdStartEntity,
    EntityResult,
    IdentifiabilityReport,
    ProductivityEvidence,
)
from attribution_analysis.contracts.common import Finding
from attribution_analysis.provenance import build_metadata
from attribution_analysis.registry import RunRegistry
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

STEP = "allocate"
ALLOCATION_PATH = "analysis/mta_allocation.csv"
SUMMARY_PATH = "analysis/allocation_summary.json"
BOOTSTRAP_TOL = 1e-6  # refits in the bootstrap need ranks, not 1e-8 rates
SCALE_RULE = (
    "rate = outcome per unit of exposure, its level fixed by the likelihood in each block; "
    "productivity = rate / arithmetic mean of the block's estimable rates (mean 1 per block)"
)

__all__ = ["ALLOCATION_PATH", "STEP", "SUMMARY_PATH", "allocate", "summary_payload"]


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


def allocate(ws: Workspace, params: AllocateParams | None = None) -> AllocationReport:
    """Allocate group totals across entities; write the CSV and the summary, all or nothing.

    Parameters
    ----------
    ws
        The workspace (inputs under raw/ and analysis/, outputs to analysis/).
    params
        Step parameters (:class:`AllocateParams`); defaults allocate by free-rate Poisson EM.

    Returns
    -------
    AllocationReport
        The content of ``analysis/allocation_summary.json``.
    """
    params = params or AllocateParams()
    registry = RunRegistry(ws)
    with registry.track(STEP, params.model_dump(mode="json")) as run:
        inputs = load_inputs(ws, params)
        run.input_hashes = ws.input_hashes(inputs.files)
        summary, outputs = _run(ws, inputs, params, run.run_id, run.input_hashes)
        written = ws.commit(outputs)
        run.outputs = [ws.relative(p) for p in written]
    return summary


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
    }
    options.update(overrides)
    return fit_em(inputs.problem, **options)  # type: ignore[arg-type]


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
    if inputs.draws is not None:
        drawn = split_draws(problem, em.share, inputs.draws, inputs.group_block)
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


def _run(
    ws: Workspace,
    inputs: LoadedInputs,
    params: AllocateParams,
    run_id: str,
    hashes: dict[str, str],
) -> tuple[AllocationReport, dict[str, bytes]]:
    problem = inputs.problem
    design = _design(inputs, params)
    block_names, block_code = np.unique(inputs.entity_block.astype(str), return_inverse=True)
    n_blocks = len(block_names)
    sets = diagnostics.proportional_sets(problem)
    tied = [s.members for s in sets]
    fitted = _fit(inputs, params, design, tied)
    em, bayes = fitted.em, fitted.bayes
    modelled = design is not None or bayes is not None

    estimable = problem.entity_exposure > 0
    productivity = diagnostics.relative_productivity(
        fitted.rate, estimable & np.isfinite(fitted.rate), block_code, n_blocks
    )
    prod_low = prod_high = None
    if fitted.rate_draws is not None:
        per_draw = diagnostics.relative_productivity(
            fitted.rate_draws, estimable, block_code, n_blocks
        )
        prod_low, prod_high = np.quantile(per_draw, [0.05, 0.95], axis=0)
    entity_credit = np.bincount(problem.entity, fitted.allocated, problem.n_entities)

    findings = list(inputs.findings)
    set_records, set_of_entity = report.credit_sets(problem, sets, entity_credit, modelled)
    findings += report.credit_set_findings(set_records, modelled)
    cold = diagnostics.cold_start(problem)
    findings += report.data_findings(problem, params.family, cold, modelled)
    blocks, free_identified = report.block_conditions(problem, inputs.entity_block)
    evidence_records: list[ProductivityEvidence] = []
    stability = None
    if em is not None:
        stability, evidence_records, em_findings = _em_diagnostics(
            inputs, params, design, tied, em, blocks, free_identified
        )
        findings += em_findings
    if bayes is not None:
        findings += report.bayes_findings(bayes, inputs.draws is not None)
    unallocated, unallocated_findings = report.unallocated_groups(problem)
    findings += unallocated_findings

    cold_reason = dict(zip(np.flatnonzero(cold.mask).tolist(), cold.reasons, strict=True))
    entities = _entities(
        inputs,
        fitted,
        productivity,
        prod_low,
        prod_high,
        entity_credit,
        cold_reason,
        set_of_entity,
        stability,
    )
    truth = load_truth(ws, inputs.source, problem)
    recovery = None
    if truth is not None:
        recovery = recovery_report(
            problem,
            truth,
            fitted.allocated,
            fitted.rate,
            productivity,
            block_code,
            identified=np.asarray(pd.isna(set_of_entity), dtype=bool),
            lower=fitted.lower,
            upper=fitted.upper,
            compare_credit=inputs.source == "hcp-brick" or params.contributions is None,
        )
    summary = AllocationReport(
        metadata=build_metadata(
            step=STEP,
            input_hashes=hashes,
            data_range=inputs.data_range,
            seed=params.seed,
            sampler=_sampler(bayes, params),
            run_id=run_id,
            extra={
                "params": params.model_dump(mode="json"),
                "truth_files_compared": {} if truth is None else truth.files,
                "inputs_from_truth": inputs.truth_inputs,
                "omega_source": None if inputs.omega is None else inputs.omega.source,
                "path_attribution_sha256": None
                if inputs.omega is None
                else inputs.omega.path_attribution_sha256,
            },
        ),
        source=inputs.source,  # type: ignore[arg-type]
        method=params.method,
        family=params.family,
        m_step="bayes" if bayes else ("free" if design is None else "glm"),
        covariates=[] if design is None else design.specs,
        coefficients=report.coefficients(em, bayes),
        reference_levels=(
            {c.name: c.reference for c in design.categorical} if design and em else {}
        ),
        scale=SCALE_RULE,
        zero_exposure_rule=inputs.zero_exposure_rule,
        omega=inputs.omega,
        n_groups=problem.n_groups,
        n_entities=problem.n_entities,
        n_pairs=problem.n_rows,
        entities=entities,
        unallocated_groups=unallocated,
        mass_conservation_max_rel_error=fitted.mass_error,
        convergence=None if em is None else report.convergence(em),
        identifiability=IdentifiabilityReport(
            credit_sets=set_records,
            blocks=blocks,
            design_condition_number=None
            if design is None
            else diagnostics.design_condition(problem, design.matrix),
            evidence=evidence_records,
            free_rates_identified=free_identified,
            rule=f"proportional: cosine >= {diagnostics.PROPORTIONAL_COSINE}; singular: smallest "
            f"/ largest singular value <= {diagnostics.SINGULAR_RATIO:g}",
        ),
        cold_start=[
            ColdStartEntity(
                entity=str(problem.entity_labels[h]),
                n_groups=int(problem.entity_groups[h]),
                total_exposure=float(problem.entity_exposure[h]),
                reason=reason,
            )
            for h, reason in cold_reason.items()
        ],
        bootstrap=_bootstrap(stability),
        block_totals=report.block_totals(
            problem, inputs.group_block, inputs.entity_block, entity_credit
        )
        if inputs.source == "mta"
        else [],
        bayes=None
        if bayes is None
        else report.bayes_report(bayes, problem, block_code, productivity),
        truth_recovery=recovery,
        findings=findings,
        outputs=[ALLOCATION_PATH, SUMMARY_PATH],
    )
    table = report.allocation_table(
        problem,
        inputs.entity_block,
        inputs.group_columns,
        fitted.share,
        fitted.allocated,
        fitted.lower,
        fitted.upper,
        set_of_entity,
    )
    outputs = {
        ALLOCATION_PATH: csv_bytes(table, float_format="%.12g"),
        SUMMARY_PATH: json_bytes(summary.model_dump(mode="json")),
    }
    return summary, outputs


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
            ),
            params.bootstrap,
            params.seed,
        )
    equal = _em(inputs, params, None, _block_ties(problem))
    n_params = (
        design.matrix.shape[1]
        if design is not None
        else int(np.unique(em.parameter_of_entity[problem.entity_exposure > 0]).size)
    )
    tests = diagnostics.productivity_evidence(problem, em, equal, n_params)
    records, findings = report.evidence(problem, tests, inputs.entity_block)
    findings += report.em_findings(problem, em, blocks, free_identified, stability)
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


def _entities(
    inputs: LoadedInputs,
    fitted: _Fitted,
    productivity: np.ndarray,
    prod_low: np.ndarray | None,
    prod_high: np.ndarray | None,
    entity_credit: np.ndarray,
    cold_reason: dict[int, str],
    set_of_entity: np.ndarray,
    stability: diagnostics.Stability | None,
) -> list[EntityResult]:
    problem = inputs.problem

    def at(values: np.ndarray | None, h: int) -> float | None:
        return None if values is None else optional(values[h])

    def rank(values: np.ndarray | None, h: int, rounding) -> int | None:
        if values is None or not np.isfinite(values[h]):
            return None
        return int(rounding(values[h]))

    low = None if stability is None else stability.rank_low
    high = None if stability is None else stability.rank_high
    return [
        EntityResult(
            entity=str(problem.entity_labels[h]),
            block=str(inputs.entity_block[h]),
            rate=optional(fitted.rate[h]),
            productivity=optional(productivity[h]),
            productivity_lower_90=at(prod_low, h),
            productivity_upper_90=at(prod_high, h),
            total_allocated=float(entity_credit[h]),
            total_allocated_lower_90=at(fitted.total_lower, h),
            total_allocated_upper_90=at(fitted.total_upper, h),
            total_exposure=float(problem.entity_exposure[h]),
            n_groups=int(problem.entity_groups[h]),
            estimable=bool(problem.entity_exposure[h] > 0),
            cold_start=h in cold_reason,
            credit_set=set_of_entity[h],
            rank_lower_90=rank(low, h, np.floor),
            rank_upper_90=rank(high, h, np.ceil),
        )
        for h in range(problem.n_entities)
    ]
