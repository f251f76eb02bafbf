"""The MCP server: one tool per pipeline step (from ``steps.STEPS``), jobs, resources, prompts.

No analysis happens here. A tool call validates its arguments (unknown keys refused, errors
worded as the CLI words them), resolves the workspace inside the root, checks the resource
limits and the step's inputs (``StepSpec.check``), and then either runs the step in a worker
thread (seconds) or starts it as a background job (minutes).
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import json
import logging
import sys
import sysconfig
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError, create_model

from attribution_analysis import __version__
from attribution_analysis.errors import AttributionError, ParameterError
from attribution_analysis.frontends.output import error_payload
from attribution_analysis.server import prefetch, preload
from attribution_analysis.server.config import ServerConfig, shorten
from attribution_analysis.server.jobs import TERMINAL, JobManager
from attribution_analysis.server.models import (
    CancelJobArguments,
    GetJobArguments,
    JobList,
    JobState,
    ListJobsArguments,
    ListRunsArguments,
    RunList,
    ToolArguments,
    WaitSeconds,
    WorkspaceName,
)
from attribution_analysis.steps import STEPS, StepSpec, execute
from attribution_analysis.workspace import Workspace

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
# Where pyproject's data-files put SKILL.md and references/ in an installed (non-editable)
# environment, under its data prefix.
SHARE = ("share", "attribution-analysis")
POLL_SECONDS = 0.25
READABLE_FOLDERS = ("raw", "analysis", "reports")
TEXT_SUFFIXES = {".json", ".csv", ".md", ".html", ".txt", ".svg"}

INSTRUCTIONS = """\
Bayesian MMM (PyMC-Marketing) and allocation of channel contributions to campaigns or HCPs.
Read the resource attribution://skill first: the workflow, decision rules and guardrails.
Every number comes from a tool, with its interval; never compute statistics yourself.
Long steps (fit_mmm, validate_model, allocate) return a job id: poll get_job.
"""

Body = Callable[[Any, dict[str, Any], Context], Awaitable[dict[str, Any]]]


# Steps after which a fit usually comes: when one succeeds, a job worker imports the fitting
# libraries while the agent reads the answer, and after validate_data compiles a default
# fit's model of that workspace (``JobManager.warm_worker``).
BEFORE_A_FIT = frozenset({"import_data", "validate_data"})


def skill_locations() -> list[Path]:
    """Where SKILL.md and references/ may be, in order: the source tree (a checkout or an
    editable install), then the copy a wheel installs under the environment's data prefix
    (system or virtual environment, then the user scheme of ``pip install --user``)."""
    schemes = dict.fromkeys(
        [sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")]
    )
    return [REPO, *(Path(sysconfig.get_path("data", s)).joinpath(*SHARE) for s in schemes)]


def find_skill(locations: Sequence[Path]) -> Path | None:
    """The first folder holding SKILL.md; a warning (on stderr, never the stdio transport)
    when none does, since the agent then misses its instructions."""
    for folder in locations:
        if (folder / "SKILL.md").is_file():
            return folder
    logger.warning(
        "SKILL.md and references/ were not found (looked in %s); the attribution://skill "
        "and attribution://references/* resources are not served.",
        ", ".join(str(f) for f in locations),
    )
    return None


class DeferredValidation(FuncMetadata):
    """Leaves argument validation to the tool body, which words errors as the CLI does
    (``seed: Input should be a valid integer``); the SDK's own validation would answer with
    pydantic's raw text (model name, documentation links). The published input schema is
    still ``arg_model``'s, and JSON-encoded values are still decoded as the SDK does.

    Why not the public ``Extension.intercept_tool_call`` (mcp 2.3) with tools registered by
    ``MCPServer.add_tool``: the interceptor can refuse bad arguments in the CLI's words, but
    ``add_tool`` derives the input schema from the function's signature on ``ArgModelBase``
    (no ``extra='forbid'``) and takes no model or schema, so ``additionalProperties: false``
    cannot be published; and the tool body then receives only the SDK's re-validated keyword
    arguments, defaults filled in, while the step's own model must validate what the caller
    gave (``Context`` keeps the raw arguments private). Hence these internals, and the
    ``mcp>=2.3,<2.4`` pin in pyproject.toml."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        return {"arguments": self.pre_parse_json(arguments_to_validate)}


def _message(exc: AttributionError | ValidationError, model: type[BaseModel] | None = None) -> str:
    """``exc`` worded for a tool caller, whole: ``GuardedTool`` cuts what reaches a client.
    ``model``: the arguments' model, whose field descriptions word a refused value's fix."""
    return error_payload(exc, "mcp", model)["message"]


def _describe(exc: BaseException) -> str:
    """An unexpected exception in one line for the client: its type and message (cut),
    never its traceback (that goes to the server's log)."""
    # A ValidationError here is e.g. an answer that breaks its own schema: worded field by
    # field, as the CLI words them, not as pydantic's raw report.
    text = (
        error_payload(exc, "mcp")["message"]
        if isinstance(exc, ValidationError)
        else str(exc).strip()
    )
    return shorten(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


class GuardedTool(Tool):
    """A tool whose every error reaches the client as a short, non-empty message.

    The SDK answers a crash (any exception other than ``ToolError``) with the bare text
    ``Error executing tool <name>`` and logs it only through its own logger; a client then
    cannot tell a full disk from a bug. Here the crash is logged with its traceback (to
    stderr: never the stdio transport) and the client gets its type and message; and no
    error text, expected or not, is longer than ``shorten`` allows."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False):
        try:
            return await super().run(arguments, context, convert_result=convert_result)
        except UnexpectedToolError as exc:
            cause: BaseException = exc
            while isinstance(cause, UnexpectedToolError) and cause.__cause__ is not None:
                cause = cause.__cause__
            logger.error(
                "tool %s failed unexpectedly",
                self.name,
                exc_info=(type(cause), cause, cause.__traceback__),
            )
            raise ToolError(
                f"Error executing tool {self.name}: internal error ({_describe(cause)}); "
                "the server's log has the details."
            ) from None
        except ToolError as exc:
            text = str(exc)
            if not text.partition(f"Error executing tool {self.name}")[2].strip(": "):
                text = f"Error executing tool {self.name}: the tool failed without a message."
            if shorten(text) != str(exc):
                raise ToolError(shorten(text)) from exc.__cause__
            raise


class StaticTokenVerifier:
    """The SDK's ``TokenVerifier`` hook (mcp.server.auth) for one shared bearer token.

    It fits a static token: ``MCPServer(token_verifier=..., auth=AuthSettings(...))`` wraps
    the streamable-HTTP endpoint in the SDK's ``RequireAuthMiddleware`` (401 with a
    ``WWW-Authenticate: Bearer`` header for a missing or wrong token) and binds each session
    to the credential that opened it, so no middleware of our own is needed. The token is
    compared in constant time, as bytes (``hmac.compare_digest`` refuses non-ASCII str)."""

    CLIENT_ID = "attribution-mcp-token"

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode("utf-8", "replace"), self._token):
            return AccessToken(token=token, client_id=self.CLIENT_ID, scopes=[])
        return None

    def __repr__(self) -> str:  # never the token
        return f"{type(self).__name__}(***)"


# AuthSettings requires an issuer URL; with no OAuth provider and no resource_server_url
# the SDK serves no OAuth route, so it is never published nor used.
STATIC_TOKEN_AUTH = AuthSettings(issuer_url="http://127.0.0.1", resource_server_url=None)


def _argument_bytes(arguments: dict[str, Any]) -> int:
    return len(json.dumps(arguments, ensure_ascii=False, default=str).encode())


def _annotations(
    title: str, *, read_only: bool, destructive: bool = False, idempotent: bool = True
) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


def _tool(
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
    model: type[ToolArguments],
    answer: type[BaseModel],
    body: Body,
    max_argument_bytes: int,
) -> Tool:
    """A tool whose arguments are validated against ``model`` (extra keys refused) and
    whose answer is checked against, and published as, ``answer``."""

    # The keyword is DeferredValidation's: the SDK calls call(arguments=..., ctx=...).
    async def call(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        # The SDK hands over the arguments decoded, never their raw bytes: their size is
        # measured re-encoded (linear, milliseconds for a megabyte), before any other work.
        size = _argument_bytes(arguments)
        if size > max_argument_bytes:
            raise ToolError(
                _message(
                    ParameterError(
                        f"the arguments of this call are {size:,} bytes as JSON, over this "
                        f"server's limit of {max_argument_bytes:,} bytes.",
                        fix="put large inputs in the workspace (raw/ or analysis/) and name "
                        "them, or start the server with a larger --max-argument-bytes.",
                    )
                )
            )
        try:
            validated = model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(_message(exc, model)) from None
        return await body(validated, arguments, ctx)

    return GuardedTool(
        fn=call,
        name=name,
        title=title,
        description=description,
        parameters=model.model_json_schema(by_alias=True),
        fn_metadata=DeferredValidation(arg_model=model, output_model=answer),
        is_async=True,
        context_kwarg="ctx",
        annotations=annotations,
    )


def step_arguments(spec: StepSpec) -> type[ToolArguments]:
    """The tool's arguments: the workspace, the step's own fields (descriptions, bounds and
    defaults kept) and, for background steps, how long to wait."""
    fields: dict[str, Any] = {"workspace": (WorkspaceName, ...)}
    for name, info in spec.params.model_fields.items():
        fields[name] = (info.annotation, copy.copy(info))
    if spec.background:
        fields["wait_seconds"] = (WaitSeconds, 0.0)
    return create_model(f"{spec.name}_arguments", __base__=ToolArguments, **fields)


def step_job_state(spec: StepSpec) -> type[JobState]:
    """A background step's job, with its ``result`` typed as the step's own answer (so the
    published output schema says what a finished job carries)."""
    return create_model(
        f"{spec.name}_job",
        __base__=JobState,
        result=(
            spec.answer | None,
            Field(description=f"The answer of {spec.name} once the job succeeded."),
        ),
    )


class AttributionServer:
    """Holds the configuration and the job manager the tools share."""

    def __init__(self, config: ServerConfig, auth_token: str | None = None) -> None:
        """``auth_token``: the bearer token every streamable-HTTP request must carry (None:
        no authentication, for loopback only; the stdio transport never uses it)."""
        self.config = config
        self.jobs = JobManager(config.root, config.max_jobs, on_success=prefetch.request)
        self.mcp = MCPServer(
            name="attribution-analysis",
            title="Attribution analysis (MMM + EM allocation)",
            version=__version__,
            instructions=INSTRUCTIONS,
            tools=[*(self._step_tool(spec) for spec in STEPS), *self._job_tools()],
            token_verifier=StaticTokenVerifier(auth_token) if auth_token else None,
            auth=STATIC_TOKEN_AUTH if auth_token else None,
        )
        self._add_resources(find_skill(skill_locations()))
        self._add_prompts()

    # ----- step tools ------------------------------------------------------------------------
    def _step_tool(self, spec: StepSpec) -> Tool:
        async def body(args: Any, given: dict[str, Any], ctx: Context) -> dict[str, Any]:
            return await self._call(spec, args, given, ctx)

        return _tool(
            spec.name,
            spec.title,
            spec.summary,
            _annotations(
                spec.title,
                read_only=spec.query,
                destructive=spec.destructive,
                idempotent=spec.idempotent,
            ),
            step_arguments(spec),
            step_job_state(spec) if spec.background else spec.answer,
            body,
            self.config.max_argument_bytes,
        )

    async def _call(
        self, spec: StepSpec, args: Any, given: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        # The step's own model validates what the caller gave (its model validators, e.g.
        # 'transforms or transforms_file', run there), so its defaults apply as in the CLI.
        fields = {k: v for k, v in given.items() if k in spec.params.model_fields}
        try:
            folder = self.config.locate(args.workspace, must_exist=not spec.creates_workspace)
            params = spec.params.model_validate(fields)
            self.config.check_limits(spec.sampling(params), folder)
            if spec.background:
                # Paths and inputs are checked here, so a call that cannot work is a tool
                # error now rather than a job that fails once its process has started.
                await anyio.to_thread.run_sync(self._check_inputs, spec, folder, params)
                job = self.jobs.start(spec.name, args.workspace, folder, params.model_dump_json())
                return await self._wait(job.job_id, args.wait_seconds, ctx)
            answer = await anyio.to_thread.run_sync(self._run_inline, spec, folder, params)
            if spec.name in BEFORE_A_FIT:
                try:
                    # Only validated data can be compiled for (import_data validates
                    # nothing): after import_data the worker only imports.
                    ahead = folder if spec.name == "validate_data" else None
                    await anyio.to_thread.run_sync(self.jobs.warm_worker, ahead)
                except Exception:  # the step succeeded; a worker that cannot start is no news
                    logger.warning("could not start a job worker ahead", exc_info=True)
            return answer
        except (AttributionError, ValidationError) as exc:
            raise ToolError(_message(exc, spec.params)) from None

    @staticmethod
    def _check_inputs(spec: StepSpec, folder: Path, params: BaseModel) -> None:
        preload.wait()  # the checks import too (server/preload.py)
        with contextlib.redirect_stdout(sys.stderr):
            spec.check(Workspace.open(folder), params)

    @staticmethod
    def _run_inline(spec: StepSpec, folder: Path, params: BaseModel) -> dict[str, Any]:
        preload.wait()  # never beside the start-up warm-up (server/preload.py)
        # stdout is the stdio transport: library chatter must not reach it.
        prefetch.before(spec.name, folder)  # the report draws its charts itself
        with contextlib.redirect_stdout(sys.stderr):
            if spec.creates_workspace:
                workspace = Workspace.create(folder)
            else:
                workspace = Workspace.open(folder)
                spec.check(workspace, params)
            answer = execute(spec, workspace, params, front_end="mcp")
        prefetch.request(spec.name, folder)  # the report's charts, drawn while the agent reads
        return answer

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
                await ctx.report_progress(job.progress or 0.0, job.total, job.message or job.status)
            await anyio.sleep(POLL_SECONDS)
        view = job.view()
        if job.status not in TERMINAL:
            view["next"] = "call get_job with this job_id (wait_seconds > 0 to block)."
        return view

    def _job_tools(self) -> list[Tool]:
        async def get_job(args: GetJobArguments, given: dict[str, Any], ctx: Context):
            try:
                return await self._wait(args.job_id, args.wait_seconds, ctx)
            except AttributionError as exc:
                raise ToolError(_message(exc)) from None

        async def cancel_job(args: CancelJobArguments, given: dict[str, Any], ctx: Context):
            try:
                job = await anyio.to_thread.run_sync(self.jobs.cancel, args.job_id)
            except AttributionError as exc:
                raise ToolError(_message(exc)) from None
            return job.view()

        async def list_jobs(args: ListJobsArguments, given: dict[str, Any], ctx: Context):
            return {"jobs": await anyio.to_thread.run_sync(self.jobs.recent, args.limit)}

        async def list_runs(args: ListRunsArguments, given: dict[str, Any], ctx: Context):
            from attribution_analysis.registry import RunRegistry

            def read() -> list[dict[str, Any]]:
                registry = RunRegistry(self.config.workspace(args.workspace))
                return registry.list_runs(args.step, args.limit)

            try:
                return {"runs": await anyio.to_thread.run_sync(read)}
            except AttributionError as exc:
                raise ToolError(_message(exc)) from None

        limit = self.config.max_argument_bytes
        return [
            _tool(
                "get_job",
                "Job status",
                "Status, progress, result or error of a background job (survives a server "
                "restart). With wait_seconds > 0 it waits for the job to end and streams "
                "progress notifications. Instant; reads only.",
                _annotations("Job status", read_only=True),
                GetJobArguments,
                JobState,
                get_job,
                limit,
            ),
            _tool(
                "cancel_job",
                "Cancel a job",
                "Stop a running background job; it writes nothing (outputs are only ever "
                "committed whole). Instant.",
                _annotations("Cancel a job", read_only=False),
                CancelJobArguments,
                JobState,
                cancel_job,
                limit,
            ),
            _tool(
                "list_jobs",
                "List jobs",
                "Recent background jobs on this server, newest first. Instant; reads only.",
                _annotations("List jobs", read_only=True),
                ListJobsArguments,
                JobList,
                list_jobs,
                limit,
            ),
            _tool(
                "list_runs",
                "List step runs",
                "The workspace's audit trail: every step run with parameters, input hashes, "
                "outputs, status and duration. Instant; reads only.",
                _annotations("List step runs", read_only=True),
                ListRunsArguments,
                RunList,
                list_runs,
                limit,
            ),
        ]

    # ----- resources and prompts ------------------------------------------------------------
    def _add_resources(self, skill_dir: Path | None) -> None:
        server = self
        if skill_dir is not None:
            skill = skill_dir / "SKILL.md"

            @self.mcp.resource(
                "attribution://skill",
                name="SKILL.md",
                title="The attribution-analysis skill",
                description="Workflow, decision rules and guardrails; read first.",
                mime_type="text/markdown",
            )
            def read_skill() -> str:
                return skill.read_text()

            for path in sorted((skill_dir / "references").glob("*.md")):
                self._add_reference(path)

        # {+path} spans several segments (reports/figures/x.svg, analysis/model/...); the
        # SDK's default ResourceSecurity refuses '..' and absolute values before this runs,
        # and Workspace.resolve refuses anything (a symlink too) that leaves the workspace.
        @self.mcp.resource(
            "workspace://{workspace}/{folder}/{+path}",
            name="workspace-output",
            title="Workspace output file",
            description="A file under raw/ (the inputs, e.g. raw/import_mapping.json), "
            "analysis/ or reports/ of a workspace, subfolders included (JSON, CSV, Markdown, "
            "HTML, SVG as text; others as bytes).",
        )
        def read_output(workspace: str, folder: str, path: str) -> str | bytes:
            if folder not in READABLE_FOLDERS:
                raise ResourceError(f"only {', '.join(READABLE_FOLDERS)} can be read.")
            relative = f"{folder}/{path}"
            try:
                target = server.config.workspace(workspace).resolve(relative)
            except AttributionError as exc:
                raise ResourceError(shorten(_message(exc))) from None
            if not target.is_file():
                raise ResourceError(shorten(f"{relative} does not exist in '{workspace}'."))
            return target.read_text() if target.suffix in TEXT_SUFFIXES else target.read_bytes()

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
2. fit_mmm (calibrate=true when analysis/incrementality_results.json exists); it returns a
   job id: call get_job with wait_seconds until it ends. Use quick='map' only for a first look.
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
workspace://{workspace}/analysis/budget_plans/recommended.json; attribution://references/
stakeholder_faq for wording). Lead with what marketing added and which channels earn the most
per unit of spend, each figure with its 90% interval; then the recommended reallocation, its
expected lift with interval and the probability it beats today's plan; then what the model
cannot tell (intra-channel splits are model-based; curves beyond observed spend are
extrapolation); end with the next experiment worth running. No jargon, no figure without
its interval, no number you did not read from a tool or resource.
"""


def build_server(config: ServerConfig, auth_token: str | None = None) -> AttributionServer:
    return AttributionServer(config, auth_token)
