"""Allocation EM out of core: the long (group, entity, exposure) table from Parquet partitions.

The same model and the same fixed point as :func:`attribution_analysis.allocation.em.fit_em`
with free rates (``pooling='none'``, no covariates, no tied sets), computed on a Dask cluster:

* each EM pass maps the E-step over the partitions (a partition reads its rows, computes the
  group means ``mu_b = sum_h rate_h w_bh`` of its groups and the group-level ratios, and
  returns its share of the per-entity sums ``W.T @ ratio`` and of the log-likelihood), and
  sums those vectors (length = number of entities) on the client;
* the M-step and SQUAREM are em.py's own (:func:`~.em.free_rate_update`, :func:`~.em.iterate`)
  on the reduced vectors, so the iterates, the trace and the stopping rule are the in-memory
  engine's (equal to 1e-9 on the same data: tests/scale/test_allocation_dask.py).

Layout rule: every group's rows sit in one partition (checked when the fit starts: a group
found in two files is refused naming both). The E-step then needs no shuffle: a group's mean
is complete inside its partition. Write the table partitioned by group (e.g. dask's
``df.shuffle("group").to_parquet(...)``) to meet it.

Group totals come from a small table (one row per group) held by the client and sent to the
workers once. Mass conservation is checked per partition in the final pass: the credits of a
partition's rows must add up to its groups' totals, and a partition that does not is named.
Written allocations go to a staging folder that is renamed into place only after every
partition passed, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from attribution_analysis.allocation.em import (
    EXTRAPOLATION_FLOOR,
    Family,
    free_rate_update,
    iterate,
)
from attribution_analysis.cluster import (
    cluster_failure,
    is_cluster_failure,
    parquet_partitions,
)
from attribution_analysis.errors import (
    AttributionError,
    DataValidationError,
    MissingInputError,
    ParameterError,
)

if TYPE_CHECKING:
    from distributed import Client

MASS_TOL = 1e-9  # relative |sum of a partition's credits - its groups' totals|
NUMBER_TYPES = ("double", "float", "int", "uint", "decimal")
LABEL_TYPES = ("int", "uint", "string", "large_string", "dictionary")


@dataclass(frozen=True)
class TableColumns:
    """Column names of the long table and of the totals table."""

    group: str = "group"
    entity: str = "entity"
    exposure: str = "exposure"
    total: str = "total"


@dataclass(frozen=True)
class DistributedFit:
    """What the Dask engine returns; arrays are aligned with ``entity_labels`` (sorted)."""

    family: Family
    entity_labels: np.ndarray  # (H,) every entity of the long table, sorted
    rate: np.ndarray  # (H,) outcome per unit exposure; NaN where not estimable
    estimable: np.ndarray  # (H,) positive weighted exposure somewhere
    entity_credit: np.ndarray  # (H,) sum of the entity's allocated credit
    entity_exposure: np.ndarray  # (H,) exposure summed over the entity's rows
    entity_groups: np.ndarray  # (H,) groups where the entity has positive exposure
    loglik: float
    objective: float
    trace: np.ndarray
    iterations: int  # EM passes over the table (fixed-point evaluations)
    cycles: int
    rejected: int
    converged: bool
    tol: float
    mass_error: float  # max over partitions of the per-partition relative mass error
    partition_mass_error: tuple[float, ...]  # per partition, in ``files`` order
    files: tuple[str, ...]
    n_rows: int
    n_groups: int
    setup_passes: int  # passes over the table before the EM (checks, exposure, level)
    seconds: float  # wall time of the EM passes
    output: str | None  # folder of the written per-row allocation (Parquet), if asked


# ----- partition tasks (run on the workers; module-level so they pickle) --------------------
def _read(file: str, columns: TableColumns) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file, columns=[columns.group, columns.entity, columns.exposure])
    except FileNotFoundError as exc:
        raise MissingInputError(
            f"partition {file} is missing (it was listed when the fit started).",
            fix="restore the file and run the step again.",
            file=file,
        ) from exc
    return table.to_pandas()


@dataclass
class _Local:
    """One partition in codes: local group codes, global entity codes, exposure, totals."""

    group: np.ndarray  # (n,) local group code
    entity: np.ndarray  # (n,) global entity code
    exposure: np.ndarray  # (n,)
    totals: np.ndarray  # (g,) totals of the local groups
    labels: np.ndarray  # (g,) local group labels
    file: str

    @property
    def n_groups(self) -> int:
        return len(self.totals)

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.group, values, self.n_groups)


def _group_codes(groups: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Local group codes and labels. Rows written group by group (the usual layout, and
    what a shuffle by group gives per partition) are coded from where the label changes,
    several times faster than hashing every row; other orders are hashed."""
    values = groups.to_numpy()
    if values.dtype.kind in "iu" and len(values) > 1:
        change = np.flatnonzero(values[1:] != values[:-1]) + 1
        starts = np.concatenate([[0], change])
        labels = values[starts]
        if len(np.unique(labels)) == len(labels):  # each group in one run of rows
            return np.repeat(
                np.arange(len(starts)), np.diff(np.append(starts, len(values)))
            ), labels
    codes, labels = pd.factorize(groups, sort=False)
    return codes, np.asarray(labels)


def _encode(
    part: str | _Local, columns: TableColumns, entity_index: pd.Index, totals: pd.Series
) -> _Local:
    """A partition in codes: read from its file, or as cached on the worker already."""
    if isinstance(part, _Local):
        return part
    frame = _read(part, columns)
    group, labels = _group_codes(frame[columns.group])
    entity = entity_index.get_indexer(frame[columns.entity])
    at = totals.index.get_indexer(labels)
    return _Local(
        group=group,
        entity=entity,
        exposure=frame[columns.exposure].to_numpy(dtype=float),
        totals=totals.to_numpy()[at],
        labels=np.asarray(labels),
        file=part,
    )


def _refuse_negative_or_missing(
    values: np.ndarray, where: str, what: str, file: str, column: str, first_row: int
) -> None:
    """A DataValidationError naming up to 20 rows (counted from ``first_row``) whose value is
    negative or missing; code ``invalid_<what without its plural s>``."""
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if len(bad):
        raise DataValidationError(
            problem=f"{where}{len(bad)} {what} are negative or missing.",
            fix=f"{what} must be finite and >= 0.",
            file=file,
            column=column,
            rows=tuple(int(r) + first_row for r in bad[:20]),
            code=f"invalid_{what.removesuffix('s')}",
        )


def _check_partition(
    file: str, columns: TableColumns, totals: pd.Series
) -> tuple[int, np.ndarray, np.ndarray]:
    """The first pass: exposures valid, no duplicate pair, every group has a total.
    Returns (rows, the partition's groups, its entities)."""
    frame = _read(file, columns)
    exposure = frame[columns.exposure].to_numpy(dtype=float)
    _refuse_negative_or_missing(
        exposure, f"partition {file}: ", "exposures", file, columns.exposure, first_row=1
    )
    duplicated = np.flatnonzero(
        frame.duplicated([columns.group, columns.entity], keep="first").to_numpy()
    )
    if len(duplicated):
        raise DataValidationError(
            problem=f"partition {file}: {len(duplicated)} (group, entity) pairs appear twice.",
            fix="keep one row per pair (sum their exposures).",
            file=file,
            column=columns.entity,
            rows=tuple(int(r) + 1 for r in duplicated[:20]),
            code="duplicate_pair",
        )
    groups = pd.unique(frame[columns.group])
    missing = groups[totals.index.get_indexer(groups) < 0]
    if len(missing):
        raise DataValidationError(
            problem=f"partition {file}: groups {list(missing[:5])} have no total.",
            fix="add their totals to the totals table, or drop their rows.",
            file=file,
            column=columns.group,
            code="group_without_total",
        )
    return len(frame), np.asarray(groups), np.asarray(pd.unique(frame[columns.entity]))


def _base_weight(local: _Local, family: Family) -> tuple[np.ndarray, np.ndarray]:
    """(group exposure, the groups' likelihood weight before the active-entity rule)."""
    group_exposure = local.group_sum(local.exposure)
    weight = (group_exposure > 0).astype(float)
    if family == "gamma":
        weight[local.totals <= 0] = 0.0  # a Gamma has no mass at 0 (as in em.fit_em)
    return group_exposure, weight


def _weight(local: _Local, family: Family, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group exposure, likelihood weight): em.fit_em's rule, groups without an active
    entity (all rates fixed at 0) left out."""
    group_exposure, weight = _base_weight(local, family)
    weight[local.group_sum(local.exposure * active[local.entity]) <= 0] = 0.0
    return group_exposure, weight


def _exposure_pass(
    part: str | _Local,
    columns: TableColumns,
    entity_index: pd.Index,
    totals: pd.Series,
    family: Family,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    """Per entity: weighted exposure and exposure in groups with a positive total; the
    partition's weighted mass (em.fit_em's ``exposure``, ``signal`` and ``mass``); per
    entity its plain exposure and the number of its groups with positive exposure."""
    local = _encode(part, columns, entity_index, totals)
    _, weight = _base_weight(local, family)
    n = len(entity_index)
    exposure = np.bincount(local.entity, local.exposure * weight[local.group], n)
    signal_weight = weight * (local.totals > 0)
    signal = np.bincount(local.entity, local.exposure * signal_weight[local.group], n)
    plain = np.bincount(local.entity, local.exposure, n)
    groups = np.bincount(local.entity, local.exposure > 0, n)
    return exposure, signal, float(weight @ local.totals), plain, groups


def _level_pass(
    part: str | _Local,
    columns: TableColumns,
    entity_index: pd.Index,
    totals: pd.Series,
    family: Family,
    active: np.ndarray,
) -> tuple[float, float, float, int]:
    """(weighted mass, weighted group exposure, Poisson log-likelihood constant, groups)."""
    local = _encode(part, columns, entity_index, totals)
    group_exposure, weight = _weight(local, family, active)
    const = -float(np.sum(weight * gammaln(local.totals + 1.0))) if family == "poisson" else 0.0
    return float(weight @ local.totals), float(weight @ group_exposure), const, local.n_groups


def _loglik_term(local: _Local, family: Family, weight: np.ndarray, mean: np.ndarray) -> float:
    """The partition's log-likelihood term at the group means ``mean`` (Poisson without its
    constant), as em._Model.loglik: Poisson sum w y log mu - w mu, Gamma -sum w y / mu + w log mu
    (groups outside the likelihood contribute nothing)."""
    used = weight > 0
    weighted_total = weight * local.totals
    with np.errstate(divide="ignore", invalid="ignore"):
        if family == "poisson":
            logs = np.log(mean, out=np.zeros_like(mean), where=weighted_total > 0)
            return float(weighted_total @ logs - weight @ mean)
        inverse = np.divide(1.0, mean, out=np.zeros_like(mean), where=used)
        logs = np.log(mean, out=np.zeros_like(mean), where=used)
        return float(-(weighted_total @ inverse) - weight @ logs)


def _e_step(
    part: str | _Local,
    columns: TableColumns,
    entity_index: pd.Index,
    totals: pd.Series,
    family: Family,
    active: np.ndarray,
    rate: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """The partition's share of one EM pass: (log-likelihood term, W.T @ first ratio,
    W.T @ second ratio), the group-level ratios being em._Model.step's: Poisson w y / mu;
    Gamma (w / mu) y / mu and w / mu."""
    local = _encode(part, columns, entity_index, totals)
    _, weight = _weight(local, family, active)
    mean = local.group_sum(local.exposure * rate[local.entity])
    loglik = _loglik_term(local, family, weight, mean)
    used = weight > 0
    n = len(entity_index)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.divide(weight, mean, out=np.zeros_like(mean), where=used)
        if family == "poisson":
            ratio = inverse * local.totals
        else:
            ratio = inverse * np.divide(local.totals, mean, out=np.zeros_like(mean), where=used)
    first = np.bincount(local.entity, local.exposure * ratio[local.group], n)
    if family == "poisson":
        return loglik, first, None
    second = np.bincount(local.entity, local.exposure * inverse[local.group], n)
    return loglik, first, second


def _allocate_partition(
    part: str | _Local,
    columns: TableColumns,
    entity_index: pd.Index,
    totals: pd.Series,
    family: Family,
    active: np.ndarray,
    rate: np.ndarray,
    staging: str | None,
    index: int,
) -> tuple[np.ndarray, float, float]:
    """The final pass: each row's credit y_b * rate_h w_bh / mu_b summed per entity, the
    partition's mass error, its log-likelihood term at ``rate`` (as in the E-step), and
    (``staging``) its rows written as Parquet."""
    local = _encode(part, columns, entity_index, totals)
    mean = local.group_sum(local.exposure * rate[local.entity])
    _, weight = _weight(local, family, active)
    loglik = _loglik_term(local, family, weight, mean)
    row_mean = mean[local.group]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(row_mean > 0, rate[local.entity] * local.exposure / row_mean, 0.0)
    allocated = local.totals[local.group] * share
    error = partition_mass_error(local.group, allocated, local.totals, mean > 0)
    if staging is not None:
        frame = pd.DataFrame(
            {
                columns.group: local.labels[local.group],
                columns.entity: np.asarray(entity_index)[local.entity],
                columns.exposure: local.exposure,
                "share": share,
                "allocated": allocated,
            }
        )
        frame.to_parquet(os.path.join(staging, f"part-{index:05d}.parquet"), index=False)
    return np.bincount(local.entity, allocated, len(entity_index)), error, loglik


def partition_mass_error(
    group: np.ndarray, allocated: np.ndarray, totals: np.ndarray, allocatable: np.ndarray
) -> float:
    """Largest relative |sum of a group's credits - its total| over the partition's
    allocatable groups with a positive total (0 when there are none)."""
    summed = np.bincount(group, allocated, len(totals))
    check = allocatable & (totals > 0)
    if not check.any():
        return 0.0
    return float(np.max(np.abs(summed[check] - totals[check]) / totals[check]))


def verify_allocation(
    folder: str | Path, totals: pd.Series, columns: TableColumns = TableColumns()
) -> list[tuple[str, float]]:
    """Mass of a written allocation, per partition: the files whose credits do not add up to
    their groups' totals (relative error above ``MASS_TOL``), with the error."""
    import pyarrow.parquet as pq

    failed = []
    for path in sorted(Path(folder).glob("*.parquet")):
        frame = pq.read_table(path, columns=[columns.group, "allocated"]).to_pandas()
        group, labels = pd.factorize(frame[columns.group])
        group_totals = totals.reindex(labels).to_numpy(dtype=float)
        error = partition_mass_error(
            group, frame["allocated"].to_numpy(), group_totals, np.isfinite(group_totals)
        )
        if not error <= MASS_TOL:
            failed.append((str(path), error))
    return failed


# ----- the client side ----------------------------------------------------------------------
class _PartitionedModel:
    """em.FixedPointModel over partitions: one pass = one map over the files + one sum."""

    def __init__(
        self,
        run: Callable[..., list[Any]],
        family: Family,
        active: np.ndarray,
        exposure: np.ndarray,
        const: float,
        on_pass: Callable[[int], None] | None,
    ) -> None:
        self._run = run
        self.family = family
        self.active = active
        self.exposure = exposure
        self.const = const
        self.passes = 0
        self._on_pass = on_pass

    def rate(self, theta: np.ndarray) -> np.ndarray:
        return np.where(self.active, theta, 0.0)

    def project(self, theta: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return np.maximum(theta, EXTRAPOLATION_FLOOR * reference)  # as em._Model.project

    def statistics(self, rate: np.ndarray) -> tuple[float, np.ndarray, np.ndarray | None]:
        parts = self._run(_e_step, self.family, self.active, rate, during="an EM pass")
        self.passes += 1
        if self._on_pass is not None:
            self._on_pass(self.passes)
        loglik = float(sum(p[0] for p in parts)) + self.const
        first = np.sum([p[1] for p in parts], axis=0)
        second = None if self.family == "poisson" else np.sum([p[2] for p in parts], axis=0)
        return (loglik if np.isfinite(loglik) else -np.inf), first, second

    def step(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        rate = self.rate(theta)
        loglik, first, second = self.statistics(rate)
        if not np.isfinite(loglik):
            return theta, -np.inf
        if self.family == "poisson":
            new = free_rate_update("poisson", rate * first, self.exposure)
        else:
            assert second is not None
            new = free_rate_update("gamma", rate**2 * first, second)
        return np.where(self.active, new, theta), loglik


def _check_layout(files: Sequence[str], groups: Sequence[np.ndarray]) -> None:
    """Every group in one partition (the E-step's mean of a group is then complete)."""
    sizes = [len(g) for g in groups]
    labels = pd.Series(np.concatenate(groups) if groups else np.array([]))
    seen_twice = labels.duplicated(keep=False).to_numpy()
    if not seen_twice.any():
        return
    owner = np.repeat(np.arange(len(files)), sizes)
    label = labels[seen_twice].iloc[0]
    where = [files[i] for i in owner[seen_twice][labels[seen_twice].to_numpy() == label]]
    raise DataValidationError(
        problem=f"group {label!r} has rows in {where[0]} and in {where[1]}; each group's rows "
        "must sit in one partition.",
        fix="rewrite the table partitioned by group (e.g. "
        "dask.dataframe.read_parquet(...).shuffle('group').to_parquet(...)).",
        file=where[1],
        code="partition_layout",
    )


def read_totals(source: str | Path | pd.DataFrame, columns: TableColumns) -> pd.Series:
    """The group totals (one row per group) as a Series indexed by group."""
    if isinstance(source, pd.DataFrame):
        frame, name = source, "totals"
    else:
        name = str(source)
        if not os.path.isfile(name):
            raise MissingInputError(f"the totals table {name} is missing.", file=name)
        frame = pd.read_parquet(name) if name.endswith(".parquet") else pd.read_csv(name)
    for column in (columns.group, columns.total):
        if column not in frame.columns:
            raise DataValidationError(
                problem=f"the totals table has no column '{column}'.",
                fix=f"give one row per group with columns {columns.group}, {columns.total}.",
                file=name,
                column=column,
                code="missing_column",
            )
    values = pd.to_numeric(frame[columns.total], errors="coerce").to_numpy(dtype=float)
    # Row numbers as a spreadsheet shows them: the header is row 1.
    _refuse_negative_or_missing(values, "", "totals", name, columns.total, first_row=2)
    series = pd.Series(values, index=pd.Index(frame[columns.group]))
    if series.index.has_duplicates:
        label = series.index[series.index.duplicated()][0]
        raise DataValidationError(
            problem=f"group {label!r} has more than one total.",
            fix="keep one row per group.",
            file=name,
            column=columns.group,
            code="duplicate_group",
        )
    return series


def fit_em_dask(
    pairs: str | Path | Sequence[str | Path],
    totals: str | Path | pd.DataFrame,
    client: Client,
    *,
    family: Family = "poisson",
    tol: float = 1e-8,
    max_iter: int = 10_000,
    accelerate: bool = True,
    columns: TableColumns = TableColumns(),
    output: str | Path | None = None,
    scheduler: str | None = None,
    on_pass: Callable[[int], None] | None = None,
    cache: bool = False,
) -> DistributedFit:
    """Fit free entity rates by EM over a partitioned Parquet table and split each group's
    total across its entities (em.fit_em with ``pooling='none'``, out of core).

    Parameters
    ----------
    pairs
        The long table: a Parquet file, folder, glob or list of files with the columns
        ``columns.group``, ``columns.entity``, ``columns.exposure``; each group in one file.
    totals
        One row per group (``columns.group``, ``columns.total``): CSV, Parquet or a frame.
    client
        A dask.distributed client (:func:`attribution_analysis.cluster.dask_client`).
    family, tol, max_iter, accelerate
        As :func:`attribution_analysis.allocation.em.fit_em`.
    output
        Folder to write the per-row allocation to (one Parquet file per partition); it is
        written to a staging folder and renamed into place once every partition passed the
        mass check. None: entity totals only.
    scheduler
        The scheduler's address, for error messages (None: a LocalCluster).
    on_pass
        Called with the number of EM passes done, after each.
    cache
        Keep each partition, in codes, in its worker's memory after the first read, so the
        EM passes read no file (for tables the cluster's memory holds; the workers spill to
        disk beyond their memory limit). False: every pass reads the files (out of core).

    Returns
    -------
    DistributedFit
    """
    layout = parquet_partitions(
        pairs,
        {
            columns.group: LABEL_TYPES,
            columns.entity: LABEL_TYPES,
            columns.exposure: NUMBER_TYPES,
        },
    )
    group_totals = read_totals(totals, columns)
    if output is not None and Path(output).exists():
        raise ParameterError(
            f"the output folder {output} exists already.",
            fix="give a new folder (the allocation is written whole or not at all).",
        )
    files = list(layout.files)
    shared = {"totals": client.scatter(group_totals, broadcast=True)}
    sources: list[Any] = list(files)  # what each task reads: a file, or its cached codes

    def run(
        function: Callable[..., Any], *args: Any, during: str, numbered: bool = False
    ) -> list[Any]:
        """``function(file, columns, [entity_index,] totals, *args[, number])`` on every
        partition, in ``files`` order; a lost scheduler or worker becomes a clear error."""
        try:
            futures = [
                client.submit(
                    function,
                    source,
                    columns,
                    *([shared["entities"]] if "entities" in shared else []),
                    shared["totals"],
                    *args,
                    *([number] if numbered else []),
                    pure=False,
                )
                for number, source in enumerate(sources)
            ]
            return client.gather(futures)
        except AttributionError:
            raise
        except Exception as exc:
            if is_cluster_failure(exc):
                raise cluster_failure(scheduler, during, exc) from exc
            raise

    checked = run(_check_partition, during="the partition checks")
    _check_layout(files, [c[1] for c in checked])
    entity_labels = np.sort(pd.unique(np.concatenate([c[2] for c in checked])))
    entity_index = pd.Index(entity_labels)
    shared["entities"] = client.scatter(entity_index, broadcast=True)
    if cache:
        sources = [
            client.submit(_encode, file, columns, shared["entities"], shared["totals"])
            for file in files
        ]

    exposures = run(_exposure_pass, family, during="the exposure pass")
    exposure = np.sum([e[0] for e in exposures], axis=0)
    signal = np.sum([e[1] for e in exposures], axis=0)
    mass = float(sum(e[2] for e in exposures))
    if mass <= 0:
        raise ParameterError(
            "every allocatable group total is zero: there is nothing to allocate and no rate "
            "can be estimated.",
            fix="check the totals (sales or contributions) and the window.",
        )
    estimable = exposure > 0
    active = estimable & (signal > 0)
    levels = run(_level_pass, family, active, during="the level pass")
    level = float(sum(x[0] for x in levels) / sum(x[1] for x in levels))
    const = float(sum(x[2] for x in levels))
    n_groups = int(sum(x[3] for x in levels))
    theta = np.full(len(entity_labels), level)

    model = _PartitionedModel(run, family, active, exposure, const, on_pass)
    started = time.perf_counter()
    result = iterate(model, theta, tol, max_iter, accelerate)
    seconds = time.perf_counter() - started
    rate = model.rate(result.theta)

    staging = None
    if output is not None:
        staging = f"{os.fspath(output).rstrip('/')}.partial-{uuid.uuid4().hex[:8]}"
        os.makedirs(staging)
    try:
        allocated = run(
            _allocate_partition,
            family,
            active,
            rate,
            staging,
            during="the allocation pass",
            numbered=True,
        )
        credit = np.sum([a[0] for a in allocated], axis=0)
        errors = tuple(float(a[1]) for a in allocated)
        loglik = float(sum(a[2] for a in allocated)) + const
        loglik = loglik if np.isfinite(loglik) else -np.inf
        for file, error in zip(files, errors, strict=True):
            if not error <= MASS_TOL:
                raise DataValidationError(
                    problem=f"partition {file}: its credits miss its groups' totals by "
                    f"{error:.3g} (relative); the allocation was not written.",
                    fix="the partition changed during the fit, or holds corrupt values: "
                    "rewrite it and run again.",
                    file=file,
                    code="mass_not_conserved",
                )
        if staging is not None:
            failed = verify_allocation(staging, group_totals, columns)
            if failed:
                raise DataValidationError(
                    problem=f"the written partition {failed[0][0]} does not conserve mass "
                    f"(relative error {failed[0][1]:.3g}); the allocation was not written.",
                    fix="check the disk the output is written to, then run again.",
                    file=failed[0][0],
                    code="mass_not_conserved",
                )
            os.replace(staging, os.fspath(output))
            staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

    return DistributedFit(
        family=family,
        entity_labels=entity_labels,
        rate=np.where(estimable, rate, np.nan),
        estimable=estimable,
        entity_credit=credit,
        entity_exposure=np.sum([e[3] for e in exposures], axis=0),
        entity_groups=np.sum([e[4] for e in exposures], axis=0).astype(np.int64),
        loglik=loglik,
        objective=loglik,
        trace=np.asarray(result.trace),
        iterations=result.evaluations,
        cycles=result.cycles,
        rejected=result.rejected,
        converged=result.converged,
        tol=tol,
        mass_error=max(errors, default=0.0),
        partition_mass_error=errors,
        files=layout.files,
        n_rows=layout.total_rows,
        n_groups=n_groups,
        setup_passes=3,
        seconds=seconds,
        output=None if output is None else os.fspath(output),
    )
