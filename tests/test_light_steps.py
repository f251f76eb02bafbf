"""Inline steps import no heavy library they do not need, and refuse before importing any.

Each check runs the steps as every front end does (``steps.execute``: input checks, compute,
commit) in a fresh interpreter, and reads ``sys.modules`` after each one: a module imported
once stays imported, so one process shows which step pulled it in. A negative control runs
the PyMC route the optimizer used to take (``mmm.loaded.open_fit``) in the same harness and
must be caught. Wall-clock figures are in ``benchmarks/light_steps.py``, not asserted here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attribution_analysis.steps import STEPS

REPO = Path(__file__).resolve().parents[1]
# What a light step must not import: seconds of a fresh process each (PyMC and PyTensor
# together about 2 s, ArviZ-stats 0.4 s, matplotlib 0.3 s on the development machine).
HEAVY = ("pymc", "pytensor", "pymc_marketing", "arviz_stats", "matplotlib")
# Lighter, but still a quarter to half a second each: scipy.stats 0.5 s; xarray 0.15 s, and
# building any xarray object imports dask (0.25 s), writing NetCDF distributed too (0.25 s),
# wherever the scale extra is installed (as in CI).
MIDDLE = ("scipy.stats", "xarray", "dask", "distributed")
# Inline steps whose work itself needs a heavy library, and why.
HEAVY_BY_DESIGN = {
    "generate_report": "draws its figures with matplotlib",
}
OVERRIDE = "import check: the model gate is tested elsewhere"


def probe(cases: list[dict[str, Any]], control: str | None = None) -> dict[str, Any]:
    """Run in a fresh interpreter (see ``_run_probe``): each case's step through the front
    ends' path; per case, the heavy modules it imported and how it ended. ``control``: a
    fitted workspace to open through PyMC afterwards (the negative control)."""
    from attribution_analysis.errors import AttributionError
    from attribution_analysis.steps import execute, step
    from attribution_analysis.workspace import Workspace

    def loaded() -> set[str]:
        return {name for name in (*HEAVY, *MIDDLE) if name in sys.modules}

    out: dict[str, Any] = {"front end": sorted(loaded()), "cases": []}
    for case in cases:
        before = loaded()
        spec = step(case["step"])
        root = Path(case["workspace"])
        ws = Workspace.create(root) if spec.creates_workspace else Workspace.open(root)
        try:
            execute(spec, ws, spec.params.model_validate(case["params"]))
            ended = "answered"
        except AttributionError as exc:
            ended = f"refused: {type(exc).__name__}"
        out["cases"].append(
            {"label": case["label"], "ended": ended, "imported": sorted(loaded() - before)}
        )
    if control is not None:
        before = loaded()  # before the import: loading mmm.loaded imports xarray
        from attribution_analysis.mmm.loaded import open_fit

        open_fit(Workspace.open(control))
        out["control"] = sorted(loaded() - before)
    return out


def _run_probe(cases: list[dict[str, Any]], control: Path | None = None) -> dict[str, Any]:
    code = (
        "import json, sys\n"
        "from tests.test_light_steps import probe\n"
        "print(json.dumps(probe(json.loads(sys.argv[1]), sys.argv[2] or None)))\n"
    )
    argv = [sys.executable, "-c", code, json.dumps(cases), str(control or "")]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _case(label: str, step: str, workspace: Path, **params: Any) -> dict[str, Any]:
    return {"label": label, "step": step, "workspace": str(workspace), "params": params}


def test_hdi_equals_arviz_stats():
    """The NumPy HDI against ArviZ-stats' own (the implementation it replaced), on skewed,
    bimodal, tiny and tied samples."""
    import arviz_stats as azs

    from attribution_analysis.summaries import hdi

    rng = np.random.default_rng(7)
    samples = [
        rng.lognormal(0, 1, 4000),
        np.concatenate([rng.normal(-3, 1, 700), rng.normal(4, 0.5, 300)]),
        rng.normal(size=3),
        np.array([5.0]),
        np.round(rng.normal(size=500), 1),  # ties
        rng.gamma(0.5, 2.0, (2, 250)),  # a (chain, draw) array is flattened
    ]
    for values in samples:
        for prob in (0.5, 0.9, 0.95):
            expected = azs.hdi(values.ravel(), prob=prob)
            assert hdi(values, prob) == (float(expected[0]), float(expected[1]))
    with pytest.raises(ValueError):
        hdi(np.array([]), 0.9)


def test_inline_steps_import_no_heavy_library(validated, simulated_root, tmp_path):
    """Every inline step, or its refusal, on a small fitted workspace: none imports PyMC,
    PyTensor, PyMC-Marketing, ArviZ-stats or matplotlib, nor xarray, dask, distributed or
    scipy.stats (the decomposition included: it reads and writes its NetCDF with h5netcdf);
    and the PyMC route, which imports xarray, is caught."""
    from tests.data.wide_tables import robyn

    inline = {s.name for s in STEPS if s.cost == "inline"}
    raw = tmp_path / "raw"  # simulated, not validated
    shutil.copytree(simulated_root(kind="mmm", seed=3, weeks=60, channels=2), raw)
    fresh = tmp_path / "new"
    control = tmp_path / "control"
    shutil.copytree(validated, control)
    cases = [
        _case("simulate", "simulate_workspace", fresh, kind="mmm", seed=1, weeks=60, channels=2),
        _case("import dry run", "import_data", fresh, content=robyn()),
        _case("optimize unvalidated", "optimize_budget", raw),
        _case("optimize", "optimize_budget", validated, draws=100, override_reason=OVERRIDE),
        _case(
            "optimize bad bounds",
            "optimize_budget",
            validated,
            bounds=[{"channel": "no_such_channel", "max_spend": 1.0}],
            override_reason=OVERRIDE,
        ),
        _case("plans", "list_budget_plans", validated),
        _case("exposure", "build_effective_exposure", validated),
        _case("intraday", "downscale_intraday", validated),
        _case("paths", "attribute_paths", validated),
        _case("faq", "draft_faq", validated),
        _case("validate", "validate_data", validated),
        _case("decompose", "decompose_contributions", validated, override_reason=OVERRIDE),
    ]
    covered = {c["step"] for c in cases}
    assert inline - set(HEAVY_BY_DESIGN) <= covered, "add a case for the new inline step"

    result = _run_probe(cases, control)

    assert result["front end"] == []
    ended = {c["label"]: c["ended"] for c in result["cases"]}
    assert ended["optimize"] == "answered" and ended["faq"] == "answered"
    assert ended["decompose"] == "answered"
    assert ended["optimize unvalidated"].startswith("refused")
    assert ended["optimize bad bounds"] == "refused: ParameterError"
    imported = {c["label"]: c["imported"] for c in result["cases"]}
    assert imported == {label: [] for label in imported}, json.dumps(imported)
    # Negative control: the same harness sees the PyMC-Marketing route's imports, xarray
    # among them (the route the decomposition takes for a posterior without its group).
    assert {"pymc", "pytensor", "pymc_marketing", "xarray"} <= set(result["control"]), result


def warm_probe(cases: list[dict[str, Any]], warm: bool) -> dict[str, Any]:
    """Run in a fresh interpreter: the server's preload (when ``warm``), then each case as
    the front ends run it; per case, the top-level packages it imported (``encodings``
    aside: codec lookups load on first use of a codec, microseconds)."""
    from attribution_analysis.errors import AttributionError
    from attribution_analysis.server import preload
    from attribution_analysis.steps import execute, step
    from attribution_analysis.workspace import Workspace

    def packages() -> set[str]:
        return {name.partition(".")[0] for name in sys.modules} - {"encodings"}

    out: dict[str, Any] = {"preloaded": sorted(preload.warm()) if warm else [], "cases": []}
    for case in cases:
        before = packages()
        spec = step(case["step"])
        try:
            execute(
                spec,
                Workspace.open(Path(case["workspace"])),
                spec.params.model_validate(case["params"]),
            )
            ended = "answered"
        except AttributionError as exc:
            ended = f"refused: {type(exc).__name__}"
        out["cases"].append(
            {"label": case["label"], "ended": ended, "imported": sorted(packages() - before)}
        )
    return out


def _run_warm_probe(cases: list[dict[str, Any]], warm: bool, out: Path) -> dict[str, Any]:
    """The probe's answer, written to ``out``: its stdout must stay empty, since on stdio
    the server's stdout is the protocol and the preload thread runs beside it."""
    code = (
        "import json, sys\n"
        "from tests.test_light_steps import warm_probe\n"
        "answer = warm_probe(json.loads(sys.argv[1]), sys.argv[2] == 'warm')\n"
        "open(sys.argv[3], 'w').write(json.dumps(answer))\n"
    )
    argv = [sys.executable, "-c", code, json.dumps(cases), "warm" if warm else "cold", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "", f"printed on stdout: {done.stdout[:500]!r}"
    return json.loads(out.read_text())


def _ridge_fitted(simulated_root, root: Path) -> Path:
    """A small workspace fitted by the ridge fallback and validated (a few seconds)."""
    from attribution_analysis.api import fit_mmm, validate_data, validate_model
    from attribution_analysis.contracts.mmm import FitMMMParams
    from attribution_analysis.workspace import Workspace

    shutil.copytree(simulated_root(kind="mmm", seed=3, weeks=60, channels=2), root)
    ws = Workspace.open(root)
    validate_data(ws)
    fit_mmm(ws, FitMMMParams(method="ridge"))
    validate_model(ws, backtest_periods=0, sensitivity_refit=False)
    return root


def test_server_preload_leaves_inline_steps_nothing_to_import(validated, simulated_root, tmp_path):
    """After the server's preload (``server/preload.py``), no inline step imports a package
    on its first call, the heavy ones included (matplotlib for the report), and nothing
    was printed on stdout; negative control: without it, the optimizer's first call imports
    SciPy, h5netcdf and pandas in the same harness."""
    from attribution_analysis.server import preload

    cases = [
        _case("validate", "validate_data", validated),
        _case("optimize", "optimize_budget", validated, draws=100, override_reason=OVERRIDE),
        _case("plans", "list_budget_plans", validated),
        _case("decompose", "decompose_contributions", validated, override_reason=OVERRIDE),
        _case("report", "generate_report", validated),
        _case("faq", "draft_faq", validated),
    ]
    # The ridge fallback's posterior takes other routes through both steps.
    ridge = _ridge_fitted(simulated_root, tmp_path / "ridge")
    cases += [
        _case("ridge optimize", "optimize_budget", ridge, draws=100, override_reason=OVERRIDE),
        _case("ridge decompose", "decompose_contributions", ridge, override_reason=OVERRIDE),
    ]
    warmed = _run_warm_probe(cases, warm=True, out=tmp_path / "warm.json")
    assert warmed["preloaded"] == sorted(preload.targets()), "a declared preload failed"
    ended = {c["label"]: c["ended"] for c in warmed["cases"]}
    assert set(ended.values()) == {"answered"}, ended
    imported = {c["label"]: c["imported"] for c in warmed["cases"]}
    assert imported == {label: [] for label in imported}, imported
    # The warmed templates still record where every printed number comes from.
    for page in ("mmm_executive_summary", "faq_all"):
        sources = json.loads((validated / "reports" / f"{page}.sources.json").read_text())
        assert len(sources["records"]) > 20, f"{page}: {len(sources['records'])} records"

    cold = _run_warm_probe(cases[1:2], warm=False, out=tmp_path / "cold.json")
    assert {"scipy", "h5netcdf", "pandas"} <= set(cold["cases"][0]["imported"]), cold


def test_preload_skips_what_fails(caplog):
    """A preload that cannot be imported is logged and skipped (the step reports the error
    itself when it runs); job steps' modules are not preloaded (jobs run in their own
    processes)."""
    import dataclasses

    from attribution_analysis.server import preload
    from attribution_analysis.steps import step

    broken = dataclasses.replace(step("list_budget_plans"), preload=("no_such_module_xyz",))
    with caplog.at_level("WARNING"):
        done = preload.warm([broken])
    assert "no_such_module_xyz" not in done
    assert "attribution_analysis.optimize.plans" in done
    assert "no_such_module_xyz" in caplog.text
    assert "attribution_analysis.mmm.fit" not in preload.targets([step("fit_mmm")])
