"""The ``attribute_paths`` step: journeys -> ``analysis/path_attribution.json``.

Reads ``raw/journeys.csv`` or ``raw/paths.csv`` (:mod:`.inputs`), computes the requested
credits (heuristics, order-k Markov removal effects, Shapley values), reconciles them with
``analysis/mmm_channel_contributions.json`` when it exists, and writes every output through
:meth:`Workspace.commit` (all or nothing), recording the run in the registry.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.paths import (
    HEURISTICS,
    AttributePathsParams,
    ChannelCredit,
    MarkovSummary,
    MethodCredit,
    PathAttributionReport,
    PathInputSummary,
    RemovalEffect,
    ShapleySummary,
    Transition,
    TruthComparison,
)
from attribution_analysis.paths import heuristics, markov, reconcile, shapley
from attribution_analysis.paths.data import PathData, aggregate
from attribution_analysis.paths.inputs import LoadedPaths, load_paths_input
from attribution_analysis.provenance import build_metadata
from attribution_analysis.registry import RunRegistry
from attribution_analysis.workspace import Workspace, json_bytes

STEP = "attribute_paths"
REPORT_PATH = "analysis/path_attribution.json"
TRUTH_PATH = "truth/journey_truth.json"
TRANSITIONS_SHOWN = 200
CAVEATS = [
    "Path data sees only trackable touchpoints (mostly digital, mostly clicks); TV, radio, "
    "print, word of mouth and untracked impressions get no credit, however much they drive.",
    "Every path method is correlational: it credits channels that appear on converting "
    "journeys, not channels that caused the conversion. Users who would have converted anyway "
    "still leave touches.",
    "Bottom-funnel channels (branded search, direct, retargeting, email to existing "
    "customers) are touched mostly by users who already decided, so path methods over-credit "
    "them; compare with the MMM or a lift test before moving budget.",
    "Removal effects and Shapley values are computed on the observed journeys: they describe "
    "this data, not what happens if a channel is switched off.",
]

__all__ = ["REPORT_PATH", "STEP", "attribute_paths", "summary_payload"]


def attribute_paths(
    ws: Workspace, params: AttributePathsParams | None = None
) -> PathAttributionReport:
    """Credit conversions to channels from user journeys; write the report, all or nothing.

    Parameters
    ----------
    ws
        The workspace (journeys under raw/, outputs to analysis/).
    params
        Step parameters (:class:`AttributePathsParams`); defaults run every method.

    Returns
    -------
    PathAttributionReport
        The content of ``analysis/path_attribution.json``.
    """
    params = params or AttributePathsParams()
    registry = RunRegistry(ws)
    with registry.track(STEP, params.model_dump(mode="json")) as run:
        loaded = load_paths_input(ws, params.source)
        mmm_path = ws.resolve(params.mmm_file)
        use_mmm = params.reconcile and mmm_path.is_file()
        files = [*loaded.files, *([mmm_path] if use_mmm else [])]
        run.input_hashes = ws.input_hashes(files)
        report, outputs = _run(ws, loaded, params, use_mmm, run.run_id, run.input_hashes)
        written = ws.commit(outputs)
        run.outputs = [ws.relative(p) for p in written]
    return report


def _credit_list(
    channels: list[str], conversions: np.ndarray, value: np.ndarray | None
) -> list[ChannelCredit]:
    total = conversions.sum()
    return [
        ChannelCredit(
            channel=ch,
            conversions=float(conversions[i]),
            value=None if value is None else float(value[i]),
            share=float(conversions[i] / total) if total > 0 else 0.0,
        )
        for i, ch in enumerate(channels)
    ]


def _heuristic_options(params: AttributePathsParams) -> dict[str, Any]:
    return {
        "half_life_days": params.half_life_days,
        "position_first": params.position_first,
        "position_last": params.position_last,
        "direct_channels": tuple(params.direct_channels),
    }


def _method_credit(
    data: PathData, method: str, params: AttributePathsParams
) -> tuple[np.ndarray, np.ndarray | None]:
    """Credit per label of ``data`` under one named method (used for campaign labels too)."""
    if method == "markov":
        fit = markov.fit_markov(aggregate(data)[0], params.order, params.collapse_repeats)
        return fit.conversions, fit.value
    if method == "shapley":
        fit_s = shapley.fit_shapley(
            data,
            params.shapley_value,
            params.shapley_exact_max_channels,
            params.shapley_permutations,
            params.seed,
        )
        return fit_s.conversions, fit_s.value
    return heuristics.heuristic_credit(data, method, **_heuristic_options(params))


def _run(
    ws: Workspace,
    loaded: LoadedPaths,
    params: AttributePathsParams,
    use_mmm: bool,
    run_id: str,
    hashes: dict[str, str],
) -> tuple[PathAttributionReport, dict[str, bytes]]:
    data = loaded.data
    channels = data.channels
    findings = list(loaded.findings)
    methods: list[MethodCredit] = []
    credits: dict[str, np.ndarray] = {}
    markov_summary = shapley_summary = None
    run_all = params.method == "all"

    if run_all or params.method == "heuristics":
        for rule in HEURISTICS:
            if rule == "time_decay" and data.touch_age_days is None:
                findings.append(
                    Finding(
                        code="time_decay_skipped",
                        severity="info",
                        message="time decay needs touch timestamps; paths.csv has none, so it "
                        "was left out (use raw/journeys.csv for it).",
                        subject="time_decay",
                    )
                )
                continue
            conv, value = heuristics.heuristic_credit(data, rule, **_heuristic_options(params))
            credits[rule] = conv
            methods.append(
                MethodCredit(
                    method=rule,
                    family="heuristic",
                    rule=heuristics.RULES[rule],
                    credits=_credit_list(channels, conv, value),
                )
            )

    merged, _ = aggregate(data)
    if run_all or params.method == "markov":
        fit = markov.fit_markov(merged, params.order, params.collapse_repeats)
        name = f"markov_order_{params.order}"
        credits[name] = fit.conversions
        methods.append(
            MethodCredit(
                method=name,
                family="markov",
                rule="credit = removal effect / sum of removal effects x conversions "
                "(value: the same on expected value)",
                credits=_credit_list(channels, fit.conversions, fit.value),
            )
        )
        transitions, truncated = markov.top_transitions(fit, TRANSITIONS_SHOWN)
        markov_summary = MarkovSummary(
            order=params.order,
            collapse_repeats=params.collapse_repeats,
            n_states=fit.n_states,
            n_transitions=int(fit.counts.nnz),
            p_conversion=fit.p_conversion,
            removal_effects=[
                RemovalEffect(
                    channel=ch,
                    removal_effect=float(fit.removal_effect[i]),
                    p_conversion_without=float(fit.p_without[i]),
                    removal_effect_value=None
                    if fit.removal_effect_value is None
                    else float(fit.removal_effect_value[i]),
                )
                for i, ch in enumerate(channels)
            ],
            transitions=[Transition(**t) for t in transitions],
            transitions_truncated=truncated,
            solver=markov.SOLVER,
        )
        if np.any(fit.removal_effect < 0):
            findings.append(
                Finding(
                    code="negative_removal_effect",
                    severity="warning",
                    message="a channel's removal raises the conversion probability in this "
                    "chain (its removal effect is negative); it gets no credit.",
                    subject=", ".join(np.array(channels)[fit.removal_effect < 0]),
                )
            )

    if run_all or params.method == "shapley":
        fit_s = shapley.fit_shapley(
            merged,
            params.shapley_value,
            params.shapley_exact_max_channels,
            params.shapley_permutations,
            params.seed,
        )
        credits["shapley"] = fit_s.conversions
        methods.append(
            MethodCredit(
                method="shapley",
                family="shapley",
                rule="credit = positive Shapley value / their sum x conversions",
                credits=_credit_list(channels, fit_s.conversions, fit_s.value),
            )
        )
        shapley_summary = ShapleySummary(
            value_function=fit_s.value_function,
            n_coalitions=fit_s.n_coalitions,
            exact=fit_s.exact,
            permutations=fit_s.permutations,
            raw_values={ch: float(fit_s.raw[i]) for i, ch in enumerate(channels)},
            standard_errors=None
            if fit_s.standard_errors is None
            else {ch: float(fit_s.standard_errors[i]) for i, ch in enumerate(channels)},
            error_bound=fit_s.error_bound,
            rule=_shapley_rule(fit_s),
        )

    outputs: dict[str, bytes] = {}
    reconciliation = None
    if use_mmm:
        mmm = reconcile.read_mmm(ws.resolve(params.mmm_file), params.mmm_file)
        campaign_credit, split_method = _campaign_credit(data, params)
        if campaign_credit is None:
            findings.append(
                Finding(
                    code="no_campaigns",
                    severity="info",
                    message="journeys carry no campaign column, so the MMM-calibrated campaign "
                    "split was not written.",
                )
            )
        reconciliation, split_csv = reconcile.reconcile(
            mmm,
            params.mmm_file,
            channels,
            credits,
            params.channel_map,
            campaign_credit,
            split_method,
        )
        if split_csv is not None:
            outputs[reconcile.SPLIT_PATH] = split_csv
        for row in reconciliation.channels:
            if row.disagreeing_methods:
                findings.append(
                    Finding(
                        code="path_mmm_disagreement",
                        severity="warning",
                        message=f"{row.channel}: path share outside the MMM 90% interval "
                        f"[{row.mmm_share_lower_90:.1%}, {row.mmm_share_upper_90:.1%}] for "
                        f"{', '.join(row.disagreeing_methods)}; trust the MMM (or a lift test) "
                        "for budget decisions on this channel.",
                        subject=row.channel,
                        value=row.mmm_share,
                    )
                )
    elif params.reconcile:
        findings.append(
            Finding(
                code="no_mmm_contributions",
                severity="info",
                message=f"{params.mmm_file} does not exist; path credit is reported without "
                "the MMM beside it (run the MMM steps first to reconcile).",
                subject=params.mmm_file,
            )
        )

    summary = PathInputSummary(
        kind=loaded.kind,  # type: ignore[arg-type]
        file=loaded.file,
        n_journeys=float(data.journeys.sum()),
        n_distinct_paths=merged.n_units,
        n_touches=loaded.n_touches,
        channels=channels,
        total_conversions=float(data.conversions.sum()),
        total_value=None if data.value is None else float(data.value.sum()),
        conversion_rate=float(data.conversions.sum() / data.journeys.sum()),
        has_campaigns=data.campaigns is not None,
        has_timestamps=data.touch_age_days is not None,
    )
    outputs_list = [REPORT_PATH, *outputs]
    report = PathAttributionReport(
        metadata=build_metadata(
            step=STEP,
            input_hashes=hashes,
            seed=params.seed,
            run_id=run_id,
            extra={"params": params.model_dump(mode="json")},
        ),
        input=summary,
        methods=methods,
        markov=markov_summary,
        shapley=shapley_summary,
        reconciliation=reconciliation,
        truth=_truth(ws, channels, credits),
        caveats=CAVEATS,
        findings=findings,
        outputs=outputs_list,
    )
    outputs[REPORT_PATH] = json_bytes(report.model_dump(mode="json"))
    return report, outputs


def _shapley_rule(fit: shapley.ShapleyFit) -> str:
    if fit.value_function == "subset_sum":
        return (
            "v(S) = sum of conversion rates of observed channel sets inside S; phi_j = sum over "
            "observed sets T containing j of CR(T) / |T| (exact closed form)"
        )
    if fit.exact:
        return (
            "v(S) = conversion rate of journeys whose channels all lie in S; exact sum over all "
            "2^n coalitions"
        )
    return (
        f"v(S) = conversion rate of journeys whose channels all lie in S; mean marginal "
        f"contribution over {fit.permutations} uniformly sampled orderings; error_bound is the "
        "95% Hoeffding half-width for marginals in [-1, 1]"
    )


def _campaign_credit(
    data: PathData, params: AttributePathsParams
) -> tuple[pd.DataFrame | None, str]:
    """Path credit per (channel, campaign) under the calibration method (None without
    campaigns), and the method actually used."""
    if data.campaigns is None or data.touch_campaign is None:
        return None, params.calibration_method
    n_camp = len(data.campaigns)
    # Label = (channel, campaign) pair, so a campaign name reused across channels stays apart.
    pair = data.touch_channel * n_camp + data.touch_campaign
    codes, label = np.unique(pair, return_inverse=True)
    names = [f"{data.channels[c // n_camp]}|{data.campaigns[c % n_camp]}" for c in codes]
    relabelled = data.relabel(label.ravel().astype(np.int64), names)
    method = params.calibration_method
    if method == "shapley" and len(names) > 62:
        # Coalition bitmasks hold 62 labels; the subset-sum Shapley value of a game whose
        # sets are single journeys is close to linear credit over distinct labels, so fall
        # back to linear and say so in the split's method.
        method = "linear (shapley needs <= 62 campaigns)"
    credit, _ = _method_credit(relabelled, method.split(" ")[0], params)
    frame = pd.DataFrame(
        {
            "channel": [data.channels[c // n_camp] for c in codes],
            "campaign": [data.campaigns[c % n_camp] for c in codes],
            "credit": credit,
        }
    )
    return frame, method


def _truth(
    ws: Workspace, channels: list[str], credits: dict[str, np.ndarray]
) -> TruthComparison | None:
    """Simulated workspaces only: shares vs the simulator's true incremental shares."""
    path = ws.resolve(TRUTH_PATH)
    if not path.is_file() or not credits:
        return None
    truth = json.loads(path.read_text(encoding="utf-8"))
    true_share = {c: float(v["true_share"]) for c, v in truth["channels"].items()}
    bottom = set(truth.get("bottom_funnel", []))
    mae, over = {}, {}
    for method, credit in credits.items():
        share = credit / credit.sum() if credit.sum() > 0 else credit
        err = [abs(share[i] - true_share.get(c, 0.0)) for i, c in enumerate(channels)]
        mae[method] = float(np.mean(err))
        over[method] = float(
            sum(share[i] - true_share.get(c, 0.0) for i, c in enumerate(channels) if c in bottom)
        )
    return TruthComparison(
        true_shares=true_share, mean_abs_error=mae, bottom_funnel_overcredit=over
    )


def summary_payload(report: PathAttributionReport) -> dict[str, Any]:
    """The compact JSON the script and CLI print: shares per method, flags, outputs."""
    shares = {m.method: {c.channel: round(c.share, 4) for c in m.credits} for m in report.methods}
    payload: dict[str, Any] = {
        "input": report.input.model_dump(mode="json"),
        "shares": shares,
        "outputs": report.outputs,
        "findings": [f.model_dump(mode="json") for f in report.findings],
    }
    if report.markov is not None:
        payload["removal_effects"] = {
            r.channel: round(r.removal_effect, 6) for r in report.markov.removal_effects
        }
    if report.reconciliation is not None:
        payload["disagreements"] = {
            r.channel: r.disagreeing_methods
            for r in report.reconciliation.channels
            if r.disagreeing_methods
        }
    if report.truth is not None:
        payload["truth_mean_abs_error"] = report.truth.mean_abs_error
    return payload
