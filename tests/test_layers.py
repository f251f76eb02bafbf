"""No module imports upward: the domain (data, mmm, allocation, optimize, paths, report,
simulate) and the ground floor (contracts, layout, compute, workspace, ...) never import the
step layer or the front ends, not even inside a function."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "src" / "attribution_analysis"
UPPER = ("steps", "runner", "api", "frontends", "server", "cli", "demo", "schemas")
LOWER_PACKAGES = ("data", "mmm", "allocation", "optimize", "paths", "report", "simulate")
GROUND = ("contracts", "layout", "compute", "workspace", "registry", "provenance", "errors")


def _lower_modules():
    for name in (*LOWER_PACKAGES, "contracts"):
        yield from sorted((PACKAGE / name).rglob("*.py"))
    for name in GROUND[1:]:
        yield PACKAGE / f"{name}.py"


def _imports(path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", list(_lower_modules()), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_upward(path):
    upward = [
        module
        for module in _imports(path)
        if module.startswith("attribution_analysis.") and module.split(".")[1] in UPPER
    ]
    assert not upward, f"{path.relative_to(PACKAGE)} imports {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    """Negative control: a lazy import of the step table inside a function is found."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from attribution_analysis.steps import step\n")
    assert "attribution_analysis.steps" in _imports(module)
