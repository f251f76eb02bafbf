"""Campaigns under channels: the MMM -> MTA ground truth.

Each channel's weekly impressions and spend are split across 4-12 campaigns with staggered,
overlapping flights (campaign 1 is always on). Campaign productivity is
lambda_k = exp(objective + creative family effects + noise), mean 1 within the channel. The
channel's response is driven by its spend weighted by the week's productivity mix
(``productivity_weighted_spend``), so productive weeks deliver more. The
true split of the channel's contribution C(channel, week[, geo]) is proportional to
lambda_k * adstock(impressions_k)_t (times optional multiplicative noise), so it adds up to
C exactly. Saturation acts on the channel total, so it is common to all campaigns of a week
and cancels in the shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from attribution_analysis.transforms import geometric_adstock

OBJECTIVES = ["Awareness", "Consideration", "Conversion"]
OBJECTIVE_EFFECT = {"Awareness": -0.25, "Consideration": 0.0, "Conversion": 0.3}
FAMILIES = ["A", "B", "C"]
FAMILY_EFFECT = {"A": 0.0, "B": 0.2, "C": -0.15}
FORMATS = {
    "tv": ["spot_30s", "spot_15s"],
    "paid_search": ["search_ad"],
    "social": ["video", "static", "carousel"],
    "display": ["banner", "rich_media"],
    "video": ["instream", "bumper"],
    "audio": ["spot_30s"],
    "affiliate": ["link"],
    "email": ["newsletter", "triggered"],
    "ooh": ["billboard", "transit"],
    "influencer": ["sponsored_post", "story"],
}
PRODUCTIVITY_NOISE_SD = 0.3


@dataclass
class CampaignTruth:
    metadata: pd.DataFrame  # campaign, channel, objective, format, creative_family, lambda_true
    shares: dict[str, np.ndarray]  # channel -> (week, campaign) impression shares


def _largest_remainder(total: np.ndarray, shares: np.ndarray, unit: float) -> np.ndarray:
    """Split each row's ``total`` by ``shares`` in multiples of ``unit``, summing exactly."""
    units = np.round(total / unit).astype(np.int64)
    raw = shares * units[:, None]
    base = np.floor(raw).astype(np.int64)
    short = units - base.sum(axis=1)
    order = np.argsort(-(raw - base), axis=1, kind="stable")
    ranks = np.argsort(order, axis=1, kind="stable")
    base += (ranks < short[:, None]).astype(np.int64)
    return base * unit


def draw_campaigns(
    rng: np.random.Generator, channels: list[str], n_weeks: int, collinear_pairs: int
) -> CampaignTruth:
    rows, shares = [], {}
    for c, channel in enumerate(channels):
        k = int(rng.integers(4, 13))
        active = np.zeros((n_weeks, k), dtype=bool)
        active[:, 0] = True  # an always-on campaign carries weeks no flight covers
        for j in range(1, k):
            length = int(rng.integers(6, min(41, n_weeks)))
            start = int(rng.integers(0, n_weeks - length + 1))
            active[start : start + length, j] = True
        weight = rng.lognormal(0.0, 0.6, k)[None, :] * rng.lognormal(0.0, 0.3, (n_weeks, k))
        if c < collinear_pairs and k >= 3:
            # Campaign 3 mirrors campaign 2's flight and weekly pattern at a fixed ratio:
            # their exposures are exactly proportional, so their split is not identifiable.
            active[:, 2] = active[:, 1]
            weight[:, 2] = 0.7 * weight[:, 1]
        share = np.where(active, weight, 0.0)
        shares[channel] = share / share.sum(axis=1, keepdims=True)
        objective = rng.choice(OBJECTIVES, size=k)
        family = rng.choice(FAMILIES, size=k)
        fmt = rng.choice(FORMATS[channel], size=k)
        log_lambda = (
            np.array([OBJECTIVE_EFFECT[o] for o in objective])
            + np.array([FAMILY_EFFECT[f] for f in family])
            + rng.normal(0.0, PRODUCTIVITY_NOISE_SD, k)
        )
        lam = np.exp(log_lambda)
        lam = lam / lam.mean()
        for j in range(k):
            rows.append(
                {
                    "campaign": f"{channel}_c{j + 1:02d}",
                    "channel": channel,
                    "objective": objective[j],
                    "format": fmt[j],
                    "creative_family": family[j],
                    "lambda_true": float(lam[j]),
                }
            )
    return CampaignTruth(pd.DataFrame(rows), shares)


def split_media(
    truth: CampaignTruth,
    channels: list[str],
    spend: np.ndarray,
    impressions: np.ndarray,
    clicks: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, dict[str, np.ndarray]]:
    """Campaign-level (geo, week, campaign) media per channel; sums equal the channel's."""
    out = {}
    for c, channel in enumerate(channels):
        share = truth.shares[channel]
        cost_factor = rng.lognormal(0.0, 0.2, share.shape[1])
        spend_share = share * cost_factor
        spend_share /= spend_share.sum(axis=1, keepdims=True)
        parts = {"spend": [], "impressions": [], "clicks": []}
        for g in range(spend.shape[0]):
            parts["spend"].append(_largest_remainder(spend[g, :, c], spend_share, 0.01))
            parts["impressions"].append(_largest_remainder(impressions[g, :, c], share, 1.0))
            parts["clicks"].append(_largest_remainder(clicks[g, :, c], share, 1.0))
        out[channel] = {m: np.round(np.stack(v), 2) for m, v in parts.items()}
    return out


def productivity_weighted_spend(
    truth: CampaignTruth, channels: list[str], spend: np.ndarray, campaign_media: dict
) -> np.ndarray:
    """What drives the channel's response: productivity-weighted impressions, in spend units.

    Audiences respond to impressions, not invoices, and a week whose impressions lean on
    productive campaigns yields more: the input is sum_k lambda_k impressions_k,t converted
    to spend at the channel's average cost per impression. This is what makes campaign
    productivity observable at all. Mean productivity is 1, so the scale is kept on average.
    """
    out = spend.copy()
    meta = truth.metadata
    for c, channel in enumerate(channels):
        lam = meta.loc[meta["channel"] == channel, "lambda_true"].to_numpy()
        imp = campaign_media[channel]["impressions"]  # (geo, week, k)
        cost_per_impression = spend[:, :, c].sum() / max(imp.sum(), 1.0)
        out[:, :, c] = (imp * lam).sum(axis=2) * cost_per_impression
    return out


def true_split(
    truth: CampaignTruth,
    channels: list[str],
    campaign_media: dict,
    contributions: np.ndarray,
    params: dict[str, dict[str, float]],
    rng: np.random.Generator,
    noise_shape: float | None,
) -> dict[str, np.ndarray]:
    """z[geo, week, campaign] per channel: C split by lambda x adstocked impressions."""
    out = {}
    meta = truth.metadata
    for c, channel in enumerate(channels):
        lam = meta.loc[meta["channel"] == channel, "lambda_true"].to_numpy()
        imp = campaign_media[channel]["impressions"]  # (geo, week, k)
        exposure = geometric_adstock(
            imp, params[channel]["adstock_alpha"], int(params[channel]["l_max"]), axis=1
        )
        weight = lam[None, None, :] * exposure
        if noise_shape:
            weight = weight * rng.gamma(noise_shape, 1.0 / noise_shape, weight.shape)
        total = weight.sum(axis=2, keepdims=True)
        fallback = np.broadcast_to(1.0 / weight.shape[2], weight.shape)
        share = np.where(total > 0, weight / np.where(total > 0, total, 1.0), fallback)
        out[channel] = contributions[:, :, c][:, :, None] * share
    return out


def exposure_table(
    channels: list[str], campaign_media: dict, params: dict[str, dict[str, float]]
) -> dict[str, np.ndarray]:
    return {
        ch: geometric_adstock(
            campaign_media[ch]["impressions"],
            params[ch]["adstock_alpha"],
            int(params[ch]["l_max"]),
            axis=1,
        )
        for ch in channels
    }


# ---------------------------------------------------------------------------------------------
# The hard cases: one channel, daily delivery over a few months, the campaign split to recover.
# ---------------------------------------------------------------------------------------------

CONTRIBUTION_PER_REACHED_USER = 0.05  # currency per reached user at productivity 1
BASE_CLICK_THROUGH = 0.012  # clicks per impression at productivity 1


@dataclass(frozen=True)
class DailyCaseConfig:
    """Knobs of the daily single-channel world; ranges are drawn per seed, inclusive.

    ``overstated_clicks`` multiplies one campaign's click-through rate (retargeting or bot
    clicks): its clicks overstate its incrementality, which misleads any split by clicks.
    ``mmm_noise`` hands the channel total over as posterior-like draws whose centre is off
    the truth by a level bias plus a smooth daily error, drawn from the same process as the
    draws' own spread (so the truth is a plausible draw of a calibrated posterior).
    """

    days: tuple[int, int] = (90, 180)
    campaigns: tuple[int, int] = (5, 10)
    productivity_sd: float = 0.5  # log-scale spread of incrementality per reached user
    short_flight_days: tuple[int, int] = (7, 21)
    late_launch_fraction: float = 0.7  # late launches start after this fraction of the window
    overstated_clicks: float = 4.0
    click_signal: float = 0.5  # elasticity of click-through to true productivity
    click_noise_sd: float = 0.3
    daily_noise_sd: float = 0.15  # campaign-day deviation of the true contribution
    delivery_noise_sd: float = 0.3  # day-to-day jitter of each campaign's impressions
    delivery_drift_sd: float = 0.35  # slow drift of each campaign's delivery (10-day scale)
    # Contribution ~ reach^elasticity (scaled to the campaign's mean reach): below 1, a big
    # delivery day yields less per reached user, so no split by rate x reach is exact.
    reach_elasticity: float = 1.0
    mmm_noise: bool = False
    level_bias_sd: float = 0.15
    smooth_error_sd: float = 0.12
    smooth_error_days: int = 14  # length scale of the smooth daily error
    n_draws: int = 200


HARD_CASE = DailyCaseConfig()
HARD_CASE_WITH_MMM_NOISE = DailyCaseConfig(mmm_noise=True)
# Paced delivery: campaigns move together far more, so co-movement carries less evidence.
SMOOTH_DELIVERY = DailyCaseConfig(delivery_noise_sd=0.1, delivery_drift_sd=0.15)
SMOOTH_DELIVERY_WITH_MMM_NOISE = DailyCaseConfig(
    delivery_noise_sd=0.1, delivery_drift_sd=0.15, mmm_noise=True
)
# Diminishing returns within a day: outside the family every method here assumes.
CONCAVE_RESPONSE = DailyCaseConfig(reach_elasticity=0.7)


@dataclass(frozen=True)
class DailyCampaignWorld:
    """A simulated channel with daily campaign delivery and its true campaign split."""

    delivery: pd.DataFrame  # date, campaign, spend, impressions, reach, clicks, contribution_true
    campaigns: pd.DataFrame  # campaign, kind, first_day, last_day, productivity_true, ctr_factor
    dates: pd.DatetimeIndex  # (T,)
    total_true: np.ndarray  # (T,) channel contribution, the sum of the true campaign parts
    total: np.ndarray  # (T,) what the allocation sees: the truth, or the draws' mean
    total_draws: np.ndarray | None  # (S, T) posterior-like draws (mmm_noise), else None
    overstated: str  # campaign whose clicks overstate its incrementality

    @property
    def true_share(self) -> pd.Series:
        """Each campaign's share of the channel's true contribution over the window."""
        parts = self.delivery.groupby("campaign")["contribution_true"].sum()
        return (parts / parts.sum()).reindex(self.campaigns["campaign"]).fillna(0.0)


def _smooth_error(
    rng: np.random.Generator, size: tuple[int, ...], days: int, sd: float
) -> np.ndarray:
    """Stationary smooth noise along the last axis: white noise through a Gaussian kernel,
    rescaled to standard deviation ``sd`` (an MMM's daily error drifts, it does not jump)."""
    n = size[-1]
    pad = 3 * days
    white = rng.normal(size=(*size[:-1], n + 2 * pad))
    lags = np.arange(-pad, pad + 1)
    kernel = np.exp(-0.5 * (lags / (days / 2.0)) ** 2)
    kernel /= np.sqrt(np.sum(kernel**2))
    smooth = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), -1, white)
    return sd * smooth[..., :n]


def _flights(rng: np.random.Generator, n_days: int, k: int, cfg: DailyCaseConfig) -> tuple:
    """(first, last, kind) per campaign: one always-on, >= 1 short flight, >= 1 late launch."""
    kinds = ["always_on", "short_flight", "late_launch"]
    kinds += list(
        rng.choice(["regular", "short_flight", "late_launch"], size=k - 3, p=[0.6, 0.2, 0.2])
    )
    first = np.zeros(k, dtype=int)
    last = np.full(k, n_days - 1)
    for j, kind in enumerate(kinds):
        if kind == "short_flight":
            length = int(rng.integers(cfg.short_flight_days[0], cfg.short_flight_days[1] + 1))
            first[j] = int(rng.integers(0, n_days - length + 1))
            last[j] = first[j] + length - 1
        elif kind == "late_launch":
            first[j] = int(rng.integers(int(cfg.late_launch_fraction * n_days), n_days - 7))
        elif kind == "regular":
            length = int(rng.integers(30, n_days + 1))
            first[j] = int(rng.integers(0, n_days - length + 1))
            last[j] = first[j] + length - 1
    return first, last, np.array(kinds)


def simulate_daily_campaigns(seed: int, config: DailyCaseConfig = HARD_CASE) -> DailyCampaignWorld:
    """One channel's daily campaign delivery and true campaign contributions.

    Truth: campaign k's contribution on day t is productivity_k x reach_kt x a campaign-day
    deviation (lognormal, ``daily_noise_sd``), times a constant per reached user; there is no
    carryover. With ``reach_elasticity`` e < 1 reach_kt becomes m_k (reach_kt / m_k)^e, m_k
    the campaign's mean daily reach (diminishing returns within a day). Productivity is
    lognormal with mean 1. Clicks follow impressions times a click-through rate that rises
    with productivity (``click_signal``) with noise, and one campaign other than the
    always-on one has its click-through multiplied by ``overstated_clicks``. Reach is
    impressions over a per-campaign frequency (so reach <= impressions), spend is
    impressions at a per-campaign CPM.
    """
    rng = np.random.default_rng(seed)
    cfg = config
    n_days = int(rng.integers(cfg.days[0], cfg.days[1] + 1))
    k = int(rng.integers(cfg.campaigns[0], cfg.campaigns[1] + 1))
    first, last, kinds = _flights(rng, n_days, k, cfg)
    day = np.arange(n_days)
    live = (day[:, None] >= first[None, :]) & (day[:, None] <= last[None, :])

    budget = rng.lognormal(np.log(50_000.0), 0.7, k)
    weekly = 1.0 + 0.15 * np.sin(2 * np.pi * (day[:, None] + rng.integers(0, 7, k)) / 7.0)
    drift = np.exp(_smooth_error(rng, (k, n_days), 10, cfg.delivery_drift_sd).T)
    jitter = rng.lognormal(0.0, cfg.delivery_noise_sd, (n_days, k))
    impressions = np.where(live, np.round(budget * weekly * drift * jitter), 0.0)
    frequency = rng.uniform(1.5, 4.0, k)[None, :] * rng.lognormal(0.0, 0.1, (n_days, k))
    reach = np.minimum(np.round(impressions / np.maximum(frequency, 1.0)), impressions)
    cpm = rng.lognormal(np.log(8.0), 0.4, k)
    spend = np.round(impressions * cpm / 1000.0, 2)

    productivity = rng.lognormal(0.0, cfg.productivity_sd, k)
    productivity /= productivity.mean()
    overstated = int(rng.integers(1, k))
    ctr_factor = np.ones(k)
    ctr_factor[overstated] = cfg.overstated_clicks
    ctr = (
        BASE_CLICK_THROUGH
        * productivity**cfg.click_signal
        * rng.lognormal(0.0, cfg.click_noise_sd, k)
        * ctr_factor
    )
    clicks = rng.poisson(np.minimum(ctr, 0.5)[None, :] * impressions).astype(float)
    deviation = rng.lognormal(-0.5 * cfg.daily_noise_sd**2, cfg.daily_noise_sd, (n_days, k))
    typical_reach = np.array([reach[live[:, j], j].mean() for j in range(k)])
    response = typical_reach[None, :] * (reach / typical_reach[None, :]) ** cfg.reach_elasticity
    contribution = CONTRIBUTION_PER_REACHED_USER * productivity[None, :] * response * deviation
    total_true = contribution.sum(axis=1)

    draws = None
    total = total_true.copy()
    if cfg.mmm_noise:

        def error(size: tuple[int, ...]) -> np.ndarray:
            level = rng.normal(0.0, cfg.level_bias_sd, (*size[:-1], 1))
            return level + _smooth_error(rng, size, cfg.smooth_error_days, cfg.smooth_error_sd)

        centre = total_true * np.exp(error((n_days,)))
        draws = centre[None, :] * np.exp(error((cfg.n_draws, n_days)))
        total = draws.mean(axis=0)

    dates = pd.date_range("2025-01-06", periods=n_days, freq="D")
    names = np.array([f"campaign_{j + 1:02d}" for j in range(k)])
    rows = live.ravel()
    delivery = pd.DataFrame(
        {
            "date": np.repeat(dates, k)[rows],
            "campaign": np.tile(names, n_days)[rows],
            "spend": spend.ravel()[rows],
            "impressions": impressions.ravel()[rows],
            "reach": reach.ravel()[rows],
            "clicks": clicks.ravel()[rows],
            "contribution_true": contribution.ravel()[rows],
        }
    )
    campaigns = pd.DataFrame(
        {
            "campaign": names,
            "kind": kinds,
            "first_day": first,
            "last_day": last,
            "productivity_true": productivity,
            "ctr_factor": ctr_factor,
        }
    )
    return DailyCampaignWorld(
        delivery=delivery,
        campaigns=campaigns,
        dates=dates,
        total_true=total_true,
        total=total,
        total_draws=draws,
        overstated=str(names[overstated]),
    )
