"""Reporting: the HTML executive summary and per-audience FAQ drafts, both filled only with
numbers read from the workspace outputs (steps :mod:`.step` and :mod:`.faq`; as Python
functions: :func:`attribution_analysis.api.generate_report`, ``draft_faq``)."""
