"""Every contract exported to ``schemas/`` (file stem -> model)."""

from __future__ import annotations

from pydantic import BaseModel

from attribution_analysis.contracts import (
    allocation,
    budget,
    exposure,
    inputs,
    intraday,
    mmm,
    outputs,
    paths,
    report,
    simulation,
    validation,
)

SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "input.campaign_spend_row": inputs.CampaignSpendRow,
    "input.conversions_row": inputs.ConversionsRow,
    "input.external_factor_row": inputs.ExternalFactorRow,
    "input.campaign_metadata_row": inputs.CampaignMetadataRow,
    "input.brick_sales_row": inputs.BrickSalesRow,
    "input.hcp_brick_row": inputs.HcpBrickRow,
    "input.hcp_row": inputs.HcpRow,
    "input.incrementality_result": inputs.IncrementalityResult,
    "output.data_validation": validation.DataValidationReport,
    "output.mmm_channel_contributions": outputs.ChannelContributions,
    "output.mmm_diagnostics": outputs.MMMDiagnostics,
    "output.mmm_budget_optimization": budget.BudgetOptimization,
    "input.contribution_row": allocation.ContributionRow,
    "output.allocation_summary": allocation.AllocationReport,
    "output.mta_allocation_row": allocation.AllocationRecord,
    "params.validate_data": validation.ValidateDataParams,
    "params.fit_mmm": mmm.FitMMMParams,
    "params.validate_model": mmm.ValidateModelParams,
    "params.decompose_contributions": mmm.DecomposeParams,
    "params.build_effective_exposure": exposure.BuildExposureParams,
    "output.effective_exposure": exposure.ExposureReport,
    "params.downscale_intraday": intraday.DownscaleParams,
    "output.intraday_summary": intraday.DownscaleReport,
    "params.allocate": allocation.AllocateParams,
    "params.optimize_budget": budget.OptimizeBudgetParams,
    "params.simulate": simulation.SimulationParams,
    "input.journey_row": paths.JourneyRow,
    "input.path_row": paths.PathRow,
    "params.attribute_paths": paths.AttributePathsParams,
    "output.path_attribution": paths.PathAttributionReport,
    "params.generate_report": report.GenerateReportParams,
    "params.draft_faq": report.DraftFaqParams,
    "result.generate_report": report.GenerateReportResult,
    "result.draft_faq": report.DraftFaqResult,
}
