"""What threatens identification of channel effects, measured before any fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.validation import IdentificationMetrics

CORRELATION_LIMIT = 0.8
VIF_LIMIT = 10.0
CONDITION_LIMIT = 30.0
MIN_ACTIVE_SHARE = 0.2
MIN_ACTIVE_PERIODS = 10
MIN_SPEND_VARIATION = 0.01  # coefficient of variation below which spend counts as constant
MIN_PERIODS_PER_PARAMETER = 5.0
# Default MMM: adstock decay, saturation slope and half-point, and a coefficient per channel.
PARAMETERS_PER_CHANNEL = 4
FIXED_PARAMETERS = 2  # intercept and noise scale (trend is among the controls)


def measure(
    spend: pd.DataFrame, n_controls: int, n_observations: int, n_geos: int
) -> tuple[IdentificationMetrics, list[Finding]]:
    """``spend``: periods x channels (national totals)."""
    channels = list(spend.columns)
    values = spend.to_numpy(dtype=float)
    std = values.std(axis=0)
    varying = std > 0
    z = np.zeros_like(values)
    z[:, varying] = (values[:, varying] - values[:, varying].mean(axis=0)) / std[varying]
    corr = np.corrcoef(z, rowvar=False) if len(channels) > 1 else np.ones((1, 1))
    corr = np.nan_to_num(np.atleast_2d(corr))
    findings = _correlation_findings(channels, corr)
    if len(channels) > 1:
        vif, vif_findings = _vif(channels, corr)
        condition, condition_findings = _condition(z[:, varying])
        findings += vif_findings + condition_findings
    else:
        vif, condition = {channels[0]: 1.0}, 1.0
    findings += _activity_findings(spend)
    n_parameters = (
        FIXED_PARAMETERS + PARAMETERS_PER_CHANNEL * len(channels) + n_controls + max(0, n_geos - 1)
    )
    per_parameter = n_observations / n_parameters
    if per_parameter < MIN_PERIODS_PER_PARAMETER:
        findings.append(
            Finding(
                code="few_observations_per_parameter",
                severity="warning",
                value=round(per_parameter, 3),
                threshold=MIN_PERIODS_PER_PARAMETER,
                rule=f"observations per parameter < {MIN_PERIODS_PER_PARAMETER:g}",
                message=f"{n_observations} observations for about {n_parameters} parameters "
                f"({per_parameter:.1f} each); expect wide intervals and strong prior influence. "
                "Use more history, fewer controls, or lift-test calibration.",
            )
        )
    metrics = IdentificationMetrics(
        spend_correlation={
            a: {b: round(float(corr[i, j]), 4) for j, b in enumerate(channels)}
            for i, a in enumerate(channels)
        },
        vif=vif,
        condition_number=condition,
        n_parameters=n_parameters,
        periods_per_parameter=round(per_parameter, 4),
    )
    return metrics, findings


def _correlation_findings(channels: list[str], corr: np.ndarray) -> list[Finding]:
    findings = []
    for i in range(len(channels)):
        for j in range(i + 1, len(channels)):
            r = float(corr[i, j])
            if abs(r) >= CORRELATION_LIMIT:
                findings.append(
                    Finding(
                        code="high_spend_correlation",
                        severity="warning",
                        value=round(r, 4),
                        threshold=CORRELATION_LIMIT,
                        rule=f"|r| >= {CORRELATION_LIMIT}",
                        subject=f"{channels[i]} / {channels[j]}",
                        message=f"spend of {channels[i]} and {channels[j]} moves together "
                        f"(r = {r:.2f}); the model cannot tell their effects apart from this data. "
                        "Calibrate one with a lift test, or vary them independently.",
                    )
                )
    return findings


def _vif(channels: list[str], corr: np.ndarray) -> tuple[dict[str, float | None], list[Finding]]:
    """Variance inflation per channel (None: an exact combination of the others)."""
    findings = []
    vif: dict[str, float | None] = {}
    singular = np.linalg.cond(corr) > 1e12
    inverse = None if singular else np.linalg.inv(corr)
    for k, channel in enumerate(channels):
        value = None if inverse is None else float(inverse[k, k])
        vif[channel] = None if value is None else round(value, 4)
        if value is None or value > VIF_LIMIT:
            findings.append(
                Finding(
                    code="high_vif",
                    severity="warning",
                    subject=channel,
                    value=value,
                    threshold=VIF_LIMIT,
                    rule=f"VIF > {VIF_LIMIT:g}",
                    message=f"{channel}'s spend is "
                    + ("an exact combination of" if value is None else "largely explained by")
                    + " the other channels' (VIF "
                    + ("infinite" if value is None else f"{value:.1f}")
                    + "); its effect will be weakly identified.",
                )
            )
    return vif, findings


def _condition(z: np.ndarray) -> tuple[float | None, list[Finding]]:
    """Condition number of the standardised, varying media columns (None: singular)."""
    cond = float(np.linalg.cond(z)) if z.shape[1] > 1 else 1.0
    condition = None if not np.isfinite(cond) or cond > 1e12 else round(cond, 4)
    if condition is not None and condition <= CONDITION_LIMIT:
        return condition, []
    finding = Finding(
        code="high_condition_number",
        severity="warning",
        value=condition,
        threshold=CONDITION_LIMIT,
        rule=f"condition number > {CONDITION_LIMIT:g}",
        message="the standardised media matrix is ill-conditioned ("
        + ("singular" if condition is None else f"{condition:.1f}")
        + "); channel effects trade off against each other. Lift-test priors help.",
    )
    return condition, [finding]


def _activity_findings(spend: pd.DataFrame) -> list[Finding]:
    findings = []
    n_periods = len(spend)
    for channel in spend.columns:
        active = int((spend[channel] > 0).sum())
        share = active / n_periods if n_periods else 0.0
        values = spend[channel].to_numpy(dtype=float)
        mean = float(values.mean()) if n_periods else 0.0
        if active and np.std(values) <= MIN_SPEND_VARIATION * mean:
            # Spend that never moves cannot be told apart from base demand: whatever the
            # model gives the channel comes from its priors.
            findings.append(
                Finding(
                    code="constant_spend",
                    severity="warning",
                    subject=channel,
                    value=round(float(np.std(values) / mean), 6),
                    threshold=MIN_SPEND_VARIATION,
                    rule=f"std of spend <= {MIN_SPEND_VARIATION:.0%} of its mean",
                    message=f"{channel} spends about the same every period ({mean:,.2f}); the "
                    "data cannot separate its effect from base demand, so its contribution and "
                    "ROAS will come from the priors. Calibrate it with a lift test, or treat "
                    "its figures as assumptions.",
                )
            )
            continue
        if active < MIN_ACTIVE_PERIODS or share < MIN_ACTIVE_SHARE:
            findings.append(
                Finding(
                    code="few_active_periods",
                    severity="warning",
                    subject=channel,
                    value=active,
                    threshold=max(MIN_ACTIVE_PERIODS, MIN_ACTIVE_SHARE * n_periods),
                    rule=f"active periods < {MIN_ACTIVE_PERIODS} or < {MIN_ACTIVE_SHARE:.0%}",
                    message=f"{channel} spends in only {active} of {n_periods} periods "
                    f"({share:.0%}); its saturation curve will rest mostly on the prior.",
                )
            )
    return findings
