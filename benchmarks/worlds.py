"""Weekly MMM worlds written apart from the project's simulator and its model.

Each world is a data-generating process in plain NumPy that does not import
``attribution_analysis.simulate`` and does not use the fitted model's parametrisation
(PyMC-Marketing's normalised adstock, spend scaled by its maximum, ``beta * curve``): curves
act on spend in currency, carry-over weights are the world's own, and every channel's effect
is sized by a stated true ROAS. A world returns the wide weekly table a user would bring
(``date``, the outcome, one spend column per channel, controls and events), the true
contribution of each channel over the whole window and the true media total.

The worlds vary what the model has to get right: the saturation family (Hill,
Michaelis-Menten, logistic S-curve, exponential), short and long carry-over (geometric and a
delayed, Weibull-like peak), season windows and one-off events, a trend break the model does
not know about, a price or competitor control, correlated spends and a weak channel.

Spend patterns (always-on with drift, yearly seasonal, on/off flighting), noise levels and
the carry-over, half-saturation and sales-rate ranges of the ``research_preset`` world mirror
the business-size presets of PyMC Labs' MMM parameter-recovery generator
(github.com/pymc-labs/mmm-param-recovery, ``mmm_param_recovery/data_generator/presets.py``,
Apache-2.0): geometric alpha 0.3-0.7, Hill slope 1 with half-saturation near the typical
weekly spend, spend levels 300-8,000 a week, sales volatility 10-20%. Only those ranges are
used; the code is this project's.

    python benchmarks/worlds.py            # one line per world: media share, true shares
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

WEEKS = 156
START = "2022-01-03"  # a Monday: weekly periods start on Mondays

# ----- curves (acting on spend in currency) -----------------------------------------------


def hill(x: np.ndarray, half: float, slope: float) -> np.ndarray:
    return x**slope / (x**slope + half**slope)


def michaelis_menten(x: np.ndarray, half: float) -> np.ndarray:
    return x / (x + half)


def logistic_s(x: np.ndarray, mid: float, width: float) -> np.ndarray:
    """An S-curve that is 0 at zero spend (a logistic shifted down and rescaled)."""
    at_zero = 1 / (1 + np.exp(mid / width))
    return (1 / (1 + np.exp(-(x - mid) / width)) - at_zero) / (1 - at_zero)


def exponential(x: np.ndarray, scale: float) -> np.ndarray:
    return 1 - np.exp(-x / scale)


def geometric_weights(alpha: float, length: int) -> np.ndarray:
    """Carry-over weights alpha**lag, not normalised: long memory adds volume."""
    return alpha ** np.arange(length)


def delayed_weights(peak: float, spread: float, length: int) -> np.ndarray:
    """A Weibull-like bump peaking ``peak`` weeks after spend (then normalised to sum 1)."""
    lags = np.arange(length, dtype=float)
    w = np.exp(-((lags - peak) ** 2) / (2 * spread**2))
    return w / w.sum()


def carry_over(spend: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.convolve(spend, weights)[: len(spend)]


# ----- spend patterns -----------------------------------------------------------------------


def always_on(rng: np.random.Generator, level: float, drift: float, n: int) -> np.ndarray:
    growth = 1 + drift * np.linspace(0, 1, n)
    return level * growth * rng.lognormal(0, 0.25, n)


def seasonal_spend(
    rng: np.random.Generator, level: float, amplitude: float, phase: float, n: int
) -> np.ndarray:
    cycle = 1 + amplitude * np.sin(2 * np.pi * (np.arange(n) / 52.18 + phase))
    return level * cycle * rng.lognormal(0, 0.2, n)


def flighted(rng: np.random.Generator, level: float, on_share: float, n: int) -> np.ndarray:
    """Bursts of 2-6 weeks on, gaps between: spend is exactly zero off-flight."""
    on = np.zeros(n, dtype=bool)
    t = 0
    while t < n:
        length = int(rng.integers(2, 7))
        if rng.random() < on_share:
            on[t : t + length] = True
        t += length
    return np.where(on, level * rng.lognormal(0, 0.3, n), 0.0)


# ----- the world ----------------------------------------------------------------------------


@dataclass
class Channel:
    name: str
    spend: np.ndarray
    weights: np.ndarray
    curve: Callable[[np.ndarray], np.ndarray]
    roas: float  # true contribution over the window / spend over the window


@dataclass
class World:
    """A generated world: the table a user would bring and the truth behind it."""

    name: str
    description: str
    table: pd.DataFrame  # date, sales, spend_<channel>, controls, events
    channels: list[str]
    controls: list[str]  # given to the model as controls
    events: list[str]  # 0/1 event columns, given to the model as controls
    true_contribution: dict[str, float]
    true_spend: dict[str, float]
    weekly_contribution: pd.DataFrame = field(repr=False)
    # Each channel's weekly contribution as a function of its whole spend series, with the
    # effect's size fixed at the factual one: what a lift test's counterfactual needs.
    responses: dict[str, Callable[[np.ndarray], np.ndarray]] = field(
        default_factory=dict, repr=False
    )

    @property
    def true_media_total(self) -> float:
        return float(sum(self.true_contribution.values()))

    @property
    def true_share(self) -> dict[str, float]:
        total = self.true_media_total
        return {c: v / total for c, v in self.true_contribution.items()}

    @property
    def true_roas(self) -> dict[str, float]:
        return {c: self.true_contribution[c] / self.true_spend[c] for c in self.channels}

    def go_dark_lift(self, channel: str, weeks: slice) -> float:
        """The true lift of a go-dark test: the outcome lost, over the whole series (its
        carry-over after the test included), when ``channel`` spends nothing in ``weeks``."""
        spend = self.table[f"spend_{channel}"].to_numpy(dtype=float).copy()
        factual = self.responses[channel](spend)
        spend[weeks] = 0.0
        return float((factual - self.responses[channel](spend)).sum())


def _dates(n: int) -> pd.DatetimeIndex:
    return pd.date_range(START, periods=n, freq="7D")


def _fourier(dates: pd.DatetimeIndex, amplitudes: list[tuple[float, float]]) -> np.ndarray:
    day = dates.day_of_year.to_numpy() / 365.25
    out = np.zeros(len(dates))
    for k, (a, b) in enumerate(amplitudes, start=1):
        out += a * np.sin(2 * np.pi * k * day) + b * np.cos(2 * np.pi * k * day)
    return out


def season_window(dates: pd.DatetimeIndex) -> np.ndarray:
    """1 in the weeks from the last week of November to the end of December."""
    month, day = dates.month.to_numpy(), dates.day.to_numpy()
    return (((month == 11) & (day >= 22)) | (month == 12)).astype(float)


def _assemble(
    name: str,
    description: str,
    rng: np.random.Generator,
    dates: pd.DatetimeIndex,
    base: np.ndarray,
    channels: list[Channel],
    controls: dict[str, np.ndarray],
    events: dict[str, np.ndarray],
    noise_sd: float,
) -> World:
    """Size each channel's effect by its true ROAS, add noise, and package table and truth."""
    weekly, responses = {}, {}
    for ch in channels:
        shape = ch.curve(carry_over(ch.spend, ch.weights))
        # The effect's size is stated as a return on spend over the window, so that truth is
        # in the units a user reads (contribution per currency unit), not in a curve scale.
        size = ch.roas * ch.spend.sum() / shape.sum()
        weekly[ch.name] = shape * size
        responses[ch.name] = _response(ch, size)
    media = np.sum(list(weekly.values()), axis=0)
    sales = base + media + rng.normal(0, noise_sd, len(dates))
    if np.any(sales <= 0):
        raise ValueError(f"world {name}: non-positive sales; raise the base level")
    table = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "sales": np.round(sales, 2)})
    for ch in channels:
        table[f"spend_{ch.name}"] = np.round(ch.spend, 2)
    for column, values in {**controls, **events}.items():
        table[column] = np.round(values, 4)
    return World(
        name=name,
        description=description,
        table=table,
        channels=[c.name for c in channels],
        controls=list(controls),
        events=list(events),
        true_contribution={c: float(v.sum()) for c, v in weekly.items()},
        true_spend={c.name: float(c.spend.sum()) for c in channels},
        weekly_contribution=pd.DataFrame(weekly, index=dates),
        responses=responses,
    )


def _response(channel: Channel, size: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda spend: size * channel.curve(carry_over(spend, channel.weights))


def _price(rng: np.random.Generator, n: int, level: float = 20.0) -> np.ndarray:
    """An AR(1) price around ``level`` with two promotions of a few weeks."""
    price = np.empty(n)
    price[0] = level
    for t in range(1, n):
        price[t] = level + 0.85 * (price[t - 1] - level) + rng.normal(0, 0.35)
    for start in rng.choice(np.arange(10, n - 10), 2, replace=False):
        price[start : start + 3] *= 0.85
    return price


def hill_season(seed: int, n: int = WEEKS) -> World:
    """The issue's world: Hill on geometric carry-over, linear trend, two Fourier pairs, a
    late-November-to-December season window (given as a control) and a price control."""
    rng = np.random.default_rng([seed, 1])
    dates = _dates(n)
    window = season_window(dates)
    price = _price(rng, n)
    base = (
        9000
        + 2500 * np.linspace(0, 1, n)
        + _fourier(dates, [(600, 300), (250, -200)])
        + 2200 * window
        - 300 * (price - 20)
    )
    channels = [
        Channel(
            "tv",
            seasonal_spend(rng, 3000, 0.5, 0.1, n),
            geometric_weights(0.6, 12),
            lambda x: hill(x, 5000, 1.6),
            1.1,
        ),
        Channel(
            "search",
            always_on(rng, 1800, 0.3, n),
            geometric_weights(0.2, 12),
            lambda x: hill(x, 1500, 1.0),
            1.9,
        ),
        Channel(
            "social",
            always_on(rng, 1200, 0.5, n),
            geometric_weights(0.35, 12),
            lambda x: hill(x, 1400, 1.3),
            1.3,
        ),
        Channel(
            "display",
            flighted(rng, 1500, 0.6, n),
            geometric_weights(0.3, 12),
            lambda x: hill(x, 1200, 2.0),
            0.7,
        ),
    ]
    return _assemble(
        "hill_season",
        hill_season.__doc__ or "",
        rng,
        dates,
        base,
        channels,
        {"price": price, "season_window": window},
        {},
        450,
    )


def logistic_short(seed: int, n: int = WEEKS) -> World:
    """Logistic S-curves, short geometric carry-over (alpha 0.1-0.3), flighted spend and a
    competitor-spend control."""
    rng = np.random.default_rng([seed, 2])
    dates = _dates(n)
    competitor = always_on(rng, 5000, 0.2, n)
    base = (
        12000
        + 1500 * np.linspace(0, 1, n)
        + _fourier(dates, [(800, 0)])
        - 0.25 * (competitor - 5000)
    )
    channels = [
        Channel(
            "tv",
            flighted(rng, 6000, 0.5, n),
            geometric_weights(0.3, 12),
            lambda x: logistic_s(x, 4000, 1200),
            0.9,
        ),
        Channel(
            "search",
            always_on(rng, 2500, 0.1, n),
            geometric_weights(0.1, 12),
            lambda x: logistic_s(x, 1800, 700),
            2.2,
        ),
        Channel(
            "social",
            flighted(rng, 2500, 0.7, n),
            geometric_weights(0.2, 12),
            lambda x: logistic_s(x, 1500, 600),
            1.2,
        ),
        Channel(
            "video",
            flighted(rng, 3500, 0.4, n),
            geometric_weights(0.25, 12),
            lambda x: logistic_s(x, 2500, 800),
            0.8,
        ),
    ]
    return _assemble(
        "logistic_short",
        logistic_short.__doc__ or "",
        rng,
        dates,
        base,
        channels,
        {"competitor_spend": competitor},
        {},
        600,
    )


def michaelis_long(seed: int, n: int = WEEKS) -> World:
    """Michaelis-Menten curves, long geometric carry-over (alpha 0.6-0.75) on seasonal
    spend, a season window and a price control."""
    rng = np.random.default_rng([seed, 3])
    dates = _dates(n)
    window = season_window(dates)
    price = _price(rng, n, 35.0)
    base = (
        20000
        + 3000 * np.linspace(0, 1, n)
        + _fourier(dates, [(1500, 500), (400, 0)])
        + (3500 * window - 400 * (price - 35))
    )
    channels = [
        Channel(
            "tv",
            seasonal_spend(rng, 8000, 0.4, 0.0, n),
            geometric_weights(0.75, 16),
            lambda x: michaelis_menten(x, 25000),
            1.0,
        ),
        Channel(
            "radio",
            seasonal_spend(rng, 2000, 0.3, 0.3, n),
            geometric_weights(0.6, 16),
            lambda x: michaelis_menten(x, 6000),
            0.8,
        ),
        Channel(
            "print",
            always_on(rng, 1500, -0.3, n),
            geometric_weights(0.65, 16),
            lambda x: michaelis_menten(x, 4000),
            0.6,
        ),
        Channel(
            "search",
            always_on(rng, 3000, 0.4, n),
            geometric_weights(0.3, 16),
            lambda x: michaelis_menten(x, 4000),
            1.6,
        ),
    ]
    return _assemble(
        "michaelis_long",
        michaelis_long.__doc__ or "",
        rng,
        dates,
        base,
        channels,
        {"price": price, "season_window": window},
        {},
        900,
    )


def delayed_events(seed: int, n: int = WEEKS) -> World:
    """Delayed (Weibull-like) carry-over peaking 1-3 weeks after spend, Hill curves, and
    one-off promotion events given as 0/1 columns."""
    rng = np.random.default_rng([seed, 4])
    dates = _dates(n)
    promo = np.zeros(n)
    promo[rng.choice(np.arange(5, n - 5), 6, replace=False)] = 1.0
    base = 15000 + 2000 * np.linspace(0, 1, n) + _fourier(dates, [(1000, -400)]) + 4000 * promo
    channels = [
        Channel(
            "tv",
            seasonal_spend(rng, 5000, 0.5, 0.2, n),
            delayed_weights(3, 1.5, 10),
            lambda x: hill(x, 4000, 1.2),
            1.2,
        ),
        Channel(
            "ooh",
            flighted(rng, 3000, 0.5, n),
            delayed_weights(2, 1.0, 10),
            lambda x: hill(x, 2500, 1.5),
            0.7,
        ),
        Channel(
            "search",
            always_on(rng, 2500, 0.3, n),
            delayed_weights(0.5, 0.7, 10),
            lambda x: hill(x, 2000, 1.0),
            2.0,
        ),
        Channel(
            "social",
            always_on(rng, 1500, 0.6, n),
            delayed_weights(1, 1.0, 10),
            lambda x: hill(x, 1500, 1.1),
            1.1,
        ),
    ]
    return _assemble(
        "delayed_events",
        delayed_events.__doc__ or "",
        rng,
        dates,
        base,
        channels,
        {},
        {"promo_event": promo},
        700,
    )


def trend_break(seed: int, n: int = WEEKS) -> World:
    """Exponential saturation and a trend break at week 90 (level drop, slope change) that
    the model's linear trend cannot follow."""
    rng = np.random.default_rng([seed, 5])
    dates = _dates(n)
    t = np.arange(n)
    brk = 90
    base = (
        14000
        + 20 * t
        - np.where(t >= brk, 1500 + 35 * (t - brk), 0.0)
        + _fourier(dates, [(700, 300), (200, 150)])
    )
    channels = [
        Channel(
            "tv",
            seasonal_spend(rng, 4000, 0.4, 0.6, n),
            geometric_weights(0.55, 12),
            lambda x: exponential(x, 6000),
            1.0,
        ),
        Channel(
            "search",
            always_on(rng, 2000, 0.2, n),
            geometric_weights(0.15, 12),
            lambda x: exponential(x, 2500),
            1.8,
        ),
        Channel(
            "social",
            always_on(rng, 1800, 0.4, n),
            geometric_weights(0.3, 12),
            lambda x: exponential(x, 2500),
            1.0,
        ),
        Channel(
            "affiliate",
            flighted(rng, 1200, 0.7, n),
            geometric_weights(0.1, 12),
            lambda x: exponential(x, 1500),
            1.4,
        ),
    ]
    return _assemble(
        "trend_break", trend_break.__doc__ or "", rng, dates, base, channels, {}, {}, 600
    )


def correlated_weak(seed: int, n: int = WEEKS) -> World:
    """Spends driven by one shared budget cycle (pairwise correlation ~0.6-0.8), a weak
    channel (ROAS 0.15), Hill curves and a price control."""
    rng = np.random.default_rng([seed, 6])
    dates = _dates(n)
    budget = np.exp(0.35 * np.sin(2 * np.pi * np.arange(n) / 26) + rng.normal(0, 0.15, n))
    price = _price(rng, n, 12.0)
    base = 10000 + 1000 * np.linspace(0, 1, n) + _fourier(dates, [(500, 200)]) - 500 * (price - 12)

    def shared(level: float) -> np.ndarray:
        return level * budget * rng.lognormal(0, 0.2, n)

    channels = [
        Channel("tv", shared(3500), geometric_weights(0.5, 12), lambda x: hill(x, 3500, 1.5), 1.0),
        Channel(
            "search", shared(2000), geometric_weights(0.2, 12), lambda x: hill(x, 1800, 1.0), 1.8
        ),
        Channel(
            "social", shared(1500), geometric_weights(0.3, 12), lambda x: hill(x, 1500, 1.2), 1.1
        ),
        Channel(
            "display", shared(1500), geometric_weights(0.3, 12), lambda x: hill(x, 1500, 1.2), 0.15
        ),
    ]
    return _assemble(
        "correlated_weak",
        correlated_weak.__doc__ or "",
        rng,
        dates,
        base,
        channels,
        {"price": price},
        {},
        450,
    )


def research_preset(seed: int, n: int = WEEKS) -> World:
    """PyMC Labs' research preset's ranges: three channels at ~1,000 a week (linear-trend,
    seasonal, on/off), geometric alpha 0.5, Hill slope 1 with half-saturation 1,000, base
    sales 8,000 with 10% volatility (see the module docstring for the source)."""
    rng = np.random.default_rng([seed, 7])
    dates = _dates(n)
    base = 8000 * (1 + 0.1 * np.sin(2 * np.pi * np.arange(n) / 52.18)) + 1000 * np.linspace(0, 1, n)
    channels = [
        Channel(
            "x1",
            always_on(rng, 1000, 0.05 * n / 52, n),
            geometric_weights(0.5, 12),
            lambda x: hill(x, 1000, 1.0),
            1.5,
        ),
        Channel(
            "x2",
            seasonal_spend(rng, 1000, 0.4, 0.0, n),
            geometric_weights(0.5, 12),
            lambda x: hill(x, 1000, 1.0),
            1.5,
        ),
        Channel(
            "x3",
            flighted(rng, 1000, 0.7, n),
            geometric_weights(0.5, 12),
            lambda x: hill(x, 1000, 1.0),
            1.5,
        ),
    ]
    return _assemble(
        "research_preset",
        research_preset.__doc__ or "",
        rng,
        dates,
        base,
        channels,
        {},
        {},
        0.1 * 8000,
    )


def low_media_share(seed: int, n: int = WEEKS) -> World:
    """Media about 15% of sales on a large baseline (the regime of the issue's world): Hill
    on geometric carry-over, always-on spend, linear trend, two Fourier pairs, a season window
    and a price control. How much of the baseline a model hands to media shows most here."""
    rng = np.random.default_rng([seed, 8])
    dates = _dates(n)
    window = season_window(dates)
    price = _price(rng, n, 30.0)
    base = (
        45000
        + 6000 * np.linspace(0, 1, n)
        + _fourier(dates, [(2500, 1000), (800, -600)])
        + 7000 * window
        - 900 * (price - 30)
    )
    channels = [
        Channel(
            "tv",
            always_on(rng, 3000, 0.2, n),
            geometric_weights(0.5, 12),
            lambda x: hill(x, 4500, 1.5),
            1.2,
        ),
        Channel(
            "search",
            always_on(rng, 1800, 0.3, n),
            geometric_weights(0.2, 12),
            lambda x: hill(x, 1600, 1.0),
            1.8,
        ),
        Channel(
            "social",
            always_on(rng, 1200, 0.4, n),
            geometric_weights(0.3, 12),
            lambda x: hill(x, 1300, 1.2),
            1.2,
        ),
        Channel(
            "display",
            flighted(rng, 1500, 0.6, n),
            geometric_weights(0.3, 12),
            lambda x: hill(x, 1500, 2.0),
            0.6,
        ),
    ]
    return _assemble(
        "low_media_share",
        low_media_share.__doc__ or "",
        rng,
        dates,
        base,
        channels,
        {"price": price, "season_window": window},
        {},
        900,
    )


def high_returns(seed: int, n: int = WEEKS) -> World:
    """Returns far above a default ROI prior's centre (LogNormal(0.2, 0.9): median 1.22):
    a direct-to-consumer business whose search returns 5 per unit of spend, affiliate 4,
    social 3 and TV 2.2, media about a third of sales. The other worlds' true ROAS all lie
    between 0.15 and 2.2, around that median; this one tests how far the prior pulls strong
    channels down. Mixed curves (Hill, Michaelis-Menten, exponential), short to long
    carry-over, flighted TV, a season window and a price control."""
    rng = np.random.default_rng([seed, 9])
    dates = _dates(n)
    window = season_window(dates)
    price = _price(rng, n, 25.0)
    base = (
        30000
        + 4000 * np.linspace(0, 1, n)
        + _fourier(dates, [(2000, 800), (600, -400)])
        + 6000 * window
        - 700 * (price - 25)
    )
    channels = [
        Channel(
            "search",
            always_on(rng, 1500, 0.3, n),
            geometric_weights(0.15, 12),
            lambda x: hill(x, 1800, 1.0),
            5.0,
        ),
        Channel(
            "affiliate",
            always_on(rng, 800, 0.2, n),
            geometric_weights(0.1, 12),
            lambda x: exponential(x, 900),
            4.0,
        ),
        Channel(
            "social",
            always_on(rng, 1200, 0.4, n),
            geometric_weights(0.3, 12),
            lambda x: michaelis_menten(x, 1500),
            3.0,
        ),
        Channel(
            "tv",
            flighted(rng, 4000, 0.5, n),
            geometric_weights(0.55, 12),
            lambda x: hill(x, 5000, 1.6),
            2.2,
        ),
    ]
    return _assemble(
        "high_returns",
        high_returns.__doc__ or "",
        rng,
        dates,
        base,
        channels,
        {"price": price, "season_window": window},
        {},
        1200,
    )


WORLDS: dict[str, Callable[[int], World]] = {
    f.__name__: f
    for f in (
        hill_season,
        logistic_short,
        michaelis_long,
        delayed_events,
        trend_break,
        correlated_weak,
        research_preset,
        low_media_share,
        high_returns,
    )
}


def make_world(name: str, seed: int) -> World:
    if name not in WORLDS:
        raise ValueError(f"unknown world '{name}'; choose from {sorted(WORLDS)}")
    return WORLDS[name](seed)


if __name__ == "__main__":
    for world_name in WORLDS:
        w = make_world(world_name, 1)
        media_share = w.true_media_total / w.table["sales"].sum()
        spend = np.array([w.table[f"spend_{c}"] for c in w.channels])
        corr = np.corrcoef(spend)[np.triu_indices(len(w.channels), 1)].max()
        shares = ", ".join(f"{c} {s:.2f}" for c, s in w.true_share.items())
        print(
            f"{world_name:16s} media/sales {media_share:.2f}  max spend corr {corr:.2f}  "
            f"shares: {shares}"
        )
