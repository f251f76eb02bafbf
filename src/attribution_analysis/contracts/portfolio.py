"""Parameters and answer of ``fit_many``: one MMM fit per member workspace of a portfolio.

A portfolio is a folder of member workspaces (one per brand x market, say) that share one
model structure. ``fit_many`` runs on that folder: the members are named relative to it, each
member is fitted by ``fit_mmm`` with the parameters given here, and the portfolio's record of
the run goes to the portfolio folder's own ``analysis/portfolio_fits.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from attribution_analysis.contracts.common import Metadata, StepAnswer, StrictModel
from attribution_analysis.contracts.mmm import FitMMMParams

MemberStatus = Literal["succeeded", "failed"]
# What fit_mmm's convergence gates said: 'not_applicable' for fits that sample nothing
# (quick MAP/ADVI, ridge), which have no R-hat or ESS to check.
GateVerdict = Literal["passed", "failed", "not_applicable"]


class FitManyParams(FitMMMParams):
    """fit_mmm's parameters (applied to every member), the members, and the cluster."""

    workspaces: list[str] = Field(
        default_factory=list,
        description="Member workspaces, as folders relative to this (the portfolio) "
        'workspace, e.g. ["brand_a", "brand_b"]. Give this or pattern.',
    )
    pattern: str | None = Field(
        default=None,
        min_length=1,
        description="Glob of member folders relative to this (the portfolio) workspace, e.g. "
        "'brand_*' or 'markets/*'; every matching folder is a member. Give this or workspaces.",
    )
    dask_scheduler: str | None = Field(
        default=None,
        min_length=1,
        description="Address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); its "
        "workers must see the portfolio folder at the same path, and each worker thread fits "
        "one member at a time (`dask worker ADDRESS --nthreads 1` gives each fit a process). "
        "None: a LocalCluster of `workers` processes on this machine, stopped at the end.",
    )
    workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Worker processes of the LocalCluster (one fit at a time each; each "
        "compiles the model once per structure and reuses it). Ignored with dask_scheduler.",
    )

    @model_validator(mode="after")
    def _one_way_to_name_members(self) -> FitManyParams:
        if bool(self.workspaces) == (self.pattern is not None):
            raise ValueError("give the member workspaces as workspaces or as pattern (one of them)")
        return self

    def member_params(self) -> FitMMMParams:
        """The fit_mmm parameters every member is fitted with."""
        return FitMMMParams.model_validate(
            self.model_dump(include=set(FitMMMParams.model_fields), mode="json")
        )


class MemberFit(StrictModel):
    """How one member's fit ended."""

    workspace: str = Field(description="The member, relative to the portfolio workspace.")
    status: MemberStatus = Field(
        description="'succeeded': fit_mmm committed its outputs in the member; 'failed': "
        "nothing was written in the member (see error)."
    )
    fit_key: str | None = Field(
        default=None, description="fit_mmm's fit key (hash of data, model and settings)."
    )
    method: str | None = Field(default=None, description="fit_mmm's method of this fit.")
    seconds: float | None = Field(
        default=None, ge=0, description="Wall seconds of this member's fit on its worker."
    )
    gates: GateVerdict | None = Field(
        default=None,
        description="Convergence gates (R-hat, ESS, divergences) of a NUTS fit: passed or "
        "failed; not_applicable for quick and ridge fits; null when the fit failed.",
    )
    for_decisions: bool | None = Field(
        default=None, description="fit_mmm's verdict: may this fit be used for decisions."
    )
    cached: bool | None = Field(
        default=None, description="fit_mmm reused the member's stored fit without sampling."
    )
    compile_reused: bool | None = Field(
        default=None,
        description="The worker reused a model it had compiled for an earlier member of the "
        "same structure (NUTS with nutpie only).",
    )
    worker: str | None = Field(default=None, description="The Dask worker that ran the fit.")
    outputs: list[str] = Field(
        default_factory=list, description="Files fit_mmm wrote, relative to the member."
    )
    error: dict[str, Any] | None = Field(
        default=None,
        description="Why the member failed: code, message (what and how to fix), step.",
    )


class PortfolioFitsRecord(StrictModel):
    """What one fit_many run did: the cluster and every member's outcome."""

    scheduler: str = Field(
        description="The Dask scheduler used: its address, or 'LocalCluster' when one was "
        "started for this run."
    )
    workers: int = Field(ge=0, description="Dask workers the scheduler had when fitting began.")
    wall_seconds: float = Field(ge=0, description="Seconds of the whole portfolio fit.")
    succeeded: int = Field(ge=0, description="Members fitted and committed.")
    failed: int = Field(ge=0, description="Members that failed (nothing written in them).")
    members: list[MemberFit] = Field(description="Every member, in the order given.")


class PortfolioFits(PortfolioFitsRecord):
    """``analysis/portfolio_fits.json`` in the portfolio workspace."""

    metadata: Metadata
    params: dict[str, Any] = Field(description="The parameters of the run, as given.")


class FitManyAnswer(StepAnswer, PortfolioFitsRecord):
    """What fit_many answers: each member's status, fit key, seconds, gate verdict, error."""
