"""Data generators with ground truth: MMM panel, campaigns under channels, HCP-brick,
journeys (the step: :mod:`.run`; as a Python function:
:func:`attribution_analysis.api.simulate_workspace`)."""

from attribution_analysis.simulate.run import SimulationKind

__all__ = ["SimulationKind"]
