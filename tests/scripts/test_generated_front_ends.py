"""The command-line front ends are generated from the step table: every step of
``steps.STEPS`` is an ``attribution`` subcommand and a ``scripts/`` script of the same name,
each parameter an option, and a refused value is named as the caller typed it (``--flag`` on
the command line, the argument for an MCP tool). Asserted against ``steps.STEPS``, so a new
step or parameter is covered without editing this file."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from attribution_analysis.cli import app
from attribution_analysis.frontends.options import FieldOption, field_options, flag
from attribution_analysis.frontends.output import error_payload
from attribution_analysis.steps import STEPS, StepSpec
from tests.conftest import REPO

runner = CliRunner()
NAMES = [spec.name for spec in STEPS]
NOT_STEPS = {"version", "runs", "serve", "demo", "schemas"}


def _script(name: str):
    """The script's module, loaded from scripts/ without running it."""
    location = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / name)
    assert location is not None and location.loader is not None
    module = importlib.util.module_from_spec(location)
    location.loader.exec_module(module)
    return module


def _bad_value(option: FieldOption) -> str | None:
    """A value the model must refuse for this field, or None when any text is valid."""
    if option.kind == "json":
        return "{not json"
    if option.choices:
        return "no-such-choice"
    if option.metavar in ("INTEGER", "NUMBER", "YYYY-MM-DD"):
        return "not-a-number"
    return None


def _required(spec: StepSpec) -> dict[str, str]:
    """A valid value for each required parameter (its first choice), so that the error
    under test is the only one."""
    required = {o.name: o.choices[0] for o in field_options(spec.params) if o.required}
    assert all(required.values()), f"{spec.name}: a required parameter without choices"
    return required


def _refusable(spec: StepSpec) -> list[tuple[FieldOption, str]]:
    return [(o, bad) for o in field_options(spec.params) if (bad := _bad_value(o)) is not None]


def _help(arguments: list[str]) -> str:
    result = runner.invoke(app, arguments, terminal_width=400, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_step_is_a_subcommand_and_a_script_of_the_same_name():
    listed = _help(["--help"])
    for name in NAMES:
        assert f" {name} " in listed, name
    scripts = {path.stem for path in (REPO / "scripts").glob("*.py")}
    assert scripts == set(NAMES), "one script per step, named as the step, and no other"
    assert NOT_STEPS.isdisjoint(NAMES)


@pytest.mark.parametrize("spec", STEPS, ids=NAMES)
def test_every_parameter_is_an_option_of_the_subcommand(spec: StepSpec):
    text = _help([spec.name, "--help"])
    assert "--workspace" in text
    for option in field_options(spec.params):
        assert option.flag == flag(option.name)
        assert option.flag in text, (spec.name, option.flag)
        if option.kind == "flag":
            assert f"--no-{option.flag[2:]}" in text


@pytest.mark.parametrize("spec", STEPS, ids=NAMES)
def test_every_script_runs_its_own_step_with_the_same_options(spec: StepSpec, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no option name cut short in the help table
    module = _script(f"{spec.name}.py")
    assert module.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert f"scripts/{spec.name}.py" in text
    for option in field_options(spec.params):
        assert option.flag in text, (spec.name, option.flag)


def test_options_left_out_leave_the_model_defaults():
    """No default is restated: an option not typed is not passed to the model."""
    from attribution_analysis.frontends.options import given_values

    for spec in STEPS:
        assert given_values(spec.params, {o.name: None for o in field_options(spec.params)}) == {}


@pytest.mark.parametrize("spec", STEPS, ids=NAMES)
def test_a_refused_value_names_the_flag_and_exits_2(spec: StepSpec, tmp_path):
    refusable = _refusable(spec)
    if not refusable:
        pytest.skip(f"{spec.name}: every parameter takes any text")
    required = [part for n, v in _required(spec).items() for part in (flag(n), v)]
    for option, bad in refusable:
        arguments = [spec.name, "--workspace", str(tmp_path), *required, option.flag, bad]
        result = runner.invoke(app, arguments)
        assert result.exit_code == 2, (spec.name, option.flag, result.output)
        payload = json.loads(result.stdout)
        assert payload["status"] == "error"
        assert option.flag in payload["error"]["message"], (spec.name, payload)
        assert payload["error"]["parameter"] == option.name


def _mcp_error(
    model: type[BaseModel], name: str, value: Any, given: dict[str, Any] | None = None
) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**(given or {}), name: value})
    return error_payload(caught.value, "mcp")


@pytest.mark.parametrize("spec", STEPS, ids=NAMES)
def test_the_mcp_wording_names_the_argument_not_the_flag(spec: StepSpec):
    for option, bad in _refusable(spec):
        value: Any = 12 if option.kind == "json" else bad  # no list, dict or model is 12
        error = _mcp_error(spec.params, option.name, value, _required(spec))
        assert error["message"].startswith(f"{option.name}"), error
        assert option.flag not in error["message"]


def test_bad_values_name_the_flag_in_the_script_and_the_argument_for_mcp(tmp_path, capsys):
    module = _script("optimize_budget.py")
    code = module.main(["--workspace", str(tmp_path), "--total-budget", "lots"])
    out = capsys.readouterr().out
    assert code == 2
    assert "--total-budget" in json.loads(out)["error"]["message"]
    error = _mcp_error(STEPS[NAMES.index("optimize_budget")].params, "total_budget", "lots")
    assert error["message"].startswith("total_budget") and "--total-budget" not in error["message"]


def test_json_options_take_json_or_a_file(tmp_path):
    from attribution_analysis.frontends.options import given_values

    spec = STEPS[NAMES.index("allocate")]
    path = tmp_path / "covariates.json"
    path.write_text('["objective"]')
    assert given_values(spec.params, {"covariates": '["a", "b"]'}) == {"covariates": ["a", "b"]}
    assert given_values(spec.params, {"covariates": f"@{path}"}) == {"covariates": ["objective"]}
    assert given_values(spec.params, {"transforms_file": "none"}) == {"transforms_file": None}
    assert given_values(spec.params, {"accelerate": False}) == {"accelerate": False}


def test_a_script_answers_one_json_object_and_exit_2_as_a_subprocess(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "draft_faq.py"),
            "--workspace",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    payload = json.loads(done.stdout)
    assert payload["status"] == "error" and payload["error"]["code"] == "workspace"


def test_a_misspelled_argument_is_answered_with_the_closest_one():
    """An agent's typo (``wait_second``) names the real argument; nothing close, no guess."""
    from attribution_analysis.contracts.budget import OptimizeBudgetParams

    for given, mcp, cli in (
        ("horizon_period", "horizon_periods", "--horizon-periods"),
        ("totl_budget", "total_budget", "--total-budget"),
    ):
        with pytest.raises(ValidationError) as caught:
            OptimizeBudgetParams.model_validate({given: 1})
        assert (
            f"did you mean {mcp}?"
            in error_payload(caught.value, "mcp", OptimizeBudgetParams)["message"]
        )
        assert (
            f"did you mean {cli}?"
            in error_payload(caught.value, "cli", OptimizeBudgetParams)["message"]
        )
    with pytest.raises(ValidationError) as caught:
        OptimizeBudgetParams.model_validate({"zzz": 1})
    assert "did you mean" not in error_payload(caught.value, "mcp", OptimizeBudgetParams)["message"]


def test_a_model_step_on_a_workspace_without_data_points_to_the_import(tmp_path, capsys):
    from attribution_analysis.frontends.commands import run_script
    from attribution_analysis.workspace import Workspace

    Workspace.create(tmp_path / "empty")
    code = run_script("optimize_budget", ["--workspace", str(tmp_path / "empty")])
    error = json.loads(capsys.readouterr().out)["error"]
    assert code == 2
    assert "no data yet" in error["message"]
    assert "`python scripts/import_data.py --workspace DIR`" in error["fix"]
