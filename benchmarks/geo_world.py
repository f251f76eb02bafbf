"""A weekly geo panel written apart from the project's simulator and its model.

Like ``benchmarks/worlds.py`` (whose curves and spend patterns it reuses), this world does
not import ``attribution_analysis`` and does not use the fitted model's parametrisation:
curves act on each geo's spend in currency, carry-over weights are the world's own
(unnormalised geometric, and a delayed peak for one channel), and every (geo, channel)
effect is sized by a stated true ROAS.

What makes it a geo world:

- geos of very different size: populations log-normal (largest about 20x the smallest),
  baselines, spend, half-saturation points and noise all scale with population;
- shared and geo-specific effects: each channel has a national ROAS, and each geo's ROAS
  is that mean times a log-normal geo deviation (sd ``GEO_ROAS_SD``), so geo truths differ
  while sharing a centre;
- geo-level spend correlated with population but not proportional to it (search follows
  population^0.9, social population^0.8, each with its own weekly noise), national TV flights
  that some geos skip, and social tests that leave some geos dark for weeks;
- geo-specific baseline growth and seasonal amplitude around a shared yearly shape, and a
  national price control (``import_data`` keeps controls national).

The truth records each (week, geo, channel) contribution, so per-geo and national channel
totals are sums of one table.

    python benchmarks/geo_world.py [--geos 30] [--weeks 156] [--seed 1]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from worlds import (
    START,
    _fourier,
    _price,
    carry_over,
    delayed_weights,
    exponential,
    flighted,
    geometric_weights,
    hill,
    michaelis_menten,
)

GEOS = 30
WEEKS = 156
CHANNELS = ("tv", "search", "social")
# National mean ROAS per channel; a geo's ROAS is this times exp(N(0, GEO_ROAS_SD)).
NATIONAL_ROAS = {"tv": 1.1, "search": 1.8, "social": 0.9}
GEO_ROAS_SD = 0.25
POPULATION_SD = 0.75  # log-normal sd of geo populations (normalised to mean 1)
BASE_PER_CAPITA = 10_000.0  # weekly baseline sales of a geo of average population
# Weekly spend of a geo of average population when the channel is on.
SPEND_PER_CAPITA = {"tv": 1500.0, "search": 1000.0, "social": 800.0}
PRICE_EFFECT = 150.0  # sales lost per currency unit of price above 20, per capita
NOISE_SHARE = 0.05  # noise sd of a geo of average population, as a share of its baseline
TV_SKIP = 0.15  # chance that a geo skips one national TV flight
SOCIAL_TEST_GEOS = 0.3  # share of geos with social switched off for a few weeks


@dataclass
class GeoWorld:
    """A generated geo panel: the long table a user would bring and the truth behind it."""

    description: str
    table: pd.DataFrame  # date, geo, sales, spend_<channel>, price
    geos: list[str]
    channels: list[str]
    controls: list[str]
    population: pd.Series  # by geo, mean 1
    geo_roas: pd.DataFrame  # (geo x channel) true ROAS of the geo's own spend
    weekly_contribution: pd.DataFrame = field(repr=False)  # date, geo, channel, contribution

    @property
    def geo_contribution(self) -> pd.DataFrame:
        """True contribution over the window, (geo x channel)."""
        return self.weekly_contribution.pivot_table(
            index="geo", columns="channel", values="contribution", aggfunc="sum"
        ).reindex(index=self.geos, columns=self.channels)

    @property
    def national_contribution(self) -> dict[str, float]:
        totals = self.geo_contribution.sum(axis=0)
        return {c: float(totals[c]) for c in self.channels}

    @property
    def geo_spend(self) -> pd.DataFrame:
        """Spend over the window, (geo x channel)."""
        spend = self.table.groupby("geo")[[f"spend_{c}" for c in self.channels]].sum()
        spend.columns = self.channels
        return spend.reindex(self.geos)


def _dark_stretches(rng: np.random.Generator, n: int) -> np.ndarray:
    """A 0/1 mask with one or two stretches of 4-10 weeks switched off."""
    mask = np.ones(n)
    for _ in range(int(rng.integers(1, 3))):
        length = int(rng.integers(4, 11))
        start = int(rng.integers(0, n - length))
        mask[start : start + length] = 0.0
    return mask


def geo_panel(seed: int, n_geos: int = GEOS, n_weeks: int = WEEKS) -> GeoWorld:
    """The geo world for ``seed`` (see the module docstring)."""
    rng = np.random.default_rng([seed, 21])
    dates = pd.date_range(START, periods=n_weeks, freq="7D")
    geos = [f"g{g:02d}" for g in range(n_geos)]
    population = np.exp(rng.normal(0, POPULATION_SD, n_geos))
    population /= population.mean()
    t = np.linspace(0, 1, n_weeks)
    season = _fourier(dates, [(0.08, 0.04), (0.03, -0.02)])  # shared yearly shape
    price = _price(rng, n_weeks)

    # National TV flights; each geo skips a flight with probability TV_SKIP.
    national_tv = flighted(rng, 1.0, 0.55, n_weeks) > 0
    flight_id = np.cumsum(np.diff(np.concatenate([[0], national_tv.astype(int)])) == 1)
    national_drift = 1 + 0.3 * t

    geo_roas = np.exp(rng.normal(0, GEO_ROAS_SD, (n_geos, len(CHANNELS)))) * np.array(
        [NATIONAL_ROAS[c] for c in CHANNELS]
    )
    carry = {
        "tv": geometric_weights(0.6, 12),
        "search": geometric_weights(0.15, 12),
        "social": delayed_weights(1.0, 1.0, 10),
    }
    rows, truth = [], []
    for g, geo in enumerate(geos):
        pop = population[g]
        skipped = rng.random(flight_id.max() + 1) < TV_SKIP
        tv_on = national_tv & ~skipped[flight_id]
        spend = {
            "tv": np.where(
                tv_on, SPEND_PER_CAPITA["tv"] * pop * rng.lognormal(0, 0.2, n_weeks), 0.0
            ),
            "search": SPEND_PER_CAPITA["search"]
            * pop**0.9
            * national_drift
            * rng.lognormal(0, 0.25, n_weeks),
            "social": SPEND_PER_CAPITA["social"]
            * pop**0.8
            * (1 + 0.5 * t)
            * rng.lognormal(0, 0.3, n_weeks)
            * (_dark_stretches(rng, n_weeks) if rng.random() < SOCIAL_TEST_GEOS else 1.0),
        }
        spend = {c: np.round(s, 2) for c, s in spend.items()}
        # Half-saturation points scale with the geo's size: a large geo needs more spend to
        # saturate the same share of its audience.
        curve = {
            "tv": lambda x, p=pop: hill(x, 2500 * p, 1.5),
            "search": lambda x, p=pop: michaelis_menten(x, 1500 * p),
            "social": lambda x, p=pop: exponential(x, 1200 * p),
        }
        media = np.zeros(n_weeks)
        for c, channel in enumerate(CHANNELS):
            shape = curve[channel](carry_over(spend[channel], carry[channel]))
            total = geo_roas[g, c] * spend[channel].sum()
            weekly = shape * (total / shape.sum()) if shape.sum() > 0 else np.zeros(n_weeks)
            media += weekly
            truth.append(
                pd.DataFrame(
                    {"date": dates, "geo": geo, "channel": channel, "contribution": weekly}
                )
            )
        growth = 0.15 + rng.normal(0, 0.05)
        amplitude = 1 + rng.normal(0, 0.3)
        base = BASE_PER_CAPITA * pop * (1 + growth * t + amplitude * season)
        base -= PRICE_EFFECT * pop * (price - 20)
        noise = rng.normal(0, NOISE_SHARE * BASE_PER_CAPITA * pop**0.75, n_weeks)
        sales = base + media + noise
        if np.any(sales <= 0):
            raise ValueError(f"geo world seed {seed}: non-positive sales in {geo}")
        rows.append(
            pd.DataFrame(
                {
                    "date": dates.strftime("%Y-%m-%d"),
                    "geo": geo,
                    "sales": np.round(sales, 2),
                    **{f"spend_{c}": spend[c] for c in CHANNELS},
                    "price": np.round(price, 4),
                }
            )
        )
    weekly = pd.concat(truth, ignore_index=True)
    weekly["date"] = weekly["date"].dt.strftime("%Y-%m-%d")
    # Truth is stated for the spend the table holds (rounded to cents), as a user would see it.
    return GeoWorld(
        description=(__doc__ or "").split("\n\n")[0],
        table=pd.concat(rows, ignore_index=True),
        geos=geos,
        channels=list(CHANNELS),
        controls=["price"],
        population=pd.Series(population, index=geos, name="population"),
        geo_roas=pd.DataFrame(geo_roas, index=geos, columns=list(CHANNELS)),
        weekly_contribution=weekly,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--geos", type=int, default=GEOS)
    parser.add_argument("--weeks", type=int, default=WEEKS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    world = geo_panel(args.seed, args.geos, args.weeks)
    media = sum(world.national_contribution.values())
    print(f"media / sales {media / world.table['sales'].sum():.3f}")
    print("national contribution", {c: round(v) for c, v in world.national_contribution.items()})
    spend = world.geo_spend.sum()
    roas = {c: round(world.national_contribution[c] / spend[c], 3) for c in spend.index}
    print("national ROAS", {c: float(v) for c, v in roas.items()})
    print("population range", world.population.min().round(2), world.population.max().round(2))
    dark = (world.table[[f"spend_{c}" for c in world.channels]] == 0).mean().round(3)
    print("share of (geo, week) cells dark", dark.to_dict())
