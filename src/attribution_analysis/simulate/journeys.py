"""User journeys with known incremental effects: the path-attribution ground truth.

Each simulated user is in market (about to buy anyway) with probability IN_MARKET_RATE.
Upper-funnel touches (display, social, video, email, paid_search) arrive at random,
independently of intent. Bottom-funnel touches (branded_search, direct) are navigational:
users who are in market take them far more often, right before they would convert anyway.

Conversion probability is additive:

    p = BASELINE[in market] + sum over channels touched (once per channel) of TRUE_EFFECT[c]

so a channel's true incremental conversions are TRUE_EFFECT[c] x (users who touched it), in
expectation; the baseline belongs to no channel. Path methods only see the touches and the
outcome, so they hand the in-market users' baseline conversions to whatever those users
touched last: mostly branded search and direct. Users with no touch at all are untracked:
they convert at the baseline rate and never appear in journeys.csv (as in real exports).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.workspace import csv_bytes

UPPER_FUNNEL = ["display", "social", "video", "email", "paid_search"]
BOTTOM_FUNNEL = ["branded_search", "direct"]
CHANNELS = UPPER_FUNNEL + BOTTOM_FUNNEL
# Probability that a random upper-funnel touch is on each channel.
UPPER_MIX = np.array([0.32, 0.28, 0.14, 0.14, 0.12])
UPPER_TOUCHES_MEAN = 1.6  # Poisson mean of upper-funnel touches per user
IN_MARKET_RATE = 0.10
BASELINE = {"in_market": 0.22, "not_in_market": 0.004}
# P(touching the bottom-funnel channel) by intent.
BOTTOM_TOUCH = {
    "branded_search": {"in_market": 0.70, "not_in_market": 0.04},
    "direct": {"in_market": 0.50, "not_in_market": 0.03},
}
TRUE_EFFECT = {
    "display": 0.004,
    "social": 0.006,
    "video": 0.010,
    "email": 0.012,
    "paid_search": 0.020,
    "branded_search": 0.003,
    "direct": 0.0,
}
CAMPAIGNS_PER_CHANNEL = {c: (1 if c == "direct" else 3) for c in CHANNELS}
WINDOW_DAYS = 21.0
VALUE_LOG_MEAN, VALUE_LOG_SD = 4.2, 0.5


def _touches(
    rng: np.random.Generator, n_users: int, in_market: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, channel index, day in the window) of every touch, upper funnel first."""
    # Upper-funnel touches: count per user, then channel and time of each.
    n_upper = rng.poisson(UPPER_TOUCHES_MEAN, n_users)
    upper_user = np.repeat(np.arange(n_users), n_upper)
    upper_ch = rng.choice(len(UPPER_FUNNEL), size=len(upper_user), p=UPPER_MIX)
    upper_time = rng.random(len(upper_user)) * WINDOW_DAYS
    # Bottom-funnel touches: one per channel at most, after the user's upper-funnel touches.
    bottom_user, bottom_ch, bottom_time = [], [], []
    last_upper = np.zeros(n_users)
    np.maximum.at(last_upper, upper_user, upper_time)
    for j, channel in enumerate(BOTTOM_FUNNEL):
        prob = np.where(
            in_market, BOTTOM_TOUCH[channel]["in_market"], BOTTOM_TOUCH[channel]["not_in_market"]
        )
        hit = np.flatnonzero(rng.random(n_users) < prob)
        bottom_user.append(hit)
        bottom_ch.append(np.full(len(hit), len(UPPER_FUNNEL) + j))
        bottom_time.append(last_upper[hit] + rng.random(len(hit)))
    user = np.concatenate([upper_user, *bottom_user])
    channel = np.concatenate([upper_ch, *bottom_ch])
    time = np.concatenate([upper_time, *bottom_time])
    return user, channel, time


def _campaigns(rng: np.random.Generator, channel: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(campaign names, campaign index of each touch): each channel's campaigns in a random mix."""
    campaign_names, campaign_codes = [], np.zeros(len(channel), dtype=np.int64)
    offset = 0
    for c, name in enumerate(CHANNELS):
        k = CAMPAIGNS_PER_CHANNEL[name]
        mix = rng.dirichlet(np.full(k, 3.0))
        on = channel == c
        campaign_codes[on] = offset + rng.choice(k, size=int(on.sum()), p=mix)
        campaign_names += [f"{name}_c{i + 1}" for i in range(k)]
        offset += k
    return campaign_names, campaign_codes


def _truth(
    n_users: int,
    touched: np.ndarray,
    effect: np.ndarray,
    baseline: np.ndarray,
    converted: np.ndarray,
) -> dict:
    """The ground truth: each channel's expected incremental conversions and true share."""
    tracked = touched.any(axis=1)
    reach = touched.sum(axis=0)
    incremental = effect * reach
    return {
        "dgp": "p(convert) = baseline[in_market] + sum over channels touched of true_effect",
        "n_users": int(n_users),
        "n_tracked_journeys": int(tracked.sum()),
        "in_market_rate": IN_MARKET_RATE,
        "baseline": BASELINE,
        "bottom_funnel": BOTTOM_FUNNEL,
        "bottom_touch_probability": BOTTOM_TOUCH,
        "conversions_total": int(converted.sum()),
        "conversions_tracked": int(converted[tracked].sum()),
        "expected_baseline_conversions_tracked": float(baseline[tracked].sum()),
        "expected_incremental_conversions": float(incremental.sum()),
        "channels": {
            name: {
                "true_effect": TRUE_EFFECT[name],
                "users_touched": int(reach[c]),
                "incremental_conversions": float(incremental[c]),
                "true_share": float(incremental[c] / incremental.sum()),
            }
            for c, name in enumerate(CHANNELS)
        },
        "note": "true_share = true_effect x users touched / sum over channels: the share of "
        "expected incremental conversions. Baseline conversions of tracked users belong to no "
        "channel, yet path methods hand them out.",
    }


def simulate_journeys(
    rng: np.random.Generator, n_users: int, start: np.datetime64
) -> tuple[pd.DataFrame, dict]:
    """(journeys.csv rows, truth dict) for ``n_users`` simulated users."""
    n_ch = len(CHANNELS)
    in_market = rng.random(n_users) < IN_MARKET_RATE
    user, channel, time = _touches(rng, n_users, in_market)

    touched = np.zeros((n_users, n_ch), dtype=bool)
    touched[user, channel] = True
    effect = np.array([TRUE_EFFECT[c] for c in CHANNELS])
    baseline = np.where(in_market, BASELINE["in_market"], BASELINE["not_in_market"])
    p = np.clip(baseline + touched @ effect, 0.0, 1.0)
    converted = rng.random(n_users) < p
    value = np.where(converted, rng.lognormal(VALUE_LOG_MEAN, VALUE_LOG_SD, n_users), 0.0)
    user_start = rng.random(n_users) * 90.0  # journeys start over a quarter

    campaign_names, campaign_codes = _campaigns(rng, channel)

    order = np.lexsort((time, user))
    user, channel, time, campaign_codes = (
        user[order],
        channel[order],
        time[order],
        campaign_codes[order],
    )
    seconds = np.round((user_start[user] + time) * 86_400).astype(np.int64)
    stamp = np.datetime_as_string(start + seconds.astype("timedelta64[s]"), unit="s")
    frame = pd.DataFrame(
        {
            "journey_id": "u" + pd.Series(user).astype(str).str.zfill(7),
            "timestamp": stamp,
            "channel": np.array(CHANNELS)[channel],
            "campaign": np.array(campaign_names)[campaign_codes],
            "converted": converted[user].astype(np.int64),
            "conversion_value": np.round(value[user], 2),
        }
    )
    return frame, _truth(n_users, touched, effect, baseline, converted)


def journey_files(
    rng: np.random.Generator, n_users: int, start: np.datetime64, params: dict
) -> dict[str, bytes]:
    """raw/journeys.csv and truth/journey_truth.json (no timestamp: same seed, same bytes)."""
    frame, truth = simulate_journeys(rng, n_users, start)
    truth = {"kind": "journeys", "params": params, **truth}
    return {
        layout.JOURNEYS.path: csv_bytes(frame, float_format="%.2f"),
        layout.JOURNEY_TRUTH.path: (json.dumps(truth, indent=2, sort_keys=True) + "\n").encode(),
    }
