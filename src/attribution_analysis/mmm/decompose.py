"""The ``decompose_contributions`` step: who drove the outcome, with intervals.

Contributions come from PyMC-Marketing's own deterministics evaluated on the stored
posterior (no re-implementation); marginal ROAS from the same graph with every channel's
spend raised by 1% at once, which is exact per channel because a channel's contribution
depends only on its own spend.

The evaluation needs the model rebuilt and compiled (PyMC, PyTensor: about 2 s of a fresh
process), so ``fit_mmm`` does it once, in its own job, and stores what this step reads in
the posterior file's ``decomposition_v1`` group (``reduce_draws``): per-draw window totals,
the weekly bands and the thinned weekly draws. This step then reads that group without
PyMC. A posterior written before the group existed is evaluated here as before.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.mmm import DecomposeParams
from attribution_analysis.contracts.outputs import (
    BaseContribution,
    ChannelContribution,
    ChannelContributions,
    ComponentContribution,
    DecomposeAnswer,
    GeoChannelContribution,
    SumCheck,
)
from attribution_analysis.mmm import store
from attribution_analysis.mmm.component_names import (
    ORGANIC_CONTRIBUTION,
    event_coefficient_name,
    event_data_name,
)
from attribution_analysis.mmm.gate import override_findings, require_valid_model
from attribution_analysis.mmm.loaded import FittedModel, open_fit
from attribution_analysis.mmm.stored import StoredFit, open_stored_fit
from attribution_analysis.progress import report
from attribution_analysis.provenance import build_metadata
from attribution_analysis.summaries import band_90, interval, thin_draws
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

STEP = "decompose_contributions"
CSV_DRAWS = 200  # draws per cell in the long table the allocation step reads
# Summaries of sums over weeks need far fewer draws than the sampler keeps for its ESS gate.
DECOMPOSITION_DRAWS = 4000
SUM_TOLERANCE = 0.02
MARGINAL_STEP = 0.01
STORED_DRAWS = 500
# The posterior file's group that fit_mmm fills with reduce_draws. Its version is in its name:
# change it with what reduce_draws stores or how the draws are evaluated, and a posterior
# stored before is evaluated again here instead of being read in the old form.
GROUP = "decomposition_v1"
# Past this many geo x channel cells (e.g. 20 geos x 5 channels) the answer leaves them to
# the contributions file: each cell is three intervals, and an agent's context is finite.
GEO_CELLS_IN_ANSWER = 100
# The saturation parameters handed to the allocation (transforms file), by family; the
# variables are 'saturation_<name>' in the posterior.
TRANSFORM_SATURATION = {"hill": ("slope", "kappa"), "logistic": ("lam",)}
BASE_PARTS = ("intercept_contribution", "yearly_seasonality_contribution", "control_contribution")


def compute(ctx: StepContext, params: DecomposeParams) -> StepOutput:
    """The decompose_contributions step: contributions, shares and ROAS with intervals."""
    ws, progress = ctx.ws, ctx.progress
    gate = require_valid_model(ws, params.override_reason)
    stored = open_stored_fit(ws)
    if stored.has_group(GROUP):
        report(progress, 0, 3, "reading the contributions the fit evaluated")
        summary = stored.group(GROUP)
        names = _transform_names(stored)
        posterior = stored.group(_posterior_group(stored.method), names) if names else None
    else:  # a posterior written before fit_mmm stored its decomposition
        report(progress, 0, 3, "evaluating contributions on the posterior")
        summary, posterior = _evaluate(open_fit(ws))
    report(progress, 2, 3, "summaries")
    verdicts = _identification(ws)
    result, weekly, draws_tree = _summarise(stored, summary, gate, ctx.run_id, verdicts)
    files = {
        layout.CONTRIBUTIONS.path: json_bytes(result.model_dump(mode="json")),
        layout.WEEKLY_CONTRIBUTIONS.path: csv_bytes(weekly),
        layout.CONTRIBUTION_DRAWS.path: _tree_bytes(ws, draws_tree),
        layout.CONTRIBUTION_DRAWS_CSV.path: csv_bytes(_draws_table(draws_tree, CSV_DRAWS)),
    }
    transforms = channel_transforms(stored.params.config, stored.data.channels, posterior)
    if transforms is not None:
        files[layout.TRANSFORMS.path] = json_bytes(transforms)
    report(progress, 3, 3, "done")
    answer = DecomposeAnswer(
        step=STEP,
        outputs=list(files),
        target=result.target,
        method=result.method,
        roas_unit=result.roas_unit,
        channels=result.channels,
        base=result.base,
        components=result.components,
        geos=result.geos if len(result.geos) <= GEO_CELLS_IN_ANSWER else [],
        sum_check=result.sum_check,
        findings=result.findings + _geo_cells_elsewhere(result),
    )
    return StepOutput(answer, files, stored.input_hashes)


def _evaluate(fitted: FittedModel) -> tuple[xr.Dataset, xr.Dataset]:
    """The decomposition group and the posterior, computed from a rebuilt model."""
    return reduce_draws(draws_of(fitted)), fitted.tree[_posterior_group(fitted.method)].to_dataset()


def _posterior_group(method: str) -> str:
    """Where the fit's transform parameters are: the ridge keeps its point values apart."""
    return "hyperparameters" if method == "ridge_bootstrap" else "posterior"


def _transform_names(stored: StoredFit) -> list[str] | None:
    """The variables ``channel_transforms`` reads (None: the fit's adstock has none to hand
    over, and nothing is read)."""
    config = stored.params.config
    if config.adstock != "geometric":
        return None
    return ["adstock_alpha", *(f"saturation_{n}" for n in TRANSFORM_SATURATION[config.saturation])]


def _geo_cells_elsewhere(result: ChannelContributions) -> list[Finding]:
    """Where a large panel's per-geo cells are, when the answer leaves them out."""
    if len(result.geos) <= GEO_CELLS_IN_ANSWER:
        return []
    n_geos = len({c.geo for c in result.geos})
    return [
        Finding(
            code="geo_cells_in_file",
            severity="info",
            value=len(result.geos),
            message=f"the {len(result.geos)} geo x channel cells ({n_geos} geos) are in "
            f"{layout.CONTRIBUTIONS.path} under 'geos', left out of this answer for its "
            "size; read the geos asked about from there.",
        )
    ]


def contribution_draws(
    fitted: FittedModel, channel_scale: float | None = None
) -> dict[str, xr.DataArray]:
    """Per-draw contributions in original units: channel (sample, date[, geo], channel),
    base parts and the fitted mean ``mu``; with ``channel_scale``, also ``channel_scaled``:
    the channel contributions with every channel's spend multiplied by it."""
    from pymc.backends.arviz import apply_function_over_dataset, coords_and_dims_for_inferencedata

    model = fitted.mmm.model
    deterministic = {d.name for d in model.deterministics}
    names = ["channel_contribution", "mu"] + [
        p for p in (*BASE_PARTS, ORGANIC_CONTRIBUTION) if p in deterministic
    ]
    posterior = thin_draws(fitted.tree["posterior"].to_dataset(), DECOMPOSITION_DRAWS)
    free = posterior[[v.name for v in model.free_RVs]]
    # pm.compute_deterministics, with its one compiled function kept for both evaluations:
    # the spend is a shared variable read when the function runs, so the scaled evaluation
    # needs no second compile (half a second of this step). The pieces are PyMC's own.
    coords, dims = coords_and_dims_for_inferencedata(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        function = model.compile_fn(
            inputs=model.free_RVs, outs=[model[n] for n in names], on_unused_input="ignore"
        )

        def evaluate() -> xr.Dataset:
            return apply_function_over_dataset(
                function, free, output_var_names=names, dims=dims, coords=coords, progressbar=False
            )

        values = evaluate()
        if channel_scale is not None:
            spend = model["channel_data"]
            original = spend.get_value()
            spend.set_value(original * channel_scale)
            try:
                values["channel_scaled"] = evaluate()["channel_contribution"]
            finally:
                spend.set_value(original)
    scale = fitted.target_scale
    out = {}
    for name in [*names, *(["channel_scaled"] if channel_scale is not None else [])]:
        out[name.replace("_contribution", "")] = (values[name] * scale).stack(
            sample=("chain", "draw")
        )
    out["intercept_contribution"] = (posterior["intercept_contribution"] * scale).stack(
        sample=("chain", "draw")
    )
    if fitted.data.events:
        out["event"] = (_event_draws(fitted, posterior) * scale).stack(sample=("chain", "draw"))
    return out


def _event_draws(fitted: FittedModel, posterior: xr.Dataset) -> xr.DataArray:
    """Per-event contributions on the target scale, (chain, draw, date[, geo], event): each
    event's coefficient times its indicator (PyMC-Marketing keeps only their sum)."""
    model = fitted.mmm.model
    parts = []
    for column in fitted.data.events:
        values = model[event_data_name(column)].get_value()
        dims = model.named_vars_to_dims[event_data_name(column)]
        indicator = xr.DataArray(values, dims=dims, coords={d: list(model.coords[d]) for d in dims})
        parts.append(posterior[event_coefficient_name(column)] * indicator)
    return xr.concat(parts, dim=xr.DataArray(fitted.data.events, dims="event"))


def _totals(values: xr.DataArray) -> np.ndarray:
    """Sum over everything but channel and sample: (sample, channel) or (sample,)."""
    keep = [d for d in ("sample", "channel") if d in values.dims]
    return values.sum([d for d in values.dims if d not in keep]).transpose(*keep).values


@dataclass
class Draws:
    """Per-draw (or per bootstrap replicate) pieces of the decomposition."""

    channel: xr.DataArray  # (sample, date[, geo], channel), original units
    marginal: np.ndarray  # (sample, channel): extra outcome from MARGINAL_STEP more spend
    base: np.ndarray  # (sample,): intercept + seasonality + controls over the window
    fitted: np.ndarray  # (sample,): the model's fitted total over the window
    # (sample, component): organic series and events over the window, and their names/kinds
    components: np.ndarray | None = None
    component_names: tuple[tuple[str, str], ...] = ()


def decomposition_of(mmm: Any, data: Any, tree: xr.DataTree, params: Any) -> xr.Dataset:
    """``reduce_draws`` of a fit just sampled (or bootstrapped): what ``fit_mmm`` stores in
    the posterior file's ``GROUP``, so that this step need not rebuild the model."""
    method = "ridge_bootstrap" if "bootstrap" in tree.children else "posterior"
    fitted = FittedModel(mmm, data, tree, params, {"result": {"method": method}}, {})
    return reduce_draws(draws_of(fitted))


def draws_of(fitted: FittedModel) -> Draws:
    """Every draw's contributions: the posterior's, or the ridge model's bootstrap."""
    if fitted.method == "ridge_bootstrap":
        return _ridge_draws(fitted)
    return _bayes_draws(fitted)


def reduce_draws(draws: Draws) -> xr.Dataset:
    """What the step's summaries read, small enough to keep in the posterior file: each
    draw's window totals (channel per geo, marginal, base, fitted, other components), the
    weekly mean and 90% band from every draw, and ``STORED_DRAWS`` weekly draws."""
    channel = draws.channel.drop_vars(
        [c for c in ("sample", "chain", "draw") if c in draws.channel.coords]
    )
    channel = channel.assign_coords(sample=np.arange(channel.sizes["sample"]))
    mean = channel.mean("sample")
    low, high = band_90(channel, "sample")
    step = max(1, channel.sizes["sample"] // STORED_DRAWS)
    kept = channel.isel(sample=slice(None, None, step))
    variables: dict[str, Any] = {
        "channel_total": channel.sum("date"),
        "marginal": (("sample", "channel"), draws.marginal),
        "base": ("sample", draws.base),
        "fitted": ("sample", draws.fitted),
        "weekly_mean": mean,
        "weekly_lower_90": mean.copy(data=low),
        "weekly_upper_90": mean.copy(data=high),
        "channel_draws": kept.rename(sample="stored_draw").drop_vars("stored_draw"),
    }
    if draws.components is not None:
        names, kinds = zip(*draws.component_names, strict=True)
        variables["components"] = (("sample", "component"), draws.components)
        variables["component_name"] = ("component", list(names))
        variables["component_kind"] = ("component", list(kinds))
    return xr.Dataset(variables)


def _bayes_draws(fitted: FittedModel) -> Draws:
    # Extra contribution per channel from MARGINAL_STEP more spend in every period.
    parts = contribution_draws(fitted, channel_scale=1 + MARGINAL_STEP)
    marginal = _totals(parts["channel_scaled"] - parts["channel"])
    # Base = intercept (one value per geo, every period) + seasonality + controls.
    base = _totals(parts["intercept_contribution"]) * parts["channel"].sizes["date"]
    for name in ("yearly_seasonality", "control"):
        if name in parts:
            base = base + _totals(parts[name])
    components, names = [], []
    for key, dim, kind in (("organic", "organic", "organic"), ("event", "event", "event")):
        if key in parts:
            values = parts[key]
            totals = values.sum([d for d in values.dims if d not in ("sample", dim)])
            components.append(totals.transpose("sample", dim).values)
            names += [(_factor_name(str(n)), kind) for n in values[dim].values]
    return Draws(
        parts["channel"],
        marginal,
        base,
        _totals(parts["mu"]),
        np.concatenate(components, axis=1) if components else None,
        tuple(names),
    )


def _factor_name(column: str) -> str:
    """The factor's name in external_factors.csv (panel columns carry an 'ext_' prefix)."""
    return column.removeprefix("ext_")


def _ridge_draws(fitted: FittedModel) -> Draws:
    from attribution_analysis.mmm.build import effective_l_max
    from attribution_analysis.mmm.ridge import marginal_contribution

    boot = fitted.tree["bootstrap"].to_dataset()
    spend = fitted.data.X[fitted.data.channels].to_numpy(dtype=float)
    marginal = marginal_contribution(
        fitted.tree, spend, effective_l_max(fitted.params.config), MARGINAL_STEP
    )
    return Draws(boot["channel_contribution"], marginal, _totals(boot["base"]), _totals(boot["mu"]))


def _identification(ws: Workspace) -> dict[str, dict[str, Any]]:
    """validate_model's verdict per channel (the gate has checked that its diagnostics
    belong to this fit); empty for diagnostics without verdicts (ridge, older files)."""
    diagnostics = json.loads(ws.resolve(layout.DIAGNOSTICS.path).read_text())
    return {row["channel"]: row for row in diagnostics.get("identification", [])}


def _summarise(
    fitted: StoredFit | FittedModel,
    summary: xr.Dataset,
    gate: dict[str, Any],
    run_id: str,
    verdicts: dict[str, dict[str, Any]] | None = None,
):
    """The contributions file, the weekly table and the draws file from ``reduce_draws``'
    dataset; ``fitted`` gives the data, parameters and provenance."""
    data = fitted.data
    channels = [str(c) for c in summary["channel"].values]
    media = _totals(summary["channel_total"])  # (sample, channel)
    media_total = media.sum(axis=1)
    spend = np.array([data.X[c].sum() for c in channels])
    extra = summary["marginal"].values
    base = summary["base"].values
    fitted_total = summary["fitted"].values
    components = summary["components"].values if "components" in summary else None
    component_names = (
        list(zip(summary["component_name"].values, summary["component_kind"].values, strict=True))
        if components is not None
        else []
    )
    component_total = components.sum(axis=1) if components is not None else 0.0
    explained = base + media_total + component_total
    error = float(abs(explained.mean() - fitted_total.mean()) / abs(fitted_total.mean()))
    findings = []
    observed = float(data.y.sum())
    fit_gap = (fitted_total.mean() - observed) / observed
    findings.append(
        Finding(
            code="fitted_vs_observed",
            severity="info",
            value=round(float(fit_gap), 6),
            message=f"the fitted total differs from the observed total by {fit_gap:+.2%}.",
        )
    )
    findings.extend(override_findings(gate))
    rows = []
    for c, channel in enumerate(channels):
        rows.append(
            ChannelContribution(
                channel=channel,
                total_contribution=interval(media[:, c]),
                share_of_media=interval(media[:, c] / media_total),
                roas=interval(media[:, c] / spend[c]),
                mroas=interval(extra[:, c] / (MARGINAL_STEP * spend[c])),
                spend=float(spend[c]),
                identification=(verdicts or {}).get(channel, {}).get("verdict"),
                identification_reason=(verdicts or {}).get(channel, {}).get("reason"),
            )
        )
    for verdict in (verdicts or {}).values():
        if verdict["verdict"] in ("prior_driven", "not_separable"):
            findings.append(
                Finding(
                    code=f"channel_{verdict['verdict']}",
                    severity="warning",
                    subject=verdict["channel"],
                    message=f"{verdict['channel']}'s contribution and ROAS are "
                    f"{verdict['verdict'].replace('_', ' ')}: {verdict['reason']}",
                )
            )
    metadata = build_metadata(
        step=STEP,
        input_hashes=fitted.input_hashes,
        data_range=data.report.window,
        seed=fitted.params.seed,
        sampler=fitted.params.sampler.model_dump(mode="json"),
        run_id=run_id,
        extra={"fit_key": fitted.manifest["result"]["fit_key"], **gate},
    )
    result = ChannelContributions(
        metadata=metadata,
        target=data.target,
        method=fitted.method,
        channels=rows,
        base=BaseContribution(total=interval(base)),
        components=[
            ComponentContribution(
                name=str(name),
                kind=str(kind),  # type: ignore[arg-type]
                total_contribution=interval(components[:, k]),
                share_of_outcome=interval(components[:, k] / fitted_total),
            )
            for k, (name, kind) in enumerate(component_names)
            if components is not None
        ],
        geos=_geo_cells(summary["channel_total"], data.X) if "geo" in summary.dims else [],
        sum_check=SumCheck(
            relative_error=error, tolerance=SUM_TOLERANCE, passed=error <= SUM_TOLERANCE
        ),
        weekly_table=layout.WEEKLY_CONTRIBUTIONS.path,
        draws_file=layout.CONTRIBUTION_DRAWS.path,
        findings=findings,
        roas_unit=f"{data.target} per unit of spend",
    )
    weekly = _weekly_table(summary)
    draws_tree = xr.Dataset(
        {"channel_contribution": summary["channel_draws"].rename(stored_draw="sample")}
    )
    draws_tree = draws_tree.assign_coords(sample=np.arange(draws_tree.sizes["sample"]))
    return result, weekly, draws_tree


def _geo_cells(channel_total: xr.DataArray, X: pd.DataFrame) -> list[GeoChannelContribution]:
    """Every (geo, channel) total over the window, from the draws the national totals sum."""
    totals = channel_total.transpose("sample", "geo", "channel")
    geo_media = totals.sum("channel")
    spend = X.groupby(X["geo"].astype(str))[[str(c) for c in totals["channel"].values]].sum()
    cells = []
    for geo in totals["geo"].values:
        media = geo_media.sel(geo=geo).values
        for channel_name in totals["channel"].values:
            values = totals.sel(geo=geo, channel=channel_name).values
            geo_spend = float(spend.loc[str(geo), str(channel_name)])
            cells.append(
                GeoChannelContribution(
                    geo=str(geo),
                    channel=str(channel_name),
                    total_contribution=interval(values),
                    share_of_geo_media=interval(
                        np.divide(values, media, out=np.zeros_like(values), where=media != 0)
                    ),
                    roas=interval(values / geo_spend) if geo_spend > 0 else None,
                    spend=geo_spend,
                )
            )
    return cells


def _weekly_table(summary: xr.Dataset) -> pd.DataFrame:
    frame = xr.Dataset(
        {
            "contribution": summary["weekly_mean"],
            "lower_90": summary["weekly_lower_90"],
            "upper_90": summary["weekly_upper_90"],
        }
    ).to_dataframe()
    frame = frame.reset_index()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    keys = ["date", *(["geo"] if "geo" in frame else []), "channel"]
    return frame[[*keys, "contribution", "lower_90", "upper_90"]].sort_values(keys)


def _draws_table(dataset: xr.Dataset, n: int) -> pd.DataFrame:
    """Long table (date[, geo], channel, draw, contribution) of ``n`` evenly spaced draws."""
    values = dataset["channel_contribution"]
    step = max(1, values.sizes["sample"] // n)
    thin = values.isel(sample=slice(None, None, step)).rename(sample="draw")
    thin = thin.assign_coords(draw=np.arange(thin.sizes["draw"]))
    frame = thin.to_dataframe().reset_index()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    keys = ["date", *(["geo"] if "geo" in frame else []), "channel", "draw"]
    return frame.rename(columns={"channel_contribution": "contribution"})[[*keys, "contribution"]]


def channel_transforms(
    config: Any, channels: list[str], source: xr.Dataset | None
) -> dict[str, Any] | None:
    """Posterior-mean adstock and saturation per channel, in the allocation contract's form,
    from the posterior (or the ridge model's hyperparameters) in ``source``.

    Only geometric adstock has a single retention rate to hand over; Weibull fits return
    None and the allocation step then asks for transforms explicitly.
    """
    from attribution_analysis.mmm.build import effective_l_max

    if config.adstock != "geometric" or source is None:
        return None
    mean_over = [d for d in ("chain", "draw", "geo") if d in source.dims]
    out = {}
    for channel in channels:

        def value(name: str, ch: str = channel) -> float:
            return float(
                source[name].sel(channel=ch).mean([d for d in mean_over if d in source[name].dims])
            )

        saturation = {"kind": config.saturation} | {
            name: value(f"saturation_{name}") for name in TRANSFORM_SATURATION[config.saturation]
        }
        out[channel] = {
            "alpha": min(value("adstock_alpha"), 0.999),
            "l_max": effective_l_max(config),
            "saturation": saturation,
        }
    return out


def _tree_bytes(ws: Workspace, dataset: xr.Dataset) -> bytes:
    return store.netcdf_bytes(ws, dataset, int(dataset.nbytes))
