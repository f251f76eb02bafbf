"""``fit_many``: a portfolio of workspaces fitted by fit_mmm on a Dask cluster.

Each member's output is checked against what fit_mmm itself defines (the fit key recomputed
from the member's own data by ``mmm.build.fit_key``, the manifest's contract, the member's
run registry), not against fit_many's own answer. A member that cannot be fitted must fail
alone while the others land (the negative control: its workspace stays untouched). The fits
are fit_mmm's ridge method on 60 weeks x 2 channels, the cheapest real fit the step has, on
an in-process cluster (threads: no worker process to start); the one check that needs a
worker process to kill is marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from attribution_analysis import layout
from attribution_analysis.api import validate_data
from attribution_analysis.contracts.mmm import FitMMMResult
from attribution_analysis.contracts.portfolio import FitManyParams, PortfolioFits
from attribution_analysis.errors import ParameterError, WorkspaceError
from attribution_analysis.registry import RunRegistry
from attribution_analysis.steps import execute, step
from attribution_analysis.workspace import Workspace

pytest.importorskip("distributed", reason="the [scale] extra (distributed) is not installed")

SPEC = step("fit_many")
# The cheapest real fit_mmm (no sampling, no MAP compile): enough to show the plumbing.
RIDGE = {"method": "ridge"}
VALIDATED = ("brand_a", "brand_b")
UNVALIDATED = "brand_c"  # simulated raw files, never validated: fit_mmm refuses it


@pytest.fixture(scope="module")
def portfolio_root(simulated_root, tmp_path_factory) -> Path:
    """Two validated members of one structure (60 weeks x 2 channels, different worlds) and
    one member that was never validated."""
    root = tmp_path_factory.mktemp("portfolio")
    for seed, name in enumerate((*VALIDATED, UNVALIDATED), start=3):
        shutil.copytree(simulated_root(kind="mmm", seed=seed, weeks=60, channels=2), root / name)
    for name in VALIDATED:
        validate_data(Workspace.open(root / name))
    return root


@pytest.fixture
def portfolio(portfolio_root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "portfolio"
    shutil.copytree(portfolio_root, target)
    return target


@pytest.fixture(scope="module")
def scheduler() -> str:
    """A one-worker, one-thread cluster in this process: members are fitted one at a time."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def _fit_key_of(member: Path, params: FitManyParams) -> str:
    """fit_mmm's cache key computed from the member's own data, without fitting."""
    from attribution_analysis.mmm.build import fit_key
    from attribution_analysis.mmm.fit import fit_settings
    from attribution_analysis.mmm.panel import load_model_data

    config = params.config
    data = load_model_data(
        Workspace.open(member),
        config.target,
        config.use_trend,
        config.use_holidays,
        config.use_external_factors,
    )
    return fit_key(data, config, fit_settings(params.member_params(), dict(data.input_hashes)))


def _written(member: Path) -> list[str]:
    analysis = member / "analysis"
    return sorted(p.relative_to(member).as_posix() for p in analysis.rglob("*") if p.is_file())


def test_members_land_as_fit_mmm_writes_them_and_a_broken_member_fails_alone(
    portfolio: Path, scheduler: str
):
    params = FitManyParams(
        workspaces=[*VALIDATED, UNVALIDATED, "brand_missing"], dask_scheduler=scheduler, **RIDGE
    )
    before_broken = _written(portfolio / UNVALIDATED)
    messages: list[tuple[float, float, str]] = []

    answer = execute(SPEC, Workspace.open(portfolio), params, lambda *m: messages.append(m))

    members = {m["workspace"]: m for m in answer["members"]}
    assert list(members) == [*VALIDATED, UNVALIDATED, "brand_missing"]  # the order given
    assert (answer["succeeded"], answer["failed"]) == (2, 2)
    for name in VALIDATED:
        member, folder = members[name], portfolio / name
        assert member["status"] == "succeeded", member
        manifest = json.loads((folder / layout.FIT.path).read_text())
        result = FitMMMResult.model_validate(manifest["result"])
        # The key fit_mmm derives from this member's own data and the shared settings.
        assert member["fit_key"] == result.fit_key == _fit_key_of(folder, params)
        assert result.method == member["method"] == "ridge_bootstrap"
        assert (folder / result.model_path).is_file()
        assert sorted(member["outputs"]) == sorted([layout.FIT.path, result.model_path])
        assert member["gates"] == "not_applicable" and member["seconds"] > 0
        runs = RunRegistry(Workspace.open(folder)).list_runs("fit_mmm")
        assert [r["status"] for r in runs] == ["succeeded"]
        assert sorted(runs[0]["outputs"]) == sorted(member["outputs"])
    assert members["brand_a"]["fit_key"] != members["brand_b"]["fit_key"]  # two worlds

    # Negative control: the unvalidated member is refused by fit_mmm's own check, named,
    # and left exactly as it was; a missing folder is named too.
    broken = members[UNVALIDATED]
    assert broken["status"] == "failed" and broken["fit_key"] is None
    assert broken["error"]["code"] == "missing_input"
    assert layout.DATA_VALIDATION.path in broken["error"]["message"]
    assert _written(portfolio / UNVALIDATED) == before_broken
    assert members["brand_missing"]["error"]["code"] == "workspace"
    assert "does not exist" in members["brand_missing"]["error"]["message"]

    # The portfolio's own record, in the portfolio folder only.
    summary = (portfolio / layout.PORTFOLIO_FITS.path).read_bytes()
    record = PortfolioFits.model_validate_json(summary)
    assert [m.model_dump(mode="json") for m in record.members] == answer["members"]
    assert answer["outputs"] == [layout.PORTFOLIO_FITS.path]
    for name in VALIDATED:
        assert not (portfolio / name / layout.PORTFOLIO_FITS.path).exists()

    # Progress names each fitted member, never goes back, and ends at the member count.
    shares = [done for done, _, _ in messages]
    assert shares == sorted(shares) and shares[-1] == messages[-1][1] == 4
    assert all(any(m.startswith(f"{name}:") for _, _, m in messages) for name in VALIDATED)


def test_an_unreachable_scheduler_is_named_and_nothing_is_written(
    portfolio: Path, monkeypatch: pytest.MonkeyPatch
):
    import attribution_analysis.cluster as cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)  # nobody answers: no need to wait 10 s
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    params = FitManyParams(workspaces=list(VALIDATED), dask_scheduler=address, **RIDGE)
    with pytest.raises(ParameterError) as caught:
        execute(SPEC, Workspace.open(portfolio), params)
    assert address in caught.value.message and "dask scheduler" in caught.value.fix
    assert caught.value.parameter == "dask_scheduler"
    assert not (portfolio / layout.PORTFOLIO_FITS.path).exists()
    for name in VALIDATED:
        assert not (portfolio / name / layout.FIT.path).exists()


def test_members_are_named_inside_the_portfolio_folder(portfolio: Path):
    from attribution_analysis.portfolio import member_folders

    ws = Workspace.open(portfolio)
    (portfolio / "analysis").mkdir()  # the portfolio's own (where its record goes)
    for pattern in ("brand_*", "*"):
        found = member_folders(ws, FitManyParams(pattern=pattern))
        assert [name for name, _ in found] == [*VALIDATED, UNVALIDATED], pattern
    refused = {
        "no match": (FitManyParams(pattern="market_*"), ParameterError),
        "outside": (FitManyParams(workspaces=["../elsewhere"]), WorkspaceError),
        "itself": (FitManyParams(workspaces=["."]), ParameterError),
        "its own folder": (FitManyParams(workspaces=["analysis"]), ParameterError),
        "twice": (FitManyParams(workspaces=["brand_a", "brand_a/"]), ParameterError),
    }
    for label, (params, error) in refused.items():
        with pytest.raises(error):
            SPEC.check(ws, params)  # before any job starts
            pytest.fail(f"{label}: not refused")
    with pytest.raises(ValueError, match="workspaces or as pattern"):
        FitManyParams(workspaces=["brand_a"], pattern="brand_*")


@pytest.mark.slow
def test_a_worker_killed_mid_fit_fails_its_member_only_and_writes_nothing(portfolio: Path):
    """The default LocalCluster (worker processes): the worker fitting the first member to
    take its writer lock is killed with SIGKILL half a second later; that member is reported
    failed with nothing written in it, and the other member is fitted on the restarted
    worker."""
    killed: dict[str, int] = {}

    def kill_first_fit() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            for name in VALIDATED:
                holder = portfolio / name / ".attribution" / "writer.json"
                try:
                    pid = int(json.loads(holder.read_text())["pid"])
                except (OSError, ValueError, KeyError):
                    continue
                assert pid != os.getpid()  # a worker process, never this one
                time.sleep(0.5)  # into the fit, past taking the lock
                os.kill(pid, signal.SIGKILL)
                killed[name] = pid
                return
            time.sleep(0.05)

    before = {name: _written(portfolio / name) for name in VALIDATED}
    watcher = threading.Thread(target=kill_first_fit, daemon=True)
    watcher.start()
    params = FitManyParams(workspaces=list(VALIDATED), workers=1, **RIDGE)
    answer = execute(SPEC, Workspace.open(portfolio), params)
    watcher.join(timeout=5)

    assert len(killed) == 1, "the watcher never saw a fit start"
    (victim,) = killed
    (survivor,) = set(VALIDATED) - {victim}
    members = {m["workspace"]: m for m in answer["members"]}
    assert members[victim]["status"] == "failed"
    assert members[victim]["error"]["code"] == "worker_died"
    assert members[survivor]["status"] == "succeeded"
    # Nothing half-written: no manifest, no posterior, no temporary file in the victim.
    assert _written(portfolio / victim) == before[victim]
    assert _written(portfolio / survivor) != before[survivor]  # the control: it did land
    runs = RunRegistry(Workspace.open(portfolio / victim)).list_runs("fit_mmm")
    assert [r["status"] for r in runs] == ["interrupted"]


@pytest.mark.slow
def test_as_a_server_job_it_starts_its_cluster_and_reports_progress_per_member(
    portfolio: Path,
):
    """The MCP path: a job runs in a daemonic worker process, which multiprocessing forbids
    to have children; fit_many's LocalCluster still starts its worker processes there, each
    member's progress reaches the job, and the answer is the job's result."""
    from attribution_analysis.server import jobs

    manager = jobs.JobManager(portfolio.parent)
    params = FitManyParams(workspaces=[*VALIDATED, UNVALIDATED], workers=1, **RIDGE)
    job = manager.start("fit_many", "portfolio", portfolio, params.model_dump_json())
    seen: set[str] = set()
    deadline = time.monotonic() + 600
    while job.status not in jobs.TERMINAL and time.monotonic() < deadline:
        job.updated.wait(timeout=1)
        job.updated.clear()
        seen.add(job.message)
    try:
        assert job.status == "succeeded", job.error
        statuses = {m["workspace"]: m["status"] for m in job.result["members"]}
        assert statuses == {"brand_a": "succeeded", "brand_b": "succeeded", "brand_c": "failed"}
        assert job.result["scheduler"] == "LocalCluster" and job.result["workers"] == 1
        assert all(any(m.startswith(f"{name}:") for m in seen) for name in VALIDATED), seen
    finally:
        manager.shutdown()
