"""Journey paths counted on Dask (and by the in-memory engine) against a plain pandas count
of the same touches: one row per journey, channels joined in time order, then counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attribution_analysis.errors import DataValidationError, MissingInputError
from attribution_analysis.paths.distributed import count_paths

CHANNELS = ["display", "email", "search", "social"]


def _touches(seed: int, n_journeys: int = 400) -> pd.DataFrame:
    """Journeys of 1-5 touches over two weeks, ~30% converting, values on conversions."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2026-03-01")
    for j in range(n_journeys):
        length = int(rng.integers(1, 6))
        times = np.sort(rng.uniform(0, 14 * 24, size=length))
        converted = int(rng.random() < 0.3)
        value = float(rng.gamma(2.0, 40.0)) if converted else 0.0
        for t in times:
            rows.append(
                (
                    f"j{j:05d}",
                    start + pd.Timedelta(hours=float(t)),
                    CHANNELS[int(rng.integers(0, 4))],
                    converted,
                    value,
                )
            )
    return pd.DataFrame(
        rows, columns=["journey_id", "timestamp", "channel", "converted", "conversion_value"]
    )


def _by_week(touches: pd.DataFrame, folder, kind: str) -> list[str]:
    """Partitions by calendar week, as exports come: journeys straddle files."""
    folder.mkdir()
    files = []
    for number, (_, part) in enumerate(touches.groupby(touches["timestamp"].dt.isocalendar().week)):
        name = folder / f"week-{number}.{kind}"
        if kind == "csv":
            part.assign(timestamp=part["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(
                name, index=False
            )
        else:
            part.to_parquet(name, index=False)
        files.append(str(name))
    return files


def _pandas_count(touches: pd.DataFrame) -> pd.DataFrame:
    """The independent count: sort, join each journey's channels, sum per path."""
    ordered = touches.sort_values(["journey_id", "timestamp"], kind="stable")
    journeys = ordered.groupby("journey_id").agg(
        path=("channel", ">".join),
        converted=("converted", "max"),
        value=("conversion_value", "max"),
    )
    journeys["nulls"] = 1 - journeys["converted"]
    counted = journeys.groupby("path")[["converted", "nulls", "value"]].sum()
    return counted.rename(columns={"converted": "conversions"}).reset_index()


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_dask_path_counts_equal_a_pandas_count(client, tmp_path, kind):
    touches = _touches(11)
    files = _by_week(touches, tmp_path / "journeys", kind)
    assert len(files) >= 3  # journeys really cross partitions
    expected = _pandas_count(touches).sort_values("path").reset_index(drop=True)
    for engine in ("dask", "memory"):
        counted = count_paths(tmp_path / "journeys", client=client, threshold=1, engine=engine)
        assert counted.choice.engine == engine
        got = counted.table.reset_index(drop=True)
        assert list(got["path"]) == list(expected["path"])
        np.testing.assert_array_equal(got["conversions"], expected["conversions"])
        np.testing.assert_array_equal(got["nulls"], expected["nulls"])
        np.testing.assert_allclose(got["value"], expected["value"], rtol=1e-12)
        assert counted.n_journeys == touches["journey_id"].nunique()
        assert counted.data.n_units == len(expected)


def test_the_count_switches_engine_by_rows(client, tmp_path):
    touches = _touches(12, n_journeys=50)
    _by_week(touches, tmp_path / "journeys", "parquet")
    small = count_paths(tmp_path / "journeys", client=client, threshold=len(touches) + 1)
    large = count_paths(tmp_path / "journeys", client=client, threshold=len(touches))
    assert (small.choice.engine, large.choice.engine) == ("memory", "dask")
    pd.testing.assert_frame_equal(small.table, large.table)


def test_a_journey_partition_without_a_column_or_missing_is_named(client, tmp_path):
    touches = _touches(13, n_journeys=60)
    files = _by_week(touches, tmp_path / "journeys", "parquet")
    pd.read_parquet(files[1]).drop(columns="channel").to_parquet(files[1], index=False)
    with pytest.raises(DataValidationError) as caught:
        count_paths(tmp_path / "journeys", client=client, threshold=1)
    assert caught.value.file == files[1] and caught.value.column == "channel"
    with pytest.raises(MissingInputError) as missing:
        count_paths([files[0], str(tmp_path / "gone.parquet")], client=client, threshold=1)
    assert missing.value.file == str(tmp_path / "gone.parquet")
