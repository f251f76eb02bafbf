"""The MCP server: one tool per pipeline step (from ``steps.STEPS``), jobs, resources, prompts.

No analysis happens here. A tool call resolves the workspace inside the root, validates its
arguments into the step's pydantic model, checks the resource limits, and then either runs
the step in a worker thread (seconds) or starts it as a background job (minutes).
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, ValidationError

from attribution_analysis import __version__
from attribution_analysis.adapters import error_payload
from attribution_analysis.errors import AttributionError
from attribution_analysis.server.config import ServerConfig
from attribution_analysis.server.jobs import TERMINAL, JobManager
from attribution_analysis.steps import STEPS, StepSpec

REPO = Path(__file__).resolve().parents[3]
MAX_WAIT_SECONDS = 600
POLL_SECONDS = 0.25
READABLE_FOLDERS = ("analysis", "reports")
TEXT_SUFFIXES = {".json", ".csv", ".md", ".html", ".txt", ".svg"}

INSTRUCTIONS = """\
Bayesian MMM (PyMC-Marketing) and allocation of channel contributions to campaigns or HCPs.
Read the resource attribution://skill first: the workflow, decision rules and guardrails.
Every number comes from a tool, with its interval; never compute statistics yourself.
Long steps (fit_mmm, validate_model, allocate) return a job id: poll get_job.
"""


def _workspace_param() -> inspect.Parameter:
    return inspect.Parameter(
        "workspace",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[
            str,
            Field(description="Workspace folder name, relative to the server's workspace root."),
        ],
    )


def _wait_param() -> inspect.Parameter:
    return inspect.Parameter(
        "wait_seconds",
        inspect.Parameter.KEYWORD_ONLY,
        default=0.0,
        annotation=Annotated[
            float,
            Field(
                ge=0,
                le=MAX_WAIT_SECONDS,
                description="Wait up to this long for the job before returning (progress "
                "notifications are sent meanwhile); 0 returns the job id at once.",
            ),
        ],
    )


def _field_params(spec: StepSpec) -> list[inspect.Parameter]:
    """The step's pydantic fields as keyword parameters, descriptions and bounds kept."""
    out = []
    for name, info in spec.params.model_fields.items():
        annotation = Annotated[
            (info.annotation, *info.metadata, Field(description=info.description))
        ]
        default = (
            inspect.Parameter.empty
            if info.is_required()
            else info.get_default(call_default_factory=True)
        )
        out.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return out


def _message(exc: AttributionError | ValidationError) -> str:
    return error_payload(exc)["message"]


class AttributionServer:
    """Holds the configuration and the job manager the tools share."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.jobs = JobManager(config.root, config.max_jobs)
        self.mcp = MCPServer(
            name="attribution-analysis",
            title="Attribution analysis (MMM + EM allocation)",
            version=__version__,
            instructions=INSTRUCTIONS,
        )
        for spec in STEPS:
            self._add_step(spec)
        self._add_job_tools()
        self._add_resources()
        self._add_prompts()

    # ----- step tools ------------------------------------------------------------------------
    def _add_step(self, spec: StepSpec) -> None:
        server = self

        async def tool(ctx: Context, **arguments: Any) -> dict[str, Any]:
            return await server._call(spec, ctx, arguments)

        parameters = [_workspace_param(), *_field_params(spec)]
        if spec.background:
            parameters.append(_wait_param())
        parameters.append(
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
        )
        tool.__signature__ = inspect.Signature(parameters, return_annotation=dict[str, Any])
        tool.__annotations__ = {p.name: p.annotation for p in parameters} | {
            "return": dict[str, Any]
        }
        tool.__name__ = spec.name
        self.mcp.add_tool(
            tool,
            name=spec.name,
            title=spec.title,
            description=spec.description,
            annotations=ToolAnnotations(
                title=spec.title,
                read_only_hint=False,
                destructive_hint=spec.destructive,
                idempotent_hint=spec.idempotent,
                open_world_hint=False,
            ),
        )

    async def _call(self, spec: StepSpec, ctx: Context, arguments: dict[str, Any]):
        name = arguments.pop("workspace")
        wait = float(arguments.pop("wait_seconds", 0.0))
        try:
            folder = self.config.locate(name, must_exist=not spec.creates_workspace)
            params = spec.params.model_validate(arguments)
            self.config.check_limits(params, folder)
            if spec.background:
                job = self.jobs.start(spec.name, name, folder, params.model_dump_json())
                return await self._wait(job.job_id, wait, ctx)
            return await anyio.to_thread.run_sync(self._run_inline, spec, folder, params)
        except (AttributionError, ValidationError) as exc:
            raise ToolError(_message(exc)) from None

    @staticmethod
    def _run_inline(spec: StepSpec, folder: Path, params: Any) -> dict[str, Any]:
        import contextlib
        import sys

        from attribution_analysis.workspace import Workspace

        # stdout is the stdio transport: library chatter must not reach it.
        with contextlib.redirect_stdout(sys.stderr):
            workspace = (
                Workspace.create(folder) if spec.creates_workspace else Workspace.open(folder)
            )
            return spec.run(workspace, params, None)

    async def _wait(self, job_id: str, wait: float, ctx: Context) -> dict[str, Any]:
        """Return the job's state, waiting up to ``wait`` seconds for it to end and
        forwarding its progress to the caller's progress token meanwhile."""
        job = self.jobs.get(job_id)
        deadline = time.monotonic() + wait
        last = None
        while job.status not in TERMINAL and time.monotonic() < deadline:
            state = (job.progress, job.total, job.message)
            if state != last:
                last = state
                await ctx.report_progress(job.progress, job.total, job.message or job.status)
            await anyio.sleep(POLL_SECONDS)
        view = job.view()
        if job.status not in TERMINAL:
            view["next"] = "call get_job with this job_id (wait_seconds > 0 to block)."
        return view

    def _add_job_tools(self) -> None:
        server = self

        @self.mcp.tool(
            name="get_job",
            title="Job status",
            description="Status, progress, result or error of a background job (survives a "
            "server restart). With wait_seconds > 0 it waits for the job to end and streams "
            "progress notifications. Instant; reads only.",
            annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
        )
        async def get_job(
            job_id: Annotated[str, Field(description="Id returned by a background tool.")],
            ctx: Context,
            wait_seconds: Annotated[
                float,
                Field(ge=0, le=MAX_WAIT_SECONDS, description="Wait up to this long."),
            ] = 0.0,
        ) -> dict[str, Any]:
            try:
                return await server._wait(job_id, wait_seconds, ctx)
            except AttributionError as exc:
                raise ToolError(_message(exc)) from None

        @self.mcp.tool(
            name="cancel_job",
            title="Cancel a job",
            description="Stop a running background job; it writes nothing (outputs are only "
            "ever committed whole). Instant.",
            annotations=ToolAnnotations(
                read_only_hint=False,
                destructive_hint=False,
                idempotent_hint=True,
                open_world_hint=False,
            ),
        )
        def cancel_job(
            job_id: Annotated[str, Field(description="Id of the job to stop.")],
        ) -> dict[str, Any]:
            try:
                return server.jobs.cancel(job_id).view()
            except AttributionError as exc:
                raise ToolError(_message(exc)) from None

        @self.mcp.tool(
            name="list_jobs",
            title="List jobs",
            description="Recent background jobs on this server, newest first. Instant.",
            annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
        )
        def list_jobs(
            limit: Annotated[int, Field(ge=1, le=500, description="How many.")] = 20,
        ) -> dict[str, Any]:
            return {"jobs": server.jobs.recent(limit)}

        @self.mcp.tool(
            name="list_runs",
            title="List step runs",
            description="The workspace's audit trail: every step run with parameters, input "
            "hashes, outputs, status and duration. Instant; reads only.",
            annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
        )
        def list_runs(
            workspace: Annotated[str, Field(description="Workspace folder name.")],
            step: Annotated[str | None, Field(description="Only runs of this step.")] = None,
            limit: Annotated[int, Field(ge=1, le=500, description="How many.")] = 20,
        ) -> dict[str, Any]:
            from attribution_analysis.registry import RunRegistry

            try:
                return {
                    "runs": RunRegistry(server.config.workspace(workspace)).list_runs(step, limit)
                }
            except AttributionError as exc:
                raise ToolError(_message(exc)) from None

    # ----- resources and prompts ------------------------------------------------------------
    def _add_resources(self) -> None:
        server = self
        skill = REPO / "SKILL.md"
        if skill.is_file():

            @self.mcp.resource(
                "attribution://skill",
                name="SKILL.md",
                title="The attribution-analysis skill",
                description="Workflow, decision rules and guardrails; read first.",
                mime_type="text/markdown",
            )
            def read_skill() -> str:
                return skill.read_text()

        references = REPO / "references"
        for path in sorted(references.glob("*.md")) if references.is_dir() else []:
            self._add_reference(path)

        @self.mcp.resource(
            "workspace://{workspace}/{folder}/{filename}",
            name="workspace-output",
            title="Workspace output file",
            description="A file under analysis/ or reports/ of a workspace (JSON, CSV, "
            "Markdown, HTML, SVG as text; others as bytes).",
        )
        def read_output(workspace: str, folder: str, filename: str) -> str | bytes:
            if folder not in READABLE_FOLDERS:
                raise ResourceError(f"only {', '.join(READABLE_FOLDERS)} can be read.")
            try:
                path = server.config.workspace(workspace).resolve(f"{folder}/{filename}")
            except AttributionError as exc:
                raise ResourceError(_message(exc)) from None
            if not path.is_file():
                raise ResourceError(f"{folder}/{filename} does not exist in '{workspace}'.")
            return path.read_text() if path.suffix in TEXT_SUFFIXES else path.read_bytes()

    def _add_reference(self, path: Path) -> None:
        @self.mcp.resource(
            f"attribution://references/{path.stem}",
            name=path.name,
            title=path.stem.replace("_", " "),
            description=f"Reference: {path.stem.replace('_', ' ')}.",
            mime_type="text/markdown",
        )
        def read_reference() -> str:
            return path.read_text()

    def _add_prompts(self) -> None:
        @self.mcp.prompt(
            name="end_to_end_workflow",
            title="Run the whole analysis",
            description="Step-by-step plan to go from raw files to report with the tools.",
        )
        def end_to_end_workflow(workspace: str) -> str:
            return WORKFLOW_PROMPT.format(workspace=workspace)

        @self.mcp.prompt(
            name="explain_to_cmo",
            title="Explain the results to a CMO",
            description="Turn this workspace's outputs into a plain-language briefing.",
        )
        def explain_to_cmo(workspace: str) -> str:
            return CMO_PROMPT.format(workspace=workspace)


WORKFLOW_PROMPT = """\
Run the attribution analysis on workspace '{workspace}'. Read attribution://skill first.
1. validate_data; stop and report any error or failed check with its fix.
2. fit_mmm (calibrate=true when raw/incrementality_results.json exists); it returns a job id:
   call get_job with wait_seconds until it ends. Use quick='map' only for a first look.
3. validate_model (job). If it fails, say which criteria failed and do not go on unless the
   user accepts the risk (override_reason, recorded).
4. decompose_contributions, then build_effective_exposure and allocate (method em first).
5. optimize_budget with the user's total budget over the horizon (not per week).
6. generate_report and draft_faq; give the user the report path.
Quote every number with its interval, from the tool results; say that channel totals are
causal estimates and the split within a channel is model-based.
"""

CMO_PROMPT = """\
Brief a CMO on workspace '{workspace}' in five short paragraphs, from its outputs only
(read workspace://{workspace}/analysis/mmm_channel_contributions.json and
workspace://{workspace}/analysis/mmm_budget_optimization.json; attribution://references/
stakeholder_faq for wording). Lead with what marketing added and which channels earn the most
per unit of spend, each figure with its 90% interval; then the recommended reallocation, its
expected lift with interval and the probability it beats today's plan; then what the model
cannot tell (intra-channel splits are model-based; curves beyond observed spend are
extrapolation); end with the next experiment worth running. No jargon, no figure without
its interval, no number you did not read from a tool or resource.
"""


def build_server(config: ServerConfig) -> AttributionServer:
    return AttributionServer(config)
