"""Put path-based credit beside the MMM, and split the MMM's channel totals over campaigns.

Path credit is correlational and sees only tracked touches; the MMM is (with its
assumptions) causal and sees every channel with spend. So the comparison is made on shares
among the channels both sources know, and a path share outside the MMM's 90% interval of
the same share is flagged, never "corrected" either way.

The calibrated split keeps the MMM's total per channel (the causal amount) and uses path
credit only for what the MMM cannot see: how that total divides over the channel's
campaigns. The per-campaign path credit is written as ``omega``, an alternative to the
effective exposure that the allocation step uses as ω, recorded as coming from paths.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import ValidationError

from attribution_analysis import layout
from attribution_analysis.contracts.outputs import ChannelContributions
from attribution_analysis.contracts.paths import (
    CalibratedSplit,
    ReconciledChannel,
    Reconciliation,
)
from attribution_analysis.errors import DataValidationError, arg, step_ref
from attribution_analysis.workspace import csv_bytes

RULE = (
    "a path method disagrees with the MMM on a channel when its share (among the channels "
    "both sources know) lies outside the MMM's 90% HDI of that channel's share of media, "
    "renormalised to the same channels"
)
SPLIT_RULE = (
    "calibrated credit(campaign) = MMM contribution(channel) x omega, omega = the campaign's "
    "path credit / the channel's path credit; the MMM's 90% HDI bounds are split the same way"
)
OMEGA_SOURCE = (
    "path_credit: campaign share of its channel's path-based credit, time-invariant per "
    "(channel, campaign); an alternative to effective exposure (adstocked, saturated "
    "impressions) as the allocation weight ω, from correlational journey data"
)


@dataclass
class MMMShares:
    method: str
    channels: list[str]
    mean: np.ndarray  # share of media, renormalised over ``channels``
    lower: np.ndarray
    upper: np.ndarray
    contribution: np.ndarray
    contribution_lower: np.ndarray
    contribution_upper: np.ndarray


def read_mmm(path, shown: str) -> ChannelContributions:
    try:
        return ChannelContributions.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(
            problem=f"the MMM contributions file is not valid JSON ({exc}).",
            fix=f"run {step_ref('decompose_contributions')} again, or turn {arg('reconcile')} off.",
            file=shown,
            code="bad_json",
        ) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DataValidationError(
            problem=f"the MMM contributions file does not match its contract "
            f"({'.'.join(str(p) for p in first['loc'])}: {first['msg']}).",
            fix=f"run {step_ref('decompose_contributions')} again to rewrite it, or turn "
            f"{arg('reconcile')} off.",
            file=shown,
            code="bad_contract",
        ) from None


def dates_overlap(
    journeys: tuple[dt.date | None, dt.date | None], mmm: tuple[dt.date | None, dt.date | None]
) -> bool | None:
    """Whether two inclusive date ranges share a day (None when either is unknown)."""
    (j0, j1), (m0, m1) = journeys, mmm
    if j0 is None or j1 is None or m0 is None or m1 is None:
        return None
    return bool(j0 <= m1 and m0 <= j1)


def mmm_shares(mmm: ChannelContributions, keep: list[str]) -> MMMShares:
    """MMM shares renormalised over ``keep``; interval ends scaled by the same factor (the
    HDI of a share of a sub-total is not available from the summary, so this is the
    interval of the original share, rescaled: adequate for a flag, stated in the rule)."""
    by_name = {c.channel: c for c in mmm.channels}
    mean = np.array([by_name[c].share_of_media.mean for c in keep])
    lower = np.array([by_name[c].share_of_media.hdi_90[0] for c in keep])
    upper = np.array([by_name[c].share_of_media.hdi_90[1] for c in keep])
    scale = 1.0 / mean.sum() if mean.sum() > 0 else 0.0
    contribution = np.array([by_name[c].total_contribution.mean for c in keep])
    c_low = np.array([by_name[c].total_contribution.hdi_90[0] for c in keep])
    c_high = np.array([by_name[c].total_contribution.hdi_90[1] for c in keep])
    return MMMShares(
        mmm.method, keep, mean * scale, lower * scale, upper * scale, contribution, c_low, c_high
    )


def reconcile(
    mmm: ChannelContributions,
    mmm_file: str,
    path_channels: list[str],
    credits: dict[str, np.ndarray],
    channel_map: dict[str, str],
    campaign_credit: pd.DataFrame | None,
    calibration_method: str,
    journey_dates: tuple[dt.date | None, dt.date | None] = (None, None),
) -> tuple[Reconciliation, bytes | None]:
    """Shares side by side with flags, and the calibrated split CSV (None without campaigns).

    ``credits``: method -> (C,) conversions credited per path channel.
    ``campaign_credit``: channel, campaign, credit (path credit of each campaign).
    ``journey_dates``: first and last touch date (None for paths.csv, which has none).
    """
    target = np.array([channel_map.get(c, c) for c in path_channels], dtype=object)
    mmm_names = [c.channel for c in mmm.channels]
    matched = [m for m in mmm_names if m in set(target)]
    path_only = sorted(c for c, t in zip(path_channels, target, strict=True) if t not in matched)
    mmm_only = [m for m in mmm_names if m not in set(target)]
    shares = mmm_shares(mmm, matched)
    in_matched = np.isin(target, matched)
    rows = []
    for i, channel in enumerate(matched):
        members = [c for c, t in zip(path_channels, target, strict=True) if t == channel]
        path_shares: dict[str, float] = {}
        disagree: list[str] = []
        for method, credit in credits.items():
            total = credit[in_matched].sum()
            share = float(credit[target == channel].sum() / total) if total > 0 else 0.0
            path_shares[method] = share
            if not shares.lower[i] <= share <= shares.upper[i]:
                disagree.append(method)
        rows.append(
            ReconciledChannel(
                channel=channel,
                path_channels=members,
                mmm_share=float(shares.mean[i]),
                mmm_share_lower_90=float(shares.lower[i]),
                mmm_share_upper_90=float(shares.upper[i]),
                mmm_contribution=float(shares.contribution[i]),
                path_shares=path_shares,
                disagreeing_methods=disagree,
            )
        )
    span = mmm.metadata.data_range
    mmm_start = span.start if span is not None else None
    mmm_end = span.end if span is not None else None
    # The MMM's end is the first day of its last period: a weekly panel covers 6 more days.
    last_day = mmm_end
    if span is not None and mmm_end is not None and span.grain == "weekly":
        last_day = mmm_end + dt.timedelta(days=6)
    overlap = dates_overlap(journey_dates, (mmm_start, last_day))
    split, csv = None, None
    if campaign_credit is not None and matched:
        split, csv = _calibrated_split(shares, campaign_credit, channel_map, calibration_method)
    report = Reconciliation(
        mmm_file=mmm_file,
        mmm_method=mmm.method,
        rule=RULE,
        mmm_shares_renormalised=bool(mmm_only),
        mmm_start=mmm_start,
        mmm_end=mmm_end,
        dates_overlap=overlap,
        channels=rows,
        path_channels_not_in_mmm=path_only,
        mmm_channels_not_in_paths=mmm_only,
        calibrated_split=split,
    )
    return report, csv


def _calibrated_split(
    shares: MMMShares,
    campaign_credit: pd.DataFrame,
    channel_map: dict[str, str],
    method: str,
) -> tuple[CalibratedSplit, bytes]:
    frame = campaign_credit.assign(
        mmm_channel=campaign_credit["channel"].map(lambda c: channel_map.get(c, c))
    )
    frame = frame[frame["mmm_channel"].isin(shares.channels)].copy()
    channel_total = frame.groupby("mmm_channel")["credit"].transform("sum")
    frame["omega"] = np.where(channel_total > 0, frame["credit"] / channel_total, 0.0)
    idx = {c: i for i, c in enumerate(shares.channels)}
    pos = frame["mmm_channel"].map(idx).to_numpy(dtype=int)
    frame["mmm_contribution"] = shares.contribution[pos]
    frame["calibrated_contribution"] = frame["omega"] * shares.contribution[pos]
    frame["calibrated_lower_90"] = frame["omega"] * shares.contribution_lower[pos]
    frame["calibrated_upper_90"] = frame["omega"] * shares.contribution_upper[pos]
    frame["omega_source"] = f"path_credit:{method}"
    out = frame.rename(columns={"credit": "path_credit"})[
        [
            "mmm_channel",
            "channel",
            "campaign",
            "omega",
            "path_credit",
            "mmm_contribution",
            "calibrated_contribution",
            "calibrated_lower_90",
            "calibrated_upper_90",
            "omega_source",
        ]
    ].sort_values(["mmm_channel", "channel", "campaign"], kind="stable")
    covered = set(out.loc[out["path_credit"] > 0, "mmm_channel"])
    split = CalibratedSplit(
        file=layout.PATH_CAMPAIGN_OMEGA.path,
        method=method,
        rule=SPLIT_RULE,
        omega_source=OMEGA_SOURCE,
        n_campaigns=len(out),
        channels_without_campaign_credit=[c for c in shares.channels if c not in covered],
    )
    return split, csv_bytes(out)
