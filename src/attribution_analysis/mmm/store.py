"""Where fits live: ``analysis/model/mmm_<key>.nc`` (ArviZ DataTree) + ``analysis/mmm_fit.json``.

``mmm_fit.json`` names the current fit, its configuration and the data it was fitted on, so
later steps rebuild the same model and refuse a fit whose data has changed since.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import xarray as xr

from attribution_analysis.errors import WorkspaceError
from attribution_analysis.workspace import Workspace

MANIFEST = "analysis/mmm_fit.json"
MODEL_DIR = "analysis/model"


def model_path(key: str) -> str:
    return f"{MODEL_DIR}/mmm_{key}.nc"


def tree_bytes(ws: Workspace, tree: xr.DataTree) -> bytes:
    """Serialise ``tree`` to NetCDF bytes (through a scratch file inside the workspace)."""
    with ws.staging_dir() as scratch:
        path = scratch / "fit.nc"
        clean = tree.copy()
        for node in clean.subtree:
            for name, value in list(node.attrs.items()):
                if not isinstance(value, str | int | float):
                    node.attrs[name] = json.dumps(value, default=str)
        clean.to_netcdf(path, engine="h5netcdf")
        return path.read_bytes()


def require_model(ws: Workspace, relative: str) -> Path:
    """The fitted model's file, or the error that says to fit again."""
    return ws.require(relative, f"{relative} is missing.", fix="fit the model again.")


def require_fit(ws: Workspace) -> Path:
    """The current fit's model file (named by the manifest), or the error that says which of
    the two is missing; cheap, so steps check it before a job starts (see ``steps``)."""
    return require_model(ws, read_manifest(ws)["result"]["model_path"])


def load_tree(ws: Workspace, relative: str) -> xr.DataTree:
    path = require_model(ws, relative)
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        tree = tree.load()
    # NetCDF keeps only scalar attributes, so tree_bytes stored lists and dicts as JSON;
    # turn them back, or ArviZ reads a 'sample_dims' string as a list of characters.
    for node in tree.subtree:
        for name, value in list(node.attrs.items()):
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    node.attrs[name] = json.loads(value)
    return tree


def read_manifest(ws: Workspace) -> dict[str, Any]:
    return read_manifest_and_digest(ws)[0]


def read_manifest_and_digest(ws: Workspace) -> tuple[dict[str, Any], str]:
    """The manifest and the sha256 of the very bytes parsed (one read: a refit that lands in
    between cannot pair one fit's content with another's digest)."""
    path = ws.require(
        MANIFEST,
        "no fitted model: analysis/mmm_fit.json is missing.",
        fix="fit first: `python scripts/fit_mmm.py --workspace DIR`.",
    )
    data = path.read_bytes()
    try:
        manifest = json.loads(data)
        if not isinstance(manifest["result"]["model_path"], str):  # what every reader needs
            raise TypeError
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise WorkspaceError(
            f"{MANIFEST} cannot be read (damaged, or not written by fit_mmm).",
            fix="fit again: `python scripts/fit_mmm.py --workspace DIR` rewrites it.",
            file=MANIFEST,
        ) from None
    return manifest, hashlib.sha256(data).hexdigest()
