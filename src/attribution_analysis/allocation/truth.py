"""Recovery of the truth in simulated workspaces (``truth/``), for evaluation only.

Nothing here feeds the fit: the step reads ``truth/`` after allocating, to report how close
the credit and the rates came, next to two references computed on the same exposures: the
oracle (split with the true rates: the ceiling) and the naive split by exposure alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from attribution_analysis.allocation import diagnostics
from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.contracts.allocation import TruthRecovery
from attribution_analysis.workspace import Workspace


@dataclass(frozen=True)
class Truth:
    """True credit per row of the problem (0 where truth has no row) and true rates."""

    credit: np.ndarray  # (N,)
    rate: np.ndarray  # (H,) NaN where unknown
    matched: np.ndarray  # (N,) bool: the row exists in truth
    files: dict[str, str]  # truth files read -> sha256


def _align(
    problem: AllocationProblem, group: pd.Series, entity: pd.Series, credit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    key = pd.MultiIndex.from_arrays([group.astype(str), entity.astype(str)])
    ours = pd.MultiIndex.from_arrays(
        [
            problem.group_labels[problem.group].astype(str),
            problem.entity_labels[problem.entity].astype(str),
        ]
    )
    position = key.get_indexer(ours)
    matched = position >= 0
    aligned = np.zeros(problem.n_rows)
    aligned[matched] = credit[position[matched]]
    return aligned, matched


def load_truth(ws: Workspace, source: str, problem: AllocationProblem) -> Truth | None:
    """The simulator's truth aligned with ``problem``, or None for a real workspace."""
    if source == "hcp-brick":
        pair_path = ws.root / "truth" / "pair_truth.csv"
        rate_path = ws.root / "truth" / "hcp_truth.csv"
        if not (pair_path.is_file() and rate_path.is_file()):
            return None
        pairs = pd.read_csv(pair_path, dtype={"hcp_id": str, "brick_id": str})
        credit, matched = _align(
            problem, pairs["brick_id"], pairs["hcp_id"], pairs["z_true"].to_numpy(dtype=float)
        )
        rates = pd.read_csv(rate_path, dtype={"hcp_id": str}).set_index("hcp_id")["lambda_true"]
    else:
        pair_path = ws.root / "truth" / "campaign_split.csv"
        rate_path = ws.root / "truth" / "campaign_productivity.csv"
        if not (pair_path.is_file() and rate_path.is_file()):
            return None
        pairs = pd.read_csv(pair_path, dtype={"campaign": str, "channel": str})
        keys = ["channel", "date", *(["geo"] if "geo" in pairs.columns else [])]
        label = pairs[keys[0]].astype(str)
        for key in keys[1:]:
            label = label + "|" + pairs[key].astype(str)
        credit, matched = _align(
            problem, label, pairs["campaign"], pairs["contribution"].to_numpy(dtype=float)
        )
        rates = pd.read_csv(rate_path, dtype={"campaign": str}).set_index("campaign")["lambda_true"]
    rate = rates.reindex([str(e) for e in problem.entity_labels]).to_numpy(dtype=float)
    files = {ws.relative(p): ws.sha256(p) for p in (pair_path, rate_path)}
    return Truth(credit=credit, rate=rate, matched=matched, files=files)


def split_with(problem: AllocationProblem, rate: np.ndarray) -> np.ndarray:
    """Credit per row when the group totals are split by ``rate`` x exposure."""
    numerator = np.nan_to_num(rate)[problem.entity] * problem.exposure
    total = np.bincount(problem.group, numerator, problem.n_groups)[problem.group]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, problem.totals[problem.group] * numerator / total, 0.0)


def recovery_report(
    problem: AllocationProblem,
    truth: Truth,
    allocated: np.ndarray,
    rate: np.ndarray,
    productivity: np.ndarray,
    entity_block: np.ndarray,
    identified: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    compare_credit: bool = True,
) -> TruthRecovery:
    """Compare credit, rates and intervals with the truth (see :class:`TruthRecovery`).

    ``compare_credit`` is False when the totals allocated are not the simulator's (an
    explicit contributions file): the true split of other totals says nothing about ours,
    so only the rates are compared.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rate, true_log_rate = np.log(rate), np.log(truth.rate)
    metrics = diagnostics.recovery(allocated, truth.credit, log_rate, true_log_rate, entity_block)
    n_blocks = int(entity_block.max(initial=0)) + 1
    known = np.isfinite(truth.rate)
    true_relative = diagnostics.relative_productivity(truth.rate, known, entity_block, n_blocks)
    usable = identified & np.isfinite(productivity) & known
    spearman = None
    # Undefined when either side is constant, e.g. one rate per channel (covariates=
    # ['channel']): there is no ranking to compare, which is not a non-finite result.
    ranked = usable.sum() >= 3 and np.ptp(productivity[usable]) > 0
    if ranked and np.ptp(true_relative[usable]) > 0:
        spearman = float(spearmanr(productivity[usable], true_relative[usable]).statistic)
    if not compare_credit:
        return TruthRecovery(
            allocated_corr=None,
            allocated_rmse=None,
            log_rate_corr=metrics["log_rate_corr"],
            log_rate_rmse=metrics["log_rate_rmse"],
            rank_spearman=spearman,
            n_pairs=0,
        )
    coverage = None
    if lower is not None and upper is not None:
        inside = (truth.credit >= lower - 1e-9) & (truth.credit <= upper + 1e-9)
        coverage = float(np.mean(inside))
    return TruthRecovery(
        **metrics,
        oracle_allocated_corr=diagnostics.correlation(
            split_with(problem, truth.rate), truth.credit
        ),
        naive_allocated_corr=diagnostics.correlation(
            split_with(problem, np.ones(problem.n_entities)), truth.credit
        ),
        rank_spearman=spearman,
        interval_coverage=coverage,
        n_pairs=int(truth.matched.sum()),
    )
