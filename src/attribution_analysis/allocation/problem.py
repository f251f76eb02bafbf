"""The allocation problem as arrays: groups with totals, entities, and a long exposure table.

Group ``b`` (a brick, or a channel x period x geo cell) has an observed total ``y_b >= 0``;
entity ``h`` (an HCP, or a campaign) has exposure ``w_bh >= 0`` in the groups it touches.
The long table holds one row per (group, entity) pair as integer codes (int32) and float64
exposures, so every step of the engine is a vectorised pass over three arrays.

Checks here are the ones no model can repair: negative or non-finite totals or exposures,
duplicate pairs, pairs pointing at groups without a total. Each raises a
:class:`~attribution_analysis.errors.DataValidationError` naming file, column and rows when
the caller says where the data came from (:class:`Origin`). Situations that are legitimate but
leave something unallocatable (a group with no entity, a group with positive total and zero
exposure, an entity with no exposure) are *reported* by :meth:`AllocationProblem.issues`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from attribution_analysis.errors import DataValidationError

LINE = "_line"


@dataclass(frozen=True)
class Origin:
    """Where the totals and the pairs came from, for error messages."""

    totals_file: str | None = None
    total_column: str = "total"
    group_column: str = "group"
    pairs_file: str | None = None
    entity_column: str = "entity"
    exposure_column: str = "exposure"


@dataclass(frozen=True)
class ProblemIssues:
    """What the data leave unallocatable or uninformative (reported, not dropped)."""

    groups_without_entities: np.ndarray  # group codes with no pair row
    groups_zero_exposure: np.ndarray  # group codes with pair rows but zero total exposure
    entities_without_exposure: np.ndarray  # entity codes with no positive exposure

    @property
    def unallocatable(self) -> np.ndarray:
        return np.union1d(self.groups_without_entities, self.groups_zero_exposure)


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """Totals per group and the sparse exposure table, in integer codes."""

    group_labels: np.ndarray  # (G,) object
    entity_labels: np.ndarray  # (H,) object
    totals: np.ndarray  # (G,) float64
    group: np.ndarray  # (N,) int32
    entity: np.ndarray  # (N,) int32
    exposure: np.ndarray  # (N,) float64
    origin: Origin = field(default_factory=Origin)

    @property
    def n_groups(self) -> int:
        return len(self.group_labels)

    @property
    def n_entities(self) -> int:
        return len(self.entity_labels)

    @property
    def n_rows(self) -> int:
        return len(self.group)

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """Exposure as a (groups x entities) CSR matrix; ``matrix.T`` is its CSC transpose.

        Both products the EM needs (``W @ rate`` and ``W.T @ ratio``) are single compiled
        passes over the nonzeros, about twice the cost of just reading them once.
        """
        return sp.csr_matrix(
            (self.exposure, (self.group, self.entity)), shape=(self.n_groups, self.n_entities)
        )

    @cached_property
    def group_exposure(self) -> np.ndarray:
        return np.bincount(self.group, weights=self.exposure, minlength=self.n_groups)

    @cached_property
    def entity_exposure(self) -> np.ndarray:
        return np.bincount(self.entity, weights=self.exposure, minlength=self.n_entities)

    @cached_property
    def entity_groups(self) -> np.ndarray:
        """Number of groups where each entity has positive exposure."""
        return np.bincount(self.entity[self.exposure > 0], minlength=self.n_entities)

    @cached_property
    def group_sizes(self) -> np.ndarray:
        """Number of entities with positive exposure in each group."""
        return np.bincount(self.group[self.exposure > 0], minlength=self.n_groups)

    @cached_property
    def blocks(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Connected blocks of the group-entity graph: (count, group block, entity block).

        Rates in different blocks never meet in one group, so their relative level is not
        compared by the data (campaigns of different channels, for instance).
        """
        positive = self.exposure > 0
        n = self.n_groups + self.n_entities
        rows = self.group[positive]
        cols = self.entity[positive].astype(np.int64) + self.n_groups
        graph = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        count, labels = connected_components(graph, directed=False)
        return count, labels[: self.n_groups], labels[self.n_groups :]

    def issues(self) -> ProblemIssues:
        has_rows = np.bincount(self.group, minlength=self.n_groups) > 0
        positive = self.group_exposure > 0
        return ProblemIssues(
            groups_without_entities=np.flatnonzero(~has_rows),
            groups_zero_exposure=np.flatnonzero(has_rows & ~positive),
            entities_without_exposure=np.flatnonzero(self.entity_exposure <= 0),
        )


def _rows(frame: pd.DataFrame, mask: np.ndarray) -> list[int]:
    if LINE in frame:
        return [int(x) for x in frame.loc[mask, LINE]]
    return [int(x) for x in np.flatnonzero(mask)]


def _check_values(
    values: np.ndarray, frame: pd.DataFrame, file: str | None, column: str, what: str
) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataValidationError(
            problem=f"{what} is missing or not a finite number.",
            fix=f"give every row a finite, non-negative {column}.",
            file=file,
            column=column,
            rows=_rows(frame, bad),
            code="non_finite",
        )
    negative = values < 0
    if negative.any():
        raise DataValidationError(
            problem=f"{what} {values[negative][0]:g} is negative; the allocation splits "
            "non-negative totals by non-negative exposures.",
            fix=f"correct the {column} (a negative MMM contribution cannot be split across "
            "campaigns; report it separately).",
            file=file,
            column=column,
            rows=_rows(frame, negative),
            code="negative_value",
        )


def build_problem(
    totals: pd.DataFrame,
    pairs: pd.DataFrame,
    entities: Sequence[str] | None = None,
    origin: Origin | None = None,
) -> AllocationProblem:
    """Build an :class:`AllocationProblem` from two long tables, checking them.

    Parameters
    ----------
    totals
        One row per group: columns ``origin.group_column`` and ``origin.total_column``
        (and ``_line``, the file line, when loaded from a file).
    pairs
        One row per (group, entity): ``origin.group_column``, ``origin.entity_column``,
        ``origin.exposure_column`` (and ``_line``).
    entities
        Every entity to report, including ones in no group (cold start); defaults to the
        entities present in ``pairs``, in order of first appearance sorted by label.
    origin
        File and column names used in error messages.

    Raises
    ------
    DataValidationError
        Negative or non-finite totals or exposures, duplicate groups, duplicate
        (group, entity) rows, or pairs naming a group that has no total.
    """
    origin = origin or Origin()
    gcol, ecol = origin.group_column, origin.entity_column
    y = pd.to_numeric(totals[origin.total_column], errors="coerce").to_numpy(dtype=float)
    _check_values(y, totals, origin.totals_file, origin.total_column, "total")
    w = pd.to_numeric(pairs[origin.exposure_column], errors="coerce").to_numpy(dtype=float)
    _check_values(w, pairs, origin.pairs_file, origin.exposure_column, "exposure")

    group_labels = totals[gcol].astype(str).to_numpy(dtype=object)
    dup = pd.Series(group_labels).duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(
            problem=f"group '{group_labels[dup][0]}' has more than one total.",
            fix=f"keep one row per {gcol} (sum them if they are parts of one total).",
            file=origin.totals_file,
            column=gcol,
            rows=_rows(totals, dup),
            code="duplicate_rows",
        )
    group_index = pd.Index(group_labels)
    group = group_index.get_indexer(pairs[gcol].astype(str).to_numpy())
    unknown = group < 0
    if unknown.any():
        example = pairs[gcol].astype(str).to_numpy()[unknown][0]
        raise DataValidationError(
            problem=f"{gcol} '{example}' has exposure rows but no total"
            + (f" in {origin.totals_file}" if origin.totals_file else "")
            + ".",
            fix="add its total (0 if nothing was observed) or remove its rows.",
            file=origin.pairs_file,
            column=gcol,
            rows=_rows(pairs, unknown),
            code="unknown_group",
        )

    pair_entities = pairs[ecol].astype(str).to_numpy(dtype=object)
    if entities is None:
        entity_labels = np.array(sorted(set(pair_entities)), dtype=object)
    else:
        entity_labels = np.asarray(list(entities), dtype=object)
        if pd.Index(entity_labels).has_duplicates:
            raise DataValidationError(
                problem="the entity list names some entities twice.",
                fix="pass each entity once.",
                code="duplicate_rows",
            )
    entity = pd.Index(entity_labels).get_indexer(pair_entities)
    missing = entity < 0
    if missing.any():
        raise DataValidationError(
            problem=f"{ecol} '{pair_entities[missing][0]}' has exposure rows but is not in the "
            "entity list.",
            fix="add it to the entity table (with its covariates) or remove its rows.",
            file=origin.pairs_file,
            column=ecol,
            rows=_rows(pairs, missing),
            code="unknown_entity",
        )

    # Duplicate pairs would be summed silently by the sparse matrix; refuse them instead.
    key = group.astype(np.int64) * max(len(entity_labels), 1) + entity
    order = np.argsort(key, kind="stable")
    same = np.diff(key[order]) == 0
    if same.any():
        dup_mask = np.zeros(len(key), dtype=bool)
        dup_mask[order[1:][same]] = True
        dup_mask[order[:-1][same]] = True
        first = order[:-1][same][0]
        raise DataValidationError(
            problem=f"duplicate rows for {gcol} '{group_labels[group[first]]}' and {ecol} "
            f"'{entity_labels[entity[first]]}'.",
            fix=f"keep one row per ({gcol}, {ecol}); sum the exposures if they are parts of one.",
            file=origin.pairs_file,
            column=ecol,
            rows=_rows(pairs, dup_mask),
            code="duplicate_rows",
        )
    return AllocationProblem(
        group_labels=group_labels,
        entity_labels=entity_labels,
        totals=y,
        group=group.astype(np.int32),
        entity=entity.astype(np.int32),
        exposure=w,
        origin=origin,
    )


def problem_from_arrays(
    totals: np.ndarray,
    group: np.ndarray,
    entity: np.ndarray,
    exposure: np.ndarray,
    n_entities: int | None = None,
) -> AllocationProblem:
    """An :class:`AllocationProblem` straight from codes (benchmarks, simulations).

    Values are checked (finite, non-negative, codes in range); duplicate pairs are not,
    since that needs a sort the caller usually knows to be unnecessary.
    """
    totals = np.asarray(totals, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    group = np.asarray(group, dtype=np.int32)
    entity = np.asarray(entity, dtype=np.int32)
    n_entities = int(entity.max()) + 1 if n_entities is None else n_entities
    for name, values in (("totals", totals), ("exposure", exposure)):
        if not np.isfinite(values).all() or (values < 0).any():
            raise DataValidationError(
                problem=f"{name} must be finite and non-negative.",
                fix=f"check the {name} array.",
                column=name,
                rows=[int(i) for i in np.flatnonzero(~(values >= 0))[:5]],
                code="negative_value",
            )
    if len(group) and (group.min() < 0 or group.max() >= len(totals)):
        raise DataValidationError(problem="group codes out of range.", column="group")
    if len(entity) and (entity.min() < 0 or entity.max() >= n_entities):
        raise DataValidationError(problem="entity codes out of range.", column="entity")
    return AllocationProblem(
        group_labels=np.arange(len(totals)).astype(str).astype(object),
        entity_labels=np.arange(n_entities).astype(str).astype(object),
        totals=totals,
        group=group,
        entity=entity,
        exposure=exposure,
    )
