"""Number formatting shared by the report and the FAQ.

Numbers are printed rounded, never transformed: what a reader sees is the value of a field
in an output JSON (or 100 x that value, for shares shown as percentages), so the FAQ test can
find every printed number back in its field.

Each formatter is built from *parts*: fixed text, and :class:`Piece` objects, one per number
printed, that say which value the number stands for and how (rounded, or a bound such as
``< 0.0001`` for a value too small to print). The report joins the parts into text; the FAQ
also records the pieces with the field each value came from (see ``report.trace``).

Rules: three significant figures, thousands separators from 1,000, never scientific
notation. A value too small to print at that precision prints as a bound (``< 0.0001``,
``< 0.001%``). The three numbers of an interval share one precision, set by the largest of
them, so a lower bound of 1.68e-06 next to a mean of 0.0409 reads ``< 0.0001``. A probability
estimated from N posterior draws is never printed as 100% or 0%: ``> 99.8% (all 500 draws)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from attribution_analysis.contracts.common import Interval

# Smallest magnitude printed as a number on its own; below it, a bound.
TINY = 1e-4
# Smallest percentage printed on its own (0.001%); below it, '< 0.001%'.
TINY_PCT = 1e-3
# Relative errors below this print as a bound ('< 0.001%').
TINY_REL = 1e-5


@dataclass(frozen=True)
class Piece:
    """One printed number: its text, the value it stands for, and how the two relate.

    ``relation``: '~' (the text is the value rounded), '<' or '>' (the value is below/above
    the printed number), '=' (printed exactly). ``scale``: 100 for percentages.
    """

    text: str
    value: Any
    relation: str = "~"
    scale: float = 1.0


Parts = list[str | Piece]


def join(parts: Parts) -> str:
    return "".join(p if isinstance(p, str) else p.text for p in parts)


def _finite(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _decimals(size: float, digits: int = 3) -> int:
    """Decimals that show ``digits`` significant figures of ``size`` (none from 100 up)."""
    if size >= 10 ** (digits - 1) or size == 0:
        return 0
    return max(0, digits - 1 - math.floor(math.log10(size)))


def _fixed(x: float, decimals: int, sign: str = "") -> str:
    text = f"{x:,.{decimals}f}"
    return f"{sign}{text}" if x > 0 else text


def _number(value: Any, x: float, decimals: int, unit: str, scale: float, sign: str) -> Piece:
    """``x`` (``value`` times ``scale``) at ``decimals``; a bound when it would print as 0."""
    if x == 0:
        return Piece(f"0{unit}", value, "~", scale)
    step = 10.0**-decimals
    if abs(x) < step / 2:
        floor = f"{step:.{decimals}f}"
        if x > 0:
            return Piece(f"< {floor}{unit}", value, "<", scale)
        return Piece(f"> -{floor}{unit}", value, ">", scale)
    return Piece(f"{_fixed(x, decimals, sign)}{unit}", value, "~", scale)


def num_parts(value: Any, decimals: int | None = None) -> Parts:
    if not _finite(value):
        return ["n/a"]
    x = float(value)
    if decimals is None:
        decimals = _decimals(abs(x)) if abs(x) >= TINY else round(-math.log10(TINY))
    return [_number(value, x, decimals, "", 1.0, "")]


def pct_parts(value: Any, signed: bool = False, decimals: int | None = None) -> Parts:
    if not _finite(value):
        return ["n/a"]
    x = 100 * float(value)
    if decimals is None:
        size = abs(x)
        if size >= 1:
            decimals = 1
        elif size >= TINY_PCT:
            decimals = _decimals(size, 2)
        else:
            decimals = round(-math.log10(TINY_PCT))
    return [_number(value, x, decimals, "%", 100.0, "+" if signed else "")]


def num(value: float | int | None) -> str:
    """Three significant figures; thousands separators from 1,000; a bound below 0.0001."""
    return join(num_parts(value))


def integer(value: float | int | None) -> str:
    return join(integer_parts(value))


def integer_parts(value: Any) -> Parts:
    if not _finite(value):
        return ["n/a"]
    return [Piece(f"{round(float(value)):,}", value, "~")]


def pct(value: float | None, signed: bool = False) -> str:
    """A share (0.075) as a percentage ('7.5%'): one decimal from 1%, two significant figures
    below, and '< 0.001%' for anything smaller."""
    return join(pct_parts(value, signed))


def _shared_decimals(values: list[Any], as_pct: bool) -> int:
    """One precision for the numbers of an interval: three significant figures of the
    largest (one decimal for percentages from 1%)."""
    scale = 100.0 if as_pct else 1.0
    size = max((abs(float(v)) * scale for v in values if _finite(v)), default=0.0)
    if as_pct and size >= 1:
        return 1
    return _decimals(size) if size else 0


def interval_parts(value: Interval | None, as_pct: bool = False, level: int = 90) -> Parts:
    """'mean (90% HDI low to high)'."""
    if value is None:
        return ["n/a"]
    low, high = value.hdi_90 if level == 90 else value.hdi_95
    d = _shared_decimals([value.mean, low, high], as_pct)
    show = (lambda v: pct_parts(v, decimals=d)) if as_pct else (lambda v: num_parts(v, d))
    return [*show(value.mean), f" ({level}% HDI ", *show(low), " to ", *show(high), ")"]


def bounds_parts(value: Interval | None, as_pct: bool = False, level: int = 90) -> Parts:
    """Only the interval: 'low to high'."""
    if value is None:
        return ["n/a"]
    low, high = value.hdi_90 if level == 90 else value.hdi_95
    d = _shared_decimals([value.mean, low, high], as_pct)
    show = (lambda v: pct_parts(v, decimals=d)) if as_pct else (lambda v: num_parts(v, d))
    return [*show(low), " to ", *show(high)]


def interval(value: Interval | None, as_pct: bool = False) -> str:
    return join(interval_parts(value, as_pct))


def bounds(value: Interval | None, as_pct: bool = False, level: int = 90) -> str:
    return join(bounds_parts(value, as_pct, level))


def range_parts(low: Any, high: Any, as_pct: bool = False) -> Parts:
    """'low to high' for two loose bounds (e.g. a 5%-95% quantile pair), one precision."""
    d = _shared_decimals([low, high], as_pct)
    show = (lambda v: pct_parts(v, decimals=d)) if as_pct else (lambda v: num_parts(v, d))
    return [*show(low), " to ", *show(high)]


def value_range(low: Any, high: Any, as_pct: bool = False) -> str:
    return join(range_parts(low, high, as_pct))


def probability_parts(value: Any, draws: Any = None) -> Parts:
    """A probability estimated as a share of posterior draws. With N draws it can be known
    only to 1/N: all draws read '> 99.8% (all 500 draws)', none '< 0.2% (none of the 500
    draws)'; a share that would round to 100% or 0% prints as such a bound too."""
    if not _finite(value):
        return ["n/a"]
    p = float(value)
    n = int(draws) if _finite(draws) and int(draws) > 0 else None
    step = 100.0 / n if n else 0.1
    decimals = max(1, _decimals(step, 1))
    unit = 10.0**-decimals
    if p >= 1 or 100 * p > 100 - unit / 2:
        edge = math.floor((100 - step) / unit + 1e-9) * unit if p >= 1 else 100 - unit
        parts: Parts = [Piece(f"> {edge:.{decimals}f}%", value, ">", 100.0)]
        if p >= 1 and n:
            return [*parts, " (all ", Piece(f"{n:,}", draws, "="), " draws)"]
        return parts
    if p <= 0 or 100 * p < unit / 2:
        edge = math.ceil(step / unit - 1e-9) * unit if p <= 0 else unit
        parts = [Piece(f"< {edge:.{decimals}f}%", value, "<", 100.0)]
        if p <= 0 and n:
            return [*parts, " (none of the ", Piece(f"{n:,}", draws, "="), " draws)"]
        return parts
    return pct_parts(value, decimals=decimals if 100 * p < 1 or 100 * p > 99 else None)


def probability(value: Any, draws: Any = None) -> str:
    return join(probability_parts(value, draws))


def rel_error_parts(value: Any) -> Parts:
    """A relative error as a percentage with the precision it needs: '0.013%', '< 0.001%';
    exactly zero reads '0% (exact)'."""
    if not _finite(value):
        return ["n/a"]
    x = abs(float(value))
    if x == 0:
        return [Piece("0%", value, "~", 100.0), " (exact)"]
    if x < TINY_REL:
        return [Piece("< 0.001%", value, "<", 100.0)]
    return pct_parts(value, decimals=_decimals(100 * x, 2))


def rel_error(value: Any) -> str:
    return join(rel_error_parts(value))


def overlaps(a: Interval, b: Interval) -> bool:
    """Whether two 90% HDIs overlap: then the data cannot rank the two apart."""
    return a.hdi_90[0] <= b.hdi_90[1] and b.hdi_90[0] <= a.hdi_90[1]


# ----- executive rounding ------------------------------------------------------------------
# The decision sentence and the executive summary round harder than the tables: two
# significant figures, large amounts in words ('1.2 million'), percentages without decimals
# from 10%. The tables keep the full figures. A rounded number is still a Piece of the value
# it stands for: the word sets ``scale`` (1e-6 for 'million'), so the number check reads
# '1.2 million' as 1.2 = value x 1e-6, rounded, and traces it to the unrounded field.
# Amounts from this size on are written with a unit word; below it, as plain integers
# ('4,523'), which no reader misreads.
EXECUTIVE_WORDS_FROM = 1e4
EXECUTIVE_UNITS = ((1e9, "billion"), (1e6, "million"), (1e3, "thousand"))
EXECUTIVE_DIGITS = 2


def _executive_unit(size: float) -> tuple[float, str]:
    """(scale, word) for amounts of magnitude ``size``: (1e-6, ' million') from a million."""
    if size >= EXECUTIVE_WORDS_FROM:
        for threshold, word in EXECUTIVE_UNITS:
            if size >= threshold:
                return 1.0 / threshold, f" {word}"
    return 1.0, ""


def _executive_amounts(values: list[Any]) -> tuple[float, str, int]:
    """One unit and one precision for amounts printed together (an interval): set by the
    largest, two significant figures of it in that unit (none from 10 up)."""
    size = max((abs(float(v)) for v in values if _finite(v)), default=0.0)
    scale, word = _executive_unit(size)
    scaled = size * scale
    decimals = 0 if not word and size >= 100 else _decimals(scaled, EXECUTIVE_DIGITS)
    return scale, word, decimals


def _amount(value: Any, scale: float, word: str, decimals: int, sign: str = "") -> Parts:
    if not _finite(value):
        return ["n/a"]
    piece = _number(value, float(value) * scale, decimals, "", scale, sign)
    return [piece, word]


def executive_amount_parts(value: Any, signed: bool = False) -> Parts:
    """An amount for an executive: '1.2 million', '350 thousand', '4,523', '0.44'."""
    if not _finite(value):
        return ["n/a"]
    scale, word, decimals = _executive_amounts([value])
    return _amount(value, scale, word, decimals, "+" if signed else "")


def executive_interval_parts(value: Interval | None, signed: bool = False) -> Parts:
    """'1.2 million (90% HDI 0.8 to 1.6 million)': one unit and precision for all three."""
    if value is None:
        return ["n/a"]
    low, high = value.hdi_90
    scale, word, decimals = _executive_amounts([value.mean, low, high])
    sign = "+" if signed else ""
    return [
        *_amount(value.mean, scale, word, decimals, sign),
        " (90% HDI ",
        *_amount(low, scale, "", decimals, sign),
        " to ",
        *_amount(high, scale, word, decimals, sign),
        ")",
    ]


def _executive_pct_decimals(values: list[Any]) -> int:
    """Percentages: none from 10%, one from 1%, two significant figures below."""
    size = max((abs(100 * float(v)) for v in values if _finite(v)), default=0.0)
    if size >= 10:
        return 0
    if size >= 1:
        return 1
    if size >= TINY_PCT:
        return _decimals(size, EXECUTIVE_DIGITS)
    return round(-math.log10(TINY_PCT))


def executive_pct_parts(value: Any, signed: bool = False) -> Parts:
    """A share for an executive: '35%', '2.1%', '0.42%'."""
    if not _finite(value):
        return ["n/a"]
    return pct_parts(value, signed, _executive_pct_decimals([value]))


def executive_pct_interval_parts(value: Interval | None, signed: bool = False) -> Parts:
    """'+2.1% (90% HDI +0.4% to +3.9%)'; one precision for the three."""
    if value is None:
        return ["n/a"]
    low, high = value.hdi_90
    d = _executive_pct_decimals([value.mean, low, high])
    return [
        *pct_parts(value.mean, signed, d),
        " (90% HDI ",
        *pct_parts(low, signed, d),
        " to ",
        *pct_parts(high, signed, d),
        ")",
    ]


def executive_ratio_parts(value: Any) -> Parts:
    """A ratio such as ROAS to two significant figures: '2.4', '0.44', '12'."""
    if not _finite(value):
        return ["n/a"]
    size = abs(float(value))
    decimals = _decimals(size, EXECUTIVE_DIGITS) if size >= TINY else round(-math.log10(TINY))
    return num_parts(value, decimals)


def executive_ratio_interval_parts(value: Interval | None) -> Parts:
    """'2.4 (90% HDI 1.8 to 3.1)'; one precision for the three, set by the largest."""
    if value is None:
        return ["n/a"]
    low, high = value.hdi_90
    size = max(abs(float(v)) for v in (value.mean, low, high))
    d = _decimals(size, EXECUTIVE_DIGITS) if size >= TINY else round(-math.log10(TINY))
    return [
        *num_parts(value.mean, d),
        " (90% HDI ",
        *num_parts(low, d),
        " to ",
        *num_parts(high, d),
        ")",
    ]


def executive_amount(value: Any, signed: bool = False) -> str:
    return join(executive_amount_parts(value, signed))


def executive_interval(value: Interval | None, signed: bool = False) -> str:
    return join(executive_interval_parts(value, signed))


def executive_pct(value: Any, signed: bool = False) -> str:
    return join(executive_pct_parts(value, signed))


def executive_pct_interval(value: Interval | None, signed: bool = False) -> str:
    return join(executive_pct_interval_parts(value, signed))


def executive_ratio(value: Any) -> str:
    return join(executive_ratio_parts(value))


def executive_ratio_interval(value: Interval | None) -> str:
    return join(executive_ratio_interval_parts(value))
