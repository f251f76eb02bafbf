"""The ``fit_mmm`` step: prepared panel -> posterior (DataTree) in the workspace."""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.mmm import (
    QUICK_LABEL,
    FitMMMAnswer,
    FitMMMParams,
    FitMMMResult,
    QuickChannelEstimate,
    QuickEstimates,
)
from attribution_analysis.errors import WorkspaceError
from attribution_analysis.mmm import store
from attribution_analysis.mmm.build import (
    build_mmm,
    fit_key,
    fit_settings,
    resolved_roi_prior,
    structure_key,
)
from attribution_analysis.mmm.calibration import (
    LIFT_READINGS,
    calibrate,
    lift_test_findings,
    read_lift_tests,
)
from attribution_analysis.mmm.convergence import (
    GATES_RULE,
    convergence_summary,
    fails_on_divergences_only,
    passes_gates,
)
from attribution_analysis.mmm.panel import ModelData, load_model_data
from attribution_analysis.mmm.sampling import attach_posterior, sample_posterior
from attribution_analysis.numerics import numerics_metadata
from attribution_analysis.progress import Progress, report
from attribution_analysis.provenance import build_metadata
from attribution_analysis.summaries import hdi
from attribution_analysis.workspace import Workspace, json_bytes

STEP = "fit_mmm"
STOPPED_AT_GATES = "stopped_at_gates"


def prepare(ws: Workspace, params: FitMMMParams) -> tuple[ModelData, Any, dict[str, str]]:
    """Load the data and build the (calibrated) model: what fit and later steps share."""
    config = params.config
    data = load_model_data(
        ws, config.target, config.use_trend, config.use_holidays, config.use_external_factors
    )
    hashes = dict(data.input_hashes)
    mmm = build_mmm(data, config)
    if params.calibrate:
        tests, digest = read_lift_tests(ws)
        hashes[layout.LIFT_TESTS.path] = digest
        calibrate(mmm, tests, data, params.lift_reading)
    return data, mmm, hashes


@dataclass
class SingleFit:
    """One model fitted (or read back from the store) with the parameters it was fitted with."""

    params: FitMMMParams
    data: ModelData
    mmm: Any
    hashes: dict[str, str]
    tree: Any
    result: FitMMMResult
    fresh: bool  # sampled in this call (its posterior must be written)

    @property
    def relative(self) -> str:
        return self.result.model_path


def compute(ctx: StepContext, params: FitMMMParams) -> StepOutput:
    """The fit_mmm step: the posterior (or a cached one) and the manifest naming it."""
    if params.config.saturation == "auto":
        from attribution_analysis.mmm.family import compute_auto

        return compute_auto(ctx, params)
    fit = fit_one(ctx, params, ctx.progress)
    files = fit_files(ctx, fit)
    return StepOutput(answer_of(fit.result, files), files, fit.hashes)


def fit_files(ctx: StepContext, fit: SingleFit) -> dict[str, bytes]:
    """The posterior when it is new, and the manifest unless it already names this fit."""
    files: dict[str, bytes] = {}
    if fit.fresh:
        files[fit.relative] = store.tree_bytes(ctx.ws, fit.tree)
    # A manifest that already describes this very model is not rewritten (a new run id
    # and timestamp would mark every output computed from it out of date).
    if fit.fresh or not _manifest_names(ctx.ws, fit.result.fit_key, fit.params, fit.hashes):
        files[layout.FIT.path] = manifest_bytes(
            ctx.ws, fit.params, fit.data, fit.result, fit.hashes, ctx.run_id
        )
    return files


def fit_one(ctx: StepContext, params: FitMMMParams, progress: Progress | None) -> SingleFit:
    """Fit the model ``params`` describe (one saturation family), or read it back from the
    store when the same data, configuration and settings were fitted before."""
    ws = ctx.ws
    start = time.perf_counter()
    data, mmm, hashes = prepare(ws, params)
    # Lift tests kept but worth a word (negative estimates, implausible returns).
    lift_findings = lift_test_findings(read_lift_tests(ws)[0], data) if params.calibrate else []
    key = fit_key(data, params.config, fit_settings(params, hashes))
    relative = store.model_path(key)
    stored = _stored_answer(ws, data, params, hashes, relative) if params.use_cache else None
    fresh = stored is None
    sampled: dict[str, Any] = {}
    if stored is not None:
        relative, tree = stored
    else:
        tree, remedies, seconds, reused = _sample(
            data, mmm, params, progress, hashes.get(layout.LIFT_TESTS.path)
        )
        tree = _with_decomposition(tree, data, mmm, params, progress)
        sampled = {"sampling": seconds, "reused": reused, "remedies": remedies}
    result = _result(
        params,
        data,
        tree,
        key,
        relative,
        cached=not fresh,
        wall=time.perf_counter() - start,
        target_scale=target_scale_of(mmm),
        **sampled,
    )
    # The ridge model has no ROI prior.
    ridge = result.method == "ridge_bootstrap"
    result.findings[:0] = lift_findings + ([] if ridge else _roi_prior_findings(params, data))
    return SingleFit(params, data, mmm, hashes, tree, result, fresh)


def _roi_prior_findings(params: FitMMMParams, data: ModelData) -> list[Finding]:
    """The ROI prior's clash with the data's scale, if any (``scale_conflict_finding``)."""
    from attribution_analysis.mmm.roi_prior import scale_conflict_finding

    prior = resolved_roi_prior(params.config, data.target)
    if prior is None:
        return []
    spend = float(data.X[list(data.channels)].to_numpy().sum())
    finding = scale_conflict_finding(prior, spend, float(data.y.sum()))
    return [finding] if finding else []


def _with_decomposition(
    tree: Any, data: ModelData, mmm: Any, params: FitMMMParams, progress: Progress | None
) -> Any:
    """The fit with its contributions evaluated once, here, in the fit's own job: the
    decomposition step then reads them without rebuilding and compiling the model (about
    2 s of PyMC in a fresh process; see ``decompose.py``)."""
    from attribution_analysis.mmm.decompose import GROUP
    from attribution_analysis.mmm.posterior_contributions import decomposition_of

    # The last message a poll may see before the job ends: it still says the sampling ended.
    ended = "sampling done" if params.method == "nuts" and not params.quick else "fit done"
    report(progress, 1, 1, f"{ended}; evaluating the contributions on the posterior")
    tree[GROUP] = xr.DataTree(decomposition_of(mmm, data, tree, params))
    return tree


def _stored_answer(
    ws: Workspace, data: ModelData, params: FitMMMParams, hashes: dict[str, str], relative: str
) -> tuple[str, Any] | None:
    """The stored posterior that answers ``params``: its own, or the same NUTS fit stored under
    the other ``fallback_to_ridge`` setting. The fallback acts only after sampling, on a fit
    that failed the gates, so a NUTS posterior stored either way is this request's answer
    unless this request would have replaced it with the ridge model. (``saturation='auto'``
    fits without the fallback; this lets a plain fit and an auto fit share their sampling.)"""
    if ws.resolve(relative).exists():
        return relative, store.load_tree(ws, relative)
    if params.method != "nuts" or params.quick:
        return None
    other = params.model_copy(update={"fallback_to_ridge": not params.fallback_to_ridge})
    alternative = store.model_path(fit_key(data, params.config, fit_settings(other, hashes)))
    if not ws.resolve(alternative).exists():
        return None
    tree = store.load_tree(ws, alternative)
    if "bootstrap" in tree.children:  # the ridge fallback, not a posterior
        return None
    falls_back = params.fallback_to_ridge and not data.geo
    if falls_back and not passes_gates(convergence_summary(tree)):
        return None
    return alternative, tree


def answer_of(result: FitMMMResult, files: dict[str, bytes]) -> FitMMMAnswer:
    return FitMMMAnswer(step=STEP, outputs=list(files), **result.model_dump())


def _sample(
    data: ModelData,
    mmm: Any,
    params: FitMMMParams,
    progress: Progress | None,
    lift_hash: str | None = None,
) -> tuple[Any, list[str], float | None, bool]:
    """The posterior as asked (ridge, quick or NUTS with its retry and ridge fallback):
    the tree, the remedies tried, seconds of sampling and whether a compile was reused.
    ``lift_hash`` (the lift tests' digest) is part of the compiled structure: the model's
    counterfactual of each test is built into the graph, not held in its data."""
    if params.method == "ridge":
        return _ridge(data, params, progress), [], None, False
    if params.quick:
        report(progress, 0, 1, f"quick fit ({params.quick})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = mmm.fit(
                data.X, data.y, method=params.quick, random_seed=params.seed, progressbar=False
            )
        report(progress, 1, 1, "quick fit done")
        return tree, [], None, False
    remedies: list[str] = []
    structure = _structure(data, mmm, params, lift_hash)
    sampler = params.sampler
    outcome = sample_posterior(mmm, sampler, params.seed, structure, progress)
    tree = attach_posterior(mmm, outcome.idata)
    seconds, compile_reused = outcome.seconds, outcome.compile_reused
    summary = convergence_summary(tree)
    if params.retry and not passes_gates(summary):
        if fails_on_divergences_only(summary):
            sampler = sampler.for_retry(divergences_only=True)
            remedies.append(
                f"refit with target_accept {sampler.target_accept} (same draws) after "
                f"{summary['divergences']} divergences with R-hat and bulk ESS passing"
            )
        else:
            sampler = sampler.for_retry()
            remedies.append(
                f"refit with {sampler.draws} draws, {sampler.tune} warm-up draws and "
                f"target_accept {sampler.target_accept} after failing the gates"
            )
        outcome = sample_posterior(mmm, sampler, params.seed + 1, structure, progress)
        tree = attach_posterior(mmm, outcome.idata)
        seconds = (seconds or 0) + outcome.seconds
    # Kept with the draws (NetCDF attributes hold no booleans), so a cached fit says it too.
    tree["posterior"].attrs[STOPPED_AT_GATES] = int(outcome.stopped_at_gates)
    if not passes_gates(convergence_summary(tree)) and params.fallback_to_ridge and not data.geo:
        summary = convergence_summary(tree)
        remedies.append(
            f"NUTS still failed the gates (max R-hat {summary['max_rhat']:.3f}, min "
            f"bulk ESS {summary['min_ess_bulk']:.0f}); fell back to the ridge model"
        )
        tree = _ridge(data, params, progress)
    return tree, remedies, seconds, compile_reused


def _structure(data: ModelData, mmm: Any, params: FitMMMParams, lift_hash: str | None) -> str:
    """The key a compiled model is kept under (``sampling.COMPILED``)."""
    return structure_key(
        data,
        params.config,
        {
            "calibrate": params.calibrate,
            "n_lift": _n_lift(mmm),
            **(
                {"lift_tests": lift_hash, "lift_reading": LIFT_READINGS[params.lift_reading]}
                if lift_hash
                else {}
            ),
        },
    )


def precompile(ws: Workspace, params: FitMMMParams | None = None) -> str | None:
    """Compile the model that ``fit_mmm`` with ``params`` would sample on this workspace
    (when None: its defaults, calibrated when the workspace holds lift tests, as SKILL.md
    tells the agent to fit then), and keep it in this process's ``COMPILED``, without sampling
    or writing anything: the structure key, or None when such a fit would compile nothing
    here (ridge, a quick fit, another backend, both families, or a stored fit it would read
    back). A job worker runs it after the data were validated, while the agent reads that
    answer (``server/jobs.py``); the fit that follows then finds its model compiled, the same
    compiled object a fit would have made (so the same draws for a seed). Raises what
    ``prepare`` raises (data not validated, lift tests unreadable)."""
    from attribution_analysis.mmm.posterior_contributions import contribution_function
    from attribution_analysis.mmm.sampling import COMPILED, free_variable_names
    from attribution_analysis.numerics import use_reproducible_numerics

    if params is None:
        params = FitMMMParams(calibrate=ws.resolve(layout.LIFT_TESTS.path).exists())
    if not params.compiles_one_model():
        return None
    data, mmm, hashes = prepare(ws, params)
    # A fit stored under either fallback setting may answer it (``_stored_answer``); one
    # that would be refit after all (a stored fallback that failed the gates) then compiles
    # for itself.
    for fallback in (params.fallback_to_ridge, not params.fallback_to_ridge):
        variant = params.model_copy(update={"fallback_to_ridge": fallback})
        stored = store.model_path(fit_key(data, params.config, fit_settings(variant, hashes)))
        if params.use_cache and ws.resolve(stored).exists():
            return None
    structure = _structure(data, mmm, params, hashes.get(layout.LIFT_TESTS.path))
    use_reproducible_numerics()  # as sample_posterior does before it compiles
    _, reused = COMPILED.get_or_compile(structure, mmm.model, free_variable_names(mmm.model))
    if reused:  # this process compiled the structure, and its contributions, before
        return structure
    # The contributions' function is compiled again by the fit (for its own model object).
    # Numba compiles it on its first call, so it is called here once, on any values of the
    # right shapes (what it returns does not matter); the fit's compile then finds every
    # piece in Numba's cache: its first call took 5.6 s after the model's compile from empty
    # caches and 0.4 s once compiled before (benchmarks/compile_cache.py).
    model = mmm.model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        function, _ = contribution_function(model)
        shapes = model.eval_rv_shapes()
        with contextlib.suppress(Exception):
            function({v.name: np.full(shapes[v.name], 0.5, dtype=v.dtype) for v in model.free_RVs})
    return structure


def _ridge(data: ModelData, params: FitMMMParams, progress: Progress | None) -> Any:
    from attribution_analysis.mmm.build import effective_l_max
    from attribution_analysis.mmm.ridge import fit_ridge

    report(progress, 0, 1, "ridge fallback: tuning transforms")
    fit = fit_ridge(
        data, effective_l_max(params.config), params.config.yearly_seasonality, params.seed
    )
    report(progress, 1, 1, "ridge fallback done")
    return fit.tree


def _manifest_names(
    ws: Workspace, key: str, params: FitMMMParams, input_hashes: dict[str, str]
) -> bool:
    """Whether the current manifest records the fit ``key`` made with these parameters from
    these very input files (a re-validation that rewrote an input must be recorded)."""
    if not ws.resolve(layout.FIT.path).is_file():
        return False
    try:
        manifest = store.read_manifest(ws)
        return (
            manifest["result"]["fit_key"] == key
            and manifest["params"] == params.model_dump(mode="json")
            and manifest["metadata"]["input_hashes"] == input_hashes
        )
    except (WorkspaceError, KeyError, TypeError):  # unreadable: rewrite it
        return False


def _n_lift(mmm: Any) -> int:
    return sum(1 for name in mmm.model.named_vars if name.startswith("lift_measurements"))


def _result(
    params: FitMMMParams,
    data: ModelData,
    tree: Any,
    key: str,
    relative: str,
    *,
    cached: bool,
    wall: float,
    sampling: float | None = None,
    reused: bool = False,
    remedies: list[str] | None = None,
    target_scale: xr.DataArray | None = None,
) -> FitMMMResult:
    ridge = "bootstrap" in tree.children
    quick = params.quick is not None and not ridge
    summary = {} if quick or ridge else convergence_summary(tree)
    findings = []
    if ridge:
        findings.append(
            Finding(
                code="ridge_fallback",
                severity="warning",
                message="ridge_bootstrap: ridge regression on tuned adstock/saturation "
                "transforms with moving-block bootstrap intervals. The intervals hold the "
                "transforms fixed, so they understate uncertainty compared with a posterior; "
                "prefer NUTS when it passes.",
            )
        )
        asked = (params.config.adstock, params.config.saturation)
        if asked != ("geometric", "hill"):
            findings.append(
                Finding(
                    code="ridge_curve_family",
                    severity="warning",
                    message="the ridge model always tunes geometric adstock and a Hill curve; "
                    f"the configuration's {asked[0]} adstock and {asked[1]} saturation apply "
                    "to NUTS fits only.",
                )
            )
        if data.organic or data.events:
            findings.append(
                Finding(
                    code="ridge_components_in_base",
                    severity="warning",
                    message="the ridge model has no organic or event components: "
                    f"{', '.join([*data.organic, *data.events])} enter as plain linear "
                    "terms (no carryover) and their effects are part of the base.",
                )
            )
        return FitMMMResult(
            method="ridge_bootstrap",
            model_path=relative,
            fit_key=key,
            cached=cached,
            wall_seconds=round(wall, 3),
            channels=data.channels,
            n_observations=len(data.y),
            convergence={},
            for_decisions=True,
            remedies_tried=remedies or [],
            findings=findings,
        )
    estimates = None
    if quick:
        findings.append(
            Finding(
                code="quick_fit",
                severity="warning",
                message=f"quick {params.quick.upper()} fit: a first look, not for decisions "
                "(no full posterior; intervals are missing or approximate).",
            )
        )
        if target_scale is not None:
            estimates = quick_estimates(tree, data, params.quick, target_scale)
            findings.append(_quick_estimates_finding(estimates))
    elif not passes_gates(summary):
        findings.append(
            Finding(
                code="convergence_gates_failed",
                severity="error",
                message=f"the sampler did not pass the convergence gates ({GATES_RULE})"
                + (" even after the retry" if params.retry else " (the retry was off)")
                + "; do not use this fit for decisions.",
            )
        )
    return FitMMMResult(
        method={"map": "bayesian_map", "advi": "bayesian_advi"}.get(
            params.quick or "", "bayesian_nuts"
        ),
        model_path=relative,
        fit_key=key,
        cached=cached,
        wall_seconds=round(wall, 3),
        sampling_seconds=None if sampling is None else round(sampling, 3),
        compile_reused=reused,
        draws_per_chain=None if quick else int(tree["posterior"].sizes["draw"]),
        stopped_at_gates=bool(tree["posterior"].attrs.get(STOPPED_AT_GATES, 0)),
        channels=data.channels,
        n_observations=len(data.y),
        convergence=summary,
        for_decisions=not quick and passes_gates(summary),
        remedies_tried=remedies or [],
        findings=findings,
        quick_estimates=estimates,
        roi_prior_applied=resolved_roi_prior(params.config, data.target),
    )


def target_scale_of(mmm: Any) -> xr.DataArray:
    """The target's scale (a number, or one per geo) that maps the model's contributions back
    to original units (PyMC-Marketing divides the target by it before fitting)."""
    model = mmm.model
    dims = model.named_vars_to_dims.get("target_scale", ())
    return xr.DataArray(
        model["target_scale"].get_value(),
        dims=dims,
        coords={d: list(model.coords[d]) for d in dims},
    )


def quick_estimates(
    tree: Any, data: ModelData, quick: str, target_scale: xr.DataArray
) -> QuickEstimates:
    """Channel shares of media and ROAS from a quick fit, from PyMC-Marketing's own
    ``channel_contribution`` deterministic (stored with the MAP point or ADVI's draws) in
    original units; spend as decompose_contributions sums it. MAP gives one point, so no
    interval; ADVI's draws give approximate ones (mean-field ADVI understates spread)."""
    posterior = tree["posterior"]
    contribution = (posterior["channel_contribution"] * target_scale).stack(
        sample=("chain", "draw")
    )
    totals = contribution.sum([d for d in contribution.dims if d not in ("sample", "channel")])
    channels = [str(c) for c in totals["channel"].values]
    media = totals.transpose("sample", "channel").values  # (sample, channel)
    spend = np.array([float(data.X[c].sum()) for c in channels])
    shares = media / media.sum(axis=1, keepdims=True)
    roas = media / np.where(spend > 0, spend, 1.0)  # read only where spend > 0
    advi = quick == "advi"
    rows = [
        QuickChannelEstimate(
            channel=channel,
            spend=float(spend[c]),
            contribution=float(media[:, c].mean()),
            share_of_media=float(shares[:, c].mean()),
            roas=float(roas[:, c].mean()) if spend[c] > 0 else None,
            share_of_media_hdi_90=hdi(shares[:, c], 0.9) if advi else None,
            roas_hdi_90=hdi(roas[:, c], 0.9) if advi and spend[c] > 0 else None,
        )
        for c, channel in enumerate(channels)
    ]
    basis = (
        f"means over {media.shape[0]} draws of the ADVI approximation; its intervals are "
        "approximate and usually too narrow"
        if advi
        else "the MAP point estimate: one set of parameters, so no interval can be given"
    )
    return QuickEstimates(
        label=QUICK_LABEL,
        estimate="advi_approximation" if advi else "map_point_estimate",
        basis=f"{basis}; {QUICK_LABEL} (refit with NUTS and validate_model first).",
        roas_unit=f"{data.target} per unit of spend",
        draws=int(media.shape[0]),
        channels=rows,
    )


def _quick_estimates_finding(estimates: QuickEstimates) -> Finding:
    figures = "; ".join(
        f"{c.channel} {c.share_of_media:.0%} of media, ROAS "
        + ("n/a (no spend)" if c.roas is None else f"{c.roas:.3g}")
        for c in estimates.channels
    )
    return Finding(
        code="quick_estimates",
        severity="warning",
        message=f"first-look channel figures, {QUICK_LABEL} ({estimates.estimate.replace('_', ' ')}"
        f"; ROAS in {estimates.roas_unit}): {figures}. Refit with NUTS before quoting any of "
        "them as a result.",
    )


def manifest_bytes(
    ws: Workspace,
    params: FitMMMParams,
    data: ModelData,
    result: FitMMMResult,
    hashes: dict[str, str],
    run_id: str,
) -> bytes:
    metadata = build_metadata(
        step=STEP,
        input_hashes=hashes,
        data_range=data.report.window,
        seed=params.seed,
        sampler=params.sampler.model_dump(mode="json"),
        run_id=run_id,
        extra=numerics_metadata(),
    )
    return json_bytes(
        {
            "metadata": metadata.model_dump(mode="json"),
            "params": params.model_dump(mode="json"),
            "result": result.model_dump(mode="json"),
            "target": data.target,
            "controls": data.controls,
        }
    )
