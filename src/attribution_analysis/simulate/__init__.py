"""Data generators with ground truth: MMM panel, campaigns under channels, HCP-brick."""

from attribution_analysis.simulate.run import SimulationKind, simulate_workspace

__all__ = ["SimulationKind", "simulate_workspace"]
