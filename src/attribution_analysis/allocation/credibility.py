"""Bühlmann-credibility (Fay–Herriot style) campaign split: a yardstick, not our estimator.

This is the peer method our allocation is measured against (PyMC-Marketing's development
notebook on splitting a channel's MMM contribution across campaigns), implemented from its
published description. It is used only in tests and in ``benchmarks/allocation_pooling.py``;
the allocate step never calls it.

Method. For campaign k on day t with reach m_kt > 0, the naive "own story" is the day's
channel total handed out by clicks, per reached user, on the log scale::

    X_kt = log( y_t * clicks_kt / sum_j clicks_jt / m_kt )

Bühlmann–Straub with weights m_kt (reach): X̄_k the reach-weighted mean of campaign k,
within variance s2 = sum_kt m_kt (X_kt - X̄_k)^2 / sum_k (T_k - 1), between variance
tau2 = (sum_k m_k (X̄_k - X̄)^2 - s2 (K - 1)) / (m - sum_k m_k^2 / m) (moments, floored at 0),
k = s2 / tau2 and credibility Z_k = m_k / (m_k + k), with m_k the campaign's total reach.
The credibility estimate is Z_k X̄_k + (1 - Z_k) X̄_Z, shrinking toward the credibility-
weighted channel mean X̄_Z = sum Z_k X̄_k / sum Z_k (the reach-weighted mean X̄ when every
Z_k is 0). Daily shares follow rate_k x m_kt, so the pieces add up to y_t on every day.

Days where a campaign has no click (log 0) or the channel total is 0 give no naive rate and
are left out of the moments; the campaign is still split on those days by its rate x reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribution_analysis.allocation.problem import AllocationProblem
from attribution_analysis.errors import ParameterError


@dataclass(frozen=True, eq=False)
class CredibilityFit:
    """The credibility split; arrays aligned with the problem's codes and rows."""

    naive_log_rate: np.ndarray  # (H,) reach-weighted mean of X_kt; NaN without observations
    credibility: np.ndarray  # (H,) Z_k
    k: float  # s2 / tau2 (inf when tau2 is 0: full pooling)
    within_variance: float  # s2
    between_variance: float  # tau2
    rate: np.ndarray  # (H,) exp(credibility estimate): outcome per reached user
    share: np.ndarray  # (N,) share of the group total, row order of the problem
    allocated: np.ndarray  # (N,)


def credibility_split(problem: AllocationProblem, clicks: np.ndarray) -> CredibilityFit:
    """Split each group's total by credibility-shrunk per-reach rates (the yardstick).

    Parameters
    ----------
    problem
        Daily channel totals as groups, campaigns as entities, **reach** as the exposure.
    clicks
        (N,) clicks of each row of the problem.

    Returns
    -------
    CredibilityFit
    """
    clicks = np.asarray(clicks, dtype=float)
    if clicks.shape != problem.exposure.shape or not (clicks >= 0).all():
        raise ParameterError(
            "clicks must be one finite, non-negative value per row of the problem.",
            fix="align the clicks with the problem's rows.",
        )
    n_h = problem.n_entities
    reach = problem.exposure
    group_clicks = np.bincount(problem.group, clicks, problem.n_groups)
    totals = problem.totals[problem.group]
    usable = (reach > 0) & (clicks > 0) & (totals > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        naive = np.log(totals * clicks / group_clicks[problem.group] / reach)
    ent, x, m = problem.entity[usable], naive[usable], reach[usable]
    m_k = np.bincount(ent, m, n_h)
    counts = np.bincount(ent, minlength=n_h)
    observed = m_k > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        x_k = np.where(observed, np.bincount(ent, m * x, n_h) / m_k, np.nan)
    dof = float(np.sum(np.maximum(counts[observed] - 1, 0)))
    s2 = float(np.sum(m * (x - x_k[ent]) ** 2) / dof) if dof > 0 else 0.0
    m_all = float(m_k.sum())
    x_bar = float(np.sum(m_k[observed] * x_k[observed]) / m_all)
    n_obs = int(observed.sum())
    denominator = m_all - float(np.sum(m_k**2)) / m_all
    spread = float(np.sum(m_k[observed] * (x_k[observed] - x_bar) ** 2))
    tau2 = max((spread - s2 * (n_obs - 1)) / denominator, 0.0) if denominator > 0 else 0.0
    if tau2 > 0:
        k = s2 / tau2
        z = np.where(observed, m_k / (m_k + k), 0.0)
    else:
        k = np.inf
        z = np.zeros(n_h)
    centre = float(np.sum(z * np.nan_to_num(x_k)) / z.sum()) if z.sum() > 0 else x_bar
    log_rate = np.where(observed, z * np.nan_to_num(x_k) + (1.0 - z) * centre, centre)
    rate = np.exp(log_rate)
    weight = rate[problem.entity] * reach
    group_weight = np.bincount(problem.group, weight, problem.n_groups)[problem.group]
    share = np.divide(weight, group_weight, out=np.zeros_like(weight), where=group_weight > 0)
    return CredibilityFit(
        naive_log_rate=x_k,
        credibility=z,
        k=k,
        within_variance=s2,
        between_variance=tau2,
        rate=rate,
        share=share,
        allocated=totals * share,
    )
