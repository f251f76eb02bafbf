"""Small wide weekly tables in the column layouts of Robyn's, PyMC-Marketing's and Meridian's
demo data, written here from a seed (plausible values, not the published data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

WEEKS = 110


def _weeks(start: str, n: int = WEEKS) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(start, periods=n, freq="7D")]


def _bursty(rng: np.random.Generator, n: int, level: float, on: float = 0.6) -> np.ndarray:
    return np.round(np.where(rng.random(n) < on, rng.gamma(2.0, level / 2.0, n), 0.0), 2)


def robyn(seed: int = 1) -> str:
    rng = np.random.default_rng(seed)
    n = WEEKS
    spends = {
        c: _bursty(rng, n, lvl)
        for c, lvl in [
            ("tv_S", 60000),
            ("ooh_S", 20000),
            ("print_S", 8000),
            ("search_S", 15000),
            ("facebook_S", 12000),
        ]
    }
    events = np.where(rng.random(n) < 0.08, rng.choice(["event1", "event2"], n), "na")
    frame = pd.DataFrame(
        {
            "DATE": _weeks("2015-11-23"),
            "revenue": np.round(1.5e6 + 3 * spends["tv_S"] + rng.normal(0, 1e5, n), 2),
            "tv_S": spends["tv_S"],
            "ooh_S": spends["ooh_S"],
            "print_S": spends["print_S"],
            "facebook_I": np.round(spends["facebook_S"] * rng.uniform(80, 120, n)),
            "search_clicks_P": np.round(spends["search_S"] * rng.uniform(0.5, 1.5, n)),
            "search_S": spends["search_S"],
            "competitor_sales_B": np.round(rng.normal(5e6, 4e5, n)),
            "facebook_S": spends["facebook_S"],
            "events": events,
            "newsletter": np.round(rng.gamma(2.0, 10000, n), 1),
        }
    )
    return frame.to_csv(index=False, lineterminator="\n")


def pymc(seed: int = 2) -> str:
    rng = np.random.default_rng(seed)
    n = WEEKS
    dates = pd.date_range("2018-04-02", periods=n, freq="7D")
    x1 = np.round(rng.uniform(0.1, 1.0, n), 4)
    x2 = np.round(np.where(rng.random(n) < 0.4, rng.uniform(0.5, 1.0, n), 0.0), 4)
    event_1 = np.zeros(n, dtype=int)
    event_1[30] = 1
    event_2 = np.zeros(n, dtype=int)
    event_2[80] = 1
    frame = pd.DataFrame(
        {
            "date_week": dates.strftime("%Y-%m-%d"),
            "y": np.round(5000 + 1500 * x1 + 2000 * x2 + rng.normal(0, 300, n), 3),
            "x1": x1,
            "x2": x2,
            "event_1": event_1,
            "event_2": event_2,
            "dayofyear": dates.day_of_year,
        }
    )
    return frame.to_csv(index=False, lineterminator="\n")


def _meridian_block(rng: np.random.Generator, n: int, scale: float) -> dict[str, np.ndarray]:
    spend0 = _bursty(rng, n, 30000 * scale, 0.8)
    spend1 = _bursty(rng, n, 18000 * scale, 0.7)
    return {
        "kpi": np.round(1000 * scale + spend0 / 50 + spend1 / 40 + rng.normal(0, 50, n), 1),
        "revenue_per_kpi": np.round(rng.uniform(40, 60, n), 2),
        "Channel0_impression": np.round(spend0 * rng.uniform(90, 110, n)),
        "Channel1_impression": np.round(spend1 * rng.uniform(150, 250, n)),
        "Channel0_spend": spend0,
        "Channel1_spend": spend1,
        "Competitor_Sales": np.round(rng.normal(1e5, 1e4, n) * scale),
        "Discount": np.round(rng.uniform(0, 0.3, n), 3),
        "GQV": np.round(rng.normal(100, 10, n), 2),
        "Organic_channel0_impression": np.round(rng.gamma(2.0, 5000 * scale, n)),
    }


def meridian_national(seed: int = 3) -> str:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"time": _weeks("2021-01-25"), **_meridian_block(rng, WEEKS, 1.0)})
    return frame.to_csv(index=False, lineterminator="\n")


def meridian_geo(seed: int = 4, geos: int = 3) -> str:
    rng = np.random.default_rng(seed)
    parts = []
    for g in range(geos):
        scale = 0.5 + g * 0.4
        block = _meridian_block(rng, WEEKS, scale)
        part = pd.DataFrame(
            {"time": _weeks("2021-01-25"), "geo": f"Geo{g}", "population": 100000 * (g + 1)}
        )
        parts.append(pd.concat([part, pd.DataFrame(block)], axis=1))
    frame = pd.concat(parts, ignore_index=True)
    cols = [
        "time",
        "geo",
        "population",
        *[c for c in frame.columns if c not in ("time", "geo", "population")],
    ]
    return frame[cols].to_csv(index=False, lineterminator="\n")


# (column -> (role, channel)) the inference should reach; the rest must be asked.
EXPECTED = {
    "robyn": {
        "DATE": ("date", None),
        "revenue": ("target", None),
        "tv_S": ("spend", "tv"),
        "ooh_S": ("spend", "ooh"),
        "print_S": ("spend", "print"),
        "facebook_I": ("impressions", "facebook"),
        "search_clicks_P": ("clicks", "search"),
        "search_S": ("spend", "search"),
        "competitor_sales_B": ("control", None),
        "facebook_S": ("spend", "facebook"),
        "events": ("event", None),
        "newsletter": ("organic", None),
    },
    "pymc": {
        "date_week": ("date", None),
        "y": ("target", None),
        "x1": ("spend", "x1"),
        "x2": ("spend", "x2"),
        "event_1": ("event", None),
        "event_2": ("event", None),
        "dayofyear": ("ignored", None),
    },
    "meridian_national": {
        "time": ("date", None),
        "kpi": ("target", None),
        "revenue_per_kpi": ("ignored", None),
        "Channel0_impression": ("impressions", "Channel0"),
        "Channel1_impression": ("impressions", "Channel1"),
        "Channel0_spend": ("spend", "Channel0"),
        "Channel1_spend": ("spend", "Channel1"),
        "Competitor_Sales": ("control", None),
        "Discount": ("control", None),
        "GQV": ("control", None),
        "Organic_channel0_impression": ("organic", None),
    },
}
EXPECTED["meridian_geo"] = {
    "time": ("date", None),
    "geo": ("geo", None),
    "population": ("ignored", None),
    **{k: v for k, v in EXPECTED["meridian_national"].items() if k != "time"},
}
TABLES = {
    "robyn": robyn,
    "pymc": pymc,
    "meridian_national": meridian_national,
    "meridian_geo": meridian_geo,
}
# question codes each layout must raise (besides the country)
QUESTIONS = {
    "robyn": set(),
    "pymc": {"target_kind", "confirm_role"},
    "meridian_national": {"target_kind", "confirm_role"},
    "meridian_geo": {"target_kind", "confirm_role"},
}
