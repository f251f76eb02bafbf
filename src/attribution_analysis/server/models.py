"""The shapes of the server's tool arguments and answers, published as input and output
schemas so a client knows them before calling.

Step tools take the step's own pydantic contract (``steps.STEPS``) plus the workspace; the
models here are the ones the server adds: the job and registry tools, and the envelopes
that step tools answer with.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import BaseModel, ConfigDict, Field

MAX_WAIT_SECONDS = 600

JobStatus = Literal[
    "queued", "running", "cancelling", "succeeded", "failed", "cancelled", "interrupted"
]


# The workspace rule (server.config.NAME_RULE) is published in the schema, so a client knows
# it before calling; it is enforced by ServerConfig.locate, which words the refusal.
WorkspaceName = Annotated[
    str,
    Field(
        description="Workspace folder name under the server's workspace root: ASCII "
        "letters, digits, '-', '_' and '.', not starting with '.', at most 64 characters.",
        json_schema_extra={"pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$", "maxLength": 64},
    ),
]


class ToolArguments(ArgModelBase):
    """Base of every tool's arguments: an unknown (e.g. misspelled) key is an error naming
    it, not silently dropped, so a caller never believes an option was applied."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")


WaitSeconds = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Wait up to this long for the job to end before returning (progress "
        "notifications are sent meanwhile); 0 returns at once.",
    ),
]


class GetJobArguments(ToolArguments):
    job_id: str = Field(description="Id returned by a background tool.", max_length=64)
    wait_seconds: WaitSeconds = 0.0


class CancelJobArguments(ToolArguments):
    job_id: str = Field(description="Id of the job to stop.", max_length=64)


class ListJobsArguments(ToolArguments):
    limit: int = Field(default=20, ge=1, le=500, description="How many, newest first.")


class ListRunsArguments(ToolArguments):
    workspace: WorkspaceName
    step: str | None = Field(default=None, description="Only runs of this step.")
    limit: int = Field(default=20, ge=1, le=500, description="How many, newest first.")


# ----- answers ---------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    """Why a job did not succeed, in the CLI's words (extra keys: problem, fix, file, ...)."""

    model_config = ConfigDict(extra="allow")

    message: str = Field(description="The whole message: where, what, and the fix.")
    code: str | None = Field(default=None, description="Machine-readable kind of error.")


class JobSummary(BaseModel):
    job_id: str = Field(description="Pass to get_job or cancel_job.")
    tool: str = Field(description="The tool that started the job.")
    workspace: str = Field(description="Workspace the job works on.")
    status: JobStatus = Field(description="Where the job is; the last four are final.")
    progress: float | None = Field(
        description="Share done, 0 to 1; 1 only once succeeded. A job that failed or was "
        "cancelled keeps the share it reached (null when not known)."
    )
    message: str = Field(description="What the job is doing now, or how it ended.")
    created_at: str = Field(description="UTC start time (ISO 8601).")
    finished_at: str | None = Field(description="UTC end time, once final.")
    error: ErrorBody | None = Field(description="Why it failed, was cancelled or interrupted.")


class JobState(JobSummary):
    """A background job: what a background tool answers at once, and what get_job and
    cancel_job answer."""

    result: dict[str, Any] | None = Field(
        description="The step's answer once succeeded (same shape as the step's script "
        "prints: decisions, figures with intervals and output paths)."
    )
    next: str | None = Field(
        default=None, description="What to call next while the job is not final."
    )


class JobList(BaseModel):
    jobs: list[JobSummary] = Field(description="Recent jobs, newest first (results left out).")


class RunRecord(BaseModel):
    run_id: str = Field(description="Run id, also in every output's metadata.")
    step: str = Field(description="Step that ran.")
    status: Literal["running", "succeeded", "failed", "cancelled", "interrupted"] = Field(
        description="How the run ended ('running' while it runs)."
    )
    started_at: str = Field(description="UTC start time (ISO 8601).")
    finished_at: str | None = Field(description="UTC end time.")
    duration_s: float | None = Field(description="Wall time in seconds.")
    params: dict[str, Any] = Field(description="Parameters of the run.")
    input_hashes: dict[str, str] = Field(description="sha256 of every input file read.")
    outputs: list[str] = Field(description="Workspace-relative files written.")
    error: str | None = Field(description="The error, for a failed run.")


class RunList(BaseModel):
    runs: list[RunRecord] = Field(description="The workspace's runs, newest first.")
