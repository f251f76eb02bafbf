"""Builders of the ``allocate`` step's outputs: the sections and findings of the JSON summary
(``analysis/allocation_summary.json``), the allocation CSV and the step's answer.

Pure functions from arrays (fits, diagnostics) to the pydantic contracts of
:mod:`attribution_analysis.contracts.allocation`; the step composes them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from attribution_analysis.allocation import diagnostics
from attribution_analysis.allocation.bayes import BayesFit
from attribution_analysis.allocation.em import MONOTONE_TOL, EMFit
from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.contracts.allocation import (
    AllocateAnswer,
    AllocationRecord,
    AllocationReport,
    BayesReport,
    BlockCondition,
    BlockTotal,
    Coefficient,
    ConvergenceReport,
    CreditSet,
    PairProbability,
    PoolingReport,
    ProductivityEvidence,
    SignalReport,
    UnallocatedGroup,
)
from attribution_analysis.contracts.common import Finding
from attribution_analysis.mmm.convergence import ESS_LIMIT, RHAT_LIMIT

SATURATED_TOL = 1e-6  # free fit reproducing every total within this: it fits the noise
UNSTABLE_SPEARMAN = 0.5  # bootstrap 5% quantile of rank correlation below this: unstable
NO_EVIDENCE_P = 0.05  # F test p-value above this: no evidence of productivity differences
TOP_PAIRS = 5
Z_90 = 1.6448536269514722  # standard normal 95% quantile: two-sided 90% Wald interval
MAX_SET_FINDINGS = 5  # more credit sets than this: one summary finding


def optional(value: float | None) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def credit_sets(
    problem: AllocationProblem,
    sets: list[diagnostics.ProportionalSet],
    entity_credit: np.ndarray,
    modelled: bool,
) -> tuple[list[CreditSet], np.ndarray]:
    """Credit-set records and each entity's set label (None when separable)."""
    label_of = np.full(problem.n_entities, None, dtype=object)
    records = []
    rule = (
        "divided by the covariate model (or prior), not by the data"
        if modelled
        else "free rates tied: the set's credit is divided by exposure share, a convention, "
        "not an estimate"
    )
    for number, found in enumerate(sets, start=1):
        label = f"S{number}"
        label_of[found.members] = label
        records.append(
            CreditSet(
                credit_set=label,
                entities=[str(problem.entity_labels[h]) for h in found.members],
                min_cosine=found.min_cosine,
                combined_credit=float(entity_credit[found.members].sum()),
                split_rule=rule,
            )
        )
    return records, label_of


def credit_set_findings(sets: list[CreditSet], modelled: bool) -> list[Finding]:
    """One finding per set while there are few; a single summary when there are many."""
    within = (
        "the split inside each set comes from the covariates (or prior) alone"
        if modelled
        else "inside each set the credit is divided by exposure share, a convention"
    )
    if len(sets) > MAX_SET_FINDINGS:
        members = sum(len(s.entities) for s in sets)
        return [
            Finding(
                code="proportional_exposure",
                severity="warning",
                value=float(len(sets)),
                threshold=diagnostics.PROPORTIONAL_COSINE,
                rule="cosine of exposure profiles >= threshold",
                message=f"{len(sets)} sets of entities ({members} in all, e.g. "
                f"{', '.join(sets[0].entities)}) have proportional exposure profiles - typically "
                "entities seen in a single group: the data fix only each set's combined credit "
                f"(listed in identifiability.credit_sets); {within}.",
            )
        ]
    return [
        Finding(
            code="proportional_exposure",
            severity="warning",
            subject=", ".join(s.entities),
            value=s.min_cosine,
            threshold=diagnostics.PROPORTIONAL_COSINE,
            rule="cosine of exposure profiles >= threshold",
            message=f"{', '.join(s.entities)} have proportional exposure profiles (cosine "
            f"{s.min_cosine:.6f}): the data fix only their combined credit "
            f"({s.combined_credit:.6g}); report them as one (credit set {s.credit_set}); "
            f"{within}. Only a change in their exposure pattern (different flighting) or an "
            "experiment would separate them.",
        )
        for s in sets
    ]


def unallocated_groups(problem: AllocationProblem) -> tuple[list[UnallocatedGroup], list[Finding]]:
    issues = problem.issues()
    without = np.isin(issues.unallocatable, issues.groups_without_entities)
    records = [
        UnallocatedGroup(
            group=str(problem.group_labels[g]),
            total=float(problem.totals[g]),
            reason="no_entities" if empty else "zero_exposure",
        )
        for g, empty in zip(issues.unallocatable, without, strict=True)
    ]
    lost = float(problem.totals[issues.unallocatable].sum())
    findings = []
    if lost > 0:
        positive = int(np.sum(problem.totals[issues.unallocatable] > 0))
        findings.append(
            Finding(
                code="unallocated_total",
                severity="warning",
                value=lost,
                rule="group total > 0 with no exposed entity",
                message=f"{positive} groups with a positive total ({lost:.6g} in all) have no "
                "exposed entity and are left unallocated (listed in unallocated_groups), not "
                "spread elsewhere.",
            )
        )
    elif len(records):
        findings.append(
            Finding(
                code="empty_groups",
                severity="info",
                value=float(len(records)),
                message=f"{len(records)} groups have no exposed entity; their totals are zero, "
                "so nothing is lost.",
            )
        )
    return records, findings


def block_conditions(
    problem: AllocationProblem, entity_labels: np.ndarray
) -> tuple[list[BlockCondition], bool]:
    """Per-block conditioning, labelled like the entities' blocks, and whether free rates
    are identified everywhere."""
    blocks = diagnostics.block_conditions(problem)
    component = problem.blocks[2]
    first = {int(c): h for h, c in reversed(list(enumerate(component)))}
    records = [
        BlockCondition(
            block=str(entity_labels[first[b.block]]) if b.block in first else str(b.block),
            n_groups=b.n_groups,
            n_entities=b.n_entities,
            condition_number=b.condition_number,
        )
        for b in blocks
    ]
    identified = all(b.n_groups >= b.n_entities and b.condition_number is not None for b in blocks)
    return records, identified


def evidence(
    problem: AllocationProblem,
    tests: list[diagnostics.Evidence],
    entity_labels: np.ndarray,
) -> tuple[list[ProductivityEvidence], list[Finding]]:
    component = problem.blocks[2]
    first = {int(c): h for h, c in reversed(list(enumerate(component)))}
    records, findings = [], []
    for test in tests:
        label = None if test.block is None else str(entity_labels[first[test.block]])
        records.append(
            ProductivityEvidence(
                block=label,
                statistic=test.statistic,
                df=test.df,
                residual_df=test.residual_df,
                p_value=test.p_value,
            )
        )
        if test.p_value > NO_EVIDENCE_P:
            where = f"block {label}" if label else "the data"
            findings.append(
                Finding(
                    code="no_productivity_evidence",
                    severity="warning",
                    subject=label,
                    value=test.p_value,
                    threshold=NO_EVIDENCE_P,
                    rule="F test of fitted vs equal rates: p-value > threshold",
                    message=f"in {where} the totals show no evidence that entities differ in "
                    f"productivity (F = {test.statistic:.2f}, p = {test.p_value:.2f}): the "
                    "ranking is indistinguishable from noise and the split is, in effect, by "
                    "exposure. The totals must move with the mix of entities for rates to be "
                    "learnt; a lift test per campaign would.",
                )
            )
    return records, findings


def block_totals(
    problem: AllocationProblem,
    group_block: np.ndarray,
    entity_block: np.ndarray,
    entity_credit: np.ndarray,
) -> list[BlockTotal]:
    """Channel contribution vs the sum of its campaigns' credit (MTA)."""
    unallocatable = problem.group_exposure <= 0
    names, group_code = np.unique(group_block.astype(str), return_inverse=True)
    entity_code = pd.Index(names).get_indexer(entity_block.astype(str))
    total = np.bincount(group_code, problem.totals, len(names))
    missing = np.bincount(group_code, problem.totals * unallocatable, len(names))
    known = entity_code >= 0
    credit = np.bincount(entity_code[known], entity_credit[known], len(names))
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(total > 0, np.abs(total - credit - missing) / total, 0.0)
    return [
        BlockTotal(
            block=str(n),
            total=float(t),
            allocated=float(c),
            unallocated=float(m),
            relative_error=float(e),
        )
        for n, t, c, m, e in zip(names, total, credit, missing, error, strict=True)
    ]


def pooling(em: EMFit, signal_column: str | None = None) -> PoolingReport | None:
    """The partial pooling of free rates (None for covariate models: the ridge pools), with
    the platform signal's weight when one was used (``signal_column``)."""
    if em.m_step != "free":
        return None
    return PoolingReport(
        pooling=em.pooling,
        pooling_sd=optional(em.pooling_sd),
        dispersion=optional(em.dispersion),
        design_effect=optional(em.design_effect),
        effective_rates=optional(em.effective_rates),
        converged=em.hyper_converged,
        signal=signal_report(em, signal_column),
    )


def signal_report(em: EMFit, column: str | None) -> SignalReport | None:
    """The signal's estimated weight (beta, its 90% Wald interval, the share explained)."""
    weight = em.signal_weight
    if weight is None or column is None:
        return None
    se = optional(weight.std_error)
    return SignalReport(
        column=column,
        beta=weight.beta,
        std_error=se,
        lower_90=None if se is None else weight.beta - Z_90 * se,
        upper_90=None if se is None else weight.beta + Z_90 * se,
        explained=float(np.clip(weight.explained, 0.0, 1.0)),
    )


def signal_findings(em: EMFit | None, column: str | None) -> list[Finding]:
    """How much the platform signal counted, in plain words."""
    report = None if em is None else signal_report(em, column)
    if report is None:
        return []
    if report.std_error is None or report.lower_90 is None or report.upper_90 is None:
        weight = "the campaigns' signals per unit of exposure do not differ: it carries no weight"
    else:
        if report.lower_90 > 0:
            reading = "the data confirm that it tracks the campaigns' incrementality"
        elif report.upper_90 < 0:
            reading = (
                f"campaigns with more {column} per unit of exposure earn less of the "
                f"contribution here: {column} do not track incrementality"
            )
        else:
            reading = "the data do not establish that it tracks incrementality"
        weight = (
            f"its weight beta = {report.beta:.2f} (90% interval {report.lower_90:.2f} to "
            f"{report.upper_90:.2f}; 0: no weight, 1: rates proportional to {column} per unit "
            f"of exposure): {reading}"
        )
    return [
        Finding(
            code="platform_signal",
            severity="info",
            subject=column,
            value=report.explained,
            rule="share of the campaigns' log-rate spread explained: beta^2 var(s) / "
            "(beta^2 var(s) + tau^2)",
            message=f"platform {column} explain {100 * report.explained:.0f}% of the "
            "differences between campaigns; the MMM's co-movement decides the rest. "
            f"{weight[0].upper()}{weight[1:]}.",
        )
    ]


def convergence(em: EMFit) -> ConvergenceReport:
    objective = (
        "Poisson log-likelihood of the group totals"
        if em.family == "poisson"
        else "Gamma log-likelihood of the group totals with shape 1 (the shape only rescales it)"
    )
    return ConvergenceReport(
        converged=em.converged,
        iterations=em.iterations,
        cycles=em.cycles,
        accelerated=em.accelerated,
        rejected_extrapolations=em.rejected,
        tolerance=em.tol,
        objective=objective + (" minus the ridge penalty" if em.m_step == "glm" else ""),
        loglik=em.loglik,
        penalized_objective=em.objective,
        trace=[float(v) for v in em.trace],
        monotone=em.monotone,
        max_relative_decrease=em.max_relative_decrease,
        gamma_shape=em.gamma_shape,
    )


def coefficients(em: EMFit | None, bayes: BayesFit | None) -> list[Coefficient]:
    if em is not None and em.coefficients is not None:
        se = em.coefficient_std_error  # None: the curvature could not be inverted
        return [
            Coefficient(
                name=n,
                estimate=float(c),
                std_error=None if s is None else float(s),
                lower_90=None if s is None else float(c - Z_90 * s),
                upper_90=None if s is None else float(c + Z_90 * s),
            )
            for n, c, s in zip(
                em.coefficient_names,
                em.coefficients,
                [None] * len(em.coefficients) if se is None else se,
                strict=True,
            )
        ]
    if bayes is not None:
        low, high = diagnostics.band(bayes.coefficient_draws)
        mean = bayes.coefficient_draws.mean(axis=0)
        sd = bayes.coefficient_draws.std(axis=0)
        return [
            Coefficient(
                name=n,
                estimate=float(m),
                std_error=float(d),
                lower_90=float(lo),
                upper_90=float(hi),
            )
            for n, m, d, lo, hi in zip(bayes.coefficient_names, mean, sd, low, high, strict=True)
        ]
    return []


def bayes_report(
    bayes: BayesFit, problem: AllocationProblem, block_code: np.ndarray, productivity: np.ndarray
) -> BayesReport:
    """Sampler facts and P(A > B) for consecutive entities at the top of each block."""
    pairs = []
    for block in np.unique(block_code):
        members = np.flatnonzero((block_code == block) & np.isfinite(productivity))
        top = members[np.argsort(-productivity[members], kind="stable")][:TOP_PAIRS]
        pairs += [
            PairProbability(
                a=str(problem.entity_labels[a]),
                b=str(problem.entity_labels[b]),
                probability=bayes.probability_greater(a, b),
            )
            for a, b in itertools.pairwise(top)
        ]
    return BayesReport(
        sampler=bayes.sampler,
        chains=bayes.chains,
        draws=bayes.draws,
        tune=bayes.tune,
        max_rhat=bayes.max_rhat,
        min_ess_bulk=bayes.min_ess_bulk,
        divergences=bayes.divergences,
        sigma_entity=float(bayes.sigma_draws.mean()),
        top_pairs=pairs,
    )


def em_findings(
    problem: AllocationProblem,
    em: EMFit,
    blocks: list[BlockCondition],
    free_identified: bool,
    stability: diagnostics.Stability | None,
) -> list[Finding]:
    out: list[Finding] = []
    # Pooled rates cannot overfit the way free ones do (their spread is estimated): the
    # free-rate warnings below are for pooling='none' only; the fit's own notes say the rest.
    free = em.m_step == "free" and em.pooling == "none"
    for note in em.warnings:
        settled = em.pooling != "none" and em.hyper_converged
        out.append(
            Finding(
                code="rate_pooling",
                severity="info" if settled else "warning",
                message=note,
            )
        )
    if free and not free_identified:
        worst = max(blocks, key=lambda b: b.n_entities / max(b.n_groups, 1))
        out.append(
            Finding(
                code="free_rates_not_identified",
                severity="warning",
                subject=worst.block,
                value=float(worst.n_entities),
                threshold=float(worst.n_groups),
                rule="entities > groups, or a singular exposure matrix, in a block",
                message=f"one free rate per entity is not identified here ({worst.n_entities} "
                f"entities for {worst.n_groups} groups in block {worst.block}): many rate "
                "vectors fit equally well, so the split depends on the starting point and "
                "overfits. Use covariates (parameter covariates) or method='bayes'.",
            )
        )
    if free:
        use = (problem.group_exposure > 0) & (problem.totals > 0)
        gap = np.abs(em.group_mean[use] - problem.totals[use]) / problem.totals[use]
        if len(gap) and gap.max() < SATURATED_TOL:
            out.append(
                Finding(
                    code="saturated_fit",
                    severity="warning",
                    value=float(gap.max()),
                    threshold=SATURATED_TOL,
                    rule="max |fitted - observed| / observed group total < threshold",
                    message="the free rates reproduce every group total exactly: with so few "
                    "groups per entity they fit the noise (a split by exposure alone may do as "
                    "well). Prefer the covariate or Bayesian model.",
                )
            )
    if not em.converged:
        out.append(
            Finding(
                code="not_converged",
                severity="warning",
                value=float(em.iterations),
                rule=f"relative change <= {em.tol:g} within max_iter",
                message=f"EM stopped after {em.iterations} passes without meeting the tolerance;"
                " raise max_iter or loosen tol.",
            )
        )
    if not em.monotone:
        out.append(
            Finding(
                code="objective_decreased",
                severity="warning",
                value=em.max_relative_decrease,
                threshold=MONOTONE_TOL,
                rule="relative decrease of the objective between iterates > threshold",
                message="the objective decreased during EM, which EM must not do; treat the "
                "result with suspicion and report it.",
            )
        )
    if stability is not None and len(stability.spearman):
        p05 = float(np.quantile(stability.spearman, 0.05))
        if p05 < UNSTABLE_SPEARMAN:
            out.append(
                Finding(
                    code="unstable_ranking",
                    severity="warning",
                    value=p05,
                    threshold=UNSTABLE_SPEARMAN,
                    rule="bootstrap 5% quantile of Spearman(replicate, full) < threshold",
                    message="the productivity ranking changes a lot when groups are resampled "
                    f"(5% quantile of the rank correlation {p05:.2f}); do not read it as firm.",
                )
            )
    return out


def bayes_findings(bayes: BayesFit, has_draws: bool) -> list[Finding]:
    out: list[Finding] = []
    if bayes.max_rhat is None:
        out.append(
            Finding(
                code="rhat_undefined",
                severity="warning",
                rule="R-hat needs at least two chains",
                message="R-hat is undefined with a single chain, so convergence was not "
                "checked; run the Bayesian allocation with chains >= 2.",
            )
        )
    elif bayes.max_rhat > RHAT_LIMIT:
        out.append(
            Finding(
                code="high_rhat",
                severity="warning",
                value=bayes.max_rhat,
                threshold=RHAT_LIMIT,
                rule=f"R-hat < {RHAT_LIMIT:g}",
                message=f"R-hat {bayes.max_rhat:.3f}: chains disagree; run more draws.",
            )
        )
    if bayes.min_ess_bulk is not None and bayes.min_ess_bulk < ESS_LIMIT:
        out.append(
            Finding(
                code="low_ess",
                severity="warning",
                value=bayes.min_ess_bulk,
                threshold=ESS_LIMIT,
                rule=f"bulk ESS > {ESS_LIMIT:g}",
                message=f"bulk ESS {bayes.min_ess_bulk:.0f}: intervals are imprecise; run more "
                "draws.",
            )
        )
    if bayes.divergences:
        out.append(
            Finding(
                code="divergences",
                severity="warning",
                value=float(bayes.divergences),
                threshold=0.0,
                rule="no divergent transitions",
                message=f"{bayes.divergences} divergent transitions; raise target_accept.",
            )
        )
    if len(bayes.excluded_groups):
        out.append(
            Finding(
                code="zero_totals_outside_gamma",
                severity="info",
                value=float(len(bayes.excluded_groups)),
                message=f"{len(bayes.excluded_groups)} groups with total 0 are outside the Gamma "
                "likelihood's support and were left out of the fit (nothing to split there).",
            )
        )
    if has_draws:
        out.append(
            Finding(
                code="draws_averaged",
                severity="info",
                message="the Bayesian model allocates the mean of the contribution draws; its "
                "intervals hold the split's uncertainty, not the MMM's.",
            )
        )
    return out


def data_findings(
    problem: AllocationProblem, family: str, cold: diagnostics.ColdStart, modelled: bool
) -> list[Finding]:
    out: list[Finding] = []
    y = problem.totals
    if family == "poisson" and np.any(np.abs(y - np.rint(y)) > 1e-9 * np.maximum(y, 1.0)):
        out.append(
            Finding(
                code="poisson_quasi_likelihood",
                severity="info",
                message="totals are not whole numbers: the Poisson model acts as a "
                "quasi-likelihood (split and rates do not depend on the unit; log-likelihood "
                "values are not a proper likelihood).",
            )
        )
    if cold.mask.any():
        out.append(
            Finding(
                code="cold_start",
                severity="info",
                value=float(cold.mask.sum()),
                rule=f"groups < {diagnostics.COLD_MIN_GROUPS} or exposure < "
                f"{diagnostics.COLD_EXPOSURE_FRACTION:.0%} of the median entity",
                message=f"{int(cold.mask.sum())} entities have little information (listed in "
                "cold_start); their rates lean on "
                + ("covariates or the prior." if modelled else "almost nothing (free rates)."),
            )
        )
    return out


def allocation_table(
    problem: AllocationProblem,
    entity_block: np.ndarray,
    group_columns: pd.DataFrame | None,
    share: np.ndarray,
    allocated: np.ndarray,
    lower: np.ndarray | None,
    upper: np.ndarray | None,
    set_of_entity: np.ndarray,
) -> pd.DataFrame:
    """Rows of ``analysis/mta_allocation.csv`` (columns of :class:`AllocationRecord` that
    apply: date/channel/geo for MTA cells, intervals when there are draws)."""
    columns: dict[str, object] = {
        "group": problem.group_labels[problem.group],
        "entity": problem.entity_labels[problem.entity],
        "block": entity_block[problem.entity],
    }
    if group_columns is not None:
        for name in ("date", "channel", "geo"):
            if name in group_columns:
                columns[name] = group_columns[name].to_numpy()[problem.group]
    columns["exposure"] = problem.exposure
    columns["share"] = share
    columns["allocated"] = allocated
    if lower is not None and upper is not None:
        columns["lower_90"] = lower
        columns["upper_90"] = upper
    labels = set_of_entity[problem.entity]
    columns["identified"] = pd.isna(labels)
    columns["credit_set"] = labels
    table = pd.DataFrame(columns)
    order = [c for c in AllocationRecord.model_fields if c in table.columns]
    return table[order].sort_values(["group", "entity"], kind="stable")


def answer(report: AllocationReport) -> AllocateAnswer:
    """The step's answer: the summary's headline (the full report is in the summary file)."""
    return AllocateAnswer(
        step=report.metadata.step,
        outputs=report.outputs,
        source=report.source,
        method=report.method,
        family=report.family,
        m_step=report.m_step,
        n_groups=report.n_groups,
        n_entities=report.n_entities,
        n_pairs=report.n_pairs,
        omega_source=None if report.omega is None else report.omega.source,
        grain=None
        if report.source != "mta" or report.metadata.data_range is None
        else report.metadata.data_range.grain,
        pooling=report.pooling,
        exposure_metric=None if report.omega is None else report.omega.exposure_metric,
        transforms_source=None if report.omega is None else report.omega.transforms_source,
        mass_conservation_max_rel_error=report.mass_conservation_max_rel_error,
        unallocated_groups=len(report.unallocated_groups),
        credit_sets=[s.entities for s in report.identifiability.credit_sets],
        coefficients=report.coefficients,
        converged=None if report.convergence is None else report.convergence.converged,
        iterations=None if report.convergence is None else report.convergence.iterations,
        bayes=report.bayes,
        truth_recovery=report.truth_recovery,
        warnings=[f for f in report.findings if f.severity != "info"],
        findings=report.findings,
    )
