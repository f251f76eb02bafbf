"""The workspace layout: every file a workspace holds, declared once.

A file's path, the contract its content follows and the step that writes it live here and
nowhere else; modules take paths from these declarations (``layout.CONTRIBUTIONS.path``), so
renaming a file, or asking "who writes this?", is a one-line answer. Paths with a
``{name}`` template field name a family of files (one per platform, per audience); ``path_for``
fills it in.

This module is on the ground floor: it imports only the contracts (pydantic models).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from attribution_analysis.contracts.allocation import AllocationReport
from attribution_analysis.contracts.budget import BudgetOptimization
from attribution_analysis.contracts.exposure import ExposureReport
from attribution_analysis.contracts.importing import ImportMapping
from attribution_analysis.contracts.intraday import DownscaleReport
from attribution_analysis.contracts.mmm import FitMMMResult
from attribution_analysis.contracts.outputs import ChannelContributions, MMMDiagnostics
from attribution_analysis.contracts.paths import PathAttributionReport
from attribution_analysis.contracts.portfolio import PortfolioFits
from attribution_analysis.contracts.validation import DataValidationReport

USER = "user"  # producer of the files a user (or import) puts in raw/


@dataclass(frozen=True)
class WorkspaceFile:
    """One file (or one family of files) of the workspace."""

    path: str  # workspace-relative; may hold one {name} template field
    producer: str  # the step that writes it, or USER for inputs
    description: str
    contract: type[BaseModel] | None = None  # the model a JSON file validates against

    def path_for(self, **names: str) -> str:
        """The path with its template field filled in (``platform='search'``)."""
        return self.path.format(**names)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


# ----- inputs (raw/ and truth/) ---------------------------------------------------------------
SPEND = WorkspaceFile(
    "raw/campaign_spend_{platform}.csv", USER, "Spend and delivery per campaign and period."
)
CONVERSIONS = WorkspaceFile("raw/conversions.csv", USER, "The outcome per period (and geo).")
EXTERNAL_FACTORS = WorkspaceFile(
    "raw/external_factors.csv", USER, "Controls and events, long format (one factor a row)."
)
CAMPAIGN_METADATA = WorkspaceFile(
    "raw/campaign_metadata.csv", USER, "Campaign covariates for allocation."
)
BRICK_SALES = WorkspaceFile("raw/brick_sales.csv", USER, "Pharma: sales per brick and period.")
HCP_BRICK = WorkspaceFile("raw/hcp_brick.csv", USER, "Pharma: visits per HCP, brick, period.")
HCPS = WorkspaceFile("raw/hcps.csv", USER, "Pharma: HCP covariates.")
JOURNEYS = WorkspaceFile("raw/journeys.csv", USER, "User journeys, one touchpoint a row.")
PATHS = WorkspaceFile("raw/paths.csv", USER, "Aggregated paths with conversion counts.")
IMPORT_MAPPING = WorkspaceFile(
    "raw/import_mapping.json",
    "import_data",
    "How raw/ was imported from one wide table: roles, source hash, country.",
    ImportMapping,
)
HOURLY_DELIVERY = WorkspaceFile(
    "raw/hourly_delivery.csv", USER, "Hourly delivery per campaign (intraday split)."
)
TRUTH_PARAMETERS = WorkspaceFile(
    "truth/parameters.json", "simulate_workspace", "Simulated worlds: the true parameters."
)
TRUTH_CONTRIBUTIONS = WorkspaceFile(
    "truth/contributions.csv", "simulate_workspace", "Simulated worlds: true contributions."
)
TRUTH_CAMPAIGN_SPLIT = WorkspaceFile(
    "truth/campaign_split.csv", "simulate_workspace", "Simulated campaigns: true split."
)
TRUTH_CAMPAIGN_PRODUCTIVITY = WorkspaceFile(
    "truth/campaign_productivity.csv",
    "simulate_workspace",
    "Simulated campaigns: true productivity.",
)
TRUTH_CAMPAIGNS = WorkspaceFile(
    "truth/campaigns.json", "simulate_workspace", "Simulated campaigns: true parameters."
)
TRUTH_HCPS = WorkspaceFile("truth/hcp_truth.csv", "simulate_workspace", "Simulated HCP rates.")
TRUTH_PAIRS = WorkspaceFile(
    "truth/pair_truth.csv", "simulate_workspace", "Simulated HCP-brick true split."
)
JOURNEY_TRUTH = WorkspaceFile(
    "truth/journey_truth.json", "simulate_workspace", "Simulated journeys: true credit."
)

# ----- validate_data ---------------------------------------------------------------------------
DATA_VALIDATION = WorkspaceFile(
    "analysis/data_validation.json",
    "validate_data",
    "Validation report: grain, window, channels, warnings, identification metrics.",
    DataValidationReport,
)
PANEL = WorkspaceFile(
    "analysis/prepared_panel.csv", "validate_data", "The modelling panel the MMM fits."
)
CAMPAIGN_PANEL = WorkspaceFile(
    "analysis/prepared_campaign_panel.csv",
    "validate_data",
    "Campaign x period panel (spend, impressions) for effective exposure and allocation.",
)
LIFT_TESTS = WorkspaceFile(
    "analysis/incrementality_results.json", USER, "Lift tests used as calibration."
)

# ----- fit_mmm and validate_model -------------------------------------------------------------
FIT = WorkspaceFile(
    "analysis/mmm_fit.json",
    "fit_mmm",
    "Fit manifest: settings, hashes, model file.",
    FitMMMResult,
)
MODEL_DIR = WorkspaceFile("analysis/model", "fit_mmm", "Posterior files (NetCDF).")
# In a portfolio folder (the workspace fit_many runs on), not in its members.
PORTFOLIO_FITS = WorkspaceFile(
    "analysis/portfolio_fits.json",
    "fit_many",
    "Portfolio fit: each member workspace's status, fit key, seconds, gates, error.",
    PortfolioFits,
)
DIAGNOSTICS = WorkspaceFile(
    "analysis/mmm_diagnostics.json",
    "validate_model",
    "Acceptance criteria of the current fit.",
    MMMDiagnostics,
)

# ----- decompose_contributions ---------------------------------------------------------------
CONTRIBUTIONS = WorkspaceFile(
    "analysis/mmm_channel_contributions.json",
    "decompose_contributions",
    "Channel contributions, shares, ROAS and marginal ROAS with intervals.",
    ChannelContributions,
)
WEEKLY_CONTRIBUTIONS = WorkspaceFile(
    "analysis/mmm_weekly_contributions.csv",
    "decompose_contributions",
    "Posterior-mean contributions per period and channel.",
)
CONTRIBUTION_DRAWS = WorkspaceFile(
    "analysis/model/channel_contribution_draws.nc",
    "decompose_contributions",
    "Contribution draws per period and channel (NetCDF; its `metadata` attribute is the "
    "contributions file's metadata, as JSON).",
)
CONTRIBUTION_DRAWS_CSV = WorkspaceFile(
    "analysis/mmm_contribution_draws.csv",
    "decompose_contributions",
    "Thinned contribution draws, long format: what allocate reads.",
)
TRANSFORMS = WorkspaceFile(
    "analysis/mmm_transforms.json",
    "decompose_contributions",
    "Posterior-mean adstock and saturation per channel (for effective exposure).",
)

# ----- allocation ------------------------------------------------------------------------------
EXPOSURE_TABLE = WorkspaceFile(
    "analysis/effective_exposure.csv",
    "build_effective_exposure",
    "Effective exposure per campaign and period.",
)
EXPOSURE_SUMMARY = WorkspaceFile(
    "analysis/effective_exposure.json",
    "build_effective_exposure",
    "Effective-exposure summary per channel.",
    ExposureReport,
)
ALLOCATION = WorkspaceFile(
    "analysis/mta_allocation.csv", "allocate", "Credit per campaign (or HCP) and period."
)
ALLOCATION_SUMMARY = WorkspaceFile(
    "analysis/allocation_summary.json",
    "allocate",
    "Allocation summary: shares with intervals, identifiability, convergence.",
    AllocationReport,
)
ALLOCATION_HOURLY = WorkspaceFile(
    "analysis/mta_allocation_hourly.csv", "downscale_intraday", "Credit per campaign and hour."
)
INTRADAY_SUMMARY = WorkspaceFile(
    "analysis/intraday_summary.json",
    "downscale_intraday",
    "Intraday split summary.",
    DownscaleReport,
)

# ----- optimize_budget ------------------------------------------------------------------------
# One file per named plan (optimize_budget's plan_name; optimize.plans lists and reads them).
BUDGET_PLAN = WorkspaceFile(
    "analysis/budget_plans/{name}.json",
    "optimize_budget",
    "A named budget plan: recommended mix, lift with intervals, robustness, break-even, "
    "scenarios, curves.",
    BudgetOptimization,
)

# ----- attribute_paths ------------------------------------------------------------------------
PATH_ATTRIBUTION = WorkspaceFile(
    "analysis/path_attribution.json",
    "attribute_paths",
    "Heuristic, Markov and Shapley credit, reconciled with the MMM.",
    PathAttributionReport,
)
PATH_CAMPAIGN_CREDIT = WorkspaceFile(
    "analysis/path_campaign_credit.csv",
    "attribute_paths",
    "Path credit per campaign (the omega of allocate with omega_source='path_credit').",
)
PATH_CAMPAIGN_OMEGA = WorkspaceFile(
    "analysis/path_campaign_omega.csv",
    "attribute_paths",
    "MMM channel totals split across campaigns by path credit.",
)

# ----- reports ---------------------------------------------------------------------------------
REPORT = WorkspaceFile(
    "reports/mmm_executive_summary.html", "generate_report", "The executive report (HTML)."
)
REPORT_SOURCES = WorkspaceFile(
    "reports/mmm_executive_summary.sources.json",
    "generate_report",
    "The report's sources: every input file and its hash.",
)
FIGURES = WorkspaceFile("reports/figures", "generate_report", "The report's figures.")
FAQ_MARKDOWN = WorkspaceFile("reports/faq_{audience}.md", "draft_faq", "FAQ for one audience.")
FAQ_HTML = WorkspaceFile("reports/faq_{audience}.html", "draft_faq", "FAQ for one audience.")
FAQ_SOURCES = WorkspaceFile(
    "reports/faq_{audience}.sources.json", "draft_faq", "The FAQ's sources and hashes."
)

CATALOGUE: tuple[WorkspaceFile, ...] = tuple(
    value for value in globals().values() if isinstance(value, WorkspaceFile)
)


def written_by(step: str) -> tuple[WorkspaceFile, ...]:
    """Every file ``step`` writes, in declaration order."""
    return tuple(f for f in CATALOGUE if f.producer == step)


def declared(path: str) -> WorkspaceFile | None:
    """The declaration of a concrete workspace-relative path (a template field matches any name)."""
    import re

    for entry in CATALOGUE:
        pattern = re.escape(entry.path).replace(r"\{", "{").replace(r"\}", "}")
        pattern = re.sub(r"\{[a-z_]+\}", r"[^/]+", pattern)
        if re.fullmatch(pattern + r"(/.*)?", path):
            return entry
    return None
