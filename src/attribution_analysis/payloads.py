"""The compact answers every adapter returns (CLI, scripts, MCP tools): decisions, figures
with intervals and output paths; never draws. One function per step so the adapters agree."""

from __future__ import annotations

from typing import Any

from attribution_analysis.contracts.exposure import ExposureReport
from attribution_analysis.contracts.mmm import FitMMMResult
from attribution_analysis.contracts.outputs import ChannelContributions, MMMDiagnostics
from attribution_analysis.contracts.validation import DataValidationReport

TOP_CAMPAIGNS = 3


def validate_payload(report: DataValidationReport) -> dict[str, Any]:
    return {
        "step": "validate_data",
        "validation_status": report.status,
        "grain": report.grain,
        "window": report.window.model_dump(mode="json"),
        "channels": [c.channel for c in report.channels],
        "warnings": [w.model_dump(mode="json") for w in report.warnings],
        "outputs": [
            report.panel.path,
            "analysis/data_validation.json",
            *([report.campaign_panel.path] if report.campaign_panel else []),
        ],
    }


def fit_payload(result: FitMMMResult) -> dict[str, Any]:
    return {
        "step": "fit_mmm",
        **result.model_dump(mode="json"),
        "outputs": [result.model_path, "analysis/mmm_fit.json"],
    }


def validate_model_payload(result: MMMDiagnostics) -> dict[str, Any]:
    return {
        "step": "validate_model",
        "passed": result.passed,
        "failed_criteria": [c.name for c in result.criteria if not c.passed],
        "criteria": [c.model_dump(mode="json") for c in result.criteria],
        "ppc_coverage_90": result.ppc.get("coverage_90"),
        "loo": result.loo,
        "backtest": result.backtest,
        "findings": [f.model_dump(mode="json") for f in result.findings],
        "outputs": ["analysis/mmm_diagnostics.json"],
    }


def decompose_payload(result: ChannelContributions) -> dict[str, Any]:
    return {
        "step": "decompose_contributions",
        "channels": [c.model_dump(mode="json") for c in result.channels],
        "base": result.base.model_dump(mode="json"),
        "sum_check": result.sum_check.model_dump(mode="json"),
        "outputs": [
            "analysis/mmm_channel_contributions.json",
            result.weekly_table,
            result.draws_file,
        ],
    }


def exposure_payload(report: ExposureReport) -> dict[str, Any]:
    return {
        "step": "build_effective_exposure",
        "saturation_on": report.saturation_on,
        "transforms_source": report.transforms_source,
        "channels": [
            {
                "channel": c.channel,
                "campaigns": len(c.campaigns),
                "top_campaigns": [
                    {"campaign": k.campaign, "share_of_channel": round(k.share_of_channel, 4)}
                    for k in sorted(c.campaigns, key=lambda k: -k.share_of_channel)[:TOP_CAMPAIGNS]
                ],
            }
            for c in report.channels
        ],
        "findings": [f.model_dump(mode="json", exclude_none=True) for f in report.findings],
        "outputs": [report.table, "analysis/effective_exposure.json"],
    }
