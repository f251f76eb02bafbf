"""User-level path attribution: heuristics, Markov removal effects, Shapley values, and their
reconciliation with the MMM (supplementary to the MMM: needs user journeys). The step:
:mod:`.step`; as a Python function: :func:`attribution_analysis.api.attribute_paths`."""
