"""The ``allocate`` step on a partitioned Parquet pair table (``pairs_parquet``).

HCP-brick pairs too large for memory come as Parquet partitions (brick_id, hcp_id, exposure;
each brick whole in one file) with the totals in raw/brick_sales.csv. The EM fits free rates
(em.fit_em with ``pooling='none'``): on Dask (:mod:`.distributed`) at or above
``dask_min_rows`` rows, counted from the Parquet footers, in memory below. The summary names
the engine and why, and carries each HCP's rate and credit; the row-level split (a file as
large as the input) is not written, and the diagnostics that need the whole table in memory
(credit sets, block conditioning, bootstrap, the F test, partial pooling) are not run: a
finding says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.allocation.em import fit_em
from attribution_analysis.allocation.problem import Origin, build_problem
from attribution_analysis.cluster import EngineChoice, choose_engine, dask_client, expand_files
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.allocation import (
    AllocateParams,
    AllocationReport,
    ConvergenceReport,
    EntityResult,
    IdentifiabilityReport,
    OmegaRecord,
)
from attribution_analysis.contracts.common import Finding
from attribution_analysis.errors import ParameterError, arg
from attribution_analysis.provenance import build_metadata

STEP = "allocate"
SUMMARY_PATH = layout.ALLOCATION_SUMMARY.path
BRICK_SALES = layout.BRICK_SALES.path
GROUP, ENTITY, EXPOSURE, TOTAL = "brick_id", "hcp_id", "exposure", "sales"
SCALE_RULE = (
    "rate = outcome per unit of exposure, its level fixed by the likelihood in each block "
    "(free maximum-likelihood rates; productivities are not computed for partitioned inputs)"
)
EXPOSURE_RULE = "exposure column of the Parquet pairs used as given"


@dataclass
class _Fit:
    """What either engine hands to the summary (entities sorted by id)."""

    entities: np.ndarray
    rate: np.ndarray  # NaN where not estimable
    credit: np.ndarray
    exposure: np.ndarray
    groups: np.ndarray
    n_groups: int
    n_rows: int
    loglik: float
    trace: np.ndarray
    iterations: int
    cycles: int
    rejected: int
    converged: bool
    mass_error: float


def _refuse_unsupported(params: AllocateParams) -> None:
    wrong = []
    if params.method != "em":
        wrong.append(f"{arg('method')} 'em'")
    if params.covariates:
        wrong.append(f"no {arg('covariates')}")
    if params.pooling != "none":
        wrong.append(f"{arg('pooling')} 'none'")
    if params.source == "mta":
        wrong.append(f"{arg('source')} 'hcp-brick' or 'auto'")
    if wrong:
        raise ParameterError(
            f"{arg('pairs_parquet')} fits free rates by EM on HCP-brick pairs only; this call "
            "asks for more.",
            fix=f"set {', '.join(wrong)}, or load the pairs as raw/hcp_brick.csv for the full "
            "in-memory analysis.",
            parameter="pairs_parquet",
        )


def compute(ctx: StepContext, params: AllocateParams) -> StepOutput:
    """allocate on ``pairs_parquet``: the summary and the answer (writes nothing itself)."""
    _refuse_unsupported(params)
    from attribution_analysis.cluster import parquet_partitions

    assert params.pairs_parquet is not None
    files = expand_files(ctx.ws.resolve(params.pairs_parquet))
    sales_path = ctx.ws.require(
        BRICK_SALES,
        f"{BRICK_SALES} (the brick totals) is missing.",
        fix=f"add {BRICK_SALES} with brick_id and sales.",
    )
    sales = pd.read_csv(sales_path, dtype={GROUP: str})
    from attribution_analysis.allocation.distributed import LABEL_TYPES, NUMBER_TYPES

    # Both engines: every partition checked (file and column named) before any work.
    layout_ = parquet_partitions(
        files, {GROUP: LABEL_TYPES, ENTITY: LABEL_TYPES, EXPOSURE: NUMBER_TYPES}
    )
    choice = choose_engine(layout_.total_rows, params.dask_min_rows)
    if choice.engine == "dask":
        fit = _on_dask(files, sales, params)
    else:
        fit = _in_memory(files, sales, params)
    hashes = ctx.ws.input_hashes([sales_path, *(Path(f) for f in files)])
    report = _report(params, fit, choice, len(files), sales, ctx.run_id, hashes)
    from attribution_analysis.allocation import summary
    from attribution_analysis.workspace import json_bytes

    return StepOutput(
        summary.answer(report), {SUMMARY_PATH: json_bytes(report.model_dump(mode="json"))}, hashes
    )


def _on_dask(files: Sequence[str], sales: pd.DataFrame, params: AllocateParams) -> _Fit:
    from attribution_analysis.allocation.distributed import TableColumns, fit_em_dask

    columns = TableColumns(group=GROUP, entity=ENTITY, exposure=EXPOSURE, total=TOTAL)
    with dask_client(params.dask_scheduler) as client:
        fit = fit_em_dask(
            list(files),
            sales.astype({GROUP: _label_type(files[0], GROUP)}),
            client,
            family=params.family,
            tol=params.tol,
            max_iter=params.max_iter,
            accelerate=params.accelerate,
            columns=columns,
            scheduler=params.dask_scheduler,
        )
    return _Fit(
        entities=np.asarray(fit.entity_labels).astype(str),
        rate=fit.rate,
        credit=fit.entity_credit,
        exposure=fit.entity_exposure,
        groups=fit.entity_groups,
        n_groups=fit.n_groups,
        n_rows=fit.n_rows,
        loglik=fit.loglik,
        trace=fit.trace,
        iterations=fit.iterations,
        cycles=fit.cycles,
        rejected=fit.rejected,
        converged=fit.converged,
        mass_error=fit.mass_error,
    )


def _label_type(file: str, column: str) -> type:
    """The totals' group labels in the type the Parquet pairs hold them in."""
    import pyarrow.parquet as pq

    kind = str(pq.read_schema(file).field(column).type)
    return np.int64 if kind.startswith(("int", "uint")) else str


def _in_memory(files: Sequence[str], sales: pd.DataFrame, params: AllocateParams) -> _Fit:
    pairs = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    pairs[GROUP] = pairs[GROUP].astype(str)
    pairs[ENTITY] = pairs[ENTITY].astype(str)
    problem = build_problem(
        sales.astype({GROUP: str}),
        pairs,
        entities=sorted(pairs[ENTITY].unique()),
        origin=Origin(
            totals_file=BRICK_SALES,
            total_column=TOTAL,
            group_column=GROUP,
            pairs_file=params.pairs_parquet,
            entity_column=ENTITY,
            exposure_column=EXPOSURE,
        ),
    )
    em = fit_em(
        problem,
        family=params.family,
        tol=params.tol,
        max_iter=params.max_iter,
        accelerate=params.accelerate,
        pooling="none",
    )
    present = np.unique(problem.group)
    return _Fit(
        entities=np.asarray(problem.entity_labels).astype(str),
        rate=em.rate,
        credit=np.bincount(problem.entity, em.allocated, problem.n_entities),
        exposure=problem.entity_exposure,
        groups=problem.entity_groups,
        n_groups=len(present),
        n_rows=problem.n_rows,
        loglik=em.loglik,
        trace=em.trace,
        iterations=em.iterations,
        cycles=em.cycles,
        rejected=em.rejected,
        converged=em.converged,
        mass_error=em.mass_error,
    )


def _report(
    params: AllocateParams,
    fit: _Fit,
    choice: EngineChoice,
    n_files: int,
    sales: pd.DataFrame,
    run_id: str,
    hashes: dict[str, str],
) -> AllocationReport:
    trace = [float(v) for v in fit.trace]
    drops = -np.diff(trace) / np.maximum(np.abs(trace[:-1]), 1e-300) if len(trace) > 1 else [0]
    decrease = max(float(np.max(drops)), 0.0) + 0.0
    total = float(pd.to_numeric(sales[TOTAL], errors="coerce").sum())
    unallocated = max(total - float(fit.credit.sum()), 0.0)
    findings = [
        Finding(
            code="allocation_engine",
            severity="info",
            subject=params.pairs_parquet,
            value=float(choice.rows),
            threshold=float(choice.threshold),
            message=f"{params.pairs_parquet}: {choice.rows:,} pairs in {n_files} partition(s) "
            f"fitted by the {choice.engine} engine ({choice.reason}).",
            rule="Dask at or above dask_min_rows rows, counted from the Parquet footers",
        ),
        Finding(
            code="partitioned_diagnostics_skipped",
            severity="warning",
            subject=params.pairs_parquet,
            message="free maximum-likelihood rates without partial pooling; credit sets, "
            "block conditioning, the bootstrap, the test against equal productivity and the "
            "row-level split file are not computed for partitioned pairs (they need the "
            "whole table in memory). Check identifiability on a sample of bricks loaded as "
            "raw/hcp_brick.csv before ranking HCPs.",
        ),
    ]
    if unallocated > 1e-9 * max(total, 1.0):
        findings.append(
            Finding(
                code="unallocated_total",
                severity="warning",
                value=unallocated,
                message=f"{unallocated:.6g} of the {total:.6g} in {BRICK_SALES} sits in bricks "
                "with no exposed HCP in the pairs and is left unallocated.",
            )
        )
    from attribution_analysis.allocation.summary import optional

    entities = [
        EntityResult(
            entity=str(label),
            block="all",
            rate=optional(fit.rate[h]),
            productivity=None,
            productivity_lower_90=None,
            productivity_upper_90=None,
            total_allocated=float(fit.credit[h]),
            total_allocated_lower_90=None,
            total_allocated_upper_90=None,
            total_exposure=float(fit.exposure[h]),
            n_groups=int(fit.groups[h]),
            estimable=bool(np.isfinite(fit.rate[h])),
            cold_start=False,
            credit_set=None,
            rank_lower_90=None,
            rank_upper_90=None,
            data_weight=None,
        )
        for h, label in enumerate(fit.entities)
    ]
    objective = (
        "Poisson log-likelihood of the group totals"
        if params.family == "poisson"
        else "Gamma log-likelihood of the group totals with shape 1 (the shape only rescales it)"
    )
    return AllocationReport(
        metadata=build_metadata(
            step=STEP,
            input_hashes=hashes,
            data_range=None,
            seed=params.seed,
            sampler={},
            run_id=run_id,
            extra={
                "params": params.model_dump(mode="json"),
                "engine": choice.engine,
                "engine_reason": choice.reason,
            },
        ),
        source="hcp-brick",
        method="em",
        family=params.family,
        m_step="free",
        covariates=[],
        coefficients=[],
        reference_levels={},
        scale=SCALE_RULE,
        zero_exposure_rule=EXPOSURE_RULE,
        omega=OmegaRecord(source="exposure", rule=EXPOSURE_RULE),
        n_groups=fit.n_groups,
        n_entities=len(fit.entities),
        n_pairs=fit.n_rows,
        entities=entities,
        unallocated_groups=[],
        mass_conservation_max_rel_error=fit.mass_error,
        convergence=ConvergenceReport(
            converged=fit.converged,
            iterations=fit.iterations,
            cycles=fit.cycles,
            accelerated=params.accelerate,
            rejected_extrapolations=fit.rejected,
            tolerance=params.tol,
            objective=objective,
            loglik=fit.loglik,
            penalized_objective=fit.loglik,
            trace=trace,
            monotone=decrease <= 1e-9,
            max_relative_decrease=decrease,
            gamma_shape=None,
        ),
        pooling=None,
        identifiability=IdentifiabilityReport(
            credit_sets=[],
            blocks=[],
            design_condition_number=None,
            evidence=[],
            free_rates_identified=False,
            rule="not computed for partitioned pairs (see the finding "
            "partitioned_diagnostics_skipped)",
        ),
        cold_start=[],
        bootstrap=None,
        findings=findings,
        outputs=[SUMMARY_PATH],
    )
