"""Job processes are workers that outlive a job: the next job of the server runs in the same
process (and so reuses what it compiled), except after a cancellation or a crash, where a
fresh process takes over and the cancelled job leaves the workspace as it was."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from attribution_analysis.api import simulate_workspace, validate_data
from attribution_analysis.contracts.simulation import SimulationParams
from attribution_analysis.server import jobs
from attribution_analysis.workspace import Workspace

# 2 chains x 100 draws, no stopping rule, no retry: the cheapest real NUTS fit.
TINY_FIT = json.dumps(
    {
        "sampler": {"draws": 100, "tune": 100, "stop_at_gates": False},
        "retry": False,
        "fallback_to_ridge": False,
        "use_cache": False,
    }
)


def _wait(job: jobs.Job, seconds: float = 180) -> jobs.Job:
    deadline = time.monotonic() + seconds
    while job.status not in jobs.TERMINAL and time.monotonic() < deadline:
        job.updated.wait(0.2)
        job.updated.clear()
    assert job.status in jobs.TERMINAL, f"job still {job.status} after {seconds} s"
    return job


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".attribution" not in p.parts
    }


@pytest.fixture
def manager(tmp_path: Path):
    manager = jobs.JobManager(tmp_path / "root")
    yield manager
    manager.shutdown()


def _workspace(tmp_path: Path, name: str, seed: int) -> Path:
    root = tmp_path / name
    simulate_workspace(root, SimulationParams(kind="mmm", seed=seed, weeks=60, channels=2))
    validate_data(Workspace.open(root))
    return root


# Slow (about a minute on 2 busy cores): two real fits in a spawned worker. The default suite
# keeps the cheap check below that a worker takes the next job.
@pytest.mark.slow
def test_a_second_fit_of_the_same_structure_reuses_the_first_jobs_compiled_model(manager, tmp_path):
    first_ws, second_ws = _workspace(tmp_path, "a", 3), _workspace(tmp_path, "b", 4)
    first = _wait(manager.start("fit_mmm", "a", first_ws, TINY_FIT))
    assert first.status == "succeeded", first.error
    assert first.result["compile_reused"] is False
    second = _wait(manager.start("fit_mmm", "b", second_ws, TINY_FIT))
    assert second.status == "succeeded", second.error
    # The same process ran both jobs, and it had the model compiled already.
    assert second.process.pid == first.process.pid
    assert second.result["compile_reused"] is True
    assert second.result["fit_key"] != first.result["fit_key"]


@pytest.mark.slow  # about 30 s: a warm worker, then a fit cancelled while it compiles
def test_a_cancelled_jobs_worker_is_not_reused_and_the_workspace_is_unchanged(manager, tmp_path):
    ws = _workspace(tmp_path, "a", 3)
    warm = _wait(manager.start("validate_data", "a", ws, "{}"))
    assert warm.status == "succeeded", warm.error
    before = _files(ws)
    job = manager.start("fit_mmm", "a", ws, TINY_FIT)
    # Negative control of the reuse: the fit went to the warm worker...
    assert job.process.pid == warm.process.pid
    deadline = time.monotonic() + 60
    while "compil" not in job.message and time.monotonic() < deadline:
        job.updated.wait(0.2)
        job.updated.clear()
    assert "compil" in job.message, job.message
    manager.cancel(job.job_id)
    assert _wait(job, 30).status == "cancelled", job.error
    assert not job.process.is_alive()
    assert _files(ws) == before
    # ...and the next job gets a fresh process.
    after = _wait(manager.start("validate_data", "a", ws, "{}"))
    assert after.status == "succeeded", after.error
    assert after.process.pid != warm.process.pid


def test_a_refused_input_keeps_the_worker_and_idle_workers_are_bounded(tmp_path):
    manager = jobs.JobManager(tmp_path / "root", max_jobs=1)
    try:
        ws = Workspace.create(tmp_path / "empty").root
        # fit_mmm before validate_data: refused with the CLI's message, not a crash.
        refused = _wait(manager.start("fit_mmm", "e", ws, TINY_FIT))
        assert refused.status == "failed" and refused.error["code"] != "internal_error"
        again = _wait(manager.start("fit_mmm", "e", ws, TINY_FIT))
        assert again.process.pid == refused.process.pid
        assert len(manager.idle) == 1
    finally:
        manager.shutdown()


def _loaded(pid: int, library: str) -> bool:
    """Whether a process has a library's compiled extension mapped (Linux)."""
    return library in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc (Linux)")
def test_a_worker_started_ahead_has_the_fitting_libraries_when_the_next_job_comes(tmp_path):
    manager = jobs.JobManager(tmp_path / "root", max_jobs=1)
    try:
        assert manager.warm_worker()
        assert not manager.warm_worker()  # one is idle already
        (warm,) = manager.idle
        ws = Workspace.create(tmp_path / "empty").root
        # A fit refused before it imports anything (the data were never validated)...
        job = _wait(manager.start("fit_mmm", "e", ws, TINY_FIT))
        assert job.status == "failed" and job.error["code"] != "internal_error"
        # ...ran in the worker started ahead, which had imported nutpie (and PyMC) first.
        assert job.process.pid == warm.process.pid
        assert _loaded(job.process.pid, "nutpie")
    finally:
        manager.shutdown()
    assert not manager.warm_worker()  # none after the server stopped

    # --no-compile-ahead: the worker is started, and asked to compile nothing.
    plain = jobs.JobManager(tmp_path / "root3", max_jobs=1)
    plain.compile_ahead = False
    try:
        assert plain.warm_worker(ws)
        (started,) = plain.idle
        assert not started.busy_compiling() and started.compiled_for is None
    finally:
        plain.shutdown()

    # Negative control: a worker started by the job itself has not imported nutpie.
    cold = jobs.JobManager(tmp_path / "root2", max_jobs=1)
    try:
        job = _wait(cold.start("fit_mmm", "e", ws, TINY_FIT))
        assert job.status == "failed"
        assert not _loaded(job.process.pid, "nutpie")
    finally:
        cold.shutdown()


@pytest.mark.anyio
async def test_validating_data_through_the_server_starts_a_worker_ahead(tmp_path, monkeypatch):
    from mcp import Client

    from attribution_analysis.server.app import build_server
    from attribution_analysis.server.config import ServerConfig

    started: list[str] = []
    server = build_server(ServerConfig.at(tmp_path / "root"))
    monkeypatch.setattr(
        server.jobs, "warm_worker", lambda folder=None: started.append(folder) or True
    )
    try:
        async with Client(server.mcp) as client:
            await client.call_tool("simulate_workspace", {"workspace": "w", "kind": "mmm"})
            assert started == []  # negative control: simulating is not a step before a fit
            result = await client.call_tool("validate_data", {"workspace": "w"})
            assert not result.is_error
            # ...and the worker is asked to compile that workspace's default fit ahead.
            assert started == [tmp_path / "root" / "w"]
    finally:
        server.jobs.shutdown()


# Slow (about a minute on 2 busy cores): a real compile ahead, a job beside it, a real fit.
@pytest.mark.slow
def test_a_worker_compiles_the_default_fit_ahead_and_only_that_fit_waits_for_it(manager, tmp_path):
    ws = _workspace(tmp_path, "a", 3)
    assert manager.warm_worker(ws)
    (ahead,) = manager.idle
    assert ahead.busy_compiling()
    assert not manager.warm_worker(tmp_path / "b")  # not beside it for another workspace
    # Negative control of the routing: a job that compiles nothing (here a MAP fit) does not
    # queue behind the compile; it gets a worker of its own.
    quick = _wait(manager.start("fit_mmm", "a", ws, json.dumps({"quick": "map"})))
    assert quick.status == "succeeded", quick.error
    assert quick.process.pid != ahead.process.pid
    # The fit it compiled for goes to it, waits for the compile and reuses the model (the
    # sampler settings differ from the defaults; the compiled structure does not).
    fit = manager.start("fit_mmm", "a", ws, TINY_FIT)
    if ahead.busy_compiling():
        assert "compiled ahead" in fit.message
    fit = _wait(fit, 300)
    assert fit.status == "succeeded", fit.error
    assert fit.process.pid == ahead.process.pid
    assert fit.result["compile_reused"] is True
    # The compile ahead ended and the worker is free; validated again, the workspace is
    # compiled for again (a look-up now) by that same worker.
    assert not ahead.busy_compiling()
    assert manager.warm_worker(ws) and ahead.compiled_for == str(ws)


@pytest.mark.slow  # a real fit, the refits compiled ahead, then the validation
def test_a_fits_worker_compiles_the_validation_refits_and_the_validation_goes_to_it(
    manager, tmp_path
):
    ws = _workspace(tmp_path, "a", 4)
    fit = _wait(manager.start("fit_mmm", "a", ws, TINY_FIT), 300)
    assert fit.status == "succeeded", fit.error
    (worker,) = manager.idle
    assert (worker.compiled_for, worker.compiled_tool) == (str(ws), "validate_model")
    # Negative control of the routing: an allocation sent meanwhile runs elsewhere.
    if worker.busy_compiling():
        other = _wait(manager.start("allocate", "a", ws, json.dumps({"source": "mmm"})))
        assert other.process.pid != worker.process.pid
    validation = manager.start("validate_model", "a", ws, json.dumps({}))
    validation = _wait(validation, 600)
    assert validation.status == "succeeded", validation.error
    assert validation.process.pid == fit.process.pid  # the worker holding the refits
    assert not worker.busy_compiling()


class _Alive:
    def is_alive(self) -> bool:
        return True


def test_a_worker_compiling_ahead_takes_only_a_fit_of_its_workspace_that_compiles():
    import multiprocessing

    pending = multiprocessing.Value("i", 1)
    worker = jobs.Worker(process=_Alive(), conn=None, pending=pending, compiled_for="/ws/a")
    fit = json.dumps({})
    assert worker.busy_compiling()
    assert worker.takes("fit_mmm", "/ws/a", fit)
    assert worker.takes("fit_mmm", "/ws/a", TINY_FIT)  # sampler settings: same structure
    assert not worker.takes("fit_mmm", "/ws/b", fit)  # another workspace
    assert not worker.takes("validate_model", "/ws/a", fit)  # another step
    for compiles_nothing in ({"quick": "map"}, {"method": "ridge"}):
        assert not worker.takes("fit_mmm", "/ws/a", json.dumps(compiles_nothing))
    assert not worker.takes("fit_mmm", "/ws/a", json.dumps({"sampler": {"draws": "x"}}))
    pending.value = 0  # the compile ended: any job, and still the first choice for that fit
    assert not worker.busy_compiling()
    assert worker.takes("validate_model", "/ws/b", fit)
    assert worker.holds_model_for("fit_mmm", "/ws/a", fit)
    assert not worker.holds_model_for("fit_mmm", "/ws/a", json.dumps({"quick": "map"}))


def test_compiling_ahead_skips_fits_that_compile_nothing_and_refuses_unvalidated_data(tmp_path):
    from attribution_analysis.contracts.mmm import FitMMMParams
    from attribution_analysis.errors import MissingInputError
    from attribution_analysis.mmm.fit import precompile

    ws = Workspace.create(tmp_path / "empty")
    for params in (
        {"quick": "map"},
        {"method": "ridge"},
        {"sampler": {"backend": "pymc"}},
        {"config": {"saturation": "auto"}},
    ):
        assert precompile(ws, FitMMMParams.model_validate(params)) is None
    # Negative control: a default fit would compile, so it gets as far as the data.
    with pytest.raises(MissingInputError, match="nothing validated"):
        precompile(ws)


def test_the_model_compiled_ahead_is_the_one_the_agents_next_fit_samples(
    validated_with_lift_test, monkeypatch
):
    """With lift tests in the workspace SKILL.md has the agent fit with calibrate=true: the
    structure compiled ahead is that fit's (the compile itself is stubbed: a key check)."""
    from attribution_analysis import layout
    from attribution_analysis.contracts.mmm import FitMMMParams
    from attribution_analysis.mmm import fit, sampling

    compiled: list[str] = []
    monkeypatch.setattr(
        sampling.COMPILED, "get_or_compile", lambda key, *_: compiled.append(key) or (None, True)
    )
    ws = Workspace.open(validated_with_lift_test)

    def structure_of(calibrate: bool) -> str:
        params = FitMMMParams(calibrate=calibrate)
        data, mmm, hashes = fit.prepare(ws, params)
        return fit._structure(data, mmm, params, hashes.get(layout.LIFT_TESTS.path))

    calibrated, plain = structure_of(True), structure_of(False)
    assert calibrated != plain  # negative control: the two fits compile different models
    assert fit.precompile(ws) == calibrated and compiled == [calibrated]
    ws.resolve(layout.LIFT_TESTS.path).unlink()  # no lift tests: the plain fit's model
    assert fit.precompile(ws) == plain and compiled == [calibrated, plain]


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, message: object) -> None:
        self.sent.append(message)


def test_a_second_compile_ahead_of_the_same_workspace_queues_and_of_another_is_dropped(
    tmp_path,
):
    import multiprocessing

    manager = jobs.JobManager(tmp_path / "root")
    pipe = _Pipe()
    busy = jobs.Worker(
        process=_Alive(), conn=pipe, pending=multiprocessing.Value("i", 1), compiled_for="/a"
    )
    manager.idle.append(busy)
    # Validated again while its compile runs: the request queues behind it.
    assert manager.warm_worker(Path("/a"))
    assert busy.pending.value == 2 and pipe.sent == [(jobs.PRECOMPILE, "/a", "fit_mmm")]
    # Another workspace: not beside it (negative control of the queueing).
    assert not manager.warm_worker(Path("/b"))
    assert busy.pending.value == 2 and len(pipe.sent) == 1 and manager.idle == [busy]
    manager.idle.clear()


def test_a_worker_compiling_ahead_is_never_retired_as_surplus():
    import multiprocessing

    def worker(pending: int) -> jobs.Worker:
        return jobs.Worker(process=_Alive(), conn=None, pending=multiprocessing.Value("i", pending))

    compiling, older, newer = worker(1), worker(0), worker(0)
    assert jobs._surplus([compiling, older, newer], 1) == [older, newer]
    assert jobs._surplus([older, compiling, newer], 2) == [older]
    assert jobs._surplus([compiling, newer], 1) == [newer]
    assert jobs._surplus([compiling], 0) == []  # over the size until its compile ends
    compiling.pending.value = 0  # negative control: once it ended, the oldest goes first
    assert jobs._surplus([compiling, older, newer], 1) == [compiling, older]


def test_a_worker_compiling_refits_ahead_takes_only_the_validation_of_its_workspace():
    import multiprocessing

    pending = multiprocessing.Value("i", 1)
    worker = jobs.Worker(
        process=_Alive(),
        conn=None,
        pending=pending,
        compiled_for="/ws/a",
        compiled_tool="validate_model",
    )
    assert worker.takes("validate_model", "/ws/a", json.dumps({}))
    assert worker.takes("validate_model", "/ws/a", json.dumps({"backtest_periods": 8}))
    assert worker.takes("validate_model", "/ws/a", json.dumps({"sensitivity_refit": False}))
    # A validation that makes no refit compiled ahead need not wait for the compile.
    for none_of_them in ({"backtest_periods": 8}, {"backtest_periods": None}):
        params = json.dumps({**none_of_them, "sensitivity_refit": False})
        assert not worker.takes("validate_model", "/ws/a", params)
    assert not worker.takes("validate_model", "/ws/b", json.dumps({}))  # another workspace
    assert not worker.takes("fit_mmm", "/ws/a", json.dumps({}))  # another step
    assert not worker.takes("allocate", "/ws/a", json.dumps({}))
    pending.value = 0  # the compile ended: any job
    assert worker.takes("fit_mmm", "/ws/b", json.dumps({}))


def test_a_fits_worker_is_asked_for_the_validation_refits_only_after_a_fit_succeeded(tmp_path):
    import multiprocessing

    manager = jobs.JobManager(tmp_path / "root")

    def ended(tool: str, outcome: tuple[str, dict] | None, others: tuple[str, ...] = ()):
        pipe = _Pipe()
        worker = jobs.Worker(process=_Alive(), conn=pipe, pending=multiprocessing.Value("i", 0))
        job = jobs.Job("j", tool, "a", "running", "now", {}, folder=Path("/ws/a"))
        manager.jobs = {"j": job} | {
            f"o{i}": jobs.Job(f"o{i}", "allocate", "b", status, "now", {})
            for i, status in enumerate(others)
        }
        manager.idle = [worker]
        manager._compile_next_ahead(job, outcome, worker)
        return pipe.sent, worker

    sent, worker = ended("fit_mmm", ("succeeded", {}))
    assert sent == [(jobs.PRECOMPILE, "/ws/a", "validate_model")]
    assert worker.busy_compiling() and worker.compiled_tool == "validate_model"
    assert ended("fit_mmm", ("succeeded", {}), others=("succeeded",))[0]  # ended: no matter
    # Negative controls: a failed fit, another step, a job running beside it, the flag off.
    assert ended("fit_mmm", ("failed", {}))[0] == []
    assert ended("fit_mmm", None)[0] == []
    assert ended("allocate", ("succeeded", {}))[0] == []
    assert ended("fit_mmm", ("succeeded", {}), others=("running",))[0] == []
    manager.compile_ahead = False
    assert ended("fit_mmm", ("succeeded", {}))[0] == []
    manager.idle.clear()
