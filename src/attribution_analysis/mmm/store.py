"""Where fits live: ``analysis/model/mmm_<key>.nc`` (ArviZ DataTree) + ``analysis/mmm_fit.json``
(``layout.MODEL_DIR``, ``layout.FIT``).

``mmm_fit.json`` names the current fit, its configuration and the data it was fitted on, so
later steps rebuild the same model and refuse a fit whose data has changed since.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attribution_analysis import layout
from attribution_analysis.errors import WorkspaceError, step_ref
from attribution_analysis.workspace import Workspace, disk_error

if TYPE_CHECKING:  # the manifest and presence checks (before a step starts) need neither
    import numpy as np
    import xarray as xr

    from attribution_analysis.mmm.stored import Arrays


def model_path(key: str) -> str:
    return f"{layout.MODEL_DIR.path}/mmm_{key}.nc"


def tree_bytes(ws: Workspace, tree: xr.DataTree) -> bytes:
    """Serialise ``tree`` to NetCDF bytes (through a scratch file inside the workspace)."""
    clean = tree.copy()
    for node in clean.subtree:
        for name, value in list(node.attrs.items()):
            if not isinstance(value, str | int | float):
                node.attrs[name] = json.dumps(value, default=str)
    size = sum(int(node.dataset.nbytes) for node in clean.subtree)
    return netcdf_bytes(ws, clean, size)


# HDF5 (h5py) can crash the whole process when the disk fills up under it, so the space a
# NetCDF file needs is checked first: the scratch file, its bytes in memory, then the output
# written by commit() beside the old one; twice the raw array size plus headroom covers it.
NETCDF_HEADROOM = 32 * 2**20


def netcdf_bytes(ws: Workspace, obj: xr.DataTree | xr.Dataset, nbytes: int) -> bytes:
    """``obj`` as NetCDF bytes, written through a scratch file inside the workspace after
    checking that the disk holds room for it; a disk error is a WorkspaceError."""
    import xarray as xr

    def write(path: Path) -> None:
        obj.to_netcdf(path, engine="h5netcdf")
        # Verified before it is switched in: a file that does not open again is refused.
        with xr.open_datatree(path, engine="h5netcdf"):
            pass

    return _scratch_bytes(ws, nbytes, write, "the posterior")


def arrays_netcdf_bytes(
    ws: Workspace, arrays: Arrays, attrs: dict[str, str] | None = None
) -> bytes:
    """``arrays`` (one group: variables, their dims and each dim's labels) as NetCDF bytes,
    written with h5netcdf alone, as ``netcdf_bytes`` writes a dataset.

    For the decomposition's draws file: going through xarray would import it, dask and (to
    write) distributed, about 0.7 s of a fresh process, for one array and its labels. What
    xarray reads back from the file equals the dataset it would have written
    (``tests/mmm/test_draws_file.py``): floats with a NaN fill value, text labels as strings,
    dates as whole days (else seconds, else nanoseconds) since the earliest date, on the
    Gregorian calendar.
    ``attrs``: the file's root attributes (the step's provenance, as JSON text).
    """
    import h5netcdf
    import h5py
    import numpy as np

    def write(path: Path) -> None:
        with h5netcdf.File(path, "w") as handle:
            handle.attrs.update(attrs or {})
            handle.dimensions = {d: int(n) for d, n in arrays.sizes.items()}
            for dim, labels in arrays.coords.items():
                data, encoding = _encoded_labels(np.asarray(labels))
                text = data.dtype.kind == "O"  # variable-length strings, as xarray writes
                variable = handle.create_variable(
                    dim, (dim,), dtype=h5py.string_dtype() if text else data.dtype, data=data
                )
                variable.attrs.update(encoding)
            for name, values in arrays.values.items():
                floats = np.asarray(values).dtype.kind == "f"
                handle.create_variable(
                    name, arrays.dims[name], data=values, fillvalue=np.nan if floats else None
                )
        with h5netcdf.File(path, "r"):  # verified before it is switched in, as above
            pass

    nbytes = sum(int(np.asarray(v).nbytes) for v in arrays.values.values())
    return _scratch_bytes(ws, nbytes, write, "the contribution draws")


# The coarsest unit that holds every offset exactly, in nanoseconds.
_TIME_STEPS = (("days", 86_400 * 10**9), ("seconds", 10**9), ("nanoseconds", 1))


def _encoded_labels(labels: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    """A dimension's labels as NetCDF stores them: dates as integer offsets with CF units
    (whole days when every date is midnight, else seconds, else nanoseconds), text as strings."""
    import numpy as np

    if labels.dtype.kind == "M":
        if labels.size == 0 or np.isnat(labels).any():  # no CF units to write for them
            raise ValueError("a date axis to store must have dates, none of them missing.")
        origin = labels.min()
        offsets = (labels - origin).astype("timedelta64[ns]").astype("int64")
        unit, step = next((u, n) for u, n in _TIME_STEPS if not (offsets % n).any())
        stamp = np.datetime_as_string(origin, unit="ns").replace("T", " ")
        since = stamp.removesuffix(".000000000").removesuffix(" 00:00:00")
        units = {"units": f"{unit} since {since}", "calendar": "proleptic_gregorian"}
        return offsets // step, units
    if labels.dtype.kind in "UO":
        return labels.astype(str).astype(object), {}
    return labels, {}


def _scratch_bytes(ws: Workspace, nbytes: int, write: Callable[[Path], None], what: str) -> bytes:
    """What ``write`` puts in a scratch file inside the workspace, after checking that the
    disk holds room for ``nbytes`` of arrays; a disk error is a WorkspaceError naming
    ``what`` was being stored."""
    need = 2 * nbytes + NETCDF_HEADROOM
    free = shutil.disk_usage(ws.internal_dir()).free
    if free < need:
        raise WorkspaceError(
            f"not enough free disk space to store {what}: about {need / 2**20:.0f} MB "
            f"needed, {free / 2**20:.0f} MB free on the device holding {ws.root}; nothing "
            "was changed.",
            fix="free disk space there (or fit with fewer draws) and run the step again.",
        )
    with ws.staging_dir() as scratch:
        path = scratch / "data.nc"
        try:
            write(path)
            return path.read_bytes()
        except OSError as exc:
            raise disk_error(exc, path, f"writing {what}") from None


def require_model(ws: Workspace, relative: str) -> Path:
    """The fitted model's file, or the error that says to fit again."""
    return ws.require(relative, f"{relative} is missing.", fix="fit the model again.")


def require_fit(ws: Workspace) -> Path:
    """The current fit's model file (named by the manifest), or the error that says which of
    the two is missing; cheap, so steps check it before a job starts (see ``steps``)."""
    return require_model(ws, read_manifest(ws)["result"]["model_path"])


def load_tree(ws: Workspace, relative: str) -> xr.DataTree:
    import xarray as xr

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
        layout.FIT.path,
        f"no fitted model: {layout.FIT.path} is missing.",
        fix=f"fit first: run {step_ref('fit_mmm')}.",
    )
    data = path.read_bytes()
    try:
        manifest = json.loads(data)
        if not isinstance(manifest["result"]["model_path"], str):  # what every reader needs
            raise TypeError
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise WorkspaceError(
            f"{layout.FIT.path} cannot be read (damaged, or not written by fit_mmm).",
            fix=f"fit again: {step_ref('fit_mmm')} rewrites it.",
            file=layout.FIT.path,
        ) from None
    return manifest, hashlib.sha256(data).hexdigest()
