"""Effective exposure: campaign impressions through the channel's MMM adstock and saturation.

The allocation weighs each campaign by what the MMM says its impressions are worth in a
period: carried over by the channel's geometric adstock and bent by its saturation curve,
with parameters passed as plain numbers per channel (:class:`ChannelTransform`). The curves
are the NumPy twins in :mod:`attribution_analysis.transforms`, tested equal to
PyMC-Marketing's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from attribution_analysis import layout
from attribution_analysis.contracts.allocation import (
    ChannelTransform,
    ExposureMetric,
    HillSaturation,
    LogisticSaturation,
    SaturationOn,
)
from attribution_analysis.contracts.common import Finding
from attribution_analysis.data.grain import Grain
from attribution_analysis.data.tables import LINE, shown_list, shown_value
from attribution_analysis.errors import (
    DataValidationError,
    MissingInputError,
    ParameterError,
    arg,
    step_ref,
)
from attribution_analysis.transforms import geometric_adstock, hill, logistic_saturation

NATIONAL = ""
# No adstock, no saturation: the weight of a campaign is its delivery in the period.
NO_CARRYOVER = ChannelTransform(alpha=0.0, l_max=1, saturation=None)


# Numbers a transforms entry may carry (contract keys and the simulator's flat keys); other
# keys (beta, shares, ...) are ignored and so not checked.
NUMERIC_KEYS = ("alpha", "adstock_alpha", "l_max", "hill_slope", "hill_kappa", "logistic_lam")
SATURATION_KEYS = ("slope", "kappa", "lam")
TRANSFORMS_FIX = (
    "write {channel: {alpha (0-1), l_max (whole periods), saturation: {kind: hill, slope, "
    "kappa} or {kind: logistic, lam}}} with plain JSON numbers."
)


def channel_transform(spec: ChannelTransform | Mapping[str, Any], channel: str) -> ChannelTransform:
    """Read one channel's transform from our contract or from the simulator's flat keys.

    Accepted flat keys: ``adstock_alpha`` (or ``alpha``), ``l_max``, ``hill_slope`` and
    ``hill_kappa``, or ``logistic_lam``; other keys (beta, shares...) are ignored.
    """
    if isinstance(spec, ChannelTransform):
        return spec
    data = dict(spec)
    try:
        if "saturation" in data or ("alpha" in data and "adstock_alpha" not in data):
            keep = {k: data[k] for k in ("alpha", "l_max", "saturation") if k in data}
            return ChannelTransform.model_validate(keep)
        saturation: HillSaturation | LogisticSaturation | None = None
        if "hill_slope" in data or "hill_kappa" in data:
            saturation = HillSaturation(slope=data["hill_slope"], kappa=data["hill_kappa"])
        elif "logistic_lam" in data:
            saturation = LogisticSaturation(lam=data["logistic_lam"])
        return ChannelTransform(
            alpha=data["adstock_alpha"], l_max=data["l_max"], saturation=saturation
        )
    except KeyError as exc:
        reason = f"{exc.args[0]} is missing"
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'entry'}: {error['msg']}"
            for error in exc.errors()
        )
    except (TypeError, ValueError) as exc:
        reason = str(exc)
    raise ParameterError(
        f"the media transform of channel '{channel}' is incomplete or invalid ({reason}).",
        fix="give alpha (0-1), l_max (periods) and optionally saturation "
        "{kind: hill, slope, kappa} or {kind: logistic, lam}.",
    )


def _bad_number(value: Any) -> str | None:
    """Why ``value`` is not a usable JSON number, or None when it is one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is {type(value).__name__} {shown_value(value)}, not a number"
    if not math.isfinite(value):
        return f"is {value}, not a finite number"
    return None


def _check_entry(channel: str, entry: Any, shown: str) -> None:
    """Refuse, naming the file and the field, an entry whose numbers are text, booleans,
    NaN or infinite (JSON written by hand or by other tools)."""
    if not isinstance(entry, dict):
        raise DataValidationError(
            problem=f"the entry of channel '{channel}' is {type(entry).__name__}, not an object.",
            fix=TRANSFORMS_FIX,
            file=shown,
            code="malformed_json",
        )
    fields = [(key, entry[key]) for key in NUMERIC_KEYS if key in entry]
    saturation = entry.get("saturation")
    if isinstance(saturation, dict):
        fields += [
            (f"saturation.{key}", saturation[key]) for key in SATURATION_KEYS if key in saturation
        ]
    elif saturation is not None:
        raise DataValidationError(
            problem=f"{channel}.saturation is {type(saturation).__name__} "
            f"{shown_value(saturation)}, not an object or null.",
            fix=TRANSFORMS_FIX,
            file=shown,
            code="invalid_value",
        )
    for key, value in fields:
        reason = _bad_number(value)
        if reason is None and key == "l_max" and value != int(value):
            reason = f"is {value}, not a whole number of periods"
        if reason is not None:
            raise DataValidationError(
                problem=f"{channel}.{key} {reason}.",
                fix=TRANSFORMS_FIX,
                file=shown,
                code="invalid_value",
            )


def transforms_from_json(path: Path, shown: str) -> dict[str, ChannelTransform]:
    """Channel transforms from a JSON file: ``{channel: {...}}`` or the simulator's
    ``truth/parameters.json`` (whose ``channels`` key holds them). Every number must be a
    finite JSON number; a malformed entry is refused naming the file and the field."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingInputError(
            f"{shown} does not exist.",
            fix="give the adstock/saturation parameters per channel (JSON).",
            file=shown,
        ) from None
    except UnicodeDecodeError:
        raise DataValidationError(
            problem="the file is not UTF-8 text.",
            fix="save it as UTF-8 JSON.",
            file=shown,
            code="malformed_json",
        ) from None
    except json.JSONDecodeError as exc:
        raise DataValidationError(
            problem=f"the file is not valid JSON ({exc.msg}).",
            fix="write {channel: {alpha, l_max, saturation}}.",
            file=shown,
            rows=(exc.lineno,),
            code="malformed_json",
        ) from None
    channels = payload.get("channels", payload) if isinstance(payload, dict) else None
    if not isinstance(channels, dict) or not channels:
        raise DataValidationError(
            problem="expected a non-empty object {channel: {alpha, l_max, saturation}}.",
            fix="write one entry per channel.",
            file=shown,
            code="malformed_json",
        )
    out = {}
    for channel, entry in channels.items():
        _check_entry(str(channel), entry, shown)
        try:
            out[str(channel)] = channel_transform(entry, str(channel))
        except ParameterError as exc:
            raise DataValidationError(
                problem=exc.problem, fix=TRANSFORMS_FIX, file=shown, code="invalid_value"
            ) from None
    return out


def _saturate(x: np.ndarray, transform: ChannelTransform) -> np.ndarray:
    sat = transform.saturation
    if sat is None:
        return x
    if isinstance(sat, HillSaturation):
        return hill(x, sat.slope, sat.kappa)
    return logistic_saturation(x, sat.lam)


def exposure_basis(panel: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The campaign panel with each spend-only channel's spend standing in for its
    impressions, and those channels.

    A channel that reports no impressions (empty cells in the campaign panel) has no
    delivery to weigh its campaigns by: its campaigns are split by spend, the quantity the MMM
    itself is fitted on, run through the same adstock and saturation. Unknown impressions are
    never read as zeros (that would give its campaigns no credit at all)."""
    if "impressions" not in panel or "spend" not in panel:
        return panel, []
    unknown = panel["impressions"].isna()
    if not unknown.any():
        return panel, []
    channels = sorted(set(panel.loc[unknown, "channel"]))
    basis = panel.copy()
    rows = basis["channel"].isin(channels)
    basis.loc[rows, "impressions"] = basis.loc[rows, "spend"]
    return basis, channels


def _lines(panel: pd.DataFrame, mask: pd.Series | np.ndarray) -> tuple[int, ...]:
    return tuple(int(x) for x in panel.loc[mask, LINE]) if LINE in panel else ()


def check_delivery(panel: pd.DataFrame, shown: str) -> None:
    """Refuse delivery that cannot be true: reach above impressions in a row (a person
    reached saw at least one impression), naming the rows."""
    if "reach" not in panel or "impressions" not in panel:
        return
    over = (panel["reach"] > panel["impressions"]).to_numpy()  # NaN compares False
    if over.any():
        first = panel.loc[over].iloc[0]
        raise DataValidationError(
            problem=f"reach is above impressions in {int(over.sum())} rows (e.g. campaign "
            f"{shown_value(first['campaign'])} on {pd.Timestamp(first['date']).date()}: reach "
            f"{first['reach']:g} > impressions {first['impressions']:g}); a person reached "
            "saw at least one impression, so the export mixes up the columns or the periods.",
            fix="correct reach (people reached, at most the impressions) in the campaign spend "
            f"files and rerun {step_ref('validate_data')}, or drop the reach column.",
            file=shown,
            column="reach",
            rows=_lines(panel, over),
            code="invalid_value",
        )


def choose_exposure(
    rows: pd.DataFrame, metric: ExposureMetric | str, shown: str
) -> tuple[pd.DataFrame, list[str]]:
    """The panel rows (of the channels allocated) with ``impressions`` holding the chosen
    delivery metric (the column the effective exposure is built from), and the channels
    weighed by spend instead.

    'impressions' keeps the spend stand-in of channels that report none
    (:func:`exposure_basis`); any other metric must be reported in every row of every
    channel allocated, and every campaign must have some of it: a campaign with none in the
    whole panel would get no credit for a reason the user did not choose. A user-named column
    (any numeric column of the campaign spend files, added to the panel by the loader) is
    treated like the built-in ones."""
    if metric == "impressions":
        basis, spend_only = exposure_basis(rows)
    else:
        if metric not in rows:
            raise DataValidationError(
                problem=f"exposure '{metric}' was chosen but the campaign panel has no "
                f"{metric} column (the campaign spend files report none).",
                fix=f"export {metric} in raw/campaign_spend_*.csv and rerun "
                f"{step_ref('validate_data')}, or choose another {arg('exposure')} "
                "(impressions, reach, clicks, spend).",
                file=shown,
                column=metric,
                code="missing_column",
            )
        unknown = rows[metric].isna().to_numpy()
        if unknown.any():
            missing = sorted(set(rows.loc[unknown, "channel"]))
            raise DataValidationError(
                problem=f"exposure '{metric}' was chosen but {int(unknown.sum())} rows do not "
                f"report it (channel(s) {shown_list(missing)}).",
                fix=f"export {metric} for those channels and rerun {step_ref('validate_data')}, "
                f"or choose another {arg('exposure')} (impressions, reach, clicks, spend).",
                file=shown,
                column=metric,
                rows=_lines(rows, unknown),
                code="missing_value",
            )
        basis, spend_only = rows.assign(impressions=rows[metric]), []
    _check_every_campaign_delivers(basis, metric, spend_only, shown)
    return basis, spend_only


def _check_every_campaign_delivers(
    basis: pd.DataFrame, metric: ExposureMetric | str, spend_only: list[str], shown: str
) -> None:
    """A campaign listed in the panel with zero exposure in every row is refused: it could
    only ever get zero credit, which is a data problem (an empty column exported as zeros),
    not a finding about the campaign."""
    delivered = basis.groupby(["channel", "campaign"], sort=True)["impressions"].sum()
    idle = delivered[delivered <= 0]
    if idle.empty:
        return
    channel, campaign = idle.index[0]
    column = "spend" if channel in spend_only else metric
    rows = ((basis["channel"] == channel) & (basis["campaign"] == campaign)).to_numpy()
    raise DataValidationError(
        problem=f"campaign {shown_value(campaign)} of channel '{channel}' has zero {column} in "
        f"every row ({len(idle)} campaign(s) in all), so it could never be credited.",
        fix=f"check its {column} in the campaign spend files (an unreported metric must be "
        f"empty, not 0), remove its rows, or choose another {arg('exposure')}; then rerun "
        f"{step_ref('validate_data')}.",
        file=shown,
        column=column,
        rows=_lines(basis, rows),
        code="zero_exposure",
    )


def to_periods(panel: pd.DataFrame, grain: Grain, anchor: int, metrics: list[str]) -> pd.DataFrame:
    """Sum the panel's ``metrics`` onto periods of ``grain``: days stay days, weeks start on
    weekday ``anchor`` (0 = Monday); creatives are summed. A metric unknown (NaN) in any
    row of a cell is unknown for the cell (a partial sum would understate it). Days at the
    edges that do not fill a week still form their week: partial periods are allocated."""
    dates = pd.to_datetime(panel["date"])
    if grain == "weekly":
        dates = dates - pd.to_timedelta((dates.dt.day_of_week - anchor) % 7, unit="D")
    keys = ["date", *(["geo"] if "geo" in panel else []), "channel", "campaign"]
    frame = panel.assign(date=dates)
    grouped = frame.groupby(keys, sort=True)
    sums = grouped[metrics].sum()
    unknown = frame[metrics].isna().groupby([frame[k] for k in keys], sort=True).any()
    return sums.mask(unknown).reset_index()


def spend_basis_finding(channels: list[str]) -> Finding:
    return Finding(
        code="spend_only_channel",
        severity="info",
        subject=", ".join(channels),
        message=f"channel(s) {', '.join(channels)} report no impressions: their campaigns are "
        "weighed by spend (with the same adstock and saturation, if any), not by delivery, so "
        "the split within them only follows spend.",
    )


def build_effective_exposure(
    panel: pd.DataFrame,
    transforms: Mapping[str, ChannelTransform | Mapping[str, Any]],
    saturation_on: SaturationOn = "channel_total",
) -> pd.DataFrame:
    """Campaign-level effective exposure per period (and geo).

    Parameters
    ----------
    panel
        Long table with columns date, channel, campaign, impressions (and geo). Campaigns
        absent in a period count as zero impressions; rows of one (date, geo, channel,
        campaign) are summed (creatives).
    transforms
        ``{channel: ChannelTransform}`` or plain dicts (see :func:`channel_transform`).
    saturation_on
        ``"channel_total"`` (default): adstock each campaign, add them up to the channel's
        adstocked total A_t, saturate that total as the MMM does, s_t = sat(A_t / scale), and
        give each campaign s_t * a_ct / A_t. The MMM only ever sees the channel total, so this
        is its own view of saturation; the common factor s_t / A_t cancels in the shares of a
        period, so the split among campaigns follows their adstocked impressions.
        ``"campaign"``: each campaign is saturated alone, sat(a_ct / scale), which favours
        small campaigns in periods where the channel is saturated. In both, ``scale`` is the
        maximum of the channel's raw impressions per geo (the MMM's max scaling).

    Returns
    -------
    DataFrame
        date, [geo], channel, campaign, impressions, adstocked, effective_exposure; one row
        per (period, geo, channel, campaign) on the full period grid, zeros included.
    """
    required = {"date", "channel", "campaign", "impressions"}
    missing = required - set(panel.columns)
    if missing:
        raise DataValidationError(
            problem=f"the campaign panel lacks columns {sorted(missing)}.",
            fix=f"rerun {step_ref('validate_data')} to rebuild {layout.CAMPAIGN_PANEL.path}.",
            column=sorted(missing)[0],
            code="missing_column",
        )
    unknown = sorted(set(panel["channel"]) - set(transforms))
    if unknown:
        raise ParameterError(
            f"no adstock/saturation parameters for channel(s) {unknown}.",
            fix="add them to the transforms (from the MMM fit).",
            parameter="transforms",
        )
    params = {ch: channel_transform(transforms[ch], ch) for ch in sorted(set(panel["channel"]))}
    has_geo = "geo" in panel.columns
    frame = panel.assign(geo=panel["geo"].astype(str) if has_geo else NATIONAL)
    dates, series, impressions = _impression_grid(frame)
    channel_of = series["channel"].to_numpy()
    adstocked = _adstock(impressions, channel_of, params)
    effective = _saturate_grid(impressions, adstocked, series, params, saturation_on)
    n_t, n_s = impressions.shape
    out = pd.DataFrame(
        {
            "date": np.repeat(pd.DatetimeIndex(dates).strftime("%Y-%m-%d").to_numpy(), n_s),
            "geo": np.tile(series["geo"].to_numpy(), n_t),
            "channel": np.tile(channel_of, n_t),
            "campaign": np.tile(series["campaign"].to_numpy(), n_t),
            "impressions": impressions.ravel(),
            "adstocked": adstocked.ravel(),
            "effective_exposure": effective.ravel(),
        }
    )
    return out if has_geo else out.drop(columns="geo")


def _impression_grid(frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Sorted periods, the (geo, channel, campaign) series, and the dense (period x series)
    impressions: absent rows are zeros, repeated rows (creatives) add up, without a Python
    loop over campaigns (a weighted bincount)."""
    dates = np.sort(pd.to_datetime(frame["date"]).unique())
    t = np.searchsorted(dates, pd.to_datetime(frame["date"]).to_numpy())
    series = frame[["geo", "channel", "campaign"]].astype(str).drop_duplicates()
    series = series.sort_values(["geo", "channel", "campaign"]).reset_index(drop=True)
    s = pd.MultiIndex.from_frame(series).get_indexer(
        pd.MultiIndex.from_frame(frame[["geo", "channel", "campaign"]].astype(str))
    )
    n_t, n_s = len(dates), len(series)
    flat = np.bincount(
        t * n_s + s, weights=frame["impressions"].to_numpy(dtype=float), minlength=n_t * n_s
    )
    return dates, series, flat.reshape(n_t, n_s)


def _adstock(
    impressions: np.ndarray, channel_of: np.ndarray, params: Mapping[str, ChannelTransform]
) -> np.ndarray:
    """Each series through its channel's geometric adstock."""
    alpha = np.array([params[ch].alpha for ch in channel_of])
    l_max = np.array([params[ch].l_max for ch in channel_of])
    adstocked = np.zeros_like(impressions)
    for window in np.unique(l_max):  # one pass per distinct window length (a few at most)
        cols = np.flatnonzero(l_max == window)
        adstocked[:, cols] = geometric_adstock(impressions[:, cols], alpha[cols], int(window))
    return adstocked


def _saturate_grid(
    impressions: np.ndarray,
    adstocked: np.ndarray,
    series: pd.DataFrame,
    params: Mapping[str, ChannelTransform],
    saturation_on: SaturationOn,
) -> np.ndarray:
    """Effective exposure per (period, series): saturation on the channel total shared pro
    rata, or on each campaign alone; scaled by the channel's max raw impressions per geo."""
    n_s = len(series)
    channel_of = series["channel"].to_numpy()
    # Channel-level quantities per (geo, channel): the sum over its campaigns and its max.
    cell, cells = pd.factorize(pd.MultiIndex.from_frame(series[["geo", "channel"]]))
    onehot = np.zeros((n_s, len(cells)))
    onehot[np.arange(n_s), cell] = 1.0
    channel_raw = impressions @ onehot
    channel_adstocked = adstocked @ onehot
    scale = channel_raw.max(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    effective = np.zeros_like(adstocked)
    for ch, transform in params.items():
        cols = np.flatnonzero(channel_of == ch)
        cell_cols = cell[cols]
        if saturation_on == "channel_total":
            total = channel_adstocked[:, cell_cols]
            level = _saturate(total / scale[cell_cols], transform)
            with np.errstate(divide="ignore", invalid="ignore"):
                effective[:, cols] = np.where(total > 0, level * adstocked[:, cols] / total, 0.0)
        else:
            effective[:, cols] = _saturate(adstocked[:, cols] / scale[cell_cols], transform)
    return effective
