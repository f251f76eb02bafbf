"""``make demo``: simulate the bundled demo workspace and run the pipeline steps on it."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from attribution_analysis.api import (
    allocate,
    decompose_contributions,
    draft_faq,
    fit_mmm,
    generate_report,
    optimize_budget,
    simulate_workspace,
    validate_data,
    validate_model,
)
from attribution_analysis.contracts.allocation import AllocateParams
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.contracts.mmm import FitMMMParams
from attribution_analysis.contracts.report import DraftFaqParams, GenerateReportParams
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.contracts.validation import ValidateDataParams
from attribution_analysis.frontends.output import rich_progress
from attribution_analysis.optimize.plans import plan_path
from attribution_analysis.report.fmt import probability
from attribution_analysis.workspace import Workspace

# The demo is the MTA world: channel spend with campaigns under each channel and two lift
# tests, so every later step (fit, calibrate, allocate) has what it needs.
DEMO = SimulationParams(kind="mta", seed=20261126, weeks=156, channels=5, lift_tests=2)
# The geo demo (``attribution demo --geo``, ``make demo-geo``): a regional panel, fitted with
# the curve shape shared per channel and the effect size pooled across geos (mmm/priors.py),
# its per-geo contributions set beside the simulated truth, and a budget planned per
# geo x channel. Calibrated with two go-dark geo experiments (the two largest channels, each
# in its own market), as a regional advertiser would run them: without them the always-on
# search channel's effect trades with the baseline and the fit stops at the divergence gate.
# Since lift tests are read through the model's own counterfactual it stops there with them
# too (91 divergences in 11,500 draws against a limit of 12 under the current curve priors;
# references/mmm_methodology.md, "Geo panels"), and the demo shows the gate and the report's
# account of it.
GEO_DEMO = SimulationParams(kind="mmm", seed=20261205, weeks=104, channels=3, geos=6, lift_tests=2)


CHATTY_LOGGERS = ("pymc", "pymc_marketing", "arviz_stats", "arviz")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep library chatter (sampler notices, ArviZ hints) out of the demo's summary; the
    same facts are in the step outputs (diagnostics, findings)."""
    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def run_demo(root: Path, console: Console) -> None:
    console.rule("attribution-analysis demo")
    simulate_workspace(root, DEMO, overwrite=True)
    console.print(f"1. simulated workspace ({DEMO.kind}, seed {DEMO.seed}) in {root}")
    _validate_data(root, console)
    ws = Workspace.open(root)
    _fit(ws, console)
    if not _model_passed(ws, root, console):
        return
    _decompose(ws, root, console)
    _allocate(ws, root, console)
    _optimize(ws, root, console)
    _report(ws, root, console)


def run_geo_demo(root: Path, console: Console) -> None:
    console.rule("attribution-analysis geo demo")
    simulate_workspace(root, GEO_DEMO, overwrite=True)
    console.print(
        f"1. simulated workspace ({GEO_DEMO.kind}, {GEO_DEMO.geos} geos x {GEO_DEMO.weeks} "
        f"weeks, seed {GEO_DEMO.seed}) in {root}"
    )
    _validate_data(root, console)
    ws = Workspace.open(root)
    _fit(
        ws,
        console,
        "fit_mmm (NUTS, effect sizes pooled across geos, calibrated with two geo lift tests)",
        FitMMMParams(calibrate=True),
    )
    if not _model_passed(ws, root, console):
        return
    _decompose(ws, root, console)
    _geo_against_truth(ws, console)
    _optimize_by_geo(ws, root, console)
    _report(ws, root, console)


def _geo_against_truth(ws: Workspace, console: Console) -> None:
    """Per-geo channel totals beside the simulator's truth: how many lie inside their 90%
    interval (the simulator is the model's own family, so this shows the bookkeeping, not
    accuracy on a world the model did not write; the README has those figures)."""
    import pandas as pd

    from attribution_analysis import layout
    from attribution_analysis.contracts.outputs import ChannelContributions

    contributions = ChannelContributions.model_validate_json(
        ws.resolve(layout.CONTRIBUTIONS.path).read_text()
    )
    truth = pd.read_csv(ws.resolve(layout.TRUTH_CONTRIBUTIONS.path))
    column = "contribution_revenue" if contributions.target == "revenue" else "contribution"
    true_totals = truth.groupby(["geo", "channel"])[column].sum()
    inside = [
        c.total_contribution.hdi_90[0]
        <= true_totals[(c.geo, c.channel)]
        <= c.total_contribution.hdi_90[1]
        for c in contributions.geos
    ]
    console.print(
        f"   by geo: {len(contributions.geos)} geo x channel totals, {sum(inside)} inside "
        f"their 90% interval against the simulated truth ({layout.TRUTH_CONTRIBUTIONS.path})"
    )
    for geo in dict.fromkeys(c.geo for c in contributions.geos):
        cells = [c for c in contributions.geos if c.geo == geo]
        console.print(
            f"   {geo:8s} "
            + "  ".join(
                f"{c.channel} {c.total_contribution.mean:,.0f} (truth "
                f"{true_totals[(c.geo, c.channel)]:,.0f})"
                for c in cells
            ),
            highlight=False,
        )


def _optimize_by_geo(ws: Workspace, root: Path, console: Console) -> None:
    with _quiet():
        plan = optimize_budget(ws, OptimizeBudgetParams(by_geo=True))
    geo_plan = plan.geo_plan
    if geo_plan is None:  # by_geo on a geo fit always plans per geo; stated if it did not
        console.print("7. optimize_budget: no geo plan was made")
        return
    lift = geo_plan.outcome.lift
    versus = geo_plan.lift_vs_national_plan
    console.print(
        f"7. optimize_budget by geo x channel ({plan.total_budget:,.0f} over "
        f"{plan.horizon_periods} {plan.grain} periods): expected lift {lift.mean:,.0f} "
        f"[{lift.hdi_90[0]:,.0f}, {lift.hdi_90[1]:,.0f}] {plan.target} against the current "
        f"mix, {versus.mean:+,.0f} [{versus.hdi_90[0]:+,.0f}, {versus.hdi_90[1]:+,.0f}] "
        "against the national plan"
    )
    for total in geo_plan.geo_totals:
        console.print(
            f"   {total.geo:8s} {total.current_spend:10,.0f} -> {total.recommended_spend:10,.0f}"
            + (f"  (at its {total.bound_active} limit)" if total.bound_active else ""),
            highlight=False,
        )
    console.print(f"   budget plan: {root / plan_path(plan.plan_name)}")


def _validate_data(root: Path, console: Console) -> None:
    report = validate_data(Workspace.open(root), ValidateDataParams())
    console.print(
        f"2. validate_data: {report.status}, {report.window.n_periods} "
        f"{report.grain} periods, {len(report.channels)} channels, "
        f"{report.campaign_panel.n_campaigns if report.campaign_panel else 0} campaigns"
    )
    for finding in report.warnings:
        console.print(f"   warning {finding.code}: {finding.message}", highlight=False)
    console.print(f"   validation report: {root / 'analysis' / 'data_validation.json'}")
    console.print(f"   prepared panel:    {root / 'analysis' / 'prepared_panel.csv'}")


def _fit(
    ws: Workspace,
    console: Console,
    label: str = "fit_mmm (NUTS, calibrated with the lift tests)",
    params: FitMMMParams | None = None,
) -> None:
    with rich_progress(label) as progress, _quiet():
        fit = fit_mmm(ws, params or FitMMMParams(calibrate=True), progress)
    conv = fit.convergence
    console.print(
        f"3. fit_mmm: {fit.method}, {fit.wall_seconds:.0f} s"
        f"{' (cached)' if fit.cached else ''}, max R-hat {conv['max_rhat']:.3f}, "
        f"min bulk ESS {conv['min_ess_bulk']:.0f}, {conv['divergences']} divergences"
    )
    for remedy in fit.remedies_tried:
        console.print(f"   after a first sampling: {remedy}")


def _model_passed(ws: Workspace, root: Path, console: Console) -> bool:
    """validate_model's verdict; on a failure the report (which shows why) ends the demo."""
    if _validate_model(ws, console):
        return True
    console.print(
        "   The model failed its acceptance criteria; the pipeline stops here (the "
        "report shows why)."
    )
    _report(ws, root, console)
    return False


def _validate_model(ws: Workspace, console: Console) -> bool:
    """Print the model's acceptance verdict; True when it passed."""
    with rich_progress("validate_model") as progress, _quiet():
        diagnostics = validate_model(ws, progress=progress)
    failed = [c.name for c in diagnostics.criteria if not c.passed]
    verdict = "passed" if diagnostics.passed else f"FAILED {failed}"
    coverage = diagnostics.ppc["coverage_90"]
    mape = (diagnostics.backtest or {}).get("mape", float("nan"))
    console.print(
        f"4. validate_model: {verdict}, predictive coverage {coverage:.0%}, "
        f"backtest MAPE {mape:.1%}"
    )
    return diagnostics.passed


def _decompose(ws: Workspace, root: Path, console: Console) -> None:
    with _quiet():
        result = decompose_contributions(ws)
    console.print("5. decompose_contributions (90% intervals):")
    for channel in result.channels:
        low, high = channel.total_contribution.hdi_90
        r_low, r_high = channel.roas.hdi_90
        mean = channel.total_contribution.mean
        console.print(
            f"   {channel.channel:12s} contribution {mean:9,.0f}"
            f" [{low:,.0f}, {high:,.0f}]  ROAS {channel.roas.mean:.4f} "
            f"[{r_low:.4f}, {r_high:.4f}]"
            + (
                f"  ({channel.identification.replace('_', '-')}: quote as an assumption)"
                if channel.identification in ("prior_driven", "not_separable")
                else ""
            ),
            highlight=False,
        )
    console.print(f"   (ROAS in {result.roas_unit})")
    for finding in result.findings:
        if finding.code == "share_precision":
            console.print(
                f"   shares of media uncertain by about {finding.value:.1f} points on average"
                f" if the model is right (least certain: {finding.subject})",
                highlight=False,
            )
    console.print(f"   contributions: {root / 'analysis' / 'mmm_channel_contributions.json'}")


def _allocate(ws: Workspace, root: Path, console: Console) -> None:
    allocation = allocate(
        ws,
        AllocateParams(source="mta", family="gamma", covariates=["objective", "creative_family"]),
    )
    console.print(
        f"6. allocate (campaigns within channels, EM {allocation.family}): "
        f"{len(allocation.entities)} campaigns, mass conservation error "
        f"{allocation.mass_conservation_max_rel_error:.1e}"
    )
    for finding in allocation.findings[:6]:
        console.print(f"   {finding.severity} {finding.code}: {finding.message}", highlight=False)
    console.print(f"   campaign credit: {root / 'analysis' / 'mta_allocation.csv'}")


def _optimize(ws: Workspace, root: Path, console: Console) -> None:
    with _quiet():
        plan = optimize_budget(
            ws,
            OptimizeBudgetParams.model_validate(
                {
                    "scenarios": [
                        {"kind": "total_change", "change": 0.1},
                        {"kind": "total_change", "change": -0.1},
                    ]
                }
            ),
        )
    lift = plan.outcome.lift
    console.print(
        f"7. optimize_budget ({plan.total_budget:,.0f} over {plan.horizon_periods} "
        f"{plan.grain} periods, each channel within ±30%): expected lift {lift.mean:,.0f} "
        f"[{lift.hdi_90[0]:,.0f}, {lift.hdi_90[1]:,.0f}] {plan.target}, "
        f"P(better than current) {probability(plan.outcome.probability_better, plan.draws)}"
    )
    for row in plan.allocations:
        console.print(
            f"   {row.channel:12s} {row.current_spend:10,.0f} -> {row.recommended_spend:10,.0f}"
            f"{'  (saturated)' if row.saturation.saturated else ''}",
            highlight=False,
        )
    for scenario in plan.scenarios:
        s_lift = scenario.lift_vs_current
        console.print(
            f"   scenario {scenario.name}: {s_lift.mean:+,.0f} "
            f"[{s_lift.hdi_90[0]:+,.0f}, {s_lift.hdi_90[1]:+,.0f}]",
            highlight=False,
        )
    console.print(f"   budget plan: {root / plan_path(plan.plan_name)}")


def _report(ws: Workspace, root: Path, console: Console) -> None:
    with _quiet():
        report = generate_report(ws, GenerateReportParams())
        faq = draft_faq(ws, DraftFaqParams())
    missing = [s.name for s in report.sections if s.status != "rendered"]
    console.print(
        f"8. generate_report: {report.report_bytes / 1e3:,.0f} KB, "
        f"{len(report.sections) - len(missing)} sections rendered"
        + (f" (no input: {', '.join(missing)})" if missing else "")
    )
    console.print(f"9. draft_faq: {len(faq.files)} audiences, {root / 'reports'}/faq_*.md")
    console.print(f"[bold]Report: {root / report.report}[/]")
