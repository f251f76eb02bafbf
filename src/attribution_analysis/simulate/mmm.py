"""MMM data-generating process (weekly), with the truth written beside the raw files.

y_t = intercept * (1 + trend_t) + seasonality_t + holidays_t + controls_t
      + sum_c beta_c * hill(adstock(spend_c / max_c; alpha_c), slope_c, kappa_c) + noise_t

Geometric adstock (normalised, zero spend before the first week, as in PyMC-Marketing) and
Hill saturation, on spend scaled by the channel's maximum (per geo for geo panels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import holidays as holidays_lib
import numpy as np
import pandas as pd

from attribution_analysis.transforms import geometric_adstock, hill

CHANNEL_POOL = [
    "tv",
    "paid_search",
    "social",
    "display",
    "video",
    "audio",
    "affiliate",
    "email",
    "ooh",
    "influencer",
]
PLATFORM_OF = {
    "tv": "tv_agency",
    "paid_search": "google_ads",
    "video": "google_ads",
    "social": "meta",
    "display": "dv360",
    "audio": "spotify",
    "affiliate": "awin",
    "email": "crm",
    "ooh": "ooh_agency",
    "influencer": "creator_network",
}
# Share of weeks a channel is on air, typical weekly spend, cost per mille, click-through.
ON_AIR = {
    "tv": 0.45,
    "paid_search": 0.95,
    "social": 0.85,
    "display": 0.7,
    "video": 0.55,
    "audio": 0.5,
    "affiliate": 0.9,
    "email": 0.8,
    "ooh": 0.4,
    "influencer": 0.6,
}
SPEND_LEVEL = {
    "tv": 15_000,
    "paid_search": 6_000,
    "social": 4_500,
    "display": 2_000,
    "video": 5_000,
    "audio": 1_800,
    "affiliate": 1_500,
    "email": 600,
    "ooh": 3_000,
    "influencer": 2_500,
}
CPM = {
    "tv": 12.0,
    "paid_search": 35.0,
    "social": 8.0,
    "display": 3.5,
    "video": 14.0,
    "audio": 9.0,
    "affiliate": 20.0,
    "email": 1.5,
    "ooh": 5.0,
    "influencer": 18.0,
}
CTR = {
    "tv": 0.0,
    "paid_search": 0.045,
    "social": 0.009,
    "display": 0.002,
    "video": 0.004,
    "audio": 0.0,
    "affiliate": 0.02,
    "email": 0.03,
    "ooh": 0.0,
    "influencer": 0.006,
}
L_MAX = 8
START = "2022-01-03"  # a Monday: weeks are labelled by their first day
MEDIA_SHARE = 0.3  # expected share of the outcome driven by media
INTERCEPT = 2_000.0  # baseline conversions per week (national)
AOV = 80.0  # average order value: revenue per conversion


@dataclass
class MMMTruth:
    channels: list[str]
    geos: list[str]
    dates: pd.DatetimeIndex
    params: dict[str, dict[str, float]]
    spend: np.ndarray  # (geo, week, channel)
    response_spend: np.ndarray  # what drives the response: spend, or mix-weighted spend (mta)
    impressions: np.ndarray
    clicks: np.ndarray
    contributions: np.ndarray  # conversions, (geo, week, channel)
    baseline: np.ndarray  # (geo, week)
    conversions: np.ndarray  # (geo, week)
    revenue: np.ndarray
    aov: np.ndarray  # (geo, week)
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # (week,)
    components: dict[str, float | list[float]] = field(default_factory=dict)


def draw_media(
    rng: np.random.Generator, channels: list[str], n_weeks: int, geo_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spend, impressions and clicks per (geo, week, channel), rounded as platforms report."""
    n_geo = len(geo_weights)
    spend = np.zeros((n_geo, n_weeks, len(channels)))
    impressions = np.zeros_like(spend)
    clicks = np.zeros_like(spend)
    for c, channel in enumerate(channels):
        # On/off flights: a two-state Markov chain that stays on air with probability 0.85
        # and switches on at the rate that makes ON_AIR its long-run share of weeks.
        p_on = ON_AIR[channel]
        switch_on = min(0.95, 0.15 * p_on / (1 - p_on))
        on = np.zeros(n_weeks, dtype=bool)
        state = bool(rng.random() < p_on)
        for t in range(n_weeks):
            on[t] = state
            state = bool(rng.random() < (0.85 if state else switch_on))
        if on.sum() < n_weeks // 4:  # keep every channel identifiable in the default panel
            on[rng.choice(n_weeks, size=n_weeks // 3, replace=False)] = True
        level = SPEND_LEVEL[channel] * rng.lognormal(0.0, 0.5, n_weeks) * on
        for g in range(n_geo):
            geo_noise = rng.lognormal(0.0, 0.15, n_weeks) if n_geo > 1 else 1.0
            s = np.round(level * geo_weights[g] * geo_noise, 2)
            cpm = CPM[channel] * rng.lognormal(0.0, 0.1, n_weeks)
            imp = np.round(s / cpm * 1000.0)
            spend[g, :, c] = s
            impressions[g, :, c] = imp
            clicks[g, :, c] = np.round(imp * CTR[channel] * rng.lognormal(0.0, 0.1, n_weeks))
    return spend, impressions, clicks


def draw_params(rng: np.random.Generator, channels: list[str]) -> dict[str, dict[str, float]]:
    shares = rng.dirichlet(np.full(len(channels), 4.0))
    return {
        channel: {
            "adstock_alpha": float(np.round(rng.uniform(0.1, 0.7), 4)),
            "l_max": L_MAX,
            "hill_slope": float(np.round(rng.uniform(1.0, 2.5), 4)),
            "hill_kappa": float(np.round(rng.uniform(0.25, 0.7), 4)),
            "target_media_share": float(shares[c]),
        }
        for c, channel in enumerate(channels)
    }


def media_response(
    spend: np.ndarray, params: dict[str, dict[str, float]], channels: list[str]
) -> np.ndarray:
    """hill(adstock(spend / max)) per (geo, week, channel), before the beta scale."""
    out = np.zeros_like(spend)
    for c, channel in enumerate(channels):
        p = params[channel]
        for g in range(spend.shape[0]):
            x = spend[g, :, c]
            scale = x.max() if x.max() > 0 else 1.0
            adstocked = geometric_adstock(x / scale, p["adstock_alpha"], int(p["l_max"]))
            out[g, :, c] = hill(adstocked, p["hill_slope"], p["hill_kappa"])
    return out


def simulate_outcome(
    rng: np.random.Generator,
    channels: list[str],
    geos: list[str],
    dates: pd.DatetimeIndex,
    geo_weights: np.ndarray,
    spend: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
    params: dict[str, dict[str, float]],
    country: str,
    response_spend: np.ndarray | None = None,
) -> MMMTruth:
    """The outcome. ``response_spend`` (default: ``spend``) is what the media curves see;
    the MTA world passes spend weighted by the week's campaign productivity mix."""
    response_spend = spend if response_spend is None else response_spend
    n_weeks = len(dates)
    t = np.linspace(0, 1, n_weeks)
    days = (dates + pd.Timedelta(days=3) - pd.Timestamp("1970-01-01")).days.to_numpy()
    angle = 2 * np.pi * days / 365.25
    season = 0.08 * np.sin(angle) + 0.05 * np.cos(angle) + 0.03 * np.sin(2 * angle)
    calendar = holidays_lib.country_holidays(
        country, years=range(dates[0].year, dates[-1].year + 1)
    )
    holiday_days = np.array(
        [sum((d + pd.Timedelta(days=k)).date() in calendar for k in range(7)) for d in dates],
        dtype=float,
    )
    competitor = np.zeros(n_weeks)
    for w in range(1, n_weeks):  # AR(1) competitor pressure index around 0
        competitor[w] = 0.8 * competitor[w - 1] + rng.normal(0, 0.3)
    trend_growth = 0.15
    base_unit = 1 + trend_growth * t + season + 0.03 * holiday_days - 0.04 * competitor
    baseline = INTERCEPT * geo_weights[:, None] * base_unit[None, :]
    response = media_response(response_spend, params, channels)
    contributions = np.zeros_like(spend)
    for c, channel in enumerate(channels):
        # beta chosen so that, on average, the channel delivers its target share of the
        # outcome; the realised share then depends on the drawn spend.
        target = params[channel]["target_media_share"] * MEDIA_SHARE / (1 - MEDIA_SHARE)
        mean_response = response[:, :, c].mean()
        beta = INTERCEPT * target / mean_response if mean_response > 0 else 0.0
        params[channel]["beta"] = float(beta)
        contributions[:, :, c] = beta * geo_weights[:, None] * response[:, :, c]
    mean_level = baseline + contributions.sum(axis=2)
    noise_sd = 0.035 * mean_level.mean(axis=1, keepdims=True)
    conversions = np.maximum(mean_level + rng.normal(0, 1, mean_level.shape) * noise_sd, 0.0)
    conversions = np.round(conversions, 2)
    aov = AOV * rng.lognormal(0, 0.04, conversions.shape)
    revenue = np.round(conversions * aov, 2)
    return MMMTruth(
        channels=channels,
        geos=geos,
        dates=dates,
        params=params,
        spend=spend,
        response_spend=response_spend,
        impressions=impressions,
        clicks=clicks,
        contributions=contributions,
        baseline=baseline,
        conversions=conversions,
        revenue=revenue,
        aov=aov,
        factors={"competitor_index": np.round(100 + 10 * competitor, 4)},
        components={
            "intercept": INTERCEPT,
            "trend_growth": trend_growth,
            "holiday_effect_per_day": 0.03 * INTERCEPT,
            "competitor_effect_per_index_point": -0.04 * INTERCEPT / 10,
            "noise_sd": noise_sd.ravel().tolist(),
            "aov": AOV,
            "media_share": MEDIA_SHARE,
        },
    )


def lift_tests(rng: np.random.Generator, truth: MMMTruth, n_tests: int) -> list[dict]:
    """Go-dark tests: true lift = outcome lost by switching the channel off for 4 weeks.

    On a geo panel each test goes dark in one geo, the one where the channel spends most (a
    geo experiment: the rest of the country is its control), and says which geo."""
    tests = []
    if n_tests <= 0:
        return tests
    n_weeks = len(truth.dates)
    national = truth.spend.sum(axis=0)
    order = np.argsort(-national.sum(axis=0))
    geo_panel = truth.geos != [""]  # a national panel has one unnamed geo
    geo_spend = truth.spend.sum(axis=1)  # (geo, channel)
    tested_geos: list[int] = []
    for c in order[:n_tests]:
        channel = truth.channels[c]
        tested = None
        if geo_panel:
            # Each test in its own geo while there are geos left (two go-dark tests in one
            # market at once would confound each other): the untested geo spending the most.
            spend_by_geo = geo_spend[:, c].astype(float)
            if len(tested_geos) < len(truth.geos):
                spend_by_geo[tested_geos] = -np.inf
            tested = int(np.argmax(spend_by_geo))
            tested_geos.append(tested)
        in_test = slice(None) if tested is None else slice(tested, tested + 1)
        active = np.flatnonzero(truth.spend[in_test, :, c].sum(axis=0) > 0)
        late = active[active < n_weeks - 4 - L_MAX]
        first = int(late[-1] - 3) if len(late) else n_weeks - 4 - L_MAX
        first = max(first, 0)
        window = slice(first, first + 4)
        dark = truth.response_spend.copy()
        dark[in_test, window, c] = 0.0
        p = {ch: dict(v) for ch, v in truth.params.items()}
        full = media_response(truth.response_spend, p, truth.channels)[:, :, c]
        # The counterfactual keeps the factual max scaling: the model's scale is fixed.
        off = np.zeros_like(full)
        for g in range(truth.spend.shape[0]):
            scale = truth.response_spend[g, :, c].max()
            adstocked = geometric_adstock(dark[g, :, c] / scale, p[channel]["adstock_alpha"], L_MAX)
            off[g] = hill(adstocked, p[channel]["hill_slope"], p[channel]["hill_kappa"])
        weights = truth.contributions[:, :, c] / np.where(full > 0, full, 1.0)
        true_lift = float(((full - off) * weights).sum())
        se = 0.1 * abs(true_lift) + 1e-9
        observed = true_lift + rng.normal(0, se)
        tests.append(
            {
                "channel": channel,
                "lift": round(observed, 2),
                "ci_lower": round(observed - 1.645 * se, 2),
                "ci_upper": round(observed + 1.645 * se, 2),
                "start": str(truth.dates[first].date()),
                "end": str((truth.dates[first + 3] + pd.Timedelta(days=6)).date()),
                "spend": round(float(truth.spend[in_test, window, c].sum()), 2),
                "metric": "conversions",
                **({"geo": truth.geos[tested]} if tested is not None else {}),
                "true_lift": round(true_lift, 4),
            }
        )
    return tests
