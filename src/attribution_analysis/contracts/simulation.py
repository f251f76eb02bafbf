"""Parameters of ``simulate_workspace``."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from attribution_analysis.contracts.common import StepAnswer, StrictModel


class SimulationParams(StrictModel):
    kind: Literal["mmm", "mta", "hcp-brick", "journeys"] = Field(
        description="'mmm': channel panel; 'mta': the same with campaigns under each channel; "
        "'hcp-brick': HCP visits and brick sales (pharma); 'journeys': user journeys with "
        "known incremental channel effects (raw/journeys.csv, truth/journey_truth.json)."
    )
    seed: int = Field(default=7, ge=0, description="Random seed; same seed, same bytes.")
    weeks: int = Field(default=156, ge=20, le=520, description="Weeks of data (mmm, mta).")
    channels: int = Field(default=5, ge=1, le=10, description="Number of channels (mmm, mta).")
    geos: int = Field(default=0, ge=0, le=50, description="Geos; 0 for a national panel.")
    start: dt.date = Field(default=dt.date(2022, 1, 3), description="First week (its Monday).")
    country: str = Field(default="US", description="Holiday calendar of the simulated market.")
    lift_tests: int = Field(
        default=0,
        ge=0,
        le=8,
        description="Go-dark lift tests to write to analysis/incrementality_results.json "
        "(on a geo panel each runs in one geo, its own while geos last).",
    )
    collinear_pairs: int = Field(
        default=0,
        ge=0,
        le=8,
        description="mta: channels whose campaigns 2 and 3 get exactly proportional exposure.",
    )
    split_noise_shape: float | None = Field(
        default=50.0,
        gt=0,
        description="mta: Gamma shape of "
        "the multiplicative noise on the true split; null for "
        "an exact proportional split.",
    )
    n_hcps: int = Field(default=400, ge=2, le=200_000, description="hcp-brick: HCPs.")
    n_bricks: int = Field(default=80, ge=2, le=50_000, description="hcp-brick: bricks.")
    hcp_family: Literal["poisson", "negbin", "gamma"] = Field(
        default="poisson",
        description="hcp-brick: Poisson units, negative binomial "
        "(overdispersed) units, or Gamma euros.",
    )
    dispersion: float = Field(default=5.0, gt=0, description="hcp-brick negbin: size parameter.")
    gamma_shape: float = Field(default=4.0, gt=0, description="hcp-brick gamma: shape.")
    unit_value: float = Field(
        default=1.0, gt=0, description="hcp-brick: value per unit (euros for gamma)."
    )
    n_users: int = Field(
        default=50_000,
        ge=100,
        le=5_000_000,
        description="journeys: simulated users (those with no touch are untracked and do not "
        "appear in journeys.csv).",
    )


class SimulateWorkspaceParams(SimulationParams):
    """Parameters of the ``simulate_workspace`` step: the simulation, and whether it may
    replace the inputs of a workspace that already holds some."""

    overwrite: bool = Field(
        default=False,
        description="Replace raw/ and truth/ when the workspace already holds them (analysis/ "
        "outputs then no longer match the data and are refused by the staleness checks).",
    )


class SimulateAnswer(StepAnswer):
    """What simulate_workspace answers: which world was simulated, from which seed."""

    kind: Literal["mmm", "mta", "hcp-brick", "journeys"] = Field(
        description="The kind of world simulated."
    )
    seed: int = Field(description="Random seed; the same seed writes the same bytes.")
