"""The current fit as the workspace holds it (manifest, posterior file, prepared data),
read without PyMC.

``open_fit`` (``mmm/loaded.py``) rebuilds PyMC-Marketing's model so that a step gets a fitted
``MMM``. A step that only reads the posterior's media curves (``optimize_budget``) needs no
graph, and importing PyMC, PyTensor and PyMC-Marketing costs 2-3 s of a fresh process. What
it needs is on disk: the manifest names the configuration and the data; the posterior file's
root attributes (PyMC-Marketing's ``set_idata_attrs``) name the adstock and saturation with
their variable prefixes and the scaling; the channel and target scales are statistics of the
prepared data that PyMC-Marketing computes when it builds the model, recomputed here the same
way (``tests/optimize/test_stored_fit.py`` checks them, and the curves, against the built
model). The freshness check is ``open_fit``'s: the same data, configuration and settings
must give the fit key the manifest records.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from attribution_analysis import layout
from attribution_analysis.contracts.mmm import FitMMMParams, recorded_fit_params
from attribution_analysis.errors import WorkspaceError, step_ref
from attribution_analysis.mmm import store
from attribution_analysis.mmm.build import fit_key, fit_settings
from attribution_analysis.mmm.panel import ModelData, load_model_data
from attribution_analysis.workspace import Workspace

if TYPE_CHECKING:
    import xarray as xr

# PyMC-Marketing's default scaling, for a posterior file that does not record one.
DEFAULT_SCALING = {"method": "max", "dims": []}


@dataclass(frozen=True)
class StoredFit:
    """The current fit: its data, parameters, manifest and posterior file (opened per group
    on demand: the optimizer reads one of them)."""

    data: ModelData
    params: FitMMMParams
    manifest: dict[str, Any]
    input_hashes: dict[str, str]
    path: Path  # the posterior's NetCDF file
    attrs: dict[str, Any]  # the file's root attributes, JSON values decoded

    @property
    def method(self) -> str:
        return str(self.manifest["result"]["method"])

    @property
    def geos(self) -> list[str]:
        """Geo labels in the model's order (PyMC-Marketing sorts the panel's labels), or
        one 'national' row."""
        if not self.data.geo:
            return ["national"]
        return sorted(self.data.X["geo"].astype(str).unique().tolist())

    def has_group(self, name: str) -> bool:
        import h5netcdf

        with h5netcdf.File(self.path, "r") as handle:
            return name in handle.groups

    def group(self, name: str, variables: list[str] | None = None) -> xr.Dataset:
        """One group of the posterior file (``posterior``, ``bootstrap``...), loaded: its
        ``variables`` (all by default) with their dimension coordinates.

        Plain arrays (the draws, labels) are read with h5netcdf directly:
        ``xarray.open_dataset`` spends about 0.1 s (0.4 s on a busy machine) on decoding
        they do not need. A group with encoded values (dates, packed or masked integers)
        goes through xarray. ``tests/optimize/test_stored_fit.py`` checks the two agree.
        """
        import xarray as xr  # here: the optimizer reads through ``arrays`` without it

        plain = self._plain_arrays(name, variables)
        if plain is not None:
            data = {v: (plain.dims[v], values) for v, values in plain.values.items()}
            return xr.Dataset(data, coords=plain.coords)
        with xr.open_dataset(self.path, engine="h5netcdf", group=name) as dataset:
            return dataset[variables or list(dataset.data_vars)].load()

    def arrays(self, name: str, variables: list[str] | None = None) -> Arrays:
        """The same as ``group``, as NumPy arrays with their dims and labels.

        For the optimizer and the decomposition, which select, reshape and sum draws and
        need nothing else:
        building any xarray object imports dask (and, when writing, distributed) wherever
        the scale extra is installed, 0.25-0.5 s of a fresh process before a line of work.
        A group with encoded values goes through ``group`` (xarray).
        """
        plain = self._plain_arrays(name, variables)
        if plain is not None:
            return plain
        return arrays_of(self.group(name, variables))

    def _plain_arrays(self, name: str, variables: list[str] | None) -> Arrays | None:
        """The group's ``variables`` read with h5netcdf, or None when one of them (or of
        their dimension labels) is encoded and must go through xarray's decoding."""
        import h5netcdf

        with h5netcdf.File(self.path, "r") as handle:
            node = handle.groups[name]
            names = variables or [v for v in node.variables if v not in node.dimensions]
            dims = {d for v in names for d in node.variables[v].dimensions}
            labelled = [d for d in dims if d in node.variables]
            coords = {d: _coordinate(node.variables[d]) for d in labelled}
            if not all(_plain(node.variables[v]) for v in names) or any(
                c is None for c in coords.values()
            ):
                return None
            return Arrays(
                values={v: np.asarray(node.variables[v][...]) for v in names},
                dims={v: tuple(node.variables[v].dimensions) for v in names},
                coords=coords,  # type: ignore[arg-type]
                sizes={d: len(node.dimensions[d]) for d in dims},
            )

    def transform(self, kind: str) -> dict[str, Any]:
        """The adstock or saturation as PyMC-Marketing serialised it (``__type__``,
        ``prefix``, ``priors``, ``l_max``...)."""
        spec = self.attrs.get(kind)
        if not isinstance(spec, dict) or "__type__" not in spec:
            raise WorkspaceError(
                f"the posterior file does not record the model's {kind}.",
                fix=f"fit again: {step_ref('fit_mmm')} writes it.",
                file=str(self.manifest["result"]["model_path"]),
            )
        return spec

    def channel_scale(self) -> np.ndarray:
        """(G, C): what PyMC-Marketing divides each channel's spend by, per geo."""
        spend = self._grid(self.data.channels, self.data.X)
        return self._scale(spend, "channel")

    def target_scale(self) -> np.ndarray:
        """(G,): what the model's outcome is multiplied by to return to original units."""
        frame = self.data.X[["date", *(["geo"] if self.data.geo else [])]].copy()
        frame["target"] = self.data.y.to_numpy(dtype=float)
        return self._scale(self._grid(["target"], frame), "target")[:, 0]

    def _grid(self, columns: list[str], frame: pd.DataFrame) -> np.ndarray:
        """(dates, G, len(columns)) with the rows a geo lacks filled with 0, as
        PyMC-Marketing's dataset is (``fillna(0)``) before it computes its scales."""
        if not self.data.geo:
            return frame[columns].to_numpy(dtype=float)[:, None, :]
        keyed = frame.assign(geo=frame["geo"].astype(str)).set_index(["date", "geo"])[columns]
        dates = np.sort(frame["date"].unique())
        full = pd.MultiIndex.from_product([dates, self.geos], names=["date", "geo"])
        values = keyed.reindex(full, fill_value=0.0).to_numpy(dtype=float)
        return values.reshape(len(dates), len(self.geos), len(columns))

    def _scale(self, grid: np.ndarray, variable: str) -> np.ndarray:
        """PyMC-Marketing's ``DataDerivedScaling``: the signed max (or mean) over dates and
        the scaling's own dims, kept per geo otherwise; (G, K)."""
        scaling = (self.attrs.get("scaling") or {}).get(variable, DEFAULT_SCALING)
        kind = str(scaling.get("__type__", "DataDerivedScaling")).rsplit(".", 1)[-1]
        method, dims = scaling.get("method"), list(scaling.get("dims") or [])
        if kind != "DataDerivedScaling" or method not in ("max", "mean") or set(dims) - {"geo"}:
            raise WorkspaceError(
                f"the fit's {variable} scaling ({scaling}) is not one this project builds.",
                fix=f"fit again with {step_ref('fit_mmm')}.",
                file=str(self.manifest["result"]["model_path"]),
            )
        axes = (0, 1) if "geo" in dims else (0,)
        reduce = np.max if method == "max" else np.mean
        scale = reduce(grid, axis=axes, keepdims=True)[0]
        return np.broadcast_to(scale, grid.shape[1:]).copy()


@dataclass(frozen=True)
class Arrays:
    """One group of the posterior file as NumPy: each variable's values and dims, each
    dimension's labels (where the file has them) and length."""

    values: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    coords: dict[str, np.ndarray]
    sizes: dict[str, int]

    def select(self, name: str, **labels: list[str]) -> np.ndarray:
        """``name``'s values with each named dim taken in the order of its labels (by label,
        as xarray's ``sel`` does; a dim the variable lacks is skipped); the other dims as
        stored."""
        values, dims = self.values[name], self.dims[name]
        for dim, wanted in labels.items():
            if dim in dims:
                where = positions(self.coords[dim], wanted, dim)
                values = np.take(values, where, axis=dims.index(dim))
        return values


def arrays_of(dataset: xr.Dataset) -> Arrays:
    """An xarray dataset's data variables as ``Arrays`` (for the routes that evaluate in
    xarray: a posterior file that needs decoding, a model rebuilt in this process)."""
    return Arrays(
        values={str(v): dataset[v].to_numpy() for v in dataset.data_vars},
        dims={str(v): tuple(map(str, dataset[v].dims)) for v in dataset.data_vars},
        coords={str(d): dataset[d].to_numpy() for d in dataset.dims if d in dataset.coords},
        sizes={str(d): int(n) for d, n in dataset.sizes.items()},
    )


def positions(have: np.ndarray, labels: list[str], dim: str) -> list[int]:
    """Where each of ``labels`` sits in ``have``; a missing one is refused by name."""
    index = {str(label): i for i, label in enumerate(have.tolist())}
    missing = [label for label in labels if str(label) not in index]
    if missing:
        raise WorkspaceError(
            f"the posterior file has no {dim} {missing} that the prepared data names.",
            fix=f"fit again: run {step_ref('fit_mmm')}.",
        )
    return [index[str(label)] for label in labels]


def open_stored_fit(ws: Workspace) -> StoredFit:
    """The current fit, refused (as ``open_fit`` refuses it) when the prepared data or lift
    tests changed since it was fitted."""
    manifest, manifest_digest = store.read_manifest_and_digest(ws)
    params = recorded_fit_params(manifest["params"])
    config = params.config
    # The data half of fit.prepare (the model it also builds is what this module avoids).
    data = load_model_data(
        ws, config.target, config.use_trend, config.use_holidays, config.use_external_factors
    )
    hashes = dict(data.input_hashes)
    if params.calibrate:
        from attribution_analysis.mmm.calibration import read_lift_tests

        hashes[layout.LIFT_TESTS.path] = read_lift_tests(ws)[1]
    if fit_key(data, config, fit_settings(params, hashes)) != manifest["result"]["fit_key"]:
        raise WorkspaceError(
            "the prepared data, the lift tests or the model's defaults changed since the model "
            "was fitted.",
            fix=f"fit again: run {step_ref('fit_mmm')}.",
            file=layout.FIT.path,
        )
    path = store.require_model(ws, manifest["result"]["model_path"])
    # Outputs record the manifest's digest beside the data's, as open_fit does.
    hashes = {**hashes, layout.FIT.path: manifest_digest}
    return StoredFit(data, params, manifest, hashes, path, _root_attrs(path))


# Attributes by which xarray would change a variable's values or type when it decodes it.
_ENCODING = {"scale_factor", "add_offset", "calendar", "dtype", "_Unsigned"}


def _plain(variable: Any) -> bool:
    """Whether xarray would read the variable's values as stored (no CF decoding)."""
    attrs = dict(variable.attrs)
    if _ENCODING & set(attrs) or " since " in str(attrs.get("units", "")):
        return False
    # A fill value masks entries to NaN: the same values only for floats filled with NaN.
    fill = attrs.get("_FillValue")
    return fill is None or (variable.dtype.kind == "f" and np.isnan(fill))


# CF time units decoded here, in nanoseconds (xarray writes days for daily and weekly dates).
_NANOSECONDS = {
    "days": 86_400 * 10**9,
    "hours": 3_600 * 10**9,
    "minutes": 60 * 10**9,
    "seconds": 10**9,
}
_CALENDARS = {None, "standard", "gregorian", "proleptic_gregorian"}
# datetime64[ns]'s range; its smallest integer is NaT.
_NS_MIN, _NS_MAX = -(2**63) + 1, 2**63 - 1


def _coordinate(variable: Any) -> np.ndarray | None:
    """A dimension's labels as xarray decodes them, or None where only xarray can.

    Plain labels are read as stored. Dates that xarray encoded ("days since 2022-01-03",
    integer offsets, the Gregorian calendar) are decoded here to datetime64[ns], as xarray
    does: a posterior file's date axis is all that needs it, and going through xarray for it
    costs the import of xarray and dask. Any other encoding returns None.
    """
    if _plain(variable):
        return text_labels(variable[...])
    attrs = dict(variable.attrs)
    unit, _, reference = str(attrs.get("units", "")).partition(" since ")
    calendar = attrs.get("calendar")
    if isinstance(calendar, bytes):
        calendar = calendar.decode()
    if (
        unit not in _NANOSECONDS
        or calendar not in _CALENDARS
        or not (
            variable.dtype.kind == "i"
            or (variable.dtype.kind == "u" and variable.dtype.itemsize < 8)
        )
        or set(attrs) - {"units", "calendar"}
    ):
        return None
    stamp = reference.strip().replace(" ", "T")
    if "+" in stamp or stamp.endswith("Z") or stamp.count("-") > 2:  # a time zone: xarray's
        return None
    try:
        # Parsed at whole seconds, where NumPy's range is wide enough to check: at
        # nanoseconds a year outside 1678-2262 would wrap around silently.
        origin = np.datetime64(stamp, "s")
    except ValueError:  # another form NumPy does not parse: xarray's job
        return None
    offsets = np.asarray(variable[...]).astype("int64")
    if np.isnat(origin) or offsets.size == 0:
        return None
    # Nanoseconds since 1970 of the origin and of the extreme dates, in Python's integers
    # (no overflow): a date outside datetime64[ns]'s range is xarray's to refuse.
    step = _NANOSECONDS[unit]
    start = int(origin.astype("int64")) * 10**9
    low, high = int(offsets.min()) * step, int(offsets.max()) * step
    if not all(_NS_MIN <= value <= _NS_MAX for value in (low, high, start + low, start + high)):
        return None
    return (start + offsets * step).astype("datetime64[ns]")


def text_labels(values: np.ndarray) -> np.ndarray:
    """Coordinate values as xarray decodes them: text labels as str, numbers as they are."""
    if values.dtype.kind in "OS":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
    return values


def _root_attrs(path: Path) -> dict[str, Any]:
    """Root attributes; ``store.tree_bytes`` wrote lists and dicts as JSON strings."""
    import h5netcdf

    with h5netcdf.File(path, "r") as handle:
        raw = dict(handle.attrs)
    attrs: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        attrs[name] = value
    return attrs
