"""Infer the role of each column of a wide marketing table from its name and its values.

Rules, in order (the first that matches decides):

1. date: a name such as date/week/time/ds/period (or holding 'date') whose values parse as
   ISO dates; any other column whose values all parse as dates (medium confidence).
2. geo: geo/region/dma/market/state/territory with text values.
3. target: the name is an outcome word (revenue, sales, y, kpi, conversions, orders, leads,
   ...); several candidates: the first by priority is taken and a question asked.
4. media by suffix (Robyn's convention, case-sensitive) or name token: ``_S``/``_s``/spend/
   cost = spend; ``_I``/impression(s) = impressions; ``_P``/click(s) = clicks; reach =
   reach. The channel is the name without the suffix or token (``tv_S`` -> tv,
   ``Channel0_spend`` -> Channel0, ``search_clicks_P`` -> search). A name starting or
   containing 'organic' is an organic series.
5. control: ``_B`` suffix, competitor, price, discount, macro-ish names (cpi, gdp, gqv,
   inflation, unemployment, weather, temperature, index, ...).
6. organic: newsletter, email, seo, organic, direct, pr.
7. ignored: calendar helpers (dayofyear, week_of_year, month, year, trend, t): the model
   builds its own seasonality and trend; population and revenue_per_kpi (asked).
8. event: a numeric column holding only 0 and 1; a text column with a few labels such as
   'na' / 'event1' (Robyn's events).
9. a column named like ``x1``, ``x2`` with non-negative numbers: spend, low confidence
   (asked). Anything else: unmapped (asked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from attribution_analysis.contracts.common import IDENTIFIER_PATTERN
from attribution_analysis.contracts.importing import (
    ChannelColumns,
    ColumnRole,
    ImportQuestion,
    ImportRoles,
    TargetKind,
)
from attribution_analysis.data.tables import LINE, MISSING_WORDS, parse_dates

DATE_NAMES = {"date", "week", "time", "ds", "period", "day", "week_start", "date_week", "dt"}
GEO_NAMES = {"geo", "region", "dma", "market", "state", "territory", "geography", "area"}
# Outcome words in priority order; the kind each implies (None: ask).
TARGETS: dict[str, TargetKind | None] = {
    "revenue": "revenue",
    "sales": "revenue",
    "gmv": "revenue",
    "turnover": "revenue",
    "conversions": "conversions",
    "orders": "conversions",
    "leads": "conversions",
    "signups": "conversions",
    "transactions": "conversions",
    "units": "conversions",
    "kpi": None,
    "target": None,
    "outcome": None,
    "y": None,
}
SPEND_TOKENS = {"spend", "spends", "cost", "costs", "investment", "budget"}
IMPRESSION_TOKENS = {"impression", "impressions", "imps", "impr", "grp", "grps"}
CLICK_TOKENS = {"click", "clicks"}
REACH_TOKENS = {"reach"}
CONTROL_TOKENS = {
    "competitor",
    "competitors",
    "competition",
    "price",
    "prices",
    "pricing",
    "discount",
    "discounts",
    "promo_depth",
    "cpi",
    "gdp",
    "gqv",
    "inflation",
    "unemployment",
    "macro",
    "weather",
    "temperature",
    "temp",
    "rain",
    "index",
    "fuel",
    "interest",
    "confidence",
    "stock",
    "distribution",
}
ORGANIC_TOKENS = {"organic", "newsletter", "newsletters", "email", "emails", "seo", "direct"}
CALENDAR_NAMES = {
    "dayofyear",
    "day_of_year",
    "weekofyear",
    "week_of_year",
    "month",
    "year",
    "quarter",
    "trend",
    "t",
    "week_number",
    "weeknum",
}
IGNORED_NAMES = {"population", "revenue_per_kpi"}
EVENT_TOKENS = {"event", "events", "holiday", "holidays", "promo", "promotion", "launch"}
NULL_LABELS = {"na", "none", "no", "0", "", "null", "n/a", "-"}
GENERIC = re.compile(r"^[a-z]\d+$")  # x1, x2, c3: a generic name, no role in it
_IDENT = re.compile(IDENTIFIER_PATTERN)
MAX_EVENT_LABELS = 12


@dataclass
class Inferred:
    columns: list[ColumnRole]
    roles: ImportRoles | None
    questions: list[ImportQuestion] = field(default_factory=list)


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[_\W]+", name.lower()) if t]


def channel_name(stem: str) -> str:
    """A column stem as a channel identifier (separators trimmed, unsafe characters '_')."""
    text = re.sub(r"[^\w .()&+-]", "_", stem).strip(" _-.")
    text = text[:64] or "channel"
    return text if _IDENT.match(text) else f"c_{text}"[:64]


def _stem(name: str, suffix: str | None, tokens: set[str]) -> str:
    """The name without its media suffix (``_S``) or media word (``spend``)."""
    base = name[: -len(suffix)] if suffix else name
    parts = [p for p in re.split(r"([_\W]+)", base)]
    kept = [p for p in parts if p.lower() not in tokens]
    out = "".join(kept)
    out = re.sub(r"[_\W]+$", "", out)
    out = re.sub(r"^[_\W]+", "", out)
    out = re.sub(r"([_\W])[_\W]+", r"\1", out)
    return out


def _numbers(values: pd.Series) -> pd.Series | None:
    """The values as numbers (NaN where empty), or None when a filled one is not a number."""
    text = values.str.strip()
    empty = text.str.lower().isin(MISSING_WORDS)
    numbers = pd.to_numeric(text.where(~empty), errors="coerce")
    if numbers[~empty].isna().any() or (~empty).sum() == 0:
        return None
    return numbers


def _is_dates(values: pd.Series) -> bool:
    text = values.str.strip()
    text = text[~text.str.lower().isin(MISSING_WORDS)]
    if text.empty or not text.str.match(r"^\d{4}-\d{1,2}-\d{1,2}").all():
        return False
    return bool(pd.to_datetime(parse_dates(text), errors="coerce").notna().all())


def _media(name: str) -> tuple[str, str, str] | None:
    """(role, channel stem, reason) for a media column, or None."""
    suffixes = {"_S": "spend", "_s": "spend", "_I": "impressions", "_P": "clicks"}
    for suffix, role in suffixes.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            tokens = {"spend": SPEND_TOKENS, "impressions": IMPRESSION_TOKENS}.get(
                role, CLICK_TOKENS
            )
            return role, _stem(name, suffix, tokens), f"suffix '{suffix}' (Robyn's convention)"
    tokens = set(_tokens(name))
    for role, words in (
        ("spend", SPEND_TOKENS),
        ("impressions", IMPRESSION_TOKENS),
        ("clicks", CLICK_TOKENS),
        ("reach", REACH_TOKENS),
    ):
        hit = tokens & words
        if hit:
            return role, _stem(name, None, words), f"name holds '{sorted(hit)[0]}'"
    return None


@dataclass
class _Cell:
    """One column as the rules see it."""

    name: str
    lowered: str
    tokens: set[str]
    values: pd.Series
    numbers: pd.Series | None  # None: not all filled cells are numbers


@dataclass
class _Found:
    """What the rules have decided so far, column by column."""

    date: str | None
    geo: str | None = None
    columns: list[ColumnRole] = field(default_factory=list)
    questions: list[ImportQuestion] = field(default_factory=list)
    targets: list[tuple[int, str]] = field(default_factory=list)  # (priority, column)
    media: dict[str, dict[str, str]] = field(default_factory=dict)  # channel -> role -> column
    controls: list[str] = field(default_factory=list)
    organic: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def add(
        self, column: str, role: str, confidence: str, reason: str, channel: str | None = None
    ) -> None:
        self.columns.append(
            ColumnRole(
                column=column,
                role=role,  # type: ignore[arg-type]
                channel=channel,
                confidence=confidence,  # type: ignore[arg-type]
                reason=reason,
            )
        )

    def ask(self, code: str, question: str, **more: Any) -> None:
        """Add a question (``more``: its column and options, where it has them)."""
        self.questions.append(ImportQuestion(code=code, question=question, **more))


def infer(frame: pd.DataFrame) -> Inferred:
    """The inferred role of each column of ``frame`` (text cells; ``_line`` is skipped)."""
    names = [c for c in frame.columns if c != LINE]
    found = _Found(date=_date_column(frame, names))
    for name in names:
        cell = _Cell(name, name.strip().lower(), set(_tokens(name)), frame[name], None)
        if name != found.date:
            cell.numbers = _numbers(cell.values)
        for rule in _RULES:  # the first rule that matches decides
            if rule(found, cell):
                break
    target, kind = _target(found.targets, found.columns, found.questions, found.add)
    channels = _channels(found)
    _ask_missing(found, target, channels)
    roles = None
    if found.date is not None and target is not None and kind is not None and channels:
        roles = ImportRoles(
            date=found.date,
            geo=found.geo,
            target=target,
            target_kind=kind,
            channels=channels,
            controls=found.controls,
            organic=found.organic,
            events=found.events,
            ignored=found.ignored,
        )
    order = {name: i for i, name in enumerate(names)}
    found.columns.sort(key=lambda c: order[c.column])
    return Inferred(found.columns, roles, found.questions)


# ----- date and geo ----------------------------------------------------------------------------
def _date_named(lowered: str) -> bool:
    return lowered in DATE_NAMES or "date" in lowered


def _date_column(frame: pd.DataFrame, names: list[str]) -> str | None:
    """The date column: the name decides among several date-like columns."""
    for name in names:
        if _date_named(name.strip().lower()) and _is_dates(frame[name]):
            return name
    return next((n for n in names if _is_dates(frame[n])), None)


def _rule_date(found: _Found, cell: _Cell) -> bool:
    if cell.name != found.date:
        return False
    named = _date_named(cell.lowered)
    found.add(
        cell.name,
        "date",
        "high" if named else "medium",
        ("date name and " if named else "") + "ISO dates in every row",
    )
    return True


def _rule_geo(found: _Found, cell: _Cell) -> bool:
    if cell.lowered not in GEO_NAMES or cell.numbers is not None or found.geo is not None:
        return False
    found.geo = cell.name
    found.add(cell.name, "geo", "high", f"name '{cell.lowered}' with text values")
    return True


# ----- the outcome -----------------------------------------------------------------------------
def _rule_target(found: _Found, cell: _Cell) -> bool:
    if cell.lowered not in TARGETS or cell.numbers is None:
        return False
    found.targets.append((list(TARGETS).index(cell.lowered), cell.name))
    return True  # decided by _target, once every candidate is known


def _target(targets, columns, questions, add) -> tuple[str | None, TargetKind | None]:
    if not targets:
        return None, None
    targets.sort()
    chosen = targets[0][1]
    kind = TARGETS[chosen.strip().lower()]
    several = len(targets) > 1
    for _, name in targets:
        if name == chosen:
            reason = f"outcome name '{name.strip().lower()}'"
            add(name, "target", "medium" if several or kind is None else "high", reason)
        else:
            add(name, "unmapped", "low", "another outcome candidate")
    if several:
        questions.append(
            ImportQuestion(
                code="ambiguous_target",
                column=chosen,
                question="Several columns could be the outcome: "
                + ", ".join(f"'{n}'" for _, n in targets)
                + f". Which one should the model explain ('{chosen}' is assumed)?",
                options=[n for _, n in targets],
            )
        )
    if kind is None:
        kind = "conversions"
        questions.append(
            ImportQuestion(
                code="target_kind",
                column=chosen,
                question=f"Is '{chosen}' revenue (currency) or conversions (counts: orders, "
                "leads, units)? 'conversions' is assumed; ROAS is only meaningful on revenue.",
                options=["revenue", "conversions"],
            )
        )
    return chosen, kind


# ----- media columns ---------------------------------------------------------------------------
def _rule_media(found: _Found, cell: _Cell) -> bool:
    media = _media(cell.name)
    if media is None or cell.numbers is None:
        return False
    role, stem, reason = media
    channel = channel_name(stem or cell.name)
    taken = found.media.get(channel, {}).get(role)
    if taken is not None:  # two spend columns for one channel
        found.add(cell.name, "unmapped", "low", f"{reason}, but {channel} already has {role}")
        found.ask(
            "unmapped_column",
            f"'{cell.name}' and '{taken}' both look like {role} of '{channel}'; which one is "
            "it, and what is the other?",
            column=cell.name,
        )
        return True
    found.media.setdefault(channel, {})[role] = cell.name
    found.add(cell.name, role, "high", reason, channel)
    return True


def _rule_generic_spend(found: _Found, cell: _Cell) -> bool:
    numbers = cell.numbers
    if numbers is None or not GENERIC.match(cell.lowered) or not (numbers.dropna() >= 0).all():
        return False
    channel = channel_name(cell.name)
    found.media.setdefault(channel, {})["spend"] = cell.name
    found.add(cell.name, "spend", "low", "a generic name with non-negative numbers", channel)
    found.ask(
        "confirm_role",
        f"Is '{cell.name}' the spend of a paid channel (in currency)? If so, what is the "
        "channel called?",
        column=cell.name,
        options=["spend of a channel", "control", "ignore it"],
    )
    return True


def _channels(found: _Found) -> dict[str, ChannelColumns]:
    """The channels with a spend column; a question for each one without."""
    channels: dict[str, ChannelColumns] = {}
    for channel, metrics in found.media.items():
        if "spend" not in metrics:
            exposure = ", ".join(f"'{c}'" for c in metrics.values())
            found.ask(
                "exposure_without_spend",
                f"Channel '{channel}' has {exposure} but no spend column: which column is its "
                "spend? Without spend it cannot be modelled (it is left out unless you name "
                "one, or treat it as organic).",
                column=next(iter(metrics.values())),
                options=["name its spend column", "organic series", "ignore it"],
            )
            continue
        channels[channel] = ChannelColumns(
            spend=metrics["spend"],
            impressions=metrics.get("impressions"),
            clicks=metrics.get("clicks"),
            reach=metrics.get("reach"),
        )
    return channels


# ----- controls, organic series, ignored columns and events ------------------------------------
def _rule_ignored_name(found: _Found, cell: _Cell) -> bool:
    if cell.lowered not in IGNORED_NAMES:
        return False
    why = (
        "population per geo (Meridian scales by it); a constant, not a driver"
        if cell.lowered == "population"
        else "the value of one KPI unit (Meridian): not modelled; model revenue "
        "instead by giving a revenue column as the target"
    )
    found.ignored.append(cell.name)
    found.add(cell.name, "ignored", "medium", why)
    found.ask(
        "confirm_role",
        f"'{cell.name}' looks like {why.split(';')[0].split(':')[0]}; leave it out of the model?",
        column=cell.name,
        options=["ignore it", "use it as a control"],
    )
    return True


def _rule_organic_name(found: _Found, cell: _Cell) -> bool:
    if "organic" not in cell.tokens and not cell.lowered.startswith("organic"):
        return False
    found.organic.append(cell.name)
    found.add(cell.name, "organic", "high", "name holds 'organic'")
    return True


def _rule_control(found: _Found, cell: _Cell) -> bool:
    words = cell.tokens & CONTROL_TOKENS
    if cell.numbers is None or not (cell.name.endswith("_B") or words):
        return False
    hit = (
        "suffix '_B' (Robyn's convention)"
        if cell.name.endswith("_B")
        else f"name holds '{sorted(words)[0]}'"
    )
    found.controls.append(cell.name)
    found.add(cell.name, "control", "high", hit)
    return True


def _rule_organic_word(found: _Found, cell: _Cell) -> bool:
    words = cell.tokens & ORGANIC_TOKENS
    if not words or cell.numbers is None:
        return False
    found.organic.append(cell.name)
    found.add(cell.name, "organic", "high", f"name holds '{sorted(words)[0]}'")
    return True


def _rule_calendar(found: _Found, cell: _Cell) -> bool:
    if cell.lowered not in CALENDAR_NAMES:
        return False
    found.ignored.append(cell.name)
    found.add(
        cell.name,
        "ignored",
        "high",
        "a calendar helper: the model builds its own trend and seasonality "
        "(Fourier terms) and holidays",
    )
    return True


def _rule_binary_event(found: _Found, cell: _Cell) -> bool:
    if cell.numbers is None or not set(cell.numbers.dropna().unique()) <= {0.0, 1.0}:
        return False
    found.events.append(cell.name)
    found.add(cell.name, "event", _event_confidence(cell), "only 0 and 1")
    return True


def _rule_label_event(found: _Found, cell: _Cell) -> bool:
    if cell.numbers is not None or not _is_labels(cell.values):
        return False
    found.events.append(cell.name)
    found.add(
        cell.name,
        "event",
        _event_confidence(cell),
        "a few text labels besides 'na' (one 0/1 factor per label)",
    )
    return True


def _event_confidence(cell: _Cell) -> str:
    return "high" if cell.tokens & EVENT_TOKENS else "medium"


def _is_labels(values: pd.Series) -> bool:
    """Text with a few distinct labels, at least one of them 'nothing' ('na', '', 'none')."""
    labels = set(values.str.strip().str.lower())
    return 1 < len(labels) <= MAX_EVENT_LABELS + 1 and bool(labels & NULL_LABELS)


# ----- questions -------------------------------------------------------------------------------
def _rule_unmapped(found: _Found, cell: _Cell) -> bool:
    found.add(cell.name, "unmapped", "low", "no rule matched")
    found.ask(
        "unmapped_column",
        f"What is '{cell.name}'?",
        column=cell.name,
        options=["spend", "impressions", "clicks", "control", "organic", "event", "ignore it"],
    )
    return True


def _ask_missing(found: _Found, target: str | None, channels: dict[str, ChannelColumns]) -> None:
    """Ask for the date, the outcome and the spend where no column was found for them."""
    if found.date is None:
        found.ask(
            "no_date",
            "No column holds ISO dates (YYYY-MM-DD): which column is the period? Convert it "
            "to ISO dates first.",
        )
    if target is None:
        found.ask(
            "no_target",
            "No column looks like the outcome (revenue, sales, conversions, kpi, y): which "
            "column should the model explain?",
        )
    if not channels:
        found.ask(
            "no_spend",
            "No spend column was found (names ending in _S or holding 'spend' or 'cost'): "
            "which columns are the channels' spend?",
        )


# The rules in the order of the module's docstring: the first that matches decides.
_RULES = (
    _rule_date,
    _rule_geo,
    _rule_target,
    _rule_ignored_name,
    _rule_organic_name,
    _rule_media,
    _rule_control,
    _rule_organic_word,
    _rule_calendar,
    _rule_binary_event,
    _rule_label_event,
    _rule_generic_spend,
    _rule_unmapped,
)
