"""Reporting: the HTML executive summary (``generate_report``) and per-audience FAQ drafts
(``draft_faq``), both filled only with numbers read from the workspace outputs."""

from __future__ import annotations

from attribution_analysis.report.faq import draft_faq
from attribution_analysis.report.step import generate_report

__all__ = ["draft_faq", "generate_report"]
