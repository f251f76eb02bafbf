"""Number formatting shared by the report and the FAQ.

Numbers are printed rounded, never transformed: what a reader sees is the value of a field
in an output JSON (or 100 x that value, for shares shown as percentages), so the FAQ test can
find every printed number back in the outputs.
"""

from __future__ import annotations

import math

from attribution_analysis.contracts.common import Interval

# Values this small print in scientific notation, not as a row of zeros.
TINY = 1e-4


def num(value: float | int | None) -> str:
    """About three significant digits; thousands separators from 1,000."""
    if value is None:
        return "n/a"
    x = float(value)
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    size = abs(x)
    if size >= 100:
        return f"{x:,.0f}"
    if size >= 10:
        return f"{x:.1f}"
    if size >= 1:
        return f"{x:.2f}"
    if size < TINY:
        return f"{x:.2e}"
    decimals = 2 - math.floor(math.log10(size))
    return f"{x:.{decimals}f}"


def integer(value: float | int | None) -> str:
    return "n/a" if value is None else f"{round(float(value)):,}"


def pct(value: float | None, signed: bool = False) -> str:
    """A share (0.075) as a percentage ('7.5%'); one decimal, two significant digits below 1%."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    x = 100 * float(value)
    sign = "+" if signed and x > 0 else ""
    if x == 0:
        return "0%"
    if abs(x) >= 1:
        return f"{sign}{x:.1f}%"
    return f"{sign}{num(x)}%"


def interval(value: Interval | None, as_pct: bool = False) -> str:
    """'mean (90% HDI low to high)'."""
    if value is None:
        return "n/a"
    show = pct if as_pct else num
    low, high = value.hdi_90
    return f"{show(value.mean)} (90% HDI {show(low)} to {show(high)})"


def bounds(value: Interval | None, as_pct: bool = False, level: int = 90) -> str:
    """Only the interval: 'low to high'."""
    if value is None:
        return "n/a"
    show = pct if as_pct else num
    low, high = value.hdi_90 if level == 90 else value.hdi_95
    return f"{show(low)} to {show(high)}"


def overlaps(a: Interval, b: Interval) -> bool:
    """Whether two 90% HDIs overlap: then the data cannot rank the two apart."""
    return a.hdi_90[0] <= b.hdi_90[1] and b.hdi_90[0] <= a.hdi_90[1]
