"""The ``decompose_contributions`` step: who drove the outcome, with intervals.

Contributions come from PyMC-Marketing's own deterministics evaluated on the stored
posterior (no re-implementation); marginal ROAS from the same graph with every channel's
spend raised by 1% at once, which is exact per channel because a channel's contribution
depends only on its own spend.

The evaluation needs the model rebuilt and compiled (PyMC, PyTensor: about 2 s of a fresh
process), so ``fit_mmm`` does it once, in its own job (``posterior_contributions.py``), and stores
what this step reads in the posterior file's ``decomposition_v1`` group (``reduce_draws``):
per-draw window totals, the weekly bands and the thinned weekly draws. This step reads that
group and writes its outputs with NumPy, pandas and h5netcdf: xarray would import dask and,
to write, distributed (about 0.7 s of a fresh process). A posterior written before the group
existed is evaluated here as before.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

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
from attribution_analysis.mmm.gate import override_findings, require_valid_model
from attribution_analysis.mmm.stored import (
    Arrays,
    StoredFit,
    arrays_of,
    open_stored_fit,
    text_labels,
)
from attribution_analysis.progress import report
from attribution_analysis.provenance import build_metadata
from attribution_analysis.summaries import interval
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

STEP = "decompose_contributions"
CSV_DRAWS = 200  # draws per cell in the long table the allocation step reads
SUM_TOLERANCE = 0.02
# Marginal ROAS: every channel's spend raised by this share at once.
MARGINAL_STEP = 0.01
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


def compute(ctx: StepContext, params: DecomposeParams) -> StepOutput:
    """The decompose_contributions step: contributions, shares and ROAS with intervals."""
    ws, progress = ctx.ws, ctx.progress
    gate = require_valid_model(ws, params.override_reason)
    stored = open_stored_fit(ws)
    names = _transform_names(stored)
    if stored.has_group(GROUP):
        report(progress, 0, 3, "reading the contributions the fit evaluated")
        summary = stored.arrays(GROUP)
        posterior = stored.arrays(_posterior_group(stored.method), names) if names else None
    else:  # a posterior written before fit_mmm stored its decomposition
        report(progress, 0, 3, "evaluating contributions on the posterior")
        summary, posterior = _evaluate(ws, names)
    report(progress, 2, 3, "summaries")
    verdicts = _identification(ws)
    result, weekly, draws = _summarise(stored, summary, gate, ctx.run_id, verdicts)
    files = {
        layout.CONTRIBUTIONS.path: json_bytes(result.model_dump(mode="json")),
        layout.WEEKLY_CONTRIBUTIONS.path: csv_bytes(weekly),
        # The draws file carries the same provenance as the contributions file.
        layout.CONTRIBUTION_DRAWS.path: store.arrays_netcdf_bytes(
            ws, draws, {"metadata": json.dumps(result.metadata.model_dump(mode="json"))}
        ),
        layout.CONTRIBUTION_DRAWS_CSV.path: csv_bytes(_draws_table(draws, CSV_DRAWS)),
    }
    transforms = channel_transforms(
        stored.params.config,
        stored.data.channels,
        posterior,
        curve_family(stored.method, stored.params.config),
    )
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


def _evaluate(ws: Workspace, names: list[str] | None) -> tuple[Arrays, Arrays | None]:
    """The decomposition group and the posterior's transform parameters, computed from a
    rebuilt model (PyMC, xarray)."""
    from attribution_analysis.mmm.posterior_contributions import draws_of, reduce_draws

    fitted = open_fit(ws)
    posterior = fitted.tree[_posterior_group(fitted.method)].to_dataset()
    return arrays_of(reduce_draws(draws_of(fitted))), arrays_of(posterior[names]) if names else None


def open_fit(ws: Workspace) -> Any:
    """The fitted model rebuilt (``mmm.loaded``; imported here, where it is needed: it loads
    xarray). A name of this module, so that a test can watch which route a run took."""
    from attribution_analysis.mmm.loaded import open_fit as rebuild

    return rebuild(ws)


def _posterior_group(method: str) -> str:
    """Where the fit's transform parameters are: the ridge keeps its point values apart."""
    return "hyperparameters" if method == "ridge_bootstrap" else "posterior"


def curve_family(method: str, config: Any) -> tuple[str, str]:
    """(adstock, saturation) the fit used: the configuration's, except for the ridge model,
    which always tunes geometric adstock and a Hill curve (``mmm/ridge.py``)."""
    if method == "ridge_bootstrap":
        return "geometric", "hill"
    return config.adstock, config.saturation


def _transform_names(stored: StoredFit) -> list[str] | None:
    """The variables ``channel_transforms`` reads (None: the fit's adstock has none to hand
    over, and nothing is read)."""
    adstock, saturation = curve_family(stored.method, stored.params.config)
    if adstock != "geometric":
        return None
    return ["adstock_alpha", *(f"saturation_{n}" for n in TRANSFORM_SATURATION[saturation])]


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


def _identification(ws: Workspace) -> dict[str, dict[str, Any]]:
    """validate_model's verdict per channel (the gate has checked that its diagnostics
    belong to this fit); empty for diagnostics without verdicts (ridge, older files)."""
    diagnostics = json.loads(ws.resolve(layout.DIAGNOSTICS.path).read_text())
    return {row["channel"]: row for row in diagnostics.get("identification", [])}


def expected_share_error(media: np.ndarray) -> np.ndarray:
    """Per channel, the share error the draws expect of their own mean: E|share - mean share|
    over the draws of ``media`` (sample, channel), as a fraction. A draw whose media total is
    not positive has no shares (a ridge replicate can zero every channel) and is left out."""
    totals = media.sum(axis=1)
    kept = media[totals > 0]
    shares = kept / kept.sum(axis=1, keepdims=True)
    return np.abs(shares - shares.mean(axis=0)).mean(axis=0)


# What each fitting method's draws are, for the share_precision message; a MAP fit has one
# point and no spread, so it states none.
_SPREAD_SOURCE = {
    "bayesian_nuts": "the posterior",
    "bayesian_advi": "the quick (ADVI) approximation, which understates spread,",
    "ridge_bootstrap": "the bootstrap",
}


def share_precision(media: np.ndarray, channels: list[str], method: str) -> Finding | None:
    """How open the model leaves the split of media between channels: ``expected_share_error``
    averaged over channels, in points, naming the least certain channel; None where the
    draws cannot say (a MAP point, fewer than two channels, no draw with media).

    It is the model's own account, right only as far as the model is: on the 9 simulated
    accuracy worlds x 2 seeds the default's realised share error was at or below it on 15 of
    18 (it is conservative there), PyMC-Marketing's default erred beyond its own on 13
    (``references/mmm_methodology.md``, "What the model leaves open")."""
    source = _SPREAD_SOURCE.get(method)
    if source is None or len(channels) < 2 or not (media.sum(axis=1) > 0).any():
        return None
    expected = expected_share_error(media)
    widest = int(np.argmax(expected))
    points = round(100 * float(expected.mean()), 1)
    return Finding(
        code="share_precision",
        severity="info",
        subject=channels[widest],
        value=points,
        message=f"if the model is right, {source} expects a channel's share of media to lie "
        f"about {points:.1f} points from its estimate on average (least certain: "
        f"{channels[widest]}, {100 * expected[widest]:.1f} points). Quote shares with their "
        "intervals; a lift test of a channel narrows its share, though a calibrated fit can "
        "then understate its error.",
    )


def _summarise(
    fitted: Any,
    summary: Arrays,
    gate: dict[str, Any],
    run_id: str,
    verdicts: dict[str, dict[str, Any]] | None = None,
) -> tuple[ChannelContributions, pd.DataFrame, Arrays]:
    """The contributions file, the weekly table and the draws file's arrays from
    ``reduce_draws``' group; ``fitted`` (a ``StoredFit`` or a rebuilt fit) gives the data,
    parameters and provenance."""
    data = fitted.data
    channels = [str(c) for c in summary.coords["channel"]]
    media = _totals(summary, "channel_total")  # (sample, channel)
    media_total = media.sum(axis=1)
    spend = np.array([data.X[c].sum() for c in channels])
    extra = _ordered(summary, "marginal", ("sample", "channel"))
    base = summary.values["base"]
    fitted_total = summary.values["fitted"]
    components = (
        _ordered(summary, "components", ("sample", "component"))
        if "components" in summary.values
        else None
    )
    component_names = (
        list(
            zip(
                text_labels(summary.values["component_name"]).tolist(),
                text_labels(summary.values["component_kind"]).tolist(),
                strict=True,
            )
        )
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
    precision = share_precision(media, channels, fitted.method)
    if precision is not None:
        findings.append(precision)
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
        geos=_geo_cells(summary, data.X) if "geo" in summary.sizes else [],
        sum_check=SumCheck(
            relative_error=error, tolerance=SUM_TOLERANCE, passed=error <= SUM_TOLERANCE
        ),
        weekly_table=layout.WEEKLY_CONTRIBUTIONS.path,
        draws_file=layout.CONTRIBUTION_DRAWS.path,
        findings=findings,
        roas_unit=f"{data.target} per unit of spend",
    )
    weekly = _weekly_table(summary)
    return result, weekly, _draws_arrays(summary)


def _draws_arrays(summary: Arrays) -> Arrays:
    """The draws file: the stored weekly draws, their dims in the order stored (a Bayesian
    fit's (date[, geo], channel, sample), the ridge model's (sample, date, channel)), the
    draws numbered from 0 under 'sample'."""
    dims = tuple("sample" if d == "stored_draw" else d for d in summary.dims["channel_draws"])
    n = summary.sizes["stored_draw"]
    labels = {d: summary.coords[d] for d in dims if d in summary.coords}
    return Arrays(
        values={"channel_contribution": summary.values["channel_draws"]},
        dims={"channel_contribution": dims},
        coords=labels | {"sample": np.arange(n)},
        sizes={d: summary.sizes["stored_draw" if d == "sample" else d] for d in dims},
    )


def _ordered(arrays: Arrays, name: str, dims: tuple[str, ...]) -> np.ndarray:
    """``name``'s values with its dims in the order ``dims`` (all of them)."""
    have = arrays.dims[name]
    return np.transpose(arrays.values[name], [have.index(d) for d in dims])


def _totals(arrays: Arrays, name: str) -> np.ndarray:
    """``name`` summed over every dim but sample and channel: (sample, channel)."""
    have = arrays.dims[name]
    values = arrays.values[name].sum(
        axis=tuple(i for i, d in enumerate(have) if d not in ("sample", "channel"))
    )
    kept = [d for d in have if d in ("sample", "channel")]
    return np.transpose(values, [kept.index("sample"), kept.index("channel")])


def _geo_cells(summary: Arrays, X: pd.DataFrame) -> list[GeoChannelContribution]:
    """Every (geo, channel) total over the window, from the draws the national totals sum."""
    totals = _ordered(summary, "channel_total", ("sample", "geo", "channel"))
    geo_media = totals.sum(axis=2)
    geos, channels = summary.coords["geo"], summary.coords["channel"]
    spend = X.groupby(X["geo"].astype(str))[[str(c) for c in channels]].sum()
    cells = []
    for g, geo in enumerate(geos):
        media = geo_media[:, g]
        for c, channel_name in enumerate(channels):
            values = totals[:, g, c]
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


def _weekly_table(summary: Arrays) -> pd.DataFrame:
    """(date[, geo], channel, contribution, lower_90, upper_90), sorted by its keys."""
    dims = summary.dims["weekly_mean"]
    frame = _long_frame(summary, dims)
    for column, name in (
        ("contribution", "weekly_mean"),
        ("lower_90", "weekly_lower_90"),
        ("upper_90", "weekly_upper_90"),
    ):
        frame[column] = _ordered(summary, name, dims).ravel()
    keys = ["date", *(["geo"] if "geo" in dims else []), "channel"]
    return frame[[*keys, "contribution", "lower_90", "upper_90"]].sort_values(keys)


def _draws_table(draws: Arrays, n: int) -> pd.DataFrame:
    """Long table (date[, geo], channel, draw, contribution) of ``n`` evenly spaced draws,
    in the draws file's order of dims (as xarray's ``to_dataframe`` gives it)."""
    dims = draws.dims["channel_contribution"]
    step = max(1, draws.sizes["sample"] // n)
    axis = dims.index("sample")
    values = np.take(
        draws.values["channel_contribution"], np.arange(0, draws.sizes["sample"], step), axis=axis
    )
    kept = values.shape[axis]
    thin = Arrays(
        values={"contribution": values},
        dims={"contribution": tuple("draw" if d == "sample" else d for d in dims)},
        coords={**draws.coords, "draw": np.arange(kept)},
        sizes={**draws.sizes, "draw": kept},
    )
    frame = _long_frame(thin, thin.dims["contribution"])
    frame["contribution"] = values.ravel()
    keys = ["date", *(["geo"] if "geo" in dims else []), "channel", "draw"]
    return frame[[*keys, "contribution"]]


def _long_frame(arrays: Arrays, dims: tuple[str, ...]) -> pd.DataFrame:
    """One row per cell of an array with ``dims`` (C order, the last dim fastest), a column
    of labels per dim; dates as YYYY-MM-DD.

    Each dim's labels are formatted once and repeated (``np.repeat`` within, ``np.tile``
    across), not formatted per row: the long draws table of a 50-geo panel has ten million
    rows, and dates formatted row by row took 12 s and 3.4 GB there (xarray 2.5 s)."""
    sizes = [len(arrays.coords[d]) for d in dims]
    rows = int(np.prod(sizes))
    columns = {}
    for k, dim in enumerate(dims):
        labels = np.asarray(arrays.coords[dim])
        if labels.dtype.kind == "M":
            labels = np.datetime_as_string(labels, unit="D")
        if labels.dtype.kind in "US":
            labels = labels.astype(object)  # pandas keeps text as Python strings
        inner = int(np.prod(sizes[k + 1 :]))
        column = np.repeat(labels, inner)
        columns[dim] = np.tile(column, rows // len(column)) if len(column) else column
    return pd.DataFrame(columns)


def channel_transforms(
    config: Any, channels: list[str], source: Arrays | None, family: tuple[str, str]
) -> dict[str, Any] | None:
    """Posterior-mean adstock and saturation per channel, in the allocation contract's form,
    from the posterior (or the ridge model's hyperparameters) in ``source``; ``family``:
    the fit's (adstock, saturation), from ``curve_family``.

    Only geometric adstock has a single retention rate to hand over; Weibull fits return
    None and the allocation step then asks for transforms explicitly.
    """
    from attribution_analysis.mmm.build import effective_l_max

    adstock, kind = family
    if adstock != "geometric" or source is None:
        return None
    out = {}
    for channel in channels:

        def value(name: str, ch: str = channel) -> float:
            # The mean over draws (and geos, for a curve shared by them), as one number.
            return float(source.select(name, channel=[ch]).mean())

        saturation = {"kind": kind} | {
            name: value(f"saturation_{name}") for name in TRANSFORM_SATURATION[kind]
        }
        out[channel] = {
            "alpha": min(value("adstock_alpha"), 0.999),
            "l_max": effective_l_max(config),
            "saturation": saturation,
        }
    return out
