"""Budget optimization and scenario planning on the fitted MMM's posterior (the step:
:mod:`.step`; as a Python function: :func:`attribution_analysis.api.optimize_budget`)."""
