"""Reopen the current fit: rebuild the same model on the same data and attach its posterior."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from attribution_analysis import layout
from attribution_analysis.contracts.mmm import FitMMMParams, recorded_fit_params
from attribution_analysis.errors import WorkspaceError, step_ref
from attribution_analysis.mmm import store
from attribution_analysis.mmm.build import fit_key
from attribution_analysis.mmm.panel import ModelData
from attribution_analysis.workspace import Workspace


@dataclass
class FittedModel:
    mmm: Any
    data: ModelData
    tree: xr.DataTree
    params: FitMMMParams
    manifest: dict[str, Any]
    input_hashes: dict[str, str]
    # The lift tests a calibrated fit was fitted with (data, not priors: the vague-prior
    # refit keeps them).
    lift_tests: list[Any] = field(default_factory=list)

    @property
    def method(self) -> str:
        return str(self.manifest["result"]["method"])

    @property
    def target_scale(self) -> xr.DataArray:
        """Scale of the target (a number, or one per geo) to map back to original units."""
        return target_scale_of(self.mmm.model)


def target_scale_of(model: Any) -> xr.DataArray:
    """A PyMC-Marketing model's target scale (a number, or one per geo) with its dims."""
    dims = model.named_vars_to_dims.get("target_scale", ())
    return xr.DataArray(
        model["target_scale"].get_value(),
        dims=dims,
        coords={d: list(model.coords[d]) for d in dims},
    )


def open_fit(ws: Workspace) -> FittedModel:
    from attribution_analysis.mmm.build import fit_settings
    from attribution_analysis.mmm.calibration import read_lift_tests
    from attribution_analysis.mmm.fit import prepare

    manifest, manifest_digest = store.read_manifest_and_digest(ws)
    params = recorded_fit_params(manifest["params"])
    data, mmm, hashes = prepare(ws, params)
    if fit_key(data, params.config, fit_settings(params, hashes)) != manifest["result"]["fit_key"]:
        raise WorkspaceError(
            "the prepared data, the lift tests or the model's defaults changed since the model "
            "was fitted.",
            fix=f"fit again: run {step_ref('fit_mmm')}.",
            file=layout.FIT.path,
        )
    tree = store.load_tree(ws, manifest["result"]["model_path"])
    mmm.idata = tree
    mmm.is_fitted_ = True
    # Every output computed from this fit records the manifest's digest beside the data's:
    # a refit on the same data rewrites the manifest (new run id, new model file), so those
    # outputs then read as out of date instead of silently mixing two fits in one report.
    hashes = {**hashes, layout.FIT.path: manifest_digest}
    tests = read_lift_tests(ws)[0] if params.calibrate else []
    return FittedModel(mmm, data, tree, params, manifest, hashes, tests)


def warm_compiler() -> None:
    """Compile and run a two-element graph in PyTensor's default mode, so that a process's
    first real compile does not also pay the backend's set-up (numba's typing registries,
    about 0.5 s): the server does it ahead of the first decomposition (``StepSpec.preload``)."""
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x")
    pytensor.function([x], pt.exp(x).sum())(np.ones(2))
