"""User-level path attribution: heuristics, Markov removal effects, Shapley values, and their
reconciliation with the MMM (supplementary to the MMM: needs user journeys)."""

from attribution_analysis.paths.step import attribute_paths

__all__ = ["attribute_paths"]
