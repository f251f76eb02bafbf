"""Building blocks shared by every contract."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Channel, geo and factor names become model coordinates, column names and file-name parts,
# so they are restricted to word characters plus a few separators; quotes, angle brackets,
# slashes and control characters are refused with a message that says how to rename.
IDENTIFIER_PATTERN = r"^[^\W][\w .()&+-]{0,63}$"
IDENTIFIER_HELP = (
    "names may use letters, digits, spaces and the characters _ . ( ) & + - "
    "(at most 64, starting with a letter or digit)"
)

Identifier = Annotated[str, StringConstraints(strip_whitespace=True, pattern=IDENTIFIER_PATTERN)]
# Labels (campaign, creative, HCP and brick ids) are free text: any printable characters,
# escaped wherever they are rendered.
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class StrictModel(BaseModel):
    """Base for every contract: unknown keys are errors, not silently ignored.

    ``defer_build``: a model builds its validator when first used, not when imported. Every
    front end imports every step's contracts (the step table names them), and building them
    all took about 0.1 s of each fresh command, most of it for steps that were not run."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True, defer_build=True)


class DataRange(StrictModel):
    start: dt.date = Field(description="First period (inclusive) of the data used.")
    end: dt.date = Field(description="Last period (inclusive) of the data used.")
    grain: str = Field(description="Period grain: 'weekly' or 'daily'.")
    n_periods: int = Field(ge=0, description="Number of periods between start and end.")
    geos: list[str] = Field(
        default_factory=list, description="Geos in the panel (empty if national)."
    )


class Metadata(StrictModel):
    """Provenance carried by every output JSON."""

    timestamp: str = Field(description="UTC time the output was written (ISO 8601).")
    step: str = Field(description="Step that wrote the output.")
    run_id: str | None = Field(default=None, description="Run id in the workspace run registry.")
    package: str = Field(description="Package that wrote the output.")
    package_version: str = Field(description="Version of that package.")
    library_versions: dict[str, str] = Field(
        description="Versions of Python and of the numerical libraries involved."
    )
    seed: int | None = Field(default=None, description="Random seed used, if the step is random.")
    sampler: dict[str, Any] = Field(
        default_factory=dict, description="Sampler settings (backend, chains, draws, tune, ...)."
    )
    data_range: DataRange | None = Field(default=None, description="Data window the output covers.")
    input_hashes: dict[str, str] = Field(
        description="sha256 of every input file read, keyed by workspace-relative path."
    )
    extra: dict[str, Any] = Field(default_factory=dict, description="Step-specific provenance.")


class Interval(StrictModel):
    """A posterior (or bootstrap) summary: mean and highest-density intervals."""

    mean: float = Field(description="Posterior mean.")
    median: float | None = Field(default=None, description="Posterior median.")
    hdi_90: tuple[float, float] = Field(description="90% highest-density interval [low, high].")
    hdi_95: tuple[float, float] = Field(description="95% highest-density interval [low, high].")


class Finding(StrictModel):
    """A warning or note produced by a rule, with the number that triggered it."""

    code: str = Field(description="Stable machine-readable code, e.g. 'high_vif'.")
    severity: str = Field(description="'info', 'warning' or 'error'.")
    message: str = Field(description="What was found and what to do, in plain language.")
    subject: str | None = Field(default=None, description="Channel, file or pair concerned.")
    value: float | None = Field(default=None, description="The measured number.")
    threshold: float | None = Field(default=None, description="The rule's threshold.")
    rule: str | None = Field(default=None, description="The rule, e.g. 'VIF > 10'.")


class StepAnswer(StrictModel):
    """Base of every step's answer: what the MCP tool returns (published as its output
    schema) and what the CLI and scripts print. Each step extends it with the figures,
    decisions and findings its agent is told to quote; never draws."""

    step: str = Field(description="The step that answered.")
    outputs: list[str] = Field(
        description="Workspace-relative files written; read them as workspace:// resources."
    )
