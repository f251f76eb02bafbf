"""The one step runner: it alone writes, all or nothing, and checks what a step answers."""

from __future__ import annotations

import sys
import types

import pytest
from pydantic import BaseModel

from attribution_analysis.compute import StepOutput
from attribution_analysis.contracts.common import StepAnswer
from attribution_analysis.errors import ParameterError
from attribution_analysis.registry import RunRegistry
from attribution_analysis.runner import run_step
from attribution_analysis.steps import StepSpec
from attribution_analysis.workspace import Workspace


class _Params(BaseModel):
    mode: str = "ok"


class _Answer(StepAnswer):
    pass


def _compute(ctx, params: _Params) -> StepOutput:
    if params.mode == "commit":  # a compute function that tries to write by itself
        ctx.ws.commit({"analysis/sneaky.json": b"{}"})
    files = {"analysis/a.json": b'{"a": 1}', "analysis/b.json": b'{"b": 2}'}
    if params.mode == "refuse":
        return StepOutput(
            _Answer(step="demo", outputs=list(files)),
            files,
            refusal=ParameterError("the record is written, then the call is refused."),
        )
    if params.mode == "wrong_answer":
        return StepOutput(StepAnswer(step="demo", outputs=[]), files)  # type: ignore[arg-type]
    return StepOutput(_Answer(step="demo", outputs=list(files)), files, {"raw/x.csv": "abc"})


@pytest.fixture
def spec(monkeypatch) -> StepSpec:
    module = types.ModuleType("runner_test_step")
    module.compute = _compute  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "runner_test_step", module)
    return spec_that_writes()


def spec_that_writes() -> StepSpec:
    return StepSpec(
        name="demo",
        title="Demo",
        description="A step for the runner's tests.",
        params=_Params,
        answer=_Answer,
        compute="runner_test_step:compute",
    )


def test_the_runner_commits_every_file_and_records_the_run(spec, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    answer = run_step(spec, ws, _Params())
    assert isinstance(answer, _Answer)
    assert (ws.root / "analysis" / "a.json").read_bytes() == b'{"a": 1}'
    (run,) = RunRegistry(ws).list_runs(step="demo")
    assert run["status"] == "succeeded"
    assert run["outputs"] == ["analysis/a.json", "analysis/b.json"]
    assert run["input_hashes"] == {"raw/x.csv": "abc"}


def test_a_compute_function_cannot_write_by_itself(spec, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(RuntimeError, match=r"must not call Workspace\.commit"):
        run_step(spec, ws, _Params(mode="commit"))
    assert not (ws.root / "analysis" / "sneaky.json").exists()
    assert not (ws.root / "analysis" / "a.json").exists()


def test_a_refusal_is_raised_after_its_record_is_committed_and_names_the_step(spec, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(ParameterError) as caught:
        run_step(spec, ws, _Params(mode="refuse"))
    assert caught.value.step == "demo"
    assert (ws.root / "analysis" / "b.json").exists()


def test_an_answer_of_another_shape_is_a_programming_error(spec, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(TypeError, match="not _Answer"):
        run_step(spec, ws, _Params(mode="wrong_answer"))


def test_a_query_answers_while_a_fit_holds_the_writer_lock_and_leaves_no_record(spec, tmp_path):
    import subprocess

    from attribution_analysis.contracts.budget import ListBudgetPlansParams
    from attribution_analysis.errors import WorkspaceBusyError
    from attribution_analysis.steps import step

    ws = Workspace.create(tmp_path / "ws")
    hold = (
        "import sys, time\n"
        "from attribution_analysis.workspace import Workspace\n"
        "with Workspace.open(sys.argv[1]).writer('fit_mmm', 'run0000holding'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(ws.root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        answer = run_step(step("list_budget_plans"), ws, ListBudgetPlansParams())
        assert answer.plans == []
        # Negative control: a step that writes is refused while the lock is held.
        with pytest.raises(WorkspaceBusyError, match="run0000holding"):
            run_step(spec, ws, _Params())
    finally:
        holder.kill()
        holder.wait()
    assert not RunRegistry(ws).list_runs("list_budget_plans")
