"""Per-channel spend limits: resolved to currency, checked against the budget before any work."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribution_analysis.contracts.budget import ChannelBound
from attribution_analysis.errors import ParameterError, arg

_EPS = 1e-9
OBSERVED_CAP_LABEL = "highest spend seen in the data (per period x horizon)"


@dataclass(frozen=True)
class Box:
    low: np.ndarray  # (C,) currency over the horizon
    high: np.ndarray  # (C,)
    sources: list[str]  # per channel: where its limits come from, for error messages


def unknown_channels(names: list[str], channels: list[str], where: str) -> None:
    """Refuse channel names the model does not have (typos would otherwise be ignored)."""
    unknown = [n for n in names if n not in channels]
    if unknown:
        raise ParameterError(
            f"{where} names channel(s) {', '.join(repr(u) for u in unknown)} that the model "
            f"does not have.",
            fix=f"use the MMM's channel names: {', '.join(channels)}.",
        )


def resolve_box(
    bounds: list[ChannelBound],
    max_change: float | None,
    channels: list[str],
    current: np.ndarray,
    total_budget: float,
    observed_cap: np.ndarray | None = None,
) -> Box:
    """Effective [low, high] per channel; the tighter of absolute and relative limits wins.

    ``observed_cap`` (C,), when given, is the highest spend the data has seen per period
    times the horizon: spend above it is extrapolation, so it caps every channel too.
    """
    unknown_channels([b.channel for b in bounds], channels, "the bounds")
    seen: set[str] = set()
    for b in bounds:
        if b.channel in seen:
            raise ParameterError(
                f"the bounds give channel {b.channel!r} more than once.",
                fix="merge its limits into one entry.",
            )
        seen.add(b.channel)
    by_channel = {b.channel: b for b in bounds}
    low = np.zeros(len(channels))
    high = np.full(len(channels), total_budget)
    sources = []
    for c, channel in enumerate(channels):
        b = by_channel.get(channel)
        parts = []
        if b is None:
            if max_change is not None:
                low[c] = max(0.0, current[c] * (1 - max_change))
                high[c] = current[c] * (1 + max_change)
                parts.append(f"max_change ±{max_change:g} of current {current[c]:,.2f}")
        else:
            if b.min_spend is not None:
                low[c] = max(low[c], b.min_spend)
                parts.append(f"min_spend {b.min_spend:,.2f}")
            if b.max_spend is not None:
                high[c] = min(high[c], b.max_spend)
                parts.append(f"max_spend {b.max_spend:,.2f}")
            if b.min_change is not None:
                low[c] = max(low[c], current[c] * (1 + b.min_change))
                parts.append(f"min_change {b.min_change:+g} of current {current[c]:,.2f}")
            if b.max_change is not None:
                high[c] = min(high[c], current[c] * (1 + b.max_change))
                parts.append(f"max_change {b.max_change:+g} of current {current[c]:,.2f}")
        if observed_cap is not None and observed_cap[c] < high[c]:
            high[c] = observed_cap[c]
            parts.append(f"{OBSERVED_CAP_LABEL} {observed_cap[c]:,.2f}")
        if low[c] > total_budget + _EPS * max(1.0, total_budget):
            raise ParameterError(
                f"channel {channel!r}: its minimum {low[c]:,.2f} (from {'; '.join(parts)}) is "
                f"above the whole budget {total_budget:,.2f}.",
                fix="raise the total budget or lower this minimum.",
            )
        if low[c] > high[c] + _EPS * max(1.0, high[c]):
            raise ParameterError(
                f"channel {channel!r}: its limits leave no room (lowest {low[c]:,.2f} > "
                f"highest {high[c]:,.2f}) from {'; '.join(parts)}.",
                fix="loosen one of these limits" + _cap_hint(parts) + ".",
            )
        high[c] = max(high[c], low[c])
        sources.append(channel + (f" ({'; '.join(parts)})" if parts else " (no limits)"))
    _check_feasible(low, high, total_budget, sources)
    return Box(low, high, sources)


def _cap_hint(parts: list[str], cap: bool = True) -> str:
    """Name the switches that lift the two default limits when they are among the causes."""
    text = " ".join(parts)
    hints = []
    if cap and OBSERVED_CAP_LABEL in text:
        hints.append(
            f"the observed-spend cap lifts with {arg('allow_extrapolation')} (true), at the "
            "price of trusting the curves beyond the data"
        )
    if "max_change ±" in text:
        hints.append(
            f"the {arg('max_change')} limit on channels without their own bounds lifts with "
            f"{arg('max_change')} none (null in JSON)"
        )
    return f"; {'; '.join(hints)}" if hints else ""


def _check_feasible(low: np.ndarray, high: np.ndarray, total: float, sources: list[str]) -> None:
    tolerance = _EPS * max(1.0, total)
    if low.sum() > total + tolerance:
        binding = [s for s, lo in zip(sources, low, strict=True) if lo > 0]
        raise ParameterError(
            f"the channel minimums add up to {low.sum():,.2f}, more than the total budget "
            f"{total:,.2f}. Minimums from: {'; '.join(binding)}.",
            fix="raise the total budget or lower these minimums"
            + _cap_hint(binding, cap=False)
            + ".",
        )
    if high.sum() < total - tolerance:
        raise ParameterError(
            f"the channel maximums add up to {high.sum():,.2f}, less than the total budget "
            f"{total:,.2f}, so the budget cannot be spent. Maximums from: {'; '.join(sources)}.",
            fix="lower the total budget or raise these maximums" + _cap_hint(sources) + ".",
        )


def violation(spend: np.ndarray, box: Box, total: float) -> float:
    """Largest breach of the box or of the budget, in currency (0 when feasible)."""
    return float(
        max(
            0.0,
            np.max(box.low - spend, initial=0.0),
            np.max(spend - box.high, initial=0.0),
            abs(spend.sum() - total),
        )
    )
