"""The ``optimize_budget`` step: recommended mix, lift with its interval, scenarios, curves.

Writes the named plan ``layout.BUDGET_PLAN`` (``analysis/budget_plans/{plan_name}.json``).
Every money amount is a total over the horizon; the output also states the per-period budget
(PITFALLS.md: the library's optimizer takes a per-period budget, a factor-of-H trap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.budget import (
    MOVE_TOLERANCE,
    BudgetOptimization,
    ChannelAllocation,
    InfeasibleScenario,
    OptimizeBudgetParams,
    ResponseCurve,
    SaturationStatus,
    ScenarioResult,
)
from attribution_analysis.contracts.common import Finding, Metadata
from attribution_analysis.errors import ParameterError, arg, render
from attribution_analysis.mmm.gate import (
    channel_verdicts,
    override_findings,
    require_valid_model,
)
from attribution_analysis.mmm.stored import StoredFit, open_stored_fit
from attribution_analysis.optimize import break_even
from attribution_analysis.optimize.bounds import Box, resolve_box
from attribution_analysis.optimize.geo_plan import geo_plan, require_geo_panel
from attribution_analysis.optimize.outcomes import (
    active_bound,
    optimizer_report,
    outcome_summary,
)
from attribution_analysis.optimize.plans import listed_names, plan_path, replaced_finding
from attribution_analysis.optimize.posterior import (
    SpendHistory,
    curves_from_fit,
    sampler_record,
    spend_history,
)
from attribution_analysis.optimize.response import ResponseCurves
from attribution_analysis.optimize.robustness import (
    MainPlan,
    limit_findings,
    robustness,
    robustness_findings,
)
from attribution_analysis.optimize.scenarios import PlannedScenario, plan_scenarios
from attribution_analysis.optimize.solver import Objective, Solution, optimize, project
from attribution_analysis.optimize.summary import STEP, budget_answer
from attribution_analysis.optimize.total import observed_total, with_total
from attribution_analysis.progress import report
from attribution_analysis.provenance import build_metadata
from attribution_analysis.summaries import interval
from attribution_analysis.workspace import Workspace, json_bytes

# Saturation flags (documented in references/mmm_methodology.md): the next unit of spend
# earns less than 30% of what the average unit earns, or the curve is past 80% of its ceiling.
MROAS_RATIO_THRESHOLD = 0.3
CURVE_FRACTION_THRESHOLD = 0.8
# A budget this far from current spend over the horizon is more often a per-period figure
# typed as a total (or the reverse) than a real plan: say so.
SUSPICIOUS_BUDGET_RATIO = 4.0
# A per-period figure typed as the total lands near 1/H of current spend over the horizon.
# The window is wide because the per-period figure may itself be a change from current
# spend (a +30% plan typed per week is still a per-week figure); the second bound keeps a
# genuine cut on a 2-period horizon (ratio 0.8, say) from being read as one.
PER_PERIOD_WINDOW = (0.6, 1.5)
PER_PERIOD_MAX_RATIO = 0.75
# A recommendation this much above the most ever spent in one period is extrapolated.
BEYOND_OBSERVED_TOLERANCE = 1.0001
GRAIN_UNITS = {"weekly": ("week", "weeks"), "daily": ("day", "days")}
CONVENTION = (
    "spend spread evenly over the horizon's periods, starting from no carry-over; the outcome "
    "counts the horizon plus the adstock tail after it (PyMC-Marketing's budget_optimizer "
    "convention without carry-in)."
)


@dataclass(frozen=True)
class Plan:
    """What the request means on this fit, settled before any response curve is evaluated."""

    history: SpendHistory
    horizon: int
    actual: np.ndarray  # (C,) current spend over the horizon
    total: float  # the budget to spend over the horizon
    baseline: np.ndarray  # (C,) the comparison: current mix at the planned budget
    box: Box  # per-channel limits
    scenarios: list[PlannedScenario]
    per_period: tuple[str, str] | None  # (sentence, fix) when the budget looks per period

    @property
    def channels(self) -> list[str]:
        return self.history.channels


def compute(ctx: StepContext, params: OptimizeBudgetParams) -> StepOutput:
    """The optimize_budget step: the recommended mix on the posterior draws, with its lift."""
    progress = ctx.progress
    params, bounds_hashes = _with_bounds_file(ctx.ws, params)
    gate = require_valid_model(ctx.ws, params.override_reason)
    verdicts = channel_verdicts(ctx.ws)
    report(progress, 0, 4, "loading the fitted model")
    fitted = open_stored_fit(ctx.ws)
    require_geo_panel(params, fitted)
    plan = _plan(params, fitted)
    report(progress, 1, 4, "response curves on the posterior draws")
    curves = curves_from_fit(fitted, params.horizon_periods, params.draws, plan.history)
    objective = Objective(curves, params.objective, params.risk_level)
    report(progress, 2, 4, "optimizing")
    solution = optimize(objective, plan.box, plan.total, plan.baseline, seed=params.seed)
    report(progress, 3, 4, "uncertainty pass, robustness variants, scenarios and curves")
    result = _result(params, fitted, plan, objective, solution, gate, ctx.run_id, verdicts)
    result = _decision_views(params, fitted, plan, objective, result)
    if params.by_geo:
        report(progress, 3, 4, "planning per geo x channel")
        result = _with_geo_plan(params, fitted, plan, objective, result)
    path = plan_path(params.plan_name)
    if ctx.ws.resolve(path).exists():
        result.findings.append(replaced_finding(params.plan_name, path))
    files = {path: json_bytes(result.model_dump(mode="json"))}
    report(progress, 4, 4, "done")
    hashes = {**fitted.input_hashes, **bounds_hashes}
    others = [name for name in listed_names(ctx.ws) if name != params.plan_name]
    answer = budget_answer(result, list(files), [params.plan_name, *others])
    return StepOutput(answer, files, input_hashes=hashes)


def _decision_views(
    params: OptimizeBudgetParams,
    fitted: StoredFit,
    plan: Plan,
    objective: Objective,
    result: BudgetOptimization,
) -> BudgetOptimization:
    """What a decision needs beyond the optimum: break-even per channel, the lift as a
    share of the whole outcome, the limits that set spend, and the plan under changed
    assumptions (modules break_even, total and robustness)."""
    curves = objective.curves
    now, now_gradient = curves.outcome_and_gradient(plan.baseline)
    needed, note = break_even.threshold(
        fitted.data.target, params.margin, params.value_per_conversion
    )
    allocations = break_even.with_break_even(result.allocations, now, now_gradient, needed)
    recommended = np.array([a.recommended_spend for a in allocations])
    current_total = now.sum(axis=1)
    lift = curves.outcome(recommended).sum(axis=1) - current_total
    outcome = with_total(result.outcome, lift, *observed_total(fitted, plan.horizon))
    at_limit = [a.bound_active for a in allocations]
    findings = [
        *result.findings,
        *limit_findings(plan.channels, at_limit, plan.box.sources),
        *break_even.break_even_findings(allocations, note),
    ]
    robust = None
    if params.robustness:
        main = MainPlan(
            channels=plan.channels,
            horizon=plan.horizon,
            basis_periods=plan.history.basis_periods,
            actual=plan.actual,
            total=plan.total,
            baseline=plan.baseline,
            recommended=recommended,
            cap=None if params.allow_extrapolation else plan.history.max_per_period * plan.horizon,
            at_limit=at_limit,
        )
        robust = robustness(params, fitted, main, curves)
        findings.extend(robustness_findings(robust))
    return result.model_copy(
        update={
            "allocations": allocations,
            "outcome": outcome,
            "break_even_note": note,
            "robustness": robust,
            "findings": findings,
        }
    )


def _with_geo_plan(
    params: OptimizeBudgetParams,
    fitted: StoredFit,
    plan: Plan,
    objective: Objective,
    result: BudgetOptimization,
) -> BudgetOptimization:
    """The plan per geo x channel (``by_geo``) beside the national one, on the same draws."""
    national = np.array([a.recommended_spend for a in result.allocations])
    section, findings = geo_plan(
        params, fitted, plan.history, objective, plan.box, plan.total, plan.baseline, national
    )
    merged = [*result.findings, *findings]
    return result.model_copy(update={"geo_plan": section, "findings": merged})


def _with_bounds_file(
    ws: Workspace, params: OptimizeBudgetParams
) -> tuple[OptimizeBudgetParams, dict[str, str]]:
    """``bounds_file``'s limits added to ``bounds``, and the file's hash (an input)."""
    if params.bounds_file is None:
        return params, {}
    from attribution_analysis.optimize.inputs import read_bounds

    path = ws.resolve(params.bounds_file)
    extra = read_bounds(path, params.bounds_file)
    merged = params.model_copy(update={"bounds": [*params.bounds, *extra]})
    return merged, {params.bounds_file: ws.sha256(path)}


def _plan(params: OptimizeBudgetParams, fitted: StoredFit) -> Plan:
    """Current spend, budget, limits and scenarios; refuses a request that cannot work."""
    history = spend_history(fitted, params.current_basis_periods)
    horizon = params.horizon_periods
    actual = history.current_per_period * horizon
    _check_recent_spend(params, history, actual)
    total = float(params.total_budget or actual.sum())
    # The comparison baseline is the current mix at the planned budget.
    baseline = actual * total / actual.sum() if actual.sum() > 0 else np.full_like(actual, 0)
    # Above the most ever spent in one period the curves are extrapolated: capped unless
    # the caller lifts the cap.
    cap = None if params.allow_extrapolation else history.max_per_period * horizon
    per_period = _per_period_hint(total, actual, horizon, _grain(fitted), params.total_budget)
    try:
        box = resolve_box(params.bounds, params.max_change, history.channels, actual, total, cap)
    except ParameterError as exc:
        if per_period is None:
            raise
        # The limits are the symptom; the per-period budget is the likely cause.
        raise ParameterError(f"{exc.problem} {per_period[0]}", fix=per_period[1]) from None
    scenarios = plan_scenarios(params, history.channels, baseline, actual, total, cap)
    if baseline.sum() <= 0:  # no current mix: compare with an equal split within the limits
        baseline = project(np.full(box.low.shape, total / box.low.size), box, total)
    return Plan(history, horizon, actual, total, baseline, box, scenarios, per_period)


def _grain(fitted: StoredFit) -> tuple[str, str]:
    return GRAIN_UNITS.get(fitted.data.report.window.grain, ("period", "periods"))


def _check_recent_spend(
    params: OptimizeBudgetParams, history: SpendHistory, actual: np.ndarray
) -> None:
    """No spend in the basis window: there is no current mix to reallocate or to scale."""
    if actual.sum() > 0:
        return
    window = (
        f"the last {history.basis_periods} periods of the data "
        f"({history.basis_start} to {history.basis_end})"
    )
    if params.total_budget is None:
        raise ParameterError(
            f"no spend in {window}, so there is no current budget to reallocate.",
            fix=f"give {arg('total_budget')}: the total over the whole horizon.",
            parameter="total_budget",
        )
    bounded = {b.channel for b in params.bounds}
    if params.max_change is not None and any(c not in bounded for c in history.channels):
        raise ParameterError(
            f"no spend in {window}, so the {arg('max_change')} limit ({params.max_change:g}, "
            "relative to current spend) holds every channel without its own bounds at zero "
            "and the budget cannot be spent.",
            fix=f"give {arg('max_change')} none (null in JSON), with absolute min_spend / "
            "max_spend limits per channel in `bounds` where the plan needs them.",
            parameter="max_change",
        )


def _per_period_hint(
    total: float,
    actual: np.ndarray,
    horizon: int,
    unit: tuple[str, str],
    given: float | None,
) -> tuple[str, str] | None:
    """(sentence, fix) when the budget given looks like a per-period figure; else None."""
    current = float(actual.sum())
    if given is None or horizon <= 1 or current <= 0:
        return None
    ratio = total / current
    low, high = PER_PERIOD_WINDOW
    if not (low / horizon <= ratio <= high / horizon and ratio <= PER_PERIOD_MAX_RATIO):
        return None
    one, many = unit
    sentence = (
        f"This looks like a per-period budget: {arg('total_budget')} is the total over the "
        f"horizon of {horizon} {many} (current spend over the horizon is {current:,.2f}, "
        f"{current / horizon:,.2f} per {one}); {total:,.2f} is {ratio:.2f}x that."
    )
    fix = (
        f"if {total:,.2f} is the budget per {one}, give {arg('total_budget')} "
        f"{total * horizon:.2f} ({horizon} {many} x {total:,.2f}); if it really is the total, "
        f"lower the minimums ({arg('max_change')}, the per-channel `bounds`) so that they fit "
        "in it."
    )
    return sentence, fix


def _result(
    params: OptimizeBudgetParams,
    fitted: StoredFit,
    plan: Plan,
    objective: Objective,
    solution: Solution,
    gate: dict,
    run_id: str,
    verdicts: dict[str, str] | None = None,
) -> BudgetOptimization:
    """The output file's content: allocations, outcome, scenarios, curves and findings."""
    curves = objective.curves
    current = curves.outcome_and_gradient(plan.baseline)
    recommended = curves.outcome_and_gradient(solution.spend)
    statuses = saturation_flags(curves, plan.baseline)
    infeasible = _infeasible(plan.scenarios)
    findings = [
        *_budget_findings(plan, gate),
        *saturation_findings(plan.channels, statuses),
        *_extrapolation_findings(plan, solution.spend),
        *_solver_findings(solution),
        *_infeasible_findings(infeasible),
        *identification_findings(plan.channels, plan.baseline, solution.spend, verdicts or {}),
    ]
    current_total = current[0].sum(axis=1)
    return BudgetOptimization(
        metadata=_metadata(params, fitted, curves, gate, run_id),
        plan_name=params.plan_name,
        target=fitted.data.target,
        outcome_unit=f"{fitted.data.target} (media-driven, horizon + carry-over)",
        horizon_periods=plan.horizon,
        grain=fitted.data.report.window.grain,
        total_budget=plan.total,
        budget_per_period=plan.total / plan.horizon,
        current_basis=f"mean spend per period over {plan.history.basis_start} to "
        f"{plan.history.basis_end} ({plan.history.basis_periods} periods) x {plan.horizon} "
        f"periods, total {plan.actual.sum():,.2f}; compared at the planned budget with the "
        "same mix",
        convention=CONVENTION,
        draws=curves.n_draws,
        allocations=[
            a.model_copy(update={"identification": (verdicts or {}).get(a.channel)})
            for a in _allocations(plan, solution.spend, statuses, current, recommended)
        ],
        outcome=outcome_summary(current_total, recommended[0].sum(axis=1)),
        optimizer=optimizer_report(params, solution),
        scenarios=[
            _scenario(s, objective, plan.baseline, current_total, params.seed)
            for s in plan.scenarios
            if s.infeasible is None
        ],
        infeasible_scenarios=infeasible,
        curves=_curves(curves, params, plan.baseline, solution.spend, plan.history),
        findings=findings,
    )


def _metadata(
    params: OptimizeBudgetParams,
    fitted: StoredFit,
    curves: ResponseCurves,
    gate: dict,
    run_id: str,
) -> Metadata:
    return build_metadata(
        step=STEP,
        input_hashes=fitted.input_hashes,
        data_range=fitted.data.report.window,
        seed=params.seed,
        sampler=sampler_record(fitted, curves.n_draws),
        run_id=run_id,
        extra={
            "fit_key": fitted.manifest["result"]["fit_key"],
            "method": fitted.method,
            "params": params.model_dump(mode="json"),
            **gate,
        },
    )


def _beyond_observed(plan: Plan, spend: np.ndarray) -> np.ndarray:
    """(C,) whether each channel's spend per period exceeds the most ever spent in one."""
    return spend / plan.horizon > plan.history.max_per_period * BEYOND_OBSERVED_TOLERANCE


def _allocations(
    plan: Plan,
    spend: np.ndarray,
    statuses: list[SaturationStatus],
    current: tuple[np.ndarray, np.ndarray],
    recommended: tuple[np.ndarray, np.ndarray],
) -> list[ChannelAllocation]:
    """Per channel: current vs recommended spend, outcome, ROAS and mROAS with intervals.
    ``current`` and ``recommended``: (outcome, gradient) draws, each (S, C)."""
    baseline, box = plan.baseline, plan.box
    beyond = _beyond_observed(plan, spend)
    (now, now_grad), (rec, rec_grad) = current, recommended
    return [
        ChannelAllocation(
            channel=channel,
            current_spend=float(baseline[c]),
            recommended_spend=float(spend[c]),
            change=float(spend[c] - baseline[c]),
            change_pct=float(spend[c] / baseline[c] - 1) if baseline[c] > 0 else None,
            min_spend=float(box.low[c]),
            max_spend=float(box.high[c]),
            bound_active=active_bound(spend[c], box.low[c], box.high[c], plan.total),
            outcome_current=interval(now[:, c]),
            outcome_recommended=interval(rec[:, c]),
            roas_current=interval(now[:, c] / baseline[c]) if baseline[c] > 0 else None,
            mroas_current=interval(now_grad[:, c]),
            mroas_recommended=interval(rec_grad[:, c]),
            saturation=statuses[c],
            beyond_observed=bool(beyond[c]),
        )
        for c, channel in enumerate(plan.channels)
    ]


def _infeasible(scenarios: list[PlannedScenario]) -> list[InfeasibleScenario]:
    return [
        InfeasibleScenario(
            name=s.name,
            kind=s.kind,
            description=s.description,
            reason=s.infeasible[0],
            fix=s.infeasible[1],
        )
        for s in scenarios
        if s.infeasible is not None
    ]


def _extrapolation_findings(plan: Plan, spend: np.ndarray) -> list[Finding]:
    beyond = _beyond_observed(plan, spend)
    findings = []
    for c, channel in enumerate(plan.channels):
        if not beyond[c]:
            continue
        per_period, most = spend[c] / plan.horizon, plan.history.max_per_period[c]
        findings.append(
            Finding(
                code="extrapolated_spend",
                severity="warning",
                subject=channel,
                value=round(float(per_period), 2),
                threshold=round(float(most), 2),
                message=f"the recommended {channel} spend per period ({per_period:,.2f}) "
                f"exceeds the most ever spent in one period ({most:,.2f}); the curve there is "
                "extrapolated. Test the increase (geo experiment) before committing, or leave "
                "`allow_extrapolation` off to cap spend at the observed maximum.",
            )
        )
    return findings


def _solver_findings(solution: Solution) -> list[Finding]:
    if solution.converged:
        return []
    return [
        Finding(
            code="optimizer_not_converged",
            severity="warning",
            message=f"SLSQP did not report convergence from any start ({solution.message}); "
            "the best feasible point found is reported.",
        )
    ]


def _infeasible_findings(infeasible: list[InfeasibleScenario]) -> list[Finding]:
    return [
        Finding(
            code="scenario_infeasible",
            severity="warning",
            subject=s.name,
            message=f"scenario {s.name!r} cannot be planned under the limits: {s.reason} "
            f"Fix: {s.fix}",
        )
        for s in infeasible
    ]


def saturation_flags(curves: ResponseCurves, spend: np.ndarray) -> list[SaturationStatus]:
    """Where each channel's ``spend`` (over the horizon) sits on its curve, per channel."""
    outcome, gradient = curves.outcome_and_gradient(spend)
    level = curves.steady_state_saturation(spend)
    return [
        _saturation(outcome[:, c], gradient[:, c], float(spend[c]), level[:, c])
        for c in range(len(curves.channels))
    ]


def saturation_findings(channels: list[str], statuses: list[SaturationStatus]) -> list[Finding]:
    return [
        Finding(
            code="saturated_channel",
            severity="warning",
            subject=channel,
            value=round(status.mroas_to_roas, 4),
            threshold=MROAS_RATIO_THRESHOLD,
            message=f"{channel} is near saturation at current spend: {status.reason}",
        )
        for channel, status in zip(channels, statuses, strict=True)
        if status.saturated
    ]


def _saturation(
    outcome: np.ndarray, gradient: np.ndarray, spend: float, level: np.ndarray
) -> SaturationStatus:
    ratio = float(gradient.mean() / (outcome.mean() / spend)) if spend > 0 else 1.0
    fraction = interval(level)
    reasons = []
    if spend > 0 and ratio < MROAS_RATIO_THRESHOLD:
        reasons.append(
            f"the next unit of spend returns {ratio:.0%} of the average unit's return "
            f"(threshold {MROAS_RATIO_THRESHOLD:.0%})"
        )
    if fraction.mean > CURVE_FRACTION_THRESHOLD:
        reasons.append(
            f"the saturation curve sits at {fraction.mean:.0%} of its ceiling "
            f"(threshold {CURVE_FRACTION_THRESHOLD:.0%})"
        )
    return SaturationStatus(
        saturated=bool(reasons),
        mroas_to_roas=ratio,
        mroas_ratio_threshold=MROAS_RATIO_THRESHOLD,
        curve_fraction=fraction,
        curve_fraction_threshold=CURVE_FRACTION_THRESHOLD,
        reason="; ".join(reasons),
    )


def identification_findings(
    channels: list[str], current: np.ndarray, recommended: np.ndarray, verdicts: dict[str, str]
) -> list[Finding]:
    """A warning for each channel the plan moves money into although the data did not decide
    its number (validate_model's verdict): the move rests on the priors, or on a split
    between channels the data cannot make."""
    findings = []
    for c, channel in enumerate(channels):
        verdict = verdicts.get(channel)
        grows = recommended[c] > current[c] * (1 + MOVE_TOLERANCE)
        if grows and verdict in ("prior_driven", "not_separable"):
            why = (
                "its ROAS is prior-driven (vague priors give another answer)"
                if verdict == "prior_driven"
                else "its contribution cannot be separated from another channel's"
            )
            findings.append(
                Finding(
                    code=f"budget_into_{verdict}",
                    severity="warning",
                    subject=channel,
                    value=round(float(recommended[c] / current[c] - 1), 6)
                    if current[c] > 0
                    else None,
                    message=f"the plan moves money into {channel}, but {why}: the move rests "
                    "on assumptions, not on the data. Test it (a lift test or a geo "
                    "experiment) before committing the budget.",
                )
            )
    return findings


def _budget_findings(plan: Plan, gate: dict) -> list[Finding]:
    """What the budget and the model gate say about the comparison itself."""
    findings = []
    total, horizon, history = plan.total, plan.horizon, plan.history
    current = float(plan.actual.sum())
    if current <= 0:
        findings.append(
            Finding(
                code="no_recent_spend",
                severity="warning",
                message=f"no spend in the last {history.basis_periods} periods of the data "
                f"({history.basis_start} to {history.basis_end}): 'current' is an equal split "
                "of the budget within the limits, not a real plan, so the lift and the "
                "probability of beating it compare against that split.",
            )
        )
    if plan.per_period is not None:
        sentence, fix = plan.per_period
        findings.append(
            Finding(
                code="budget_looks_per_period",
                severity="warning",
                value=round(total / current, 4),
                threshold=round(1 / horizon, 4),
                message=render(f"{sentence} Fix: {fix}"),
            )
        )
    if current > 0:
        ratio = total / current
        far = ratio > SUSPICIOUS_BUDGET_RATIO or ratio < 1 / SUSPICIOUS_BUDGET_RATIO
        if far and plan.per_period is None:
            findings.append(
                Finding(
                    code="budget_far_from_current",
                    severity="warning",
                    value=round(ratio, 4),
                    threshold=SUSPICIOUS_BUDGET_RATIO,
                    message=f"the total budget {total:,.2f} over {horizon} periods is "
                    f"{ratio:.2f}x current spend over the same horizon ({current:,.2f}). "
                    "`total_budget` is the total over the whole horizon, not per period; if "
                    "that is what you meant, expect the curves to be extrapolated.",
                )
            )
        if abs(ratio - 1) > 0.01:
            findings.append(
                Finding(
                    code="baseline_rescaled",
                    severity="info",
                    value=round(ratio, 4),
                    message="the current mix is compared at the planned budget: each "
                    f"channel's current spend is scaled by {ratio:.3f}.",
                )
            )
    findings.extend(override_findings(gate))
    return findings


def _scenario(
    planned: PlannedScenario,
    objective: Objective,
    baseline: np.ndarray,
    current_total: np.ndarray,
    seed: int,
) -> ScenarioResult:
    spend = planned.spend
    if spend is None:
        solution = optimize(
            objective, planned.box, planned.total, baseline * planned.total / baseline.sum(), seed
        )
        spend = solution.spend
    outcome = objective.curves.outcome(spend).sum(axis=1)
    lift = outcome - current_total
    return ScenarioResult(
        name=planned.name,
        kind=planned.kind,
        description=planned.description,
        allocation={c: float(v) for c, v in zip(objective.curves.channels, spend, strict=True)},
        total_spend=float(spend.sum()),
        outcome=interval(outcome),
        lift_vs_current=interval(lift),
        probability_better=float((lift > 0).mean()),
    )


def _curves(
    curves: ResponseCurves,
    params: OptimizeBudgetParams,
    baseline: np.ndarray,
    recommended: np.ndarray,
    history: SpendHistory,
) -> list[ResponseCurve]:
    out = []
    for c, channel in enumerate(curves.channels):
        top = max(baseline[c], recommended[c]) or history.max_per_period[c] * params.horizon_periods
        grid = np.linspace(0.0, params.curve_max_multiple * top, params.curve_points)
        values = curves.channel_outcome(c, grid)[0]
        # The derivative at exactly zero spend is infinite for Hill slopes below 1.
        _, gradients = curves.channel_outcome(
            c, np.maximum(grid, grid[1] * 0.01), with_gradient=True
        )
        # The 5% and 95% quantiles over draws (summaries.band_90's, on plain arrays).
        lo, hi = np.quantile(values, [0.05, 0.95], axis=1)
        glo, ghi = np.quantile(gradients, [0.05, 0.95], axis=1)
        out.append(
            ResponseCurve(
                channel=channel,
                spend=_round(grid),
                outcome_mean=_round(values.mean(axis=1)),
                outcome_low=_round(lo),
                outcome_high=_round(hi),
                mroas_mean=_round(gradients.mean(axis=1)),
                mroas_low=_round(glo),
                mroas_high=_round(ghi),
                current_spend=float(baseline[c]),
                recommended_spend=float(recommended[c]),
            )
        )
    return out


def _round(values: np.ndarray) -> list[float]:
    return [float(f"{v:.6g}") for v in np.asarray(values, dtype=float)]
