"""The steps as Python functions, for notebooks, scripts and tests.

Each function runs its step through the one runner (:func:`runner.run_step`), exactly as
the MCP tool and the command line do, and returns the content of the step's main output as
its contract model. They live here, above the step table, so no domain module reaches up
into the table to run itself.
"""

from __future__ import annotations

from pathlib import Path

from attribution_analysis import layout
from attribution_analysis.contracts.allocation import AllocateParams, AllocationReport
from attribution_analysis.contracts.budget import (
    BudgetOptimization,
    OptimizeBudgetParams,
    PlanListing,
)
from attribution_analysis.contracts.exposure import BuildExposureParams, ExposureReport
from attribution_analysis.contracts.intraday import DownscaleParams, DownscaleReport
from attribution_analysis.contracts.mmm import (
    DecomposeParams,
    FitMMMParams,
    FitMMMResult,
    ValidateModelParams,
)
from attribution_analysis.contracts.outputs import ChannelContributions, MMMDiagnostics
from attribution_analysis.contracts.paths import AttributePathsParams, PathAttributionReport
from attribution_analysis.contracts.report import (
    DraftFaqParams,
    DraftFaqResult,
    GenerateReportParams,
    GenerateReportResult,
)
from attribution_analysis.contracts.simulation import SimulateWorkspaceParams, SimulationParams
from attribution_analysis.contracts.validation import DataValidationReport, ValidateDataParams
from attribution_analysis.progress import Progress
from attribution_analysis.runner import run_step
from attribution_analysis.steps import step
from attribution_analysis.workspace import Workspace

__all__ = [
    "allocate",
    "attribute_paths",
    "decompose_contributions",
    "downscale_intraday",
    "draft_faq",
    "effective_exposure",
    "fit_mmm",
    "generate_report",
    "list_budget_plans",
    "optimize_budget",
    "simulate_workspace",
    "validate_data",
    "validate_model",
]


def _read(ws: Workspace, entry: layout.WorkspaceFile, model: type):
    return model.model_validate_json(ws.resolve(entry.path).read_bytes())


def simulate_workspace(
    out: str | Path, params: SimulationParams, overwrite: bool = False
) -> dict[str, str]:
    """Create ``out`` as a workspace holding simulated raw files and ``truth/``;
    ``{relative path: absolute path}`` of the files written.

    Refuses a folder whose raw/ or truth/ already holds files unless ``overwrite``; then
    those two folders are replaced (outputs under analysis/ are kept).
    """
    ws = Workspace.create(out)
    step_params = SimulateWorkspaceParams.model_validate(
        {**params.model_dump(), "overwrite": overwrite}
    )
    answer = run_step(step("simulate_workspace"), ws, step_params)
    return {path: str(ws.root / path) for path in answer.outputs}


def validate_data(ws: Workspace, params: ValidateDataParams | None = None) -> DataValidationReport:
    """Validate ``ws/raw``, write the prepared panel and the report, all or nothing."""
    run_step(step("validate_data"), ws, params or ValidateDataParams())
    return _read(ws, layout.DATA_VALIDATION, DataValidationReport)


def fit_mmm(
    ws: Workspace, params: FitMMMParams | None = None, progress: Progress | None = None
) -> FitMMMResult:
    """Fit the MMM; the fit's result."""
    answer = run_step(step("fit_mmm"), ws, params or FitMMMParams(), progress)
    return FitMMMResult.model_validate(answer.model_dump(exclude={"step", "outputs"}))


def validate_model(
    ws: Workspace,
    backtest_periods: int | None = 13,
    seed: int = 1,
    sensitivity_refit: bool = True,
    progress: Progress | None = None,
) -> MMMDiagnostics:
    """Check the current fit against the acceptance criteria; the diagnostics.

    ``sensitivity_refit`` refits with vague priors and compares each channel's ROAS (it
    costs one more fit). ``backtest_periods`` holds out the last periods, refits and scores
    the forecast (None or 0 skips it).
    """
    params = ValidateModelParams(
        backtest_periods=backtest_periods, seed=seed, sensitivity_refit=sensitivity_refit
    )
    run_step(step("validate_model"), ws, params, progress)
    return _read(ws, layout.DIAGNOSTICS, MMMDiagnostics)


def decompose_contributions(
    ws: Workspace, override_reason: str | None = None, progress: Progress | None = None
) -> ChannelContributions:
    """Channel contributions, shares and ROAS with intervals; the contributions file."""
    params = DecomposeParams(override_reason=override_reason)
    run_step(step("decompose_contributions"), ws, params, progress)
    return _read(ws, layout.CONTRIBUTIONS, ChannelContributions)


def effective_exposure(ws: Workspace, params: BuildExposureParams) -> ExposureReport:
    """Campaign exposure through the MMM's own transforms; the summary file."""
    run_step(step("build_effective_exposure"), ws, params)
    return _read(ws, layout.EXPOSURE_SUMMARY, ExposureReport)


def allocate(ws: Workspace, params: AllocateParams | None = None) -> AllocationReport:
    """Allocate group totals across entities (defaults: free-rate Poisson EM); the content
    of ``analysis/allocation_summary.json``."""
    run_step(step("allocate"), ws, params or AllocateParams())
    return _read(ws, layout.ALLOCATION_SUMMARY, AllocationReport)


def downscale_intraday(ws: Workspace, params: DownscaleParams) -> DownscaleReport:
    """Spread campaign credit over hours; the summary file."""
    run_step(step("downscale_intraday"), ws, params)
    return _read(ws, layout.INTRADAY_SUMMARY, DownscaleReport)


def optimize_budget(
    ws: Workspace, params: OptimizeBudgetParams, progress: Progress | None = None
) -> BudgetOptimization:
    """The recommended mix on the posterior draws; the content of the plan it stored
    (``analysis/budget_plans/{params.plan_name}.json``)."""
    from attribution_analysis.optimize.plans import read_plan

    run_step(step("optimize_budget"), ws, params, progress)
    return read_plan(ws, params.plan_name)


def list_budget_plans(ws: Workspace) -> list[PlanListing]:
    """The budget plans stored in the workspace, newest first."""
    from attribution_analysis.optimize.plans import list_plans

    return list_plans(ws)


def attribute_paths(
    ws: Workspace, params: AttributePathsParams | None = None
) -> PathAttributionReport:
    """Credit conversions to channels from user journeys; the content of
    ``analysis/path_attribution.json``."""
    run_step(step("attribute_paths"), ws, params or AttributePathsParams())
    return _read(ws, layout.PATH_ATTRIBUTION, PathAttributionReport)


def generate_report(
    ws: Workspace, params: GenerateReportParams | None = None, progress: Progress | None = None
) -> GenerateReportResult:
    """Write ``reports/mmm_executive_summary.html`` (and figures); the paths written and the
    sections with the inputs each one used (or why it is empty)."""
    answer = run_step(step("generate_report"), ws, params or GenerateReportParams(), progress)
    return GenerateReportResult.model_validate(
        answer.model_dump(include=set(GenerateReportResult.model_fields))
    )


def draft_faq(
    ws: Workspace, params: DraftFaqParams | None = None, progress: Progress | None = None
) -> DraftFaqResult:
    """Write ``reports/faq_<audience>.md`` and ``.html``; the files written, the outputs
    whose numbers were used and the ones missing."""
    answer = run_step(step("draft_faq"), ws, params or DraftFaqParams(), progress)
    return DraftFaqResult.model_validate(
        answer.model_dump(include=set(DraftFaqResult.model_fields))
    )
