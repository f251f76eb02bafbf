"""Rule-based credit (the comparison baseline): first, last, last non-direct, linear, time
decay and position-based.

Each rule gives every touch of a converting journey a weight, the weights of a journey sum
to 1, and a channel's credit is the sum of its touches' weights times the journey's
conversions (and value). All rules are array expressions over the flat touches.
"""

from __future__ import annotations

import numpy as np

from attribution_analysis.paths.data import PathData

RULES = {
    "first_touch": "all credit to the first touch of each converting journey",
    "last_touch": "all credit to the last touch",
    "last_non_direct": "all credit to the last touch that is not a direct channel (the last "
    "touch when every touch is direct)",
    "linear": "credit split equally over the touches",
    "time_decay": "touch weight 2^(-age / half-life), age = days before the journey's last "
    "touch, normalised per journey",
    "position_based": "first and last touches get fixed shares (default 40% each), the middle "
    "touches share the rest equally; one touch gets all, two touches split evenly",
}


def touch_weights(
    data: PathData,
    rule: str,
    *,
    half_life_days: float = 7.0,
    position_first: float = 0.4,
    position_last: float = 0.4,
    direct_channels: tuple[str, ...] = ("direct",),
) -> np.ndarray:
    """(T,) weight of each touch under ``rule``; the weights of each journey sum to 1."""
    lengths = data.lengths
    pos = data.touch_position
    length = np.repeat(lengths, lengths)
    if rule == "first_touch":
        return (pos == 0).astype(float)
    if rule == "last_touch":
        return (pos == length - 1).astype(float)
    if rule == "linear":
        return 1.0 / length
    if rule == "last_non_direct":
        direct = {d.lower() for d in direct_channels}
        is_direct = np.array([c.lower() in direct for c in data.channels], dtype=bool)
        non_direct = ~is_direct[data.touch_channel]
        # Latest non-direct position per journey (-1 when none): touches are in order, so a
        # max over each journey's slice finds it.
        candidate = np.where(non_direct, pos, -1)
        chosen = np.maximum.reduceat(candidate, data.start[:-1])
        chosen = np.where(chosen < 0, lengths - 1, chosen)
        return (pos == np.repeat(chosen, lengths)).astype(float)
    if rule == "time_decay":
        if data.touch_age_days is None:
            raise ValueError("time decay needs touch timestamps")
        raw = np.exp2(-data.touch_age_days / half_life_days)
        total = np.add.reduceat(raw, data.start[:-1])
        return raw / np.repeat(total, lengths)
    if rule == "position_based":
        middle = 1.0 - position_first - position_last
        weight = np.where(
            length == 1,
            1.0,
            np.where(
                length == 2,
                0.5,
                np.where(
                    pos == 0,
                    position_first,
                    np.where(pos == length - 1, position_last, middle / np.maximum(length - 2, 1)),
                ),
            ),
        )
        return weight
    raise ValueError(f"unknown heuristic {rule!r}")


def heuristic_credit(
    data: PathData, rule: str, **options: object
) -> tuple[np.ndarray, np.ndarray | None]:
    """(conversions, value) credited per label (channel, or campaign after relabel)."""
    weight = touch_weights(data, rule, **options)  # type: ignore[arg-type]
    unit = data.touch_unit
    n = len(data.channels)
    conv = np.bincount(data.touch_channel, weight * data.conversions[unit], minlength=n)
    value = None
    if data.value is not None:
        value = np.bincount(data.touch_channel, weight * data.value[unit], minlength=n)
    return conv, value
