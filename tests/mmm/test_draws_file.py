"""The decomposition reads and writes without xarray (``store.arrays_netcdf_bytes``,
``stored._coordinate``, ``decompose._weekly_table`` and ``_draws_table``); each is checked
here against xarray doing the same job, on generated arrays (dates at midnight, on the
hour and with sub-second parts; geo labels of unequal length and outside ASCII)."""

from __future__ import annotations

import h5netcdf
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from attribution_analysis.mmm import decompose, store
from attribution_analysis.mmm.stored import Arrays, _coordinate, arrays_of
from attribution_analysis.workspace import Workspace

GEOS = ["north", "Île-de-France", "s"]
CHANNELS = ["tv", "paid_search", "social"]
DATES = {
    "weekly": pd.date_range("2022-01-03", periods=6, freq="W-MON"),
    "hourly": pd.date_range("2024-03-30 21:00", periods=6, freq="h"),
    "sub-second": pd.date_range("2024-03-30 21:00:00.25", periods=6, freq="1500ms"),
}


def _dataset(dates: pd.DatetimeIndex, seed: int = 0) -> xr.Dataset:
    """(date, geo, channel, sample) draws with their labels, as the draws file holds them."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 100.0, (len(dates), len(GEOS), len(CHANNELS), 7))
    return xr.Dataset(
        {"channel_contribution": (("date", "geo", "channel", "sample"), values)},
        coords={"date": dates, "geo": GEOS, "channel": CHANNELS, "sample": np.arange(7)},
    )


def _read(path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as dataset:
        return dataset.load()


@pytest.mark.parametrize("kind", list(DATES))
def test_the_written_file_reads_as_the_one_xarray_writes(kind, tmp_path):
    """What xarray reads from our file is identical (values, dims, labels, dtypes) to what
    it reads from the file it writes itself; negative control: one changed value is seen."""
    ws = Workspace.create(tmp_path / "ws")
    dataset = _dataset(DATES[kind])
    ours = tmp_path / "ours.nc"
    ours.write_bytes(store.arrays_netcdf_bytes(ws, arrays_of(dataset)))
    theirs = tmp_path / "theirs.nc"
    dataset.to_netcdf(theirs, engine="h5netcdf")
    xr.testing.assert_identical(_read(ours), _read(theirs))

    changed = dataset.copy(deep=True)
    changed["channel_contribution"][0, 0, 0, 0] += 1e-9
    ours.write_bytes(store.arrays_netcdf_bytes(ws, arrays_of(changed)))
    with pytest.raises(AssertionError):
        xr.testing.assert_identical(_read(ours), _read(theirs))


@pytest.mark.parametrize(
    "units",
    [
        "days since 2022-01-03",
        "days since 2021-12-27 00:00:00",
        "hours since 2024-03-30 06:00:00",
        "seconds since 1999-12-31",
    ],
)
def test_dates_xarray_wrote_decode_as_xarray_decodes_them(units, tmp_path):
    """A date axis that xarray encoded, in the units it was told, decodes without xarray to
    the same datetime64 values and dtype."""
    dates = DATES["weekly"] if units.startswith("days") else DATES["hourly"]
    path = tmp_path / "dates.nc"
    dataset = xr.Dataset(coords={"date": dates})
    dataset["date"].encoding.update(units=units, dtype="int64")
    dataset.to_netcdf(path, engine="h5netcdf")
    expected = _read(path)["date"].to_numpy()
    with h5netcdf.File(path, "r") as handle:
        decoded = _coordinate(handle.variables["date"])
    assert decoded is not None
    np.testing.assert_array_equal(decoded, expected)
    assert decoded.dtype == expected.dtype


@pytest.mark.parametrize(
    ("attrs", "values"),
    [
        ({"units": "days since 2022-01-03", "calendar": "noleap"}, np.arange(6)),
        ({"units": "days since 2022-01-03"}, np.arange(6, dtype=float)),
        ({"units": "days since 2022-01-03 00:00:00+01:00"}, np.arange(6)),
        ({"units": "weeks since 2022-01-03"}, np.arange(6)),
        ({"units": "days since 2022-01-03", "scale_factor": 7}, np.arange(6)),
        # outside datetime64[ns]'s range (1678-2262), where xarray refuses to decode
        ({"units": "days since 1582-01-01"}, np.arange(6)),
        ({"units": "days since 1970-01-01"}, np.array([0, 200_000])),
        ({"units": "hours since 2262-04-11"}, np.array([0, 100])),
        ({"units": "days since NaT"}, np.arange(6)),
        ({"units": "days since 2022-01-03"}, np.arange(6, dtype="uint64")),
    ],
)
def test_other_date_encodings_are_left_to_xarray(attrs, values, tmp_path):
    """A calendar, value type, time zone, unit, packing or date range the reader does not
    decode exactly as xarray does returns None (``StoredFit`` then reads the group through
    xarray); negative control: the same file with plain day offsets is decoded."""
    path = tmp_path / "dates.nc"
    with h5netcdf.File(path, "w") as handle:
        handle.dimensions = {"date": len(values), "plain": 6}
        handle.create_variable("date", ("date",), data=values).attrs.update(attrs)
        handle.create_variable("plain", ("plain",), data=np.arange(6)).attrs.update(
            units="days since 2022-01-03"
        )
    with h5netcdf.File(path, "r") as handle:
        assert _coordinate(handle.variables["date"]) is None
        assert _coordinate(handle.variables["plain"]) is not None


def _weekly_reference(summary: xr.Dataset) -> pd.DataFrame:
    """The weekly table as xarray's ``to_dataframe`` gives it (the step's former code)."""
    frame = xr.Dataset(
        {
            "contribution": summary["weekly_mean"],
            "lower_90": summary["weekly_lower_90"],
            "upper_90": summary["weekly_upper_90"],
        }
    ).to_dataframe()
    frame = frame.reset_index()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    keys = ["date", *(["geo"] if "geo" in frame else []), "channel"]
    return frame[[*keys, "contribution", "lower_90", "upper_90"]].sort_values(keys)


def _draws_reference(dataset: xr.Dataset, n: int) -> pd.DataFrame:
    """The long draws table as xarray's ``to_dataframe`` gives it (the former code)."""
    values = dataset["channel_contribution"]
    step = max(1, values.sizes["sample"] // n)
    thin = values.isel(sample=slice(None, None, step)).rename(sample="draw")
    thin = thin.assign_coords(draw=np.arange(thin.sizes["draw"]))
    frame = thin.to_dataframe().reset_index()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    keys = ["date", *(["geo"] if "geo" in frame else []), "channel", "draw"]
    return frame.rename(columns={"channel_contribution": "contribution"})[[*keys, "contribution"]]


@pytest.mark.parametrize("geo", [True, False])
@pytest.mark.parametrize(
    "order", [("date", "geo", "channel", "sample"), ("sample", "channel", "geo", "date")]
)
def test_tables_equal_xarrays(geo, order, tmp_path):
    """The weekly and long draws tables built with NumPy equal xarray's, row for row, for a
    panel and a national fit and whatever the order of the stored dims."""
    draws = _dataset(DATES["weekly"]).transpose(*order)
    if not geo:
        draws = draws.isel(geo=0, drop=True)
    cell_dims = [d for d in draws["channel_contribution"].dims if d != "sample"]
    values = draws["channel_contribution"]
    summary = xr.Dataset(
        {
            "weekly_mean": values.mean("sample").transpose(*cell_dims),
            # stored in another order than the mean: each is taken by its dims' names
            "weekly_lower_90": values.min("sample").transpose(*reversed(cell_dims)),
            "weekly_upper_90": values.max("sample").transpose(*cell_dims),
        }
    )
    ours = decompose._weekly_table(arrays_of(summary))
    pd.testing.assert_frame_equal(
        ours.reset_index(drop=True), _weekly_reference(summary).reset_index(drop=True)
    )
    for n in (3, 7, 100):
        pd.testing.assert_frame_equal(
            decompose._draws_table(arrays_of(draws), n), _draws_reference(draws, n)
        )


def test_the_stored_draws_are_renumbered_for_the_file():
    """The draws file takes the stored weekly draws as they are, dims in their order, the
    draws numbered from 0 under 'sample'."""
    stored = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    summary = Arrays(
        values={"channel_draws": stored},
        dims={"channel_draws": ("date", "channel", "stored_draw")},
        coords={"date": DATES["weekly"][:2].to_numpy(), "channel": np.array(CHANNELS)},
        sizes={"date": 2, "channel": 3, "stored_draw": 4},
    )
    draws = decompose._draws_arrays(summary)
    assert draws.dims == {"channel_contribution": ("date", "channel", "sample")}
    np.testing.assert_array_equal(draws.values["channel_contribution"], stored)
    np.testing.assert_array_equal(draws.coords["sample"], np.arange(4))
    assert draws.sizes == {"date": 2, "channel": 3, "sample": 4}


@pytest.mark.parametrize(
    "dates", [np.array(["2022-01-03", "NaT"], "datetime64[ns]"), np.array([], "datetime64[ns]")]
)
def test_a_date_axis_with_no_date_or_a_missing_one_is_refused(dates, tmp_path):
    """Such an axis has no CF units xarray could read back; the writer says so instead of
    writing a file that does not open."""
    ws = Workspace.create(tmp_path / "ws")
    arrays = Arrays(
        values={"x": np.zeros(len(dates))},
        dims={"x": ("date",)},
        coords={"date": dates},
        sizes={"date": len(dates)},
    )
    with pytest.raises(ValueError, match="missing"):
        store.arrays_netcdf_bytes(ws, arrays)
