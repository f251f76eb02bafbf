"""Organic series and events as their own model components, through PyMC-Marketing's
additive-effect interface (``MMM.mu_effects``).

PyMC-Marketing 1.x offers, for effects beside media and controls:

- ``MediaMuEffect``: a data variable through a ``MediaTransformation`` (adstock and
  saturation with their own priors and prefix), summed over its channel-like dimension.
  Organic series (newsletter sends, organic impressions, promotions) are exactly that:
  carryover and saturation like media, but no spend, so no ROAS and no budget.
- ``ControlMuEffect``: one coefficient per data variable. Event indicators (0/1 weeks,
  as in Robyn's and PyMC-Marketing's example tables) are that, kept apart from the
  controls so each event is reported as its own component. (``MMM.add_events`` models
  events given as start/end dates with a smooth basis in days; users bring indicator
  columns, which its basis does not take.)

Both read their data from ``mmm.xarray_dataset``, which the MMM builds from the channel
and control columns only (a DataFrame ``X`` has no way to carry other variables through),
so the classes here add their own series to that dataset before registering them: the one
thing written here beyond configuration. The organic effect also keeps the per-series
contribution as a deterministic (the library's sums over series), so the decomposition
reports each series with its interval.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import xarray as xr
from pydantic import InstanceOf
from pymc_marketing.mmm.additive_effect import ControlMuEffect, MediaMuEffect
from pymc_marketing.serialization import serialization

from attribution_analysis.mmm.component_names import (
    EVENT_PREFIX,
    ORGANIC_CONTRIBUTION,
    ORGANIC_DATA,
    ORGANIC_DIM,
    ORGANIC_PREFIX,
    event_data_name,
)

# PyMC-Marketing's default prior for a control coefficient (ControlMuEffect), on the
# target scaled by its maximum; events use it unchanged.
EVENT_PRIOR = {"dist": "Normal", "kwargs": {"mu": 0.0, "sigma": 2.0}}


def _carry(mmm: Any, name: str, values: xr.DataArray) -> None:
    """Put ``values`` into the MMM's dataset on its own date (and geo) labels."""
    dataset = mmm.xarray_dataset
    values = values.assign_coords(date=pd.DatetimeIndex(values["date"].values))
    aligned = values.reindex({d: dataset.coords[d].values for d in values.dims if d in dataset})
    mmm.xarray_dataset[name] = aligned.fillna(0.0).astype(float)


@serialization.register
class OrganicEffect(MediaMuEffect):
    """Organic series through adstock and saturation: PyMC-Marketing's ``MediaMuEffect``
    with its data carried in, and the per-series contribution kept."""

    series: InstanceOf[xr.DataArray]

    def create_data(self, mmm: Any) -> None:
        _carry(mmm, self.data_vars[0], self.series)
        if self.channel_dim not in mmm.model.coords:
            mmm.model.add_coord(self.channel_dim, self.series[self.channel_dim].values.tolist())
        super().create_data(mmm)

    def create_effect(self, mmm: Any) -> Any:
        import pymc.dims as pmd

        effect = self.media_transformation(mmm.model[self.data_vars[0]], dim="date")
        pmd.Deterministic(ORGANIC_CONTRIBUTION, effect)
        return pmd.Deterministic(
            f"{self.prefix}_effect_contribution", effect.sum(dim=self.channel_dim)
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrganicEffect:
        raise NotImplementedError(
            "organic effects are rebuilt from the workspace's data, not from a saved MMM"
        )


@serialization.register
class EventEffect(ControlMuEffect):
    """Event indicators, one coefficient each: PyMC-Marketing's ``ControlMuEffect`` with
    its data carried in."""

    series: InstanceOf[xr.Dataset]

    def create_data(self, mmm: Any) -> None:
        for name in self.data_vars:
            _carry(mmm, name, self.series[name])
        super().create_data(mmm)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventEffect:
        raise NotImplementedError(
            "event effects are rebuilt from the workspace's data, not from a saved MMM"
        )


def _frame_index(X: pd.DataFrame, geo: bool) -> list[str]:
    return ["date", "geo"] if geo else ["date"]


def organic_series(X: pd.DataFrame, columns: list[str], geo: bool) -> xr.DataArray:
    """(date[, geo], organic) array of the organic columns of the modelling table."""
    frame = X.assign(date=pd.to_datetime(X["date"])).set_index(_frame_index(X, geo))[columns]
    stacked = frame.to_xarray().to_dataarray(dim=ORGANIC_DIM)
    return stacked.transpose("date", *(["geo"] if geo else []), ORGANIC_DIM)


def event_series(X: pd.DataFrame, columns: list[str], geo: bool) -> xr.Dataset:
    """One (date[, geo]) variable per event column, under the model's data names."""
    frame = X.assign(date=pd.to_datetime(X["date"])).set_index(_frame_index(X, geo))[columns]
    return frame.rename(columns={c: event_data_name(c) for c in columns}).to_xarray()


def add_components(
    mmm: Any,
    X: pd.DataFrame,
    organic: list[str],
    events: list[str],
    geo: bool,
    adstock: Any,
    saturation: Any,
) -> None:
    """Give ``mmm`` (built, not yet ``build_model``-ed) the organic and event components.

    ``adstock`` and ``saturation`` are fresh transformation objects of the media's families
    with the media's default priors (their dims are set to the organic dimension here).
    """
    from pymc_extras.prior import Prior
    from pymc_marketing.mmm.media_transformation import MediaTransformation

    if organic:
        mmm.mu_effects.append(
            OrganicEffect(
                data_vars=[ORGANIC_DATA],
                prefix=ORGANIC_PREFIX,
                channel_dim=ORGANIC_DIM,
                media_transformation=MediaTransformation(
                    adstock=adstock,
                    saturation=saturation,
                    adstock_first=True,
                    dims=(ORGANIC_DIM,),
                ),
                series=organic_series(X, organic, geo),
            )
        )
    if events:
        mmm.mu_effects.append(
            EventEffect(
                data_vars=[event_data_name(c) for c in events],
                prefix=EVENT_PREFIX,
                prior=Prior.from_dict(EVENT_PRIOR),
                series=event_series(X, events, geo),
            )
        )
