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
