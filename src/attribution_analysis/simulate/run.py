"""The ``simulate_workspace`` step: write a workspace's raw files and its ground truth."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.simulation import (
    SimulateAnswer,
    SimulateWorkspaceParams,
    SimulationParams,
)
from attribution_analysis.errors import WorkspaceError, arg
from attribution_analysis.simulate import hcp_brick, journeys, mmm, mta
from attribution_analysis.workspace import Workspace, csv_bytes

SimulationKind = Literal["mmm", "mta", "hcp-brick", "journeys"]
STEP = "simulate_workspace"
RAW = layout.CONVERSIONS.path.split("/")[0]  # "raw"
TRUTH = layout.TRUTH_PARAMETERS.path.split("/")[0]  # "truth"


def _json(payload: object) -> bytes:
    # No timestamp: simulated workspaces are reproducible byte for byte for a seed.
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()


def _seed(params: SimulationParams) -> np.random.Generator:
    # Derive the stream from the kind as well, so kinds with one seed do not share draws.
    return np.random.default_rng([params.seed, sum(map(ord, params.kind))])


def compute(ctx: StepContext, params: SimulateWorkspaceParams) -> StepOutput:
    """The simulate_workspace step: the raw files and truth/ of a simulated world."""
    ws = ctx.ws
    _refuse_mixing(ws, params.overwrite)
    simulation = SimulationParams.model_validate(params.model_dump(exclude={"overwrite"}))
    files = _generate(simulation)
    # overwrite: no file of the old world stays beside the new one (removed in the commit)
    removes = _old_inputs(ws) if params.overwrite else []
    answer = SimulateAnswer(
        step=STEP, outputs=sorted(files), kind=simulation.kind, seed=simulation.seed
    )
    return StepOutput(answer, files, removes=removes)


def _refuse_mixing(ws: Workspace, overwrite: bool) -> None:
    for sub in (RAW, TRUTH):
        folder = ws.root / sub
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise WorkspaceError(
                f"'{folder}' already holds files; simulating into it would mix data sets.",
                fix=f"choose an empty folder or pass {arg('overwrite')} to replace raw/ and "
                "truth/.",
                file=str(folder),
            )


def _old_inputs(ws: Workspace) -> list[str]:
    """Every file under raw/ and truth/ now: what an overwrite replaces."""
    return [
        ws.relative(path)
        for sub in (RAW, TRUTH)
        for path in sorted((ws.root / sub).rglob("*"))
        if path.is_file() and not path.is_symlink()
    ]


def _generate(params: SimulationParams) -> dict[str, bytes]:
    rng = _seed(params)
    if params.kind == "hcp-brick":
        return _hcp_files(rng, params)
    if params.kind == "journeys":
        return journeys.journey_files(
            rng, params.n_users, np.datetime64(params.start), params.model_dump(mode="json")
        )
    return _mmm_files(rng, params)


def _mmm_files(rng: np.random.Generator, params: SimulationParams) -> dict[str, bytes]:
    channels = mmm.CHANNEL_POOL[: params.channels]
    geos = [f"geo_{g + 1:02d}" for g in range(params.geos)] or [""]
    geo_weights = rng.dirichlet(np.full(len(geos), 5.0)) if params.geos else np.ones(1)
    dates = pd.date_range(pd.Timestamp(params.start), periods=params.weeks, freq="7D")
    spend, impressions, clicks = mmm.draw_media(rng, channels, params.weeks, geo_weights)
    campaigns = None
    if params.kind == "mta":
        campaigns = mta.draw_campaigns(rng, channels, params.weeks, params.collinear_pairs)
        campaign_media = mta.split_media(campaigns, channels, spend, impressions, clicks, rng)
        for c, ch in enumerate(channels):  # channel totals are the sums of campaign rows
            spend[:, :, c] = campaign_media[ch]["spend"].sum(axis=2)
            impressions[:, :, c] = campaign_media[ch]["impressions"].sum(axis=2)
            clicks[:, :, c] = campaign_media[ch]["clicks"].sum(axis=2)
    truth_params = mmm.draw_params(rng, channels)
    response_spend = (
        mta.productivity_weighted_spend(campaigns, channels, spend, campaign_media)
        if campaigns is not None
        else None
    )
    truth = mmm.simulate_outcome(
        rng,
        channels,
        geos,
        dates,
        geo_weights,
        spend,
        impressions,
        clicks,
        truth_params,
        params.country,
        response_spend,
    )
    files: dict[str, bytes] = {}
    geo_col = {"geo": np.repeat(geos, len(dates))} if params.geos else {}
    date_col = np.tile(dates.strftime("%Y-%m-%d"), len(geos))
    files[layout.CONVERSIONS.path] = csv_bytes(
        pd.DataFrame(
            {
                "date": date_col,
                **geo_col,
                "conversions": truth.conversions.ravel(),
                "revenue": truth.revenue.ravel(),
            }
        ),
        float_format="%.2f",
    )
    factor_rows = [
        pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "factor_name": name, "value": values})
        for name, values in truth.factors.items()
    ]
    files[layout.EXTERNAL_FACTORS.path] = csv_bytes(pd.concat(factor_rows), float_format="%.4f")
    files.update(
        _spend_files(
            channels,
            (spend, impressions, clicks),
            campaigns,
            campaign_media if campaigns is not None else {},
            dates,
            geos,
            bool(params.geos),
        )
    )
    tests = mmm.lift_tests(rng, truth, params.lift_tests)
    if tests:
        observed = [{k: v for k, v in t.items() if k != "true_lift"} for t in tests]
        files[layout.LIFT_TESTS.path] = _json(observed)
    files.update(_mmm_truth(truth, params, tests, bool(params.geos)))
    if campaigns is not None:
        files.update(_mta_truth(rng, truth, campaigns, campaign_media, params, bool(params.geos)))
        meta = campaigns.metadata.drop(columns="lambda_true")
        files[layout.CAMPAIGN_METADATA.path] = csv_bytes(meta)
    return files


def _spend_files(
    channels: list[str],
    media: tuple[np.ndarray, np.ndarray, np.ndarray],
    campaigns: mta.CampaignTruth | None,
    campaign_media: dict,
    dates: pd.DatetimeIndex,
    geos: list[str],
    with_geo: bool,
) -> dict[str, bytes]:
    """One spend file per platform: channel rows, or campaign rows for the mta kind."""
    spend, impressions, clicks = media
    geo_col = {"geo": np.repeat(geos, len(dates))} if with_geo else {}
    date_col = np.tile(dates.strftime("%Y-%m-%d"), len(geos))
    files = {}
    for platform in sorted({mmm.PLATFORM_OF[ch] for ch in channels}):
        frames = []
        for c, ch in enumerate(channels):
            if mmm.PLATFORM_OF[ch] != platform:
                continue
            if campaigns is None:
                frames.append(
                    pd.DataFrame(
                        {
                            "date": date_col,
                            "channel": ch,
                            **geo_col,
                            "spend": spend[:, :, c].ravel(),
                            "impressions": impressions[:, :, c].ravel().astype(np.int64),
                            "clicks": clicks[:, :, c].ravel().astype(np.int64),
                        }
                    )
                )
            else:
                frames.append(
                    _campaign_rows(ch, campaigns, campaign_media[ch], dates, geos, with_geo)
                )
        table = pd.concat(frames, ignore_index=True)
        files[layout.SPEND.path_for(platform=platform)] = csv_bytes(table, float_format="%.2f")
    return files


def _campaign_rows(
    channel: str,
    campaigns: mta.CampaignTruth,
    media: dict[str, np.ndarray],
    dates: pd.DatetimeIndex,
    geos: list[str],
    with_geo: bool,
) -> pd.DataFrame:
    names = campaigns.metadata.loc[campaigns.metadata["channel"] == channel, "campaign"].tolist()
    n_geo, n_week, n_camp = media["spend"].shape
    frame = pd.DataFrame(
        {
            "date": np.tile(np.repeat(dates.strftime("%Y-%m-%d"), n_camp), n_geo),
            "channel": channel,
            "campaign": np.tile(names, n_geo * n_week),
            **({"geo": np.repeat(geos, n_week * n_camp)} if with_geo else {}),
            "spend": media["spend"].ravel(),
            "impressions": media["impressions"].ravel().astype(np.int64),
            "clicks": media["clicks"].ravel().astype(np.int64),
        }
    )
    # Platforms report only campaigns that delivered in a week; the always-on campaign is
    # reported every week (with zeros when the channel is dark), so the file spans the
    # whole window, as the validation step requires.
    always_on = frame["campaign"] == names[0]
    return frame[(frame["spend"] > 0) | (frame["impressions"] > 0) | always_on]


def _mmm_truth(
    truth: mmm.MMMTruth, params: SimulationParams, tests: list[dict], with_geo: bool
) -> dict[str, bytes]:
    n_geo, n_week, n_ch = truth.spend.shape
    rows = pd.DataFrame(
        {
            "date": np.tile(np.repeat(truth.dates.strftime("%Y-%m-%d"), n_ch), n_geo),
            **({"geo": np.repeat(truth.geos, n_week * n_ch)} if with_geo else {}),
            "channel": np.tile(truth.channels, n_geo * n_week),
            "spend": truth.spend.ravel(),
            "contribution": truth.contributions.ravel(),
            "contribution_revenue": (truth.contributions * truth.aov[:, :, None]).ravel(),
        }
    )
    total = truth.contributions.sum(axis=(0, 1))
    revenue = (truth.contributions * truth.aov[:, :, None]).sum(axis=(0, 1))
    spend = truth.spend.sum(axis=(0, 1))
    summary = {
        "kind": params.kind,
        "seed": params.seed,
        "params": params.model_dump(mode="json"),
        "channels": {
            ch: {
                **truth.params[ch],
                "total_contribution": float(total[c]),
                "total_contribution_revenue": float(revenue[c]),
                "share_of_media": float(total[c] / total.sum()),
                "spend": float(spend[c]),
                "roas_conversions_per_unit_spend": float(total[c] / spend[c]),
                "roas_revenue": float(revenue[c] / spend[c]),
            }
            for c, ch in enumerate(truth.channels)
        },
        "baseline_total": float(truth.baseline.sum()),
        "outcome_total": float(truth.conversions.sum()),
        "media_share_of_outcome": float(total.sum() / truth.conversions.sum()),
        "components": truth.components,
        "lift_tests": tests,
        "transform_conventions": {
            "adstock": "geometric, normalised weights, l_max periods, zero before the start",
            "saturation": "hill(x) = x^slope / (x^slope + kappa^slope) on adstocked spend / max "
            "spend of the (geo, channel) series",
            "contribution": "beta * geo_weight * hill(adstock(spend / max))",
        },
    }
    return {
        layout.TRUTH_CONTRIBUTIONS.path: csv_bytes(rows),
        layout.TRUTH_PARAMETERS.path: _json(summary),
    }


def _mta_truth(
    rng: np.random.Generator,
    truth: mmm.MMMTruth,
    campaigns: mta.CampaignTruth,
    campaign_media: dict,
    params: SimulationParams,
    with_geo: bool,
) -> dict[str, bytes]:
    split = mta.true_split(
        campaigns,
        truth.channels,
        campaign_media,
        truth.contributions,
        truth.params,
        rng,
        params.split_noise_shape,
    )
    exposure = mta.exposure_table(truth.channels, campaign_media, truth.params)
    frames = []
    meta = campaigns.metadata
    for ch in truth.channels:
        names = meta.loc[meta["channel"] == ch, "campaign"].tolist()
        n_geo, n_week, n_camp = split[ch].shape
        frames.append(
            pd.DataFrame(
                {
                    "date": np.tile(np.repeat(truth.dates.strftime("%Y-%m-%d"), n_camp), n_geo),
                    **({"geo": np.repeat(truth.geos, n_week * n_camp)} if with_geo else {}),
                    "channel": ch,
                    "campaign": np.tile(names, n_geo * n_week),
                    "impressions": campaign_media[ch]["impressions"].ravel(),
                    "adstocked_impressions": exposure[ch].ravel(),
                    "contribution": split[ch].ravel(),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table = table[(table["contribution"] > 0) | (table["impressions"] > 0)]
    collinear = [
        [f"{ch}_c02", f"{ch}_c03"]
        for c, ch in enumerate(truth.channels)
        if c < params.collinear_pairs and (meta["channel"] == ch).sum() >= 3
    ]
    return {
        f"{TRUTH}/campaign_split.csv": csv_bytes(table),
        f"{TRUTH}/campaign_productivity.csv": csv_bytes(meta),
        f"{TRUTH}/campaigns.json": _json(
            {
                "collinear_campaigns": collinear,
                "split_noise_shape": params.split_noise_shape,
                "productivity_effects": {
                    "objective": mta.OBJECTIVE_EFFECT,
                    "creative_family": mta.FAMILY_EFFECT,
                    "noise_sd": mta.PRODUCTIVITY_NOISE_SD,
                },
                "split_rule": "z[k,t] = C[channel,t] * lambda_k a_k,t e_k,t"
                " / sum_j lambda_j a_j,t e_j,t with a = geometric adstock of impressions"
                " (channel alpha), "
                "e ~ Gamma(shape, 1/shape)",
            }
        ),
    }


def _hcp_files(rng: np.random.Generator, params: SimulationParams) -> dict[str, bytes]:
    truth = hcp_brick.simulate_hcp_brick(
        rng,
        n_hcps=params.n_hcps,
        n_bricks=params.n_bricks,
        family=params.hcp_family,
        dispersion=params.dispersion,
        gamma_shape=params.gamma_shape,
        unit_value=params.unit_value,
    )
    visits = truth.pairs[["hcp_id", "brick_id", "visits"]]
    hcps = truth.hcps[["hcp_id", "specialty", "seniority", "potential"]]
    return {
        layout.BRICK_SALES.path: csv_bytes(truth.bricks, float_format="%.2f"),
        layout.HCP_BRICK.path: csv_bytes(visits, float_format="%.0f"),
        layout.HCPS.path: csv_bytes(hcps),
        f"{TRUTH}/hcp_truth.csv": csv_bytes(truth.hcps),
        f"{TRUTH}/pair_truth.csv": csv_bytes(truth.pairs),
        layout.TRUTH_PARAMETERS.path: _json(
            {
                "kind": params.kind,
                "seed": params.seed,
                "params": params.model_dump(mode="json"),
                "feature_names": truth.feature_names,
                "beta_true": truth.beta_true,
                "note": "full specialty one-hot plus intercept, as in the course: beta is "
                "identified only up to that collinearity; compare X beta, not beta.",
            }
        ),
    }
