"""The ``fit_many`` step: every member workspace of a portfolio fitted by ``fit_mmm``, in
parallel on a Dask cluster.

Each member is fitted by the one runner (:func:`runner.run_step`) on a Dask worker, exactly
as ``fit_mmm`` alone would fit it: the member's own writer lock, run registry and all-or-
nothing commit. A member that fails (not validated, bad data, a crash, its worker killed)
is reported with its error and leaves nothing written in it; the other members still land.

Compile reuse comes from where the work runs, not from a cache of our own: a Dask worker is
a long-lived process, and ``mmm.sampling.COMPILED`` (nutpie models keyed by
``mmm.build.structure_key``: channels, controls, periods, model configuration) lives as long
as it does, so a worker compiles a structure once and swaps the next member's data in.

Here because it runs a step (``fit_mmm``) through the runner: a domain module may not import
the step layer (``tests/test_layers.py``). Dask is imported inside the functions that need
it: it is the optional ``[scale]`` extra, and no other step pays for its import.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from attribution_analysis import layout
from attribution_analysis.compute import StepContext, StepOutput
from attribution_analysis.contracts.mmm import FitMMMAnswer, FitMMMParams
from attribution_analysis.contracts.portfolio import (
    FitManyAnswer,
    FitManyParams,
    MemberFit,
    PortfolioFits,
    PortfolioFitsRecord,
)
from attribution_analysis.errors import AttributionError, ParameterError, arg
from attribution_analysis.progress import Progress, report
from attribution_analysis.provenance import build_metadata
from attribution_analysis.steps import _rendered as rendered  # how execute words answers
from attribution_analysis.steps import step
from attribution_analysis.workspace import ANALYSIS, INTERNAL, RAW, REPORTS, Workspace, json_bytes

if TYPE_CHECKING:
    from distributed import Client

STEP = "fit_many"
LOCAL = "LocalCluster"
# How long to wait for a reachable scheduler to have a worker.
CONNECT_SECONDS = 10.0
# A member's progress is forwarded at most this often (each message goes through the
# scheduler); its start and end always are.
PROGRESS_EVERY_SECONDS = 1.0
POLL_SECONDS = 0.25
# Our LocalCluster's scheduler does not retry a task whose worker died: a fit that killed
# its worker (out of memory, say) would kill the next one too, after minutes each. A user's
# own scheduler keeps its own setting (Dask's default retries such a task 3 times).
LOCAL_SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 0}
# Members still waiting are reported failed once the cluster has had no worker this long (a
# LocalCluster restarts a dead worker within seconds).
NO_WORKER_SECONDS = 120.0
# The portfolio workspace's own folders: its record, run registry and lock live there.
OWN_FOLDERS = (RAW, ANALYSIS, REPORTS, INTERNAL)


# ----- members ------------------------------------------------------------------------------
def member_folders(ws: Workspace, params: FitManyParams) -> list[tuple[str, Path]]:
    """The members as (name relative to the portfolio folder, resolved folder), in the order
    given (``workspaces``) or sorted (``pattern``). A member may not exist (it is reported
    failed); a name that leaves the portfolio folder, the folder itself, a duplicate or a
    pattern that matches nothing is refused before any work."""
    if params.pattern is not None:
        if os.path.isabs(params.pattern) or ".." in Path(params.pattern).parts:
            raise ParameterError(
                f"{arg('pattern')} '{params.pattern}' reaches outside the portfolio folder "
                f"{ws.root}.",
                fix="give a glob relative to the portfolio folder, e.g. 'brand_*'.",
                parameter="pattern",
            )
        matches = sorted(
            p
            for p in ws.root.glob(params.pattern)
            if p.is_dir() and not _own_folder(p.relative_to(ws.root).as_posix())
        )
        if not matches:
            raise ParameterError(
                f"{arg('pattern')} '{params.pattern}' matches no folder in {ws.root}.",
                fix="give a glob of the member folders relative to the portfolio folder "
                "(e.g. 'brand_*'), or list them in " + arg("workspaces") + ".",
                parameter="pattern",
            )
        names = [p.relative_to(ws.root).as_posix() for p in matches]
        field = "pattern"
    else:
        names, field = list(params.workspaces), "workspaces"
    members: list[tuple[str, Path]] = []
    seen: dict[Path, str] = {}
    for name in names:
        folder = ws.resolve(name)  # refuses absolute paths and escapes, symlinks included
        if folder == ws.root or _own_folder(ws.relative(folder)):
            raise ParameterError(
                f"'{name}' in {arg(field)} is the portfolio folder itself or one of its own "
                f"folders ({', '.join(OWN_FOLDERS)}), not a member.",
                fix="name the member workspaces inside the portfolio folder.",
                parameter=field,
            )
        if folder in seen:
            raise ParameterError(
                f"'{name}' and '{seen[folder]}' in {arg(field)} are the same workspace; two "
                "fits of one workspace at once would wait on each other's lock.",
                fix="name each member once.",
                parameter=field,
            )
        seen[folder] = name
        members.append((name, folder))
    return members


def _own_folder(relative: str) -> bool:
    """Whether a folder of the portfolio is the portfolio workspace's own (where its record
    and run registry live), or hidden: never a member."""
    first = relative.split("/", 1)[0]
    return first in OWN_FOLDERS or first.startswith(".")


def require_members(ws: Workspace, params: FitManyParams) -> None:
    """The cheap check before a job starts: the members can be named (see member_folders).
    Whether each is fit to be fitted is checked per member, so one bad member fails alone."""
    member_folders(ws, params)


def _check_member(name: str, folder: Path, params: FitMMMParams) -> None:
    """fit_mmm's own input checks (validated data, lift tests), here so a member that cannot
    be fitted is reported without taking a worker."""
    from attribution_analysis.errors import WorkspaceError

    if not folder.is_dir():
        raise WorkspaceError(
            f"the member folder '{name}' does not exist in the portfolio folder.",
            fix="check the name, or create and validate the member workspace first.",
        )
    step("fit_mmm").check(Workspace.open(folder), params)


# ----- one member, on a Dask worker ---------------------------------------------------------
def fit_member(name: str, folder: str, params_json: str, topic: str) -> dict[str, Any]:
    """Fit one member with fit_mmm on this Dask worker: its ``MemberFit`` as JSON data.

    Every failure the fit raises is caught and returned: a member's failure is its own. Its
    progress goes to the client as events on ``topic``."""
    from attribution_analysis.runner import run_step

    worker = _this_worker()
    progress = _MemberProgress(worker, topic, name)
    progress.send(0.0, "starting")
    start = time.perf_counter()
    try:
        if not Path(folder).is_dir():  # seen from the client but not from this worker
            raise AttributionError(
                problem=f"the worker {worker.address if worker else ''} does not see the member "
                f"folder {folder}.",
                fix="every Dask worker must see the portfolio folder at the same path (a shared "
                "file system).",
                code="workspace",
            )
        params = FitMMMParams.model_validate_json(params_json)
        answer = run_step(step("fit_mmm"), Workspace.open(folder), params, progress)
    except Exception as exc:
        outcome = MemberFit(workspace=name, status="failed", error=_error(exc))
    else:
        assert isinstance(answer, FitMMMAnswer)
        outcome = _succeeded(name, answer)
    outcome.seconds = round(time.perf_counter() - start, 3)
    outcome.worker = worker.address if worker is not None else None
    progress.send(1.0, outcome.status)
    return outcome.model_dump(mode="json")


def _this_worker() -> Any:
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:  # called outside a worker (a direct call)
        return None


class _MemberProgress:
    """fit_mmm's progress callback on a worker: forwarded to the client's topic as events,
    at most every ``PROGRESS_EVERY_SECONDS`` (``send`` forwards at once: start and end)."""

    def __init__(self, worker: Any, topic: str, name: str) -> None:
        self.worker, self.topic, self.name = worker, topic, name
        self.last = float("-inf")

    def __call__(self, done: float, total: float, message: str) -> None:
        if time.monotonic() - self.last >= PROGRESS_EVERY_SECONDS:
            self.send(min(1.0, done / total) if total else 0.0, message)

    def send(self, share: float, message: str) -> None:
        self.last = time.monotonic()
        if self.worker is not None:
            event = {"member": self.name, "share": share, "message": message}
            self.worker.log_event(self.topic, event)


def _succeeded(name: str, answer: FitMMMAnswer) -> MemberFit:
    sampled = answer.method == "bayesian_nuts"
    return MemberFit(
        workspace=name,
        status="succeeded",
        fit_key=answer.fit_key,
        method=answer.method,
        gates=("passed" if answer.for_decisions else "failed") if sampled else "not_applicable",
        for_decisions=answer.for_decisions,
        cached=answer.cached,
        compile_reused=answer.compile_reused,
        outputs=list(answer.outputs),
    )


def _error(exc: BaseException) -> dict[str, Any]:
    """A member's error as its answer carries it. Argument and step markers are kept: the
    front end that shows the answer words them (``steps.execute``)."""
    if isinstance(exc, AttributionError):
        fix = f" Fix: {exc.fix}" if exc.fix else ""
        return {
            "code": exc.code,
            "message": f"{exc.problem}{fix}",
            "step": exc.step,
            "file": exc.file,
        }
    if isinstance(exc, ValidationError):
        from attribution_analysis.frontends.output import error_payload

        payload = error_payload(exc)
        return {"code": payload["code"], "message": payload["message"], "step": "fit_mmm"}
    # A crash inside the fit: its type and message, never a traceback (the worker logs it).
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"[:500]}


def _worker_died(exc: BaseException, name: str) -> dict[str, Any]:
    return {
        "code": "worker_died",
        "message": f"the Dask worker fitting this member died ({type(exc).__name__}: "
        f"{str(exc)[:300]}). Nothing was written in it: fit_mmm commits its outputs whole or "
        "not at all, and the member's run registry shows the run as interrupted. Fix: run "
        f'fit_many again with {arg("workspaces")} ["{name}"]; if its worker dies again, give '
        "the workers more memory (fewer workers per machine).",
        "step": "fit_mmm",
    }


# ----- the cluster --------------------------------------------------------------------------
@contextlib.contextmanager
def _child_processes_allowed() -> Iterator[None]:
    """Let this process start LocalCluster's worker processes even when it is daemonic.

    A server job runs in a daemonic process (it must end with the server) and
    ``multiprocessing`` refuses children to a daemonic process. The workers end with this
    process all the same: each exits when the pipe from its parent closes
    (``distributed.process.AsyncProcess._immediate_exit_when_closed``). So the flag is
    lifted while the cluster lives and put back afterwards."""
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemonic = bool(config.get("daemon"))
    if daemonic:
        config["daemon"] = False
    try:
        yield
    finally:
        if daemonic:
            config["daemon"] = True


@contextlib.contextmanager
def cluster_client(params: FitManyParams) -> Iterator[tuple[Client, str]]:
    """A Dask client and the scheduler's name: the scheduler at ``dask_scheduler`` (an
    address nobody answers at is refused by ``cluster.dask_client``, naming it and how to
    start one), or a LocalCluster of ``workers`` processes started here and stopped after."""
    import dask

    from attribution_analysis.cluster import dask_client

    address = params.dask_scheduler
    local = address is None
    with (
        _child_processes_allowed() if local else contextlib.nullcontext(),
        dask.config.set(LOCAL_SCHEDULER_CONFIG if local else {}),
        # One fit per worker at a time: nutpie runs its chains on threads of its own.
        dask_client(address, n_workers=params.workers, threads_per_worker=1) as client,
    ):
        if not local:
            try:
                client.wait_for_workers(1, timeout=CONNECT_SECONDS)
            except TimeoutError:
                raise ParameterError(
                    f"the Dask scheduler at {address} given as {arg('dask_scheduler')} has "
                    "no worker to fit on.",
                    fix=f"start workers with `dask worker {address}` on machines that see the "
                    "portfolio folder at the same path.",
                    parameter="dask_scheduler",
                ) from None
        yield client, address or LOCAL


# ----- the step -----------------------------------------------------------------------------
def compute(ctx: StepContext, params: FitManyParams) -> StepOutput:
    """The fit_many step: each member fitted by fit_mmm on the cluster; the portfolio's
    record of the run in its own ``analysis/portfolio_fits.json``."""
    start = time.perf_counter()
    ws, progress = ctx.ws, ctx.progress
    members = member_folders(ws, params)
    member_params = params.member_params()
    outcomes: dict[str, MemberFit] = {}
    runnable: list[tuple[str, Path]] = []
    for name, folder in members:
        try:
            _check_member(name, folder, member_params)
        except AttributionError as exc:
            exc.step = exc.step or "fit_mmm"
            outcomes[name] = MemberFit(workspace=name, status="failed", error=_error(exc))
        else:
            runnable.append((name, folder))
    scheduler, workers = params.dask_scheduler or LOCAL, 0
    if runnable:
        report(progress, 0, len(members), f"starting the Dask cluster ({scheduler})")
        with cluster_client(params) as (client, scheduler):
            workers = len(client.nthreads())
            fitted = _fit_on_cluster(
                client, scheduler, runnable, member_params, len(members) - len(runnable), progress
            )
        outcomes.update(fitted)
    ordered = [outcomes[name] for name, _ in members]
    record = PortfolioFitsRecord(
        scheduler=scheduler,
        workers=workers,
        wall_seconds=round(time.perf_counter() - start, 3),
        succeeded=sum(m.status == "succeeded" for m in ordered),
        failed=sum(m.status == "failed" for m in ordered),
        members=ordered,
    )
    summary = PortfolioFits(
        metadata=build_metadata(
            step=STEP,
            input_hashes={},
            seed=params.seed,
            sampler=params.sampler.model_dump(mode="json"),
            run_id=ctx.run_id,
        ),
        params=params.model_dump(mode="json"),
        # The file is read by no front end in particular: markers in the plain wording.
        **rendered(record.model_dump(mode="json"), "python"),
    )
    files = {layout.PORTFOLIO_FITS.path: json_bytes(summary.model_dump(mode="json"))}
    answer = FitManyAnswer(step=STEP, outputs=list(files), **record.model_dump())
    return StepOutput(answer, files)


def _fit_on_cluster(
    client: Client,
    scheduler: str,
    members: list[tuple[str, Path]],
    params: FitMMMParams,
    already_done: int,
    progress: Progress | None,
) -> dict[str, MemberFit]:
    """Fit every member, one task per member, and collect the outcomes.

    Tasks are handed out as worker threads free up, never queued on a worker: a worker that
    dies then takes down the one member it was fitting, not members waiting behind it (the
    scheduler's own queueing only holds back large groups of tasks, not a portfolio of 8).
    Progress is reported from this thread only (a job's progress goes down a pipe that two
    threads must not write at once)."""
    from distributed import wait

    topic = f"{STEP}-{uuid.uuid4().hex[:12]}"
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    client.subscribe_topic(topic, lambda event: events.put(event[1]))
    total = float(already_done + len(members))
    params_json = params.model_dump_json()
    waiting = list(members)
    running: dict[Any, str] = {}
    outcomes: dict[str, MemberFit] = {}
    shares: dict[str, float] = {}
    reached = 0.0  # progress only ever goes forward
    no_worker_since: float | None = None
    try:
        while waiting or running:
            try:
                capacity = sum(client.nthreads().values())
            except (OSError, TimeoutError) as exc:  # the scheduler is gone (CommClosedError...)
                lost = [*running.values(), *(name for name, _ in waiting)]
                for name in lost:
                    error = _scheduler_lost(exc, scheduler, name)
                    outcomes[name] = MemberFit(workspace=name, status="failed", error=error)
                break
            while waiting and len(running) < capacity:
                name, folder = waiting.pop(0)
                key = f"{topic}-{len(members) - len(waiting)}"  # 1, 2, ... as submitted
                future = client.submit(
                    fit_member, name, str(folder), params_json, topic, key=key, pure=False
                )
                running[future] = name
            if not running:  # no worker (a restart under way, or all of them gone)
                no_worker_since = no_worker_since or time.monotonic()
                if time.monotonic() - no_worker_since > NO_WORKER_SECONDS:
                    for name, _ in waiting:
                        outcomes[name] = MemberFit(
                            workspace=name, status="failed", error=_no_worker(name)
                        )
                    break
                time.sleep(POLL_SECONDS)
                continue
            no_worker_since = None
            try:
                done, _ = wait(list(running), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            message = None
            while not events.empty():
                event = events.get()
                if event["member"] not in outcomes:  # a late message from a finished member
                    shares[event["member"]] = float(event["share"])
                    message = f"{event['member']}: {event['message']}"
            for future in done:
                name = running.pop(future)
                outcomes[name] = _outcome(future, name)
                shares[name] = 1.0
                message = f"{name}: {outcomes[name].status}"
                future.release()  # the worker may drop the result now
            if message is not None:
                reached = max(reached, already_done + sum(shares.values()))
                finished = already_done + len(outcomes)
                report(
                    progress,
                    reached,
                    total,
                    f"{message} ({finished} of {int(total)} members done)",
                )
    finally:
        with contextlib.suppress(OSError, TimeoutError):  # a scheduler already gone
            client.unsubscribe_topic(topic)
    return outcomes


def _scheduler_lost(exc: BaseException, scheduler: str, name: str) -> dict[str, Any]:
    return {
        "code": "scheduler_lost",
        "message": f"the Dask scheduler ({scheduler}) stopped answering before this member's "
        f"fit was collected ({type(exc).__name__}: {str(exc)[:200]}). A fit that was running "
        "either committed whole in the member (its analysis/mmm_fit.json says so) or wrote "
        "nothing. Fix: restart the scheduler and its workers, then run fit_many again for "
        f"the members that failed ({arg('workspaces')}); members already fitted are taken "
        "from fit_mmm's cache.",
    }


def _no_worker(name: str) -> dict[str, Any]:
    return {
        "code": "no_worker",
        "message": f"the Dask cluster had no worker for {NO_WORKER_SECONDS:.0f} s, so this "
        "member was never started; nothing was written in it. Fix: check that the workers "
        f"are up, then run fit_many again for the members that failed ({arg('workspaces')}).",
    }


def _outcome(future: Any, name: str) -> MemberFit:
    """A finished task's MemberFit; a task that died with its worker (or was lost with the
    scheduler) is that member's failure."""
    from distributed import KilledWorker

    try:
        return MemberFit.model_validate(future.result())
    except KilledWorker as exc:
        return MemberFit(workspace=name, status="failed", error=_worker_died(exc, name))
    except Exception as exc:  # cancelled (scheduler lost), or the task itself broke
        return MemberFit(workspace=name, status="failed", error=_error(exc))
