"""Names of the organic and event components in the model (kept apart from
``components``, which imports PyMC-Marketing, so readers of a fit need not)."""

from __future__ import annotations

ORGANIC_DIM = "organic"
ORGANIC_DATA = "organic_data"
ORGANIC_PREFIX = "organic"
ORGANIC_CONTRIBUTION = "organic_contribution"  # (date[, geo], organic), target scale
EVENT_PREFIX = "event"


def event_data_name(column: str) -> str:
    """The model's data variable for event column ``column`` (never a name MMM uses)."""
    return f"event_data_{column}"


def event_coefficient_name(column: str) -> str:
    """The posterior variable of event ``column``'s coefficient (ControlMuEffect's naming)."""
    return f"{EVENT_PREFIX}_{event_data_name(column)}_coef"
