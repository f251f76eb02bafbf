"""The ``attribute_paths`` step: journeys -> ``layout.PATH_ATTRIBUTION``.

Reads ``raw/journeys.csv`` or ``raw/paths.csv`` (:mod:`.inputs`), computes the requested
credits (heuristics, order-k Markov removal effects, Shapley values), reconciles them with
the MMM contributions when they exist, and returns every output file to the step runner,
which commits them all or nothing and records the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.common import DataRange, Finding
from attribution_analysis.contracts.paths import (
    HEURISTICS,
    AttributePathsParams,
    BootstrapSummary,
    CampaignCreditSummary,
    ChannelCredit,
    Coalition,
    MarkovSummary,
    MethodCredit,
    PathAttributionReport,
    PathInputSummary,
    Reconciliation,
    RemovalEffect,
    ShapleySummary,
    Transition,
    TruthComparison,
)
from attribution_analysis.errors import DataValidationError, arg
from attribution_analysis.paths import bootstrap, heuristics, markov, reconcile, shapley
from attribution_analysis.paths import campaign_credit as dated_credit
from attribution_analysis.paths.data import MAX_SET_CHANNELS, PathData, aggregate
from attribution_analysis.paths.distributed import load_partitioned
from attribution_analysis.paths.inputs import LoadedPaths, load_paths_input
from attribution_analysis.paths.summary import STEP, paths_answer
from attribution_analysis.provenance import build_metadata
from attribution_analysis.workspace import Workspace, csv_bytes, json_bytes

TRANSITIONS_SHOWN = 200
COALITIONS_SHOWN = 200
# A journey with more touches than this is rarely a person (bots, crawlers, ids stitched
# across users or months); it is kept, and flagged.
EXTREME_PATH_TOUCHES = 100
# Low-support coalitions carrying more of the Shapley game than this are a warning.
LOW_SUPPORT_WARNING_SHARE = 0.2
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

__all__ = ["STEP", "compute"]


@dataclass
class Credits:
    """What the path methods found, gathered method by method."""

    channels: list[str]
    methods: list[MethodCredit] = field(default_factory=list)
    credits: dict[str, np.ndarray] = field(default_factory=dict)  # conversions per channel
    share_fns: dict[str, bootstrap.ShareFn] = field(default_factory=dict)  # for the bootstrap
    findings: list[Finding] = field(default_factory=list)
    chain: Any = None  # the Markov chain's structure, for the bootstrap
    markov: MarkovSummary | None = None
    shapley: ShapleySummary | None = None
    bootstrap: BootstrapSummary | None = None

    def add(self, method: MethodCredit, conversions: np.ndarray) -> None:
        self.methods.append(method)
        self.credits[method.method] = conversions


def compute(ctx: StepContext, params: AttributePathsParams) -> StepOutput:
    """The attribute_paths step: credits per method, reconciled with the MMM when it exists."""
    ws = ctx.ws
    if params.journeys_partitions is not None:
        loaded = load_partitioned(ws, params)  # touches counted into paths (Dask or pandas)
    else:
        loaded = load_paths_input(ws, params.source)
    mmm_path = ws.resolve(params.mmm_file)
    use_mmm = params.reconcile and mmm_path.is_file()
    hashes = ws.input_hashes([*loaded.files, *([mmm_path] if use_mmm else [])])
    report, files = _attribute(ws, loaded, params, use_mmm, ctx.run_id, hashes)
    return StepOutput(paths_answer(report), files, input_hashes=hashes)


def _attribute(
    ws: Workspace,
    loaded: LoadedPaths,
    params: AttributePathsParams,
    use_mmm: bool,
    run_id: str,
    hashes: dict[str, str],
) -> tuple[PathAttributionReport, dict[str, bytes]]:
    """Every method asked for, their intervals, the campaign credit and the reconciliation."""
    data = loaded.data
    merged, inverse = aggregate(data)
    found = Credits(
        data.channels, findings=[*loaded.findings, *_length_findings(data, loaded.file)]
    )
    run_all = params.method == "all"
    if run_all or params.method == "heuristics":
        _heuristics(data, merged, inverse, params, found)
    if run_all or params.method == "markov":
        _markov(merged, params, found)
    _shapley(merged, loaded, params, found)
    if params.bootstrap_replicates > 0 and (found.share_fns or found.chain is not None):
        _bootstrap(merged, params, found)
    files: dict[str, bytes] = {}
    campaigns = dated_credit.campaign_credit(
        data,
        params.calibration_method,
        lambda relabelled, method: _method_credit(relabelled, method, params)[0],
        _heuristic_options(params),
        params.channel_map,
    )
    credit_summary = None
    if campaigns is not None:
        credit_csv = csv_bytes(campaigns.dated, float_format="%.12g")
        files[layout.PATH_CAMPAIGN_CREDIT.path] = credit_csv
        credit_summary = _credit_summary(campaigns, credit_csv)
    reconciliation = None
    if use_mmm:
        reconciliation = _reconcile(ws, loaded, params, found, campaigns, files)
    elif params.reconcile:
        found.findings.append(
            Finding(
                code="no_mmm_contributions",
                severity="info",
                message=f"{params.mmm_file} does not exist; path credit is reported without "
                "the MMM beside it (run the MMM steps first to reconcile).",
                subject=params.mmm_file,
            )
        )
    report = PathAttributionReport(
        metadata=build_metadata(
            step=STEP,
            input_hashes=hashes,
            data_range=_data_range(loaded),
            seed=params.seed,
            run_id=run_id,
            extra={"params": params.model_dump(mode="json")},
        ),
        input=_input_summary(loaded, merged.n_units),
        methods=found.methods,
        markov=found.markov,
        shapley=found.shapley,
        reconciliation=reconciliation,
        campaign_credit=credit_summary,
        bootstrap=found.bootstrap,
        truth=_truth(ws, found.channels, found.credits),
        caveats=CAVEATS,
        findings=found.findings,
        outputs=[layout.PATH_ATTRIBUTION.path, *files],
    )
    files[layout.PATH_ATTRIBUTION.path] = json_bytes(report.model_dump(mode="json"))
    return report, files


def _heuristics(
    data: PathData,
    merged: PathData,
    inverse: np.ndarray,
    params: AttributePathsParams,
    found: Credits,
) -> None:
    """The six rule-based credits (time decay only with touch timestamps)."""
    options = _heuristic_options(params)
    for rule in HEURISTICS:
        if rule == "time_decay" and data.touch_age_days is None:
            found.findings.append(
                Finding(
                    code="time_decay_skipped",
                    severity="info",
                    message="time decay needs touch timestamps; paths.csv has none, so it "
                    f"was left out (use {layout.JOURNEYS.path} for it).",
                    subject="time_decay",
                )
            )
            continue
        conv, value = heuristics.heuristic_credit(data, rule, **options)
        found.share_fns[rule] = bootstrap.linear_share_fn(
            bootstrap.heuristic_weights(data, inverse, merged.n_units, rule, **options)
        )
        found.add(
            MethodCredit(
                method=rule,
                family="heuristic",
                rule=heuristics.RULES[rule],
                credits=_credit_list(found.channels, conv, value),
            ),
            conv,
        )


def _markov(merged: PathData, params: AttributePathsParams, found: Credits) -> None:
    """Order-k Markov removal effects, the chain's summary, and channels it gives nothing."""
    channels = found.channels
    fit = markov.fit_markov(merged, params.order, params.collapse_repeats)
    found.chain = markov.chain_structure(merged, params.order, params.collapse_repeats)
    found.add(
        MethodCredit(
            method=f"markov_order_{params.order}",
            family="markov",
            rule="credit = removal effect / sum of removal effects x conversions "
            "(value: the same on expected value)",
            credits=_credit_list(channels, fit.conversions, fit.value),
        ),
        fit.conversions,
    )
    transitions, truncated = markov.top_transitions(fit, TRANSITIONS_SHOWN)
    found.markov = MarkovSummary(
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
    silent = fit.removal_effect <= 0
    if np.any(silent):
        names = ", ".join(np.array(channels)[silent])
        found.findings.append(
            Finding(
                code="zero_removal_effect",
                severity="info",
                message="removing these channels does not change the chain's conversion "
                "probability (no journey through them converts, or every converting one "
                f"has another route), so Markov gives them no credit: {names}.",
                subject=names,
                value=float(silent.sum()),
            )
        )


def _shapley(
    merged: PathData, loaded: LoadedPaths, params: AttributePathsParams, found: Credits
) -> None:
    """Shapley values when asked for and possible: refused when asked for alone with too many
    channels, skipped with a finding when part of 'all'."""
    channels = found.channels
    asked = params.method in ("all", "shapley")
    too_many = len(channels) > MAX_SET_CHANNELS
    if params.method == "shapley" and too_many:
        raise DataValidationError(
            problem=f"Shapley attribution handles at most {MAX_SET_CHANNELS} channels (channel "
            f"sets are 64-bit masks); the journeys have {len(channels)}.",
            fix="group rare channels into broader ones (e.g. by platform), or set "
            f"{arg('method')} markov or heuristics, which have no such limit.",
            file=loaded.file,
            column="channel" if loaded.kind == "journeys" else "path",
            code="too_many_channels",
            parameter="method",
        )
    if not asked:
        return
    if too_many:
        found.findings.append(
            Finding(
                code="shapley_skipped",
                severity="warning",
                message=f"Shapley was left out: it handles at most {MAX_SET_CHANNELS} channels "
                f"and the journeys have {len(channels)} (heuristics and Markov ran). Group rare "
                "channels to get it.",
                value=float(len(channels)),
                threshold=float(MAX_SET_CHANNELS),
            )
        )
        return
    fit = shapley.fit_shapley(
        merged,
        params.shapley_value,
        params.shapley_exact_max_channels,
        params.shapley_permutations,
        params.seed,
        params.shapley_prior_journeys,
    )
    found.share_fns["shapley"] = bootstrap.shapley_share_fn(
        merged, params.shapley_value, fit.exact, params.shapley_prior_journeys, params.seed
    )
    found.findings.append(_support_finding(fit))
    found.add(
        MethodCredit(
            method="shapley",
            family="shapley",
            rule="credit = positive Shapley value / their sum x conversions",
            credits=_credit_list(channels, fit.conversions, fit.value),
        ),
        fit.conversions,
    )
    found.shapley = _shapley_summary(fit, channels)


def _shapley_summary(fit: shapley.ShapleyFit, channels: list[str]) -> ShapleySummary:
    def per_channel(values: np.ndarray) -> dict[str, float]:
        return {ch: float(values[i]) for i, ch in enumerate(channels)}

    return ShapleySummary(
        value_function=fit.value_function,
        n_coalitions=fit.n_coalitions,
        exact=fit.exact,
        permutations=fit.permutations,
        raw_values=per_channel(fit.raw),
        standard_errors=None if fit.standard_errors is None else per_channel(fit.standard_errors),
        error_bound=fit.error_bound,
        share_error_bounds=None
        if fit.share_error_bounds is None
        else per_channel(fit.share_error_bounds),
        prior_journeys=fit.prior_journeys,
        prior_rate=fit.prior_rate,
        low_support_threshold=fit.support.threshold,
        n_low_support_coalitions=fit.support.n_low,
        low_support_journey_share=fit.support.journey_share,
        low_support_value_share=fit.support.value_share,
        coalitions=_coalitions(fit, channels),
        coalitions_truncated=fit.n_coalitions > COALITIONS_SHOWN,
        rule=_shapley_rule(fit),
    )


def _bootstrap(merged: PathData, params: AttributePathsParams, found: Credits) -> None:
    """90% intervals of every share and removal effect, merged into the summaries."""
    intervals = bootstrap.bootstrap(
        merged, found.share_fns, found.chain, params.bootstrap_replicates, params.seed
    )
    found.methods = _with_intervals(found.methods, intervals)
    if found.markov is not None and intervals.removal_effect is not None:
        low, high = intervals.removal_effect
        found.markov = found.markov.model_copy(
            update={
                "removal_effects": [
                    r.model_copy(
                        update={
                            "removal_effect_lower_90": float(low[i]),
                            "removal_effect_upper_90": float(high[i]),
                        }
                    )
                    for i, r in enumerate(found.markov.removal_effects)
                ]
            }
        )
    found.bootstrap = BootstrapSummary(
        replicates=intervals.replicates,
        seed=intervals.seed,
        level=bootstrap.LEVEL,
        rule=bootstrap.RULE,
    )


def _reconcile(
    ws: Workspace,
    loaded: LoadedPaths,
    params: AttributePathsParams,
    found: Credits,
    campaigns: dated_credit.CampaignCredit | None,
    files: dict[str, bytes],
) -> Reconciliation:
    """Path credits beside the MMM shares; the MMM totals split over campaigns (into
    ``files``) when the journeys carry campaigns."""
    mmm = reconcile.read_mmm(ws.resolve(params.mmm_file), params.mmm_file)
    if campaigns is None:
        found.findings.append(
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
        found.channels,
        found.credits,
        params.channel_map,
        None if campaigns is None else campaigns.totals,
        params.calibration_method if campaigns is None else campaigns.method,
        (loaded.first_date, loaded.last_date),
    )
    if reconciliation.dates_overlap is False:
        found.findings.append(
            Finding(
                code="dates_do_not_overlap",
                severity="warning",
                message=f"the journeys ({loaded.first_date} to {loaded.last_date}) and the "
                f"MMM data ({reconciliation.mmm_start} to {reconciliation.mmm_end}) cover "
                "different periods, so their shares compare different times; export "
                "journeys from the MMM's window.",
                subject=params.mmm_file,
            )
        )
    if split_csv is not None:
        files[layout.PATH_CAMPAIGN_OMEGA.path] = split_csv
    found.findings.extend(
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
        for row in reconciliation.channels
        if row.disagreeing_methods
    )
    return reconciliation


def _input_summary(loaded: LoadedPaths, n_distinct_paths: int) -> PathInputSummary:
    data = loaded.data
    return PathInputSummary(
        kind=loaded.kind,  # type: ignore[arg-type]
        file=loaded.file,
        n_journeys=float(data.journeys.sum()),
        n_distinct_paths=n_distinct_paths,
        n_touches=loaded.n_touches,
        channels=data.channels,
        total_conversions=float(data.conversions.sum()),
        total_value=None if data.value is None else float(data.value.sum()),
        conversion_rate=float(data.conversions.sum() / data.journeys.sum()),
        has_campaigns=data.campaigns is not None,
        has_timestamps=data.touch_age_days is not None,
        first_date=loaded.first_date,
        last_date=loaded.last_date,
        max_path_length=int(data.lengths.max()),
    )


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


def _with_intervals(
    methods: list[MethodCredit], intervals: bootstrap.Intervals
) -> list[MethodCredit]:
    out = []
    for m in methods:
        band = intervals.shares.get(m.method)
        if band is None:
            out.append(m)
            continue
        low, high = band
        credits = [
            c.model_copy(update={"share_lower_90": float(low[i]), "share_upper_90": float(high[i])})
            for i, c in enumerate(m.credits)
        ]
        out.append(m.model_copy(update={"credits": credits}))
    return out


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
            params.shapley_prior_journeys,
        )
        return fit_s.conversions, fit_s.value
    return heuristics.heuristic_credit(data, method, **_heuristic_options(params))


def _shapley_rule(fit: shapley.ShapleyFit) -> str:
    shrunk = (
        f"CR(T) = (conversions + k p0) / (journeys + k), k = {fit.prior_journeys:g} "
        f"pseudo-journeys at the overall rate p0 = {fit.prior_rate:.4g}"
    )
    if fit.value_function == "subset_sum":
        return (
            f"{shrunk}; v(S) = sum of CR(T) over observed channel sets T inside S; phi_j = sum "
            "over observed sets T containing j of CR(T) / |T| (exact closed form)"
        )
    if fit.exact:
        return (
            f"{shrunk}; v(S) = CR of the journeys whose channels all lie in S; exact sum over "
            "all 2^n coalitions"
        )
    return (
        f"{shrunk}; v(S) = CR of the journeys whose channels all lie in S; mean marginal "
        f"contribution over {fit.permutations} uniformly sampled orderings; error_bound is the "
        "Hoeffding half-width on the raw values for all channels at once (95%, union bound), "
        "share_error_bounds the bound it implies on the shown shares"
    )


def _coalitions(fit: shapley.ShapleyFit, channels: list[str]) -> list[Coalition]:
    sets, conv, journeys, rate = fit.coalitions
    order = np.argsort(-journeys, kind="stable")[:COALITIONS_SHOWN]
    return [
        Coalition(
            channels=[c for b, c in enumerate(channels) if (int(sets[i]) >> b) & 1],
            journeys=float(journeys[i]),
            conversions=float(conv[i]),
            raw_rate=float(conv[i] / journeys[i]) if journeys[i] > 0 else 0.0,
            shrunk_rate=float(rate[i]),
        )
        for i in order
    ]


def _support_finding(fit: shapley.ShapleyFit) -> Finding:
    sup = fit.support
    heavy = sup.value_share > LOW_SUPPORT_WARNING_SHARE
    return Finding(
        code="shapley_low_support",
        severity="warning" if heavy else "info",
        message=f"{sup.n_low} of {fit.n_coalitions} channel sets have fewer than "
        f"{sup.threshold} journeys; they hold {sup.journey_share:.1%} of the journeys and carry "
        f"{sup.value_share:.1%} of the Shapley game's worth (rates shrunk toward the overall "
        f"rate with {fit.prior_journeys:g} pseudo-journeys)"
        + (
            "; the Shapley credit rests largely on thin evidence, read it with its interval."
            if heavy
            else "."
        ),
        value=sup.value_share,
        threshold=LOW_SUPPORT_WARNING_SHARE,
        rule=f"share of v(N) from sets with < {sup.threshold} journeys > "
        f"{LOW_SUPPORT_WARNING_SHARE:.0%}",
    )


def _length_findings(data: PathData, shown: str) -> list[Finding]:
    lengths = data.lengths
    long = lengths > EXTREME_PATH_TOUCHES
    if not long.any():
        return []
    journeys = data.journeys
    return [
        Finding(
            code="extreme_path_length",
            severity="warning",
            message=f"{shown}: {int(long.sum())} journey(s)/path(s) have more than "
            f"{EXTREME_PATH_TOUCHES} touches (longest {int(lengths.max())}; "
            f"{journeys[long].sum() / journeys.sum():.2%} of journeys). Journeys that long are "
            "usually bots, crawlers or ids stitched across users; check them (they are kept).",
            subject=shown,
            value=float(lengths.max()),
            threshold=float(EXTREME_PATH_TOUCHES),
        )
    ]


def _data_range(loaded: LoadedPaths) -> DataRange | None:
    """The journeys' window, first to last touch day (None for paths.csv, which has no dates)."""
    if loaded.first_date is None or loaded.last_date is None:
        return None
    return DataRange(
        start=loaded.first_date,
        end=loaded.last_date,
        grain="daily",
        n_periods=(loaded.last_date - loaded.first_date).days + 1,
    )


def _credit_summary(campaigns: dated_credit.CampaignCredit, csv: bytes) -> CampaignCreditSummary:
    dated = campaigns.dated
    return CampaignCreditSummary(
        file=layout.PATH_CAMPAIGN_CREDIT.path,
        method=campaigns.method,
        omega_source=campaigns.omega_source,
        rule=dated_credit.RULE,
        sha256=hashlib.sha256(csv).hexdigest(),
        n_rows=len(dated),
        n_campaigns=int(dated[["channel", "campaign"]].drop_duplicates().shape[0]),
        first_date=None if dated.empty else dt.date.fromisoformat(dated["date"].min()),
        last_date=None if dated.empty else dt.date.fromisoformat(dated["date"].max()),
        total_credit=float(campaigns.totals["credit"].sum()),
        undated_credit=campaigns.undated,
    )


def _truth(
    ws: Workspace, channels: list[str], credits: dict[str, np.ndarray]
) -> TruthComparison | None:
    """Simulated workspaces only: shares vs the simulator's true incremental shares."""
    path = ws.resolve(layout.JOURNEY_TRUTH.path)
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
