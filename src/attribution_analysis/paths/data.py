"""Journeys in one flat, vectorised form shared by every path method.

A :class:`PathData` holds *units* (one journey of ``journeys.csv``, or one row of
``paths.csv`` standing for many journeys) and their touches in CSR layout: the touches of
unit ``u`` are ``touch_*[start[u]:start[u + 1]]``, in order. Every method works on these
arrays with numpy reductions (``reduceat``, ``bincount``, sparse matrices), so a million
journeys never go through a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

MAX_SET_CHANNELS = 62  # channel sets are int64 bitmasks


@dataclass(frozen=True)
class PathData:
    channels: list[str]  # sorted names; touch_channel indexes into it
    start: np.ndarray  # (U + 1,) int64 offsets
    touch_channel: np.ndarray  # (T,) int64
    conversions: np.ndarray  # (U,) float
    nulls: np.ndarray  # (U,) float: journeys of the unit that did not convert
    value: np.ndarray | None  # (U,) float, total conversion value of the unit
    touch_age_days: np.ndarray | None = None  # (T,) days before the unit's last touch
    touch_campaign: np.ndarray | None = None  # (T,) int64 into campaigns
    campaigns: list[str] | None = None
    # (U,) datetime64[D]: day of the unit's last touch, its conversion date when it converted
    # (exports carry no separate conversion time). journeys.csv only.
    unit_date: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        return len(self.start) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.start)

    @property
    def touch_unit(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_units), self.lengths)

    @property
    def touch_position(self) -> np.ndarray:
        """0-based position of each touch in its unit."""
        return np.arange(len(self.touch_channel)) - np.repeat(self.start[:-1], self.lengths)

    @property
    def journeys(self) -> np.ndarray:
        return self.conversions + self.nulls

    def relabel(self, codes: np.ndarray, names: list[str]) -> PathData:
        """The same journeys with another touch label (e.g. campaign instead of channel)."""
        return replace(self, channels=names, touch_channel=codes)


def channel_sets(data: PathData) -> np.ndarray:
    """(U,) bitmask of the channels each unit touched (bit c = channel c)."""
    if len(data.channels) > MAX_SET_CHANNELS:
        raise ValueError(f"channel sets are bitmasks of at most {MAX_SET_CHANNELS} channels")
    bits = np.left_shift(np.int64(1), data.touch_channel.astype(np.int64))
    return np.bitwise_or.reduceat(bits, data.start[:-1])


def build(
    channels: list[str],
    unit_codes: np.ndarray,
    touch_channel: np.ndarray,
    conversions: np.ndarray,
    nulls: np.ndarray,
    value: np.ndarray | None,
    touch_age_days: np.ndarray | None = None,
    touch_campaign: np.ndarray | None = None,
    campaigns: list[str] | None = None,
    unit_date: np.ndarray | None = None,
) -> PathData:
    """Assemble a PathData from touches already sorted by (unit, order); units are 0..U-1."""
    counts = np.bincount(unit_codes, minlength=len(conversions))
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return PathData(
        channels=channels,
        start=start,
        touch_channel=touch_channel.astype(np.int64),
        conversions=conversions.astype(float),
        nulls=nulls.astype(float),
        value=None if value is None else value.astype(float),
        touch_age_days=touch_age_days,
        touch_campaign=touch_campaign,
        campaigns=campaigns,
        unit_date=unit_date,
    )


def path_strings(data: PathData, separator: str = " > ") -> pd.Series:
    """Each unit's path as text (for reports and for tools that want strings)."""
    names = np.array(data.channels, dtype=object)[data.touch_channel]
    frame = pd.DataFrame({"unit": data.touch_unit, "name": names})
    return frame.groupby("unit", sort=True)["name"].agg(separator.join)


def _gather(data: PathData, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Touch channels of ``units`` in order, and their lengths (no padding)."""
    lengths = data.lengths[units]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    idx = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(
        data.start[units] - offsets, lengths
    )
    return data.touch_channel[idx], lengths


def _key_groups(data: PathData) -> np.ndarray:
    """(U,) int64 id of each unit's channel sequence (equal ids = equal sequences).

    Paths short enough to be one base-(C + 1) number are keyed in one vectorised pass.
    Longer paths are bucketed by length and each bucket compared as a dense (n_L, L) block,
    so memory follows the number of touches, not journeys x the longest path.
    """
    lengths = data.lengths
    base = len(data.channels) + 1
    fits = lengths * np.log2(base) < 62
    key = np.zeros(data.n_units, dtype=np.int64)
    group = np.full(data.n_units, -1, dtype=np.int64)
    if fits.any():
        pos = data.touch_position.astype(np.int64)
        short_touch = np.repeat(fits, lengths)
        digits = np.where(
            short_touch, (data.touch_channel + 1) * base ** np.where(short_touch, pos, 0), 0
        )
        key = np.add.reduceat(digits, data.start[:-1]) if len(digits) else key
        key = np.where(fits & (lengths > 0), key, 0)
        _, inv = np.unique(key[fits], return_inverse=True)
        group[fits] = inv.ravel()
    next_id = int(group.max()) + 1 if fits.any() else 0
    long_units = np.flatnonzero(~fits)
    if len(long_units):
        long_len = lengths[long_units]
        for length in np.unique(long_len):
            units = long_units[long_len == length]
            touches, _ = _gather(data, units)
            block = touches.reshape(len(units), int(length))
            _, inv = np.unique(block, axis=0, return_inverse=True)
            inv = inv.ravel()
            group[units] = inv + next_id
            next_id += int(inv.max()) + 1
    return group


def aggregate(data: PathData) -> tuple[PathData, np.ndarray]:
    """Merge units with identical channel sequences; returns the merged data and, per
    original unit, its merged index. Campaigns and timestamps are dropped (they differ)."""
    group = _key_groups(data)
    _, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    n = len(first)
    conv = np.bincount(inverse, data.conversions, minlength=n)
    nulls = np.bincount(inverse, data.nulls, minlength=n)
    value = None if data.value is None else np.bincount(inverse, data.value, minlength=n)
    touches, lengths = _gather(data, first)
    unit_codes = np.repeat(np.arange(n), lengths)
    merged = build(data.channels, unit_codes, touches, conv, nulls, value)
    return merged, inverse
