"""Every pipeline step once: its name, parameters, answer, files, cost and compute function.

This table is the one declaration of a step. The MCP tools, the ``attribution`` CLI and the
``scripts/`` are generated from it, and all of them run a step through one runner
(:func:`attribution_analysis.runner.run_step`), so the three surfaces cannot disagree about
a step's name, defaults, answer or files. Compute functions are named by dotted path and
imported only when the step runs: a light step never pays for PyMC.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel

from attribution_analysis import layout
from attribution_analysis.contracts.allocation import AllocateAnswer, AllocateParams
from attribution_analysis.contracts.budget import (
    BudgetAnswer,
    BudgetPlansAnswer,
    ListBudgetPlansParams,
    OptimizeBudgetParams,
)
from attribution_analysis.contracts.common import StepAnswer
from attribution_analysis.contracts.exposure import BuildExposureParams, ExposureAnswer
from attribution_analysis.contracts.importing import ImportDataAnswer, ImportDataParams
from attribution_analysis.contracts.intraday import DownscaleAnswer, DownscaleParams
from attribution_analysis.contracts.mmm import (
    DecomposeParams,
    FitMMMAnswer,
    FitMMMParams,
    ValidateModelParams,
)
from attribution_analysis.contracts.outputs import DecomposeAnswer, ValidateModelAnswer
from attribution_analysis.contracts.paths import AttributePathsParams, PathsAnswer
from attribution_analysis.contracts.portfolio import FitManyAnswer, FitManyParams
from attribution_analysis.contracts.report import (
    DraftFaqAnswer,
    DraftFaqParams,
    GenerateReportAnswer,
    GenerateReportParams,
)
from attribution_analysis.contracts.simulation import SimulateAnswer, SimulateWorkspaceParams
from attribution_analysis.contracts.validation import ValidateDataAnswer, ValidateDataParams
from attribution_analysis.errors import FrontEnd, render
from attribution_analysis.layout import WorkspaceFile
from attribution_analysis.progress import Progress
from attribution_analysis.workspace import Workspace

if TYPE_CHECKING:
    from attribution_analysis.compute import StepContext, StepOutput

Compute = Callable[["StepContext", Any], "StepOutput"]
InputCheck = Callable[[Workspace, Any], None]
Cost = Literal["inline", "job"]


class Sampling(NamedTuple):
    """What a call will sample with MCMC: draws per chain and chains as asked, and the draws
    per chain of the automatic retry when a failed fit may sample again with more."""

    draws: int
    chains: int
    retry_draws: int | None = None


SamplingRule = Callable[[Any], Sampling | None]


@dataclass(frozen=True)
class StepSpec:
    name: str  # the one name: MCP tool = CLI subcommand = script
    title: str
    description: str  # what it does and what it costs (shown to agents); files are appended
    params: type[BaseModel]
    answer: type[StepAnswer]  # published as the tool's output schema
    compute: str  # "module:function", a Compute; imported when the step runs
    reads: tuple[WorkspaceFile, ...] = ()  # inputs it cannot run without
    writes: tuple[WorkspaceFile, ...] = ()  # every file it may write
    cost: Cost = "inline"  # "job": minutes of work, run as a job that can be polled/cancelled
    creates_workspace: bool = False
    destructive: bool = True  # replaces earlier outputs of the same name (atomically)
    query: bool = False  # reads only: no writer lock, no run record, writes nothing
    idempotent: bool = True  # same inputs and seed, same outputs
    # Parameters naming workspace files: resolved inside the workspace before any work.
    path_fields: tuple[str, ...] = ()
    # Cheap check that the inputs the step cannot run without exist (no loading, no fitting).
    requires: InputCheck | None = None
    # What the call will sample, for steps that can run MCMC (see ``sampling``).
    samples: SamplingRule | None = None
    # What the step's work imports or warms when it runs ("module", or "module:function" to
    # call with no arguments), lazily so that other steps and refusals stay light. A
    # long-lived server does it once, ahead of the first call (``server/preload.py``).
    preload: tuple[str, ...] = ()

    @property
    def background(self) -> bool:
        return self.cost == "job"

    @property
    def summary(self) -> str:
        """The description with the files it writes, from the layout catalogue."""
        if not self.writes:
            return self.description
        return f"{self.description} Writes {', '.join(f.path for f in self.writes)}."

    def compute_function(self) -> Compute:
        module, _, function = self.compute.partition(":")
        return getattr(importlib.import_module(module), function)

    def sampling(self, params: BaseModel) -> Sampling | None:
        """Draws per chain and chains this call will sample, or None when it samples
        nothing. Only the step knows which of its modes sample: a sampler setting a mode
        never uses (a default) must not be held against a caller's resource limits."""
        return None if self.samples is None else self.samples(params)

    def check(self, ws: Workspace, params: BaseModel) -> None:
        """Refuse, before any work starts, a path parameter that leaves the workspace and a
        missing input. A background job would otherwise start, and fail only once its own
        process had loaded; the step itself still checks everything again when it runs."""
        for name in self.path_fields:
            value = getattr(params, name)
            if value is not None:
                ws.resolve(value)
        if self.requires is not None:
            self.requires(ws, params)


def execute(
    spec: StepSpec,
    ws: Workspace,
    params: BaseModel,
    progress: Progress | None = None,
    front_end: FrontEnd = "python",
) -> dict[str, Any]:
    """Run a step as every front end does; its answer as JSON-ready data, with argument and
    step markers (``errors.arg``, ``errors.step_ref``) worded for ``front_end``."""
    from attribution_analysis.runner import run_step

    answer = run_step(spec, ws, params, progress).model_dump(mode="json")
    return _rendered(answer, front_end)


def _rendered(value: Any, front_end: FrontEnd) -> Any:
    if isinstance(value, str):
        return render(value, front_end)
    if isinstance(value, dict):
        return {k: _rendered(v, front_end) for k, v in value.items()}
    if isinstance(value, list):
        return [_rendered(v, front_end) for v in value]
    return value


def _given_files(ws: Workspace, params: BaseModel, *names: str) -> None:
    """Optional path parameters that were given must name existing files."""
    from attribution_analysis.errors import MissingInputError, arg

    for name in names:
        relative = getattr(params, name)
        if relative is not None and not ws.resolve(relative).is_file():
            raise MissingInputError(
                f"the file given as {arg(name)} does not exist.",
                fix=f"give {arg(name)} as the workspace-relative path of an existing file.",
                file=relative,
            )


def _optimize_inputs(ws: Workspace, params: OptimizeBudgetParams) -> None:
    _given_files(ws, params, "bounds_file")  # the caller's own argument first
    _fitted_model_inputs(ws, params)


def _fit_inputs(ws: Workspace, params: FitMMMParams) -> None:
    from attribution_analysis.mmm.panel import require_validation

    require_validation(ws)
    if params.calibrate:
        from attribution_analysis.mmm.calibration import read_lift_tests

        read_lift_tests(ws)  # a small JSON: its contract is checked too, not just its presence


def _fitted_model_inputs(ws: Workspace, params: BaseModel) -> None:
    from attribution_analysis.mmm import store
    from attribution_analysis.mmm.panel import require_validation

    require_validation(ws)
    store.require_fit(ws)


def _fit_sampling(params: FitMMMParams) -> Sampling | None:
    # A quick (MAP/ADVI) fit and ridge sample nothing; the sampler settings are then unused.
    if params.quick is not None or params.method == "ridge":
        return None
    retry = params.sampler.for_retry().draws if params.retry else None
    return Sampling(params.sampler.draws, params.sampler.chains, retry)


def _fit_many_inputs(ws: Workspace, params: FitManyParams) -> None:
    from attribution_analysis.portfolio import require_members

    require_members(ws, params)  # each member's own inputs are checked (and reported) per member


def _allocate_sampling(params: AllocateParams) -> Sampling | None:
    # EM is maximum likelihood; only the hierarchical Bayesian model runs NUTS.
    return Sampling(params.draws, params.chains) if params.method == "bayes" else None


def _allocate_inputs(ws: Workspace, params: AllocateParams) -> None:
    """The files ``allocate`` cannot start without, for the source it will use: the loaders'
    own presence checks (same wording as the job would give); contents are read in the job."""
    from attribution_analysis.allocation import loaders

    if params.pairs_parquet is not None:
        return  # Parquet pairs: their partitions and brick_sales.csv are checked by the step
    loaders.require_inputs(ws, params, loaders.resolve_source(ws, params))
    if params.omega_source == "path_credit":
        from attribution_analysis.allocation.path_omega import read_path_credit

        read_path_credit(ws)  # a missing or stale path report is refused before the job starts


def _exposure_inputs(ws: Workspace, params: BuildExposureParams) -> None:
    _given_files(ws, params, "transforms_file")


STEPS: list[StepSpec] = [
    StepSpec(
        name="simulate_workspace",
        title="Simulate a workspace",
        description="Write a simulated workspace (raw/ input files + truth/ with the true "
        "parameters) from a fixed seed: kind mmm, mta (campaigns), hcp-brick or journeys. "
        "Seconds. Refuses a folder that already has raw/ unless overwrite is true (then raw/ "
        "and truth/ are replaced).",
        params=SimulateWorkspaceParams,
        answer=SimulateAnswer,
        compute="attribution_analysis.simulate.run:compute",
        writes=(
            layout.SPEND,
            layout.CONVERSIONS,
            layout.EXTERNAL_FACTORS,
            layout.CAMPAIGN_METADATA,
            layout.BRICK_SALES,
            layout.HCP_BRICK,
            layout.HCPS,
            layout.JOURNEYS,
            layout.LIFT_TESTS,
            layout.TRUTH_PARAMETERS,
            layout.TRUTH_CONTRIBUTIONS,
            layout.JOURNEY_TRUTH,
        ),
        creates_workspace=True,
    ),
    StepSpec(
        name="import_data",
        title="Import one wide table",
        description="Turn one wide CSV (a row per period [and geo], a column per metric: "
        "Robyn, Meridian or PyMC-Marketing layouts) into raw/ input files. dry_run=true "
        "(default) infers each column's role, previews the files and lists the questions to "
        "ask the user, writing nothing; dry_run=false with the confirmed roles and country "
        "writes them. Seconds. Then run validate_data.",
        params=ImportDataParams,
        answer=ImportDataAnswer,
        compute="attribution_analysis.data.importer:compute",
        writes=(
            layout.SPEND,
            layout.CONVERSIONS,
            layout.EXTERNAL_FACTORS,
            layout.IMPORT_MAPPING,
        ),
        creates_workspace=True,
        path_fields=("path",),
    ),
    StepSpec(
        name="validate_data",
        title="Validate input data",
        description="Check the raw files against the data contracts (grain, gaps, window, "
        "controls, identification metrics, plausibility; lift tests against spend and "
        "outcome) and build the modelling panel (+ the campaign panel when spend is per "
        "campaign). Seconds. Every later step needs it.",
        params=ValidateDataParams,
        answer=ValidateDataAnswer,
        compute="attribution_analysis.data.validate:compute",
        reads=(layout.SPEND, layout.CONVERSIONS, layout.EXTERNAL_FACTORS, layout.LIFT_TESTS),
        writes=(layout.DATA_VALIDATION, layout.PANEL, layout.CAMPAIGN_PANEL),
        preload=("pandas", "filelock", "holidays"),
    ),
    StepSpec(
        name="fit_mmm",
        title="Fit the Bayesian MMM",
        description="Fit PyMC-Marketing's MMM (adstock + saturation per channel; lift tests "
        "as calibration when calibrate=true). Minutes with NUTS (2-5 min for 3 years x 5 "
        "channels on 2 cores); seconds with quick='map' (not for decisions). Background job: "
        "returns a job id at once; poll get_job (wait_seconds > 0 streams progress). The "
        "posterior goes to analysis/model/mmm_<key>.nc.",
        params=FitMMMParams,
        answer=FitMMMAnswer,
        compute="attribution_analysis.mmm.fit:compute",
        reads=(layout.DATA_VALIDATION, layout.PANEL),
        writes=(layout.FIT, layout.MODEL_DIR),
        cost="job",
        requires=_fit_inputs,
        samples=_fit_sampling,
    ),
    StepSpec(
        name="fit_many",
        title="Fit a portfolio of MMMs",
        description="Fit many workspaces of one model structure (brand x market...) with "
        "fit_mmm's parameters, in parallel on a Dask cluster: a LocalCluster of `workers` "
        "processes, or the scheduler at dask_scheduler. Run it on the portfolio folder and "
        "name the members inside it (workspaces, or a glob as pattern). Each worker compiles "
        "the model once per structure and reuses it. Each member gets fit_mmm's own lock, "
        "files and all-or-nothing commit; a member that fails is reported with its error and "
        "the others still land. Background job; progress per member.",
        params=FitManyParams,
        answer=FitManyAnswer,
        compute="attribution_analysis.portfolio:compute",
        writes=(layout.PORTFOLIO_FITS,),
        cost="job",
        requires=_fit_many_inputs,
        samples=_fit_sampling,  # per member: the server's draws and chains limits apply
    ),
    StepSpec(
        name="validate_model",
        title="Validate the fitted model",
        description="Acceptance gates of the current fit: R-hat, ESS, divergences, posterior "
        "predictive coverage, LOO, backtest and prior sensitivity (the last two refit: "
        "minutes). Background job. Decomposition and optimization refuse a model that fails "
        "it.",
        params=ValidateModelParams,
        answer=ValidateModelAnswer,
        compute="attribution_analysis.mmm.diagnostics:compute",
        reads=(layout.DATA_VALIDATION, layout.FIT),
        writes=(layout.DIAGNOSTICS,),
        cost="job",
        requires=_fitted_model_inputs,
    ),
    StepSpec(
        name="decompose_contributions",
        title="Decompose contributions",
        description="Channel contributions, share, ROAS and marginal ROAS with 90%/95% "
        "intervals from the posterior, the ROAS unit and findings. About a second.",
        params=DecomposeParams,
        answer=DecomposeAnswer,
        compute="attribution_analysis.mmm.decompose:compute",
        reads=(layout.FIT, layout.DIAGNOSTICS),
        writes=(
            layout.CONTRIBUTIONS,
            layout.WEEKLY_CONTRIBUTIONS,
            layout.CONTRIBUTION_DRAWS,
            layout.CONTRIBUTION_DRAWS_CSV,
            layout.TRANSFORMS,
        ),
        requires=_fitted_model_inputs,
        # fit_mmm stores the contributions it evaluated (decompose.py): this step reads
        # them without PyMC or xarray; only a posterior written before that rebuilds the
        # model (and then imports them itself).
        preload=("pandas", "h5netcdf", "h5py", "attribution_analysis.mmm.decompose"),
    ),
    StepSpec(
        name="build_effective_exposure",
        title="Build effective exposure",
        description="Campaign impressions through the MMM's own adstock and saturation "
        "(what the allocation splits on), with the largest campaigns per channel. Seconds.",
        params=BuildExposureParams,
        answer=ExposureAnswer,
        compute="attribution_analysis.allocation.exposure_step:compute",
        reads=(layout.CAMPAIGN_PANEL,),
        writes=(layout.EXPOSURE_TABLE, layout.EXPOSURE_SUMMARY),
        path_fields=("transforms_file",),
        requires=_exposure_inputs,
        preload=("pandas",),
    ),
    StepSpec(
        name="allocate",
        title="Allocate within channels",
        description="Split each MMM channel total (or brick sales) across campaigns (or HCPs) "
        "by EM (seconds) or the Bayesian hierarchical model (minutes), with exact mass "
        "conservation and identifiability warnings; campaigns are weighed by effective "
        "exposure or (omega_source='path_credit', after attribute_paths) by path credit. "
        "Background job.",
        params=AllocateParams,
        answer=AllocateAnswer,
        compute="attribution_analysis.allocation.step:compute",
        # What it reads depends on the source (hcp-brick files, or the campaign panel and the
        # MMM's contributions): ``requires`` checks the ones this call needs.
        reads=(),
        writes=(layout.ALLOCATION, layout.ALLOCATION_SUMMARY),
        cost="job",
        path_fields=("contributions", "transforms_file", "pairs_parquet"),
        requires=_allocate_inputs,
        samples=_allocate_sampling,
    ),
    StepSpec(
        name="downscale_intraday",
        title="Spread campaign credit over hours",
        description="Optional: split each period's campaign credit across hours in proportion "
        "to the campaign's hourly delivery (raw/hourly_delivery.csv), conserving every row. "
        "Seconds.",
        params=DownscaleParams,
        answer=DownscaleAnswer,
        compute="attribution_analysis.allocation.intraday:compute",
        reads=(layout.ALLOCATION,),
        writes=(layout.ALLOCATION_HOURLY, layout.INTRADAY_SUMMARY),
        path_fields=("profile_file",),
    ),
    StepSpec(
        name="optimize_budget",
        title="Optimize the budget",
        description="Recommended channel mix for a total budget over a horizon (total, not "
        "per week), with expected lift, its 90% interval and P(better) over posterior draws; "
        "scenarios; mROAS curves; saturation flags. Refuses a model that failed "
        "validate_model unless override_reason is given. Seconds.",
        params=OptimizeBudgetParams,
        answer=BudgetAnswer,
        compute="attribution_analysis.optimize.step:compute",
        reads=(layout.FIT, layout.DIAGNOSTICS),
        writes=(layout.BUDGET_PLAN,),
        path_fields=("bounds_file",),
        requires=_optimize_inputs,
        preload=("pandas", "scipy.optimize", "h5netcdf", "attribution_analysis.mmm.stored"),
    ),
    StepSpec(
        name="list_budget_plans",
        title="List the budget plans",
        description="The budget plans stored in the workspace (one per optimize_budget "
        "plan_name), newest first, with budget and objective; the report and FAQ show "
        "'recommended' unless asked for another. Instant; writes nothing.",
        params=ListBudgetPlansParams,
        answer=BudgetPlansAnswer,
        compute="attribution_analysis.optimize.plans:compute",
        destructive=False,
        query=True,
    ),
    StepSpec(
        name="attribute_paths",
        title="Attribute user journeys",
        description="Heuristic, Markov (removal effect) and Shapley credit from user journeys "
        "(raw/journeys.csv or raw/paths.csv), reconciled with the MMM when its contributions "
        "exist. Seconds. With campaigns in the journeys it also writes the campaign credit "
        "(the ω of allocate with omega_source='path_credit') and, with the MMM, the MMM "
        "totals split over campaigns. Path credit is correlational; the MMM total is the "
        "causal one.",
        params=AttributePathsParams,
        answer=PathsAnswer,
        compute="attribution_analysis.paths.step:compute",
        reads=(),  # raw/journeys.csv or raw/paths.csv, whichever exists (source='auto')
        writes=(
            layout.PATH_ATTRIBUTION,
            layout.PATH_CAMPAIGN_CREDIT,
            layout.PATH_CAMPAIGN_OMEGA,
        ),
        path_fields=("mmm_file", "journeys_partitions"),
    ),
    StepSpec(
        name="generate_report",
        title="Generate the executive report",
        description="One self-contained offline HTML report that opens with the decision (one "
        "recommendation sentence from the budget plan `plan`, default 'recommended'), then "
        "an executive summary, contributions with intervals, ROAS/mROAS curves, the plan "
        "with its robustness and break-even, campaigns, diagnostics, methodology, "
        "provenance, from whatever outputs exist; sections without input are left out (the "
        "answer's sections say which step writes them). A few seconds; figures are PNG and "
        "SVG copies for slides.",
        params=GenerateReportParams,
        answer=GenerateReportAnswer,
        compute="attribution_analysis.report.step:compute",
        # Reads every output that exists (none is required; see report.inputs.READS).
        writes=(layout.REPORT, layout.REPORT_SOURCES, layout.FIGURES),
        preload=(
            "attribution_analysis.report.charts:warm",
            "attribution_analysis.report.views:warm_templates",
        ),
    ),
    StepSpec(
        name="draft_faq",
        title="Draft the stakeholder FAQ",
        description="Answers to the hard questions of a CMO, data science, finance, marketing "
        "or legal audience, filled with this analysis's own numbers (templates, no free "
        "text). About a second.",
        params=DraftFaqParams,
        answer=DraftFaqAnswer,
        compute="attribution_analysis.report.faq:compute",
        # Reads every output that exists and the run registry (none is required).
        writes=(layout.FAQ_MARKDOWN, layout.FAQ_HTML, layout.FAQ_SOURCES),
        preload=("attribution_analysis.report.views:warm_templates",),
    ),
]


def step(name: str) -> StepSpec:
    return next(s for s in STEPS if s.name == name)
