"""Backtest predictions back in target units: one scale (PyMC-Marketing 1.x, geo panels
included) or one per geo, each geo's draws multiplied by its own."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from attribution_analysis.mmm.diagnostics import to_target_units


def _draws() -> xr.DataArray:
    values = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4) / 24
    return xr.DataArray(
        values,
        dims=("geo", "date", "sample"),
        coords={"geo": ["north", "south"]},
    )


def test_one_scale_multiplies_every_geo():
    draws = _draws()
    out = to_target_units(draws, np.array(250.0))  # 0-d, as the library stores it
    np.testing.assert_allclose(out.values, draws.values * 250.0)
    assert out.dims == draws.dims


def test_a_scale_per_geo_multiplies_each_geo_by_its_own():
    draws = _draws()
    out = to_target_units(draws, np.array([10.0, 1000.0]))
    np.testing.assert_allclose(out.sel(geo="north").values, draws.sel(geo="north").values * 10)
    np.testing.assert_allclose(out.sel(geo="south").values, draws.sel(geo="south").values * 1000)
    # negative control: the geos' scales swapped give other numbers
    swapped = to_target_units(draws, np.array([1000.0, 10.0]))
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(swapped.values, out.values)
