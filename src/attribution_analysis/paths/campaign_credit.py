"""Path credit per campaign and conversion date: the path-based ω of the allocation step.

The allocation splits each MMM cell C(channel, period[, geo]) over the channel's campaigns.
With ``omega_source='path_credit'`` a campaign's weight in a period is the path credit it
earned on the conversions of that period, so this module writes the credit per (campaign,
conversion day), and the allocation bins the days into its own periods (weekly or daily,
whatever the MMM's grain). A journey's conversion day is the day of its last touch: exports
carry no separate conversion time, and the converting touch closes the journey.

How the credit of a campaign is spread over days:

* heuristic methods (linear, first/last touch, position-based) give every touch a weight, so
  a campaign's credit on a day is the sum of its touches' weights on the journeys that
  converted that day; the days add up to its total exactly;
* Markov and Shapley credit a campaign as a whole (removal effects, coalition values), not
  touch by touch, so the campaign's total under that method is spread over days in
  proportion to its linear credit by day (its touches on the journeys converting that day,
  each journey's credit shared equally over its touches). A campaign whose credit is
  positive but that sits on no converting journey (possible only with Shapley's shrunk
  rates) has no conversion day; that credit is reported as ``undated``, not guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.paths import heuristics
from attribution_analysis.paths.data import PathData

# The CSV this module's credit is written to (kept for the allocation tests that read it).
CREDIT_PATH = layout.PATH_CAMPAIGN_CREDIT.path
CREDIT_COLUMNS = ["mmm_channel", "channel", "campaign", "date", "credit"]
MAX_SHAPLEY_LABELS = 62  # coalition bitmasks
RULE = (
    "credit(campaign, day) = path credit the campaign earned on the journeys that converted "
    "that day (conversion day = day of the journey's last touch); heuristic methods sum their "
    "touch weights, Markov and Shapley spread the campaign's total over days in proportion to "
    "its linear credit by day"
)


@dataclass(frozen=True)
class CampaignCredit:
    """Campaign path credit: totals (for the MMM-calibrated split) and by conversion day."""

    method: str  # the method actually used (Shapley falls back to linear above 62 campaigns)
    totals: pd.DataFrame  # channel, campaign, credit
    dated: pd.DataFrame  # mmm_channel, channel, campaign, date, credit (> 0 only)
    undated: float  # credit with no conversion day (Shapley on non-converting campaigns)

    @property
    def omega_source(self) -> str:
        return f"path_credit:{self.method.split(' ')[0]}"


CreditFn = Callable[[PathData, str], np.ndarray]


def campaign_credit(
    data: PathData,
    method: str,
    credit_fn: CreditFn,
    heuristic_options: dict[str, object],
    channel_map: dict[str, str],
) -> CampaignCredit | None:
    """Credit per (channel, campaign) and per conversion day under ``method``.

    ``credit_fn(relabelled, method)`` computes a named method's credit per label (the step's
    own dispatcher, so the campaign credit is the channel credit's exact twin). Returns None
    when the journeys carry no campaign column.
    """
    if data.campaigns is None or data.touch_campaign is None:
        return None
    n_camp = len(data.campaigns)
    # Label = (channel, campaign) pair, so a campaign name reused across channels stays apart.
    pair = data.touch_channel * n_camp + data.touch_campaign
    codes, label = np.unique(pair, return_inverse=True)
    label = label.ravel().astype(np.int64)
    names = [f"{data.channels[c // n_camp]}|{data.campaigns[c % n_camp]}" for c in codes]
    relabelled = data.relabel(label, names)
    if method == "shapley" and len(names) > MAX_SHAPLEY_LABELS:
        # The subset-sum Shapley value of a game whose sets are single journeys is close to
        # linear credit over distinct labels, so fall back to linear and say so in the name.
        method = f"linear (shapley needs <= {MAX_SHAPLEY_LABELS} campaigns)"
    base = method.split(" ")[0]
    total = np.asarray(credit_fn(relabelled, base), dtype=float)
    channel = [data.channels[c // n_camp] for c in codes]
    campaign = [data.campaigns[c % n_camp] for c in codes]
    totals = pd.DataFrame({"channel": channel, "campaign": campaign, "credit": total})
    dated, undated = _by_day(relabelled, label, total, base, heuristic_options)
    if dated is None:
        frame = pd.DataFrame(columns=CREDIT_COLUMNS)
    else:
        lab, day, credit = dated
        frame = pd.DataFrame(
            {
                "mmm_channel": [channel_map.get(channel[i], channel[i]) for i in lab],
                "channel": [channel[i] for i in lab],
                "campaign": [campaign[i] for i in lab],
                "date": pd.DatetimeIndex(day).strftime("%Y-%m-%d"),
                "credit": credit,
            }
        )
        frame = frame.sort_values(["mmm_channel", "channel", "campaign", "date"], kind="stable")
    return CampaignCredit(method, totals, frame.reset_index(drop=True), undated)


def _by_day(
    data: PathData,
    label: np.ndarray,
    total: np.ndarray,
    method: str,
    options: dict[str, object],
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, float]:
    """(label, day, credit) rows with credit > 0, and the credit that has no day."""
    if data.unit_date is None:
        return None, float(total.sum())
    rule = method if method in heuristics.RULES else "linear"
    weight = heuristics.touch_weights(data, rule, **options)  # type: ignore[arg-type]
    unit = data.touch_unit
    credit = weight * data.conversions[unit]
    keep = credit > 0
    day = data.unit_date[unit][keep].astype("datetime64[D]").astype(np.int64)
    n_labels = len(total)
    # One (label, day) key per row: a weighted bincount over the keys present.
    first_day = int(day.min()) if len(day) else 0
    key = label[keep] * (int(day.max()) - first_day + 1 if len(day) else 1) + (day - first_day)
    keys, inverse = np.unique(key, return_inverse=True)
    profile = np.bincount(inverse.ravel(), credit[keep], len(keys))
    span = int(day.max()) - first_day + 1 if len(day) else 1
    row_label, row_day = keys // span, keys % span + first_day
    if rule == method:
        amount = profile
        undated = 0.0
    else:
        per_label = np.bincount(row_label, profile, n_labels)
        scale = np.divide(total, per_label, out=np.zeros(n_labels), where=per_label > 0)
        amount = profile * scale[row_label]
        undated = float(total[per_label <= 0].sum())
    positive = amount > 0
    return (
        row_label[positive],
        row_day[positive].astype("datetime64[D]"),
        amount[positive],
    ), undated
