"""Journeys out of core: touch-level partitions (Parquet or CSV) counted into a path table.

``raw/journeys.csv`` is read whole into pandas; a 200 MB export already peaked at 2.5 GB
(issue #21). Here the touches come from partitions (``journey_id, timestamp, channel,
converted[, conversion_value]``, the columns of journeys.csv) and are reduced to the table
Markov and Shapley work on anyway: one row per distinct channel sequence with its
conversions, non-converting journeys and value.

* Dask (at or above the row threshold): the partitions are read as a dask DataFrame, shuffled
  by journey id (exports are usually partitioned by date, so a journey's touches sit in
  several files; the shuffle spills to disk rather than memory), each partition's journeys
  become paths (:func:`journey_paths`) and the paths are counted by a Dask groupby-sum.
* In memory (below the threshold): the same :func:`journey_paths` on the concatenated
  touches, in pandas.

Touches are ordered by time within a journey, ties broken by partition and row (file order,
as the pandas loader does). A journey converts when any of its rows says 1 and carries the
largest conversion value of its rows (the rules of journeys.csv). Campaigns and touch ages
are not kept: the aggregated table has none (as with ``raw/paths.csv``), so time-decay and
the campaign split need the touch-level file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from attribution_analysis.cluster import (
    Engine,
    EngineChoice,
    choose_engine,
    cluster_failure,
    dask_client,
    expand_files,
    is_cluster_failure,
    parquet_partitions,
)
from attribution_analysis.contracts.common import Finding
from attribution_analysis.contracts.paths import AttributePathsParams
from attribution_analysis.data.tables import LINE
from attribution_analysis.errors import AttributionError, DataValidationError, MissingInputError
from attribution_analysis.paths.data import PathData, aggregate, build, path_strings
from attribution_analysis.paths.inputs import SEPARATOR, LoadedPaths, check_channel_names
from attribution_analysis.workspace import Workspace

if TYPE_CHECKING:
    from distributed import Client

REQUIRED = ("journey_id", "timestamp", "channel", "converted")
VALUE = "conversion_value"
PART, ROW = "_partition", "_row"  # where each touch came from: ties in time keep file order
COUNT_COLUMNS = ("conversions", "nulls", "value")


@dataclass(frozen=True)
class CountedPaths:
    """The path table of a set of journey partitions, and how it was counted."""

    data: PathData  # one unit per distinct channel sequence
    table: pd.DataFrame  # path ('a>b>c'), conversions, nulls[, value], sorted by path
    files: tuple[str, ...]
    n_touches: int
    n_journeys: int
    has_value: bool
    choice: EngineChoice


def _is_csv(file: str) -> bool:
    return file.endswith((".csv", ".csv.gz"))


def _row_count(files: Sequence[str]) -> int:
    """Touches in the partitions: Parquet from the footers, CSV by counting lines."""
    parquet = [f for f in files if not _is_csv(f)]
    total = parquet_partitions(parquet, {}).total_rows if parquet else 0
    for file in files:
        if _is_csv(file):
            with open(file, "rb") as handle:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b""))
            total += max(lines - 1, 0)  # the header
    return total


def _check_columns(files: Sequence[str]) -> bool:
    """Every partition carries journeys.csv's columns (named file and column otherwise);
    returns whether they carry conversion values (all of them, or none)."""
    with_value = []
    for file in files:
        if _is_csv(file):
            columns = list(pd.read_csv(file, nrows=0).columns)
        else:
            import pyarrow.parquet as pq

            columns = pq.read_schema(file).names
        for column in REQUIRED:
            if column not in columns:
                raise DataValidationError(
                    problem=f"partition {file} has no column '{column}' (it has "
                    f"{', '.join(columns)}).",
                    fix="write every partition with journeys.csv's columns: "
                    f"{', '.join(REQUIRED)}[, {VALUE}].",
                    file=file,
                    column=column,
                    code="partition_schema",
                )
        with_value.append(VALUE in columns)
    if any(with_value) and not all(with_value):
        odd = files[with_value.index(not with_value[0])]
        raise DataValidationError(
            problem=f"partition {odd} {'has' if not with_value[0] else 'lacks'} the column "
            f"'{VALUE}' where {files[0]} {'lacks' if not with_value[0] else 'has'} it.",
            fix=f"write '{VALUE}' in every partition (0 where a journey has none), or in none.",
            file=odd,
            column=VALUE,
            code="partition_schema",
        )
    return bool(with_value and with_value[0])


def read_partition(file: str, number: int, with_value: bool) -> pd.DataFrame:
    """One partition's touches with where they came from (partition number, row)."""
    columns = [*REQUIRED, *([VALUE] if with_value else [])]
    try:
        if _is_csv(file):
            frame = pd.read_csv(file, usecols=columns, dtype={"journey_id": str, "channel": str})
        else:
            frame = pd.read_parquet(file, columns=columns)
    except FileNotFoundError as exc:
        raise MissingInputError(
            f"partition {file} is missing (it was listed when the count started).",
            fix="restore the file and run the step again.",
            file=file,
        ) from exc
    except ValueError as exc:  # a column gone since the check, or unreadable values
        raise DataValidationError(
            problem=f"partition {file} cannot be read as journeys ({exc}).",
            fix=f"write every partition with the columns {', '.join(columns)}.",
            file=file,
            code="partition_schema",
        ) from exc
    frame["journey_id"] = frame["journey_id"].astype(str)
    frame["channel"] = frame["channel"].astype(str)
    frame["timestamp"] = _instants(frame["timestamp"], file)
    frame[PART] = np.int32(number)
    frame[ROW] = np.arange(len(frame), dtype=np.int64)
    _check_values(frame, file, with_value)
    return frame


def _instants(column: pd.Series, file: str) -> pd.Series:
    """Touch times on one clock (UTC, naive) from datetimes or ISO 8601 text."""
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column, utc=True)
    else:
        parsed = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad):
            raise DataValidationError(
                problem=f"partition {file}: timestamp {column.iloc[bad[0]]!r} is not an ISO "
                "8601 date or date-time.",
                fix="write timestamps as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS.",
                file=file,
                column="timestamp",
                rows=tuple(int(r) + 1 for r in bad[:20]),
                code="bad_date",
            )
    return parsed.dt.tz_localize(None)


def _check_values(frame: pd.DataFrame, file: str, with_value: bool) -> None:
    """0/1 flags, channel names without the separator, non-negative values."""
    flags = pd.to_numeric(frame["converted"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isin(flags, (0.0, 1.0)))
    if len(bad):
        raise DataValidationError(
            problem=f"partition {file}: converted is {frame['converted'].iloc[bad[0]]!r}; it "
            "must be 0 or 1.",
            fix="write 1 on the rows of journeys that converted and 0 on the others.",
            file=file,
            column="converted",
            rows=tuple(int(r) + 1 for r in bad[:20]),
            code="bad_flag",
        )
    # Names checked once each (the rule of journeys.csv), rows shown as partition rows.
    first = frame.drop_duplicates("channel")
    check_channel_names(
        first["channel"].reset_index(drop=True),
        pd.DataFrame({LINE: first[ROW].to_numpy() + 1}),
        file,
        "channel",
        "channel name",
    )
    if with_value:
        value = pd.to_numeric(frame[VALUE], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(value) | (value < 0))
        if len(bad):
            raise DataValidationError(
                problem=f"partition {file}: {VALUE} must be a number >= 0.",
                fix="write 0 where a journey has no value.",
                file=file,
                column=VALUE,
                rows=tuple(int(r) + 1 for r in bad[:20]),
                code="bad_value",
            )


def journey_paths(touches: pd.DataFrame) -> pd.DataFrame:
    """The touches of whole journeys -> their paths counted: path, conversions, nulls, value.

    Uses the in-memory engine's own pieces (paths/data.py ``build`` and ``aggregate``) on
    these journeys, so a path here is a path there.
    """
    with_value = VALUE in touches.columns
    if touches.empty:
        return _empty_counts()
    ids, _ = pd.factorize(touches["journey_id"], sort=False)
    order = np.lexsort(
        (
            touches[ROW].to_numpy(),
            touches[PART].to_numpy(),
            touches["timestamp"].to_numpy(dtype="datetime64[ns]"),
            ids,
        )
    )
    ids = ids[order]
    channels = sorted(touches["channel"].unique())
    codes = pd.Categorical(touches["channel"].to_numpy()[order], categories=channels).codes
    n = int(ids.max()) + 1
    converted = np.zeros(n)
    np.maximum.at(converted, ids, touches["converted"].to_numpy(dtype=float)[order])
    value = None
    if with_value:
        value = np.zeros(n)
        np.maximum.at(value, ids, touches[VALUE].to_numpy(dtype=float)[order])
    data = build(channels, ids, codes.astype(np.int64), converted, 1.0 - converted, value)
    merged, _ = aggregate(data)
    table = pd.DataFrame(
        {
            "path": path_strings(merged, separator=SEPARATOR).to_numpy(),
            "conversions": merged.conversions,
            "nulls": merged.nulls,
            "value": merged.value if merged.value is not None else np.zeros(merged.n_units),
        }
    )
    table["journeys"] = table["conversions"] + table["nulls"]
    return table


def _empty_counts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": pd.Series(dtype=object),
            **{c: pd.Series(dtype=float) for c in (*COUNT_COLUMNS, "journeys")},
        }
    )


def path_data(table: pd.DataFrame, with_value: bool) -> PathData:
    """The counted path table as PathData (units in the table's order)."""
    steps = table["path"].str.split(SEPARATOR)
    lengths = steps.str.len().to_numpy()
    flat = np.concatenate(steps.to_numpy()) if len(table) else np.array([], dtype=object)
    channels = sorted(set(flat))
    codes = pd.Categorical(flat, categories=channels).codes.astype(np.int64)
    return build(
        channels,
        np.repeat(np.arange(len(table)), lengths),
        codes,
        table["conversions"].to_numpy(dtype=float),
        table["nulls"].to_numpy(dtype=float),
        table["value"].to_numpy(dtype=float) if with_value else None,
    )


def count_paths(
    source: str | Path | Sequence[str | Path],
    *,
    client: Client | None = None,
    threshold: int,
    engine: Engine | None = None,
    scheduler: str | None = None,
) -> CountedPaths:
    """Count the paths of touch-level journey partitions (Parquet or CSV).

    Parameters
    ----------
    source
        A folder, glob, file or list of files; Parquet (``.parquet``) or CSV (``.csv``).
    client
        A dask.distributed client; needed when the Dask engine is chosen.
    threshold
        Touches at or above which the Dask engine runs (the automatic switch).
    engine
        Force 'memory' or 'dask' (None: by ``threshold``).
    scheduler
        The scheduler's address, for error messages.
    """
    files = _partition_files(source)
    with_value = _check_columns(files)
    rows = _row_count(files)
    choice = choose_engine(rows, threshold, engine)
    if choice.engine == "memory":
        touches = pd.concat(
            [read_partition(f, i, with_value) for i, f in enumerate(files)], ignore_index=True
        )
        counted = journey_paths(touches)
    else:
        if client is None:
            raise ValueError("the Dask engine needs a client (cluster.dask_client)")
        counted = _count_on_dask(files, with_value, client, scheduler)
    n_journeys = round(float(counted["journeys"].sum()))
    table = (
        counted.groupby("path", sort=True)[list(COUNT_COLUMNS)].sum().reset_index()
        if len(counted)
        else counted[["path", *COUNT_COLUMNS]]
    )
    return CountedPaths(
        data=path_data(table, with_value),
        table=table if with_value else table.drop(columns="value"),
        files=tuple(files),
        n_touches=rows,
        n_journeys=n_journeys,
        has_value=with_value,
        choice=choice,
    )


def _partition_files(source: str | Path | Sequence[str | Path]) -> list[str]:
    if isinstance(source, str | Path) and Path(source).is_dir():
        found = sorted(
            str(p) for p in Path(source).rglob("*") if p.name.endswith((".parquet", ".csv"))
        )
        if not found:
            raise MissingInputError(
                f"the folder {source} holds no .parquet or .csv partition.",
                fix="write the journeys there, one file per partition.",
                file=str(source),
            )
        return found
    return expand_files(source)


def _count_on_dask(
    files: list[str], with_value: bool, client: Client, scheduler: str | None
) -> pd.DataFrame:
    """Shuffle the touches by journey, paths per partition, then a groupby-sum of paths."""
    import dask
    import dask.dataframe as dd

    sample = pd.DataFrame(
        {
            "journey_id": pd.Series(dtype=object),
            "timestamp": pd.Series(dtype="datetime64[ns]"),
            "channel": pd.Series(dtype=object),
            "converted": pd.Series(dtype="int64"),
            **({VALUE: pd.Series(dtype=float)} if with_value else {}),
            PART: pd.Series(dtype=np.int32),
            ROW: pd.Series(dtype=np.int64),
        }
    )
    touches = dd.from_map(
        read_partition,
        files,
        range(len(files)),
        with_value=with_value,
        meta=sample,
        enforce_metadata=False,
        divisions=None,
    )
    by_journey = touches.shuffle("journey_id")
    paths = by_journey.map_partitions(journey_paths, meta=_empty_counts())
    counted = paths.groupby("path")[[*COUNT_COLUMNS, "journeys"]].sum()
    try:
        with dask.config.set(scheduler=client):
            table = client.compute(counted).result().reset_index()
    except AttributionError:
        raise
    except Exception as exc:
        if is_cluster_failure(exc):
            raise cluster_failure(scheduler, "the journey count", exc) from exc
        raise
    return table


def rows_in(source: str | Path | Sequence[str | Path]) -> int:
    """Touches in the partitions (Parquet footers, CSV lines), for the engine switch."""
    return _row_count(_partition_files(source))


def load_partitioned(ws: Workspace, params: AttributePathsParams) -> LoadedPaths:
    """``journeys_partitions`` counted into the path table the path methods read, with a
    finding naming the engine and why (the attribute_paths step's hook)."""
    relative = params.journeys_partitions
    assert relative is not None
    source = ws.resolve(relative)
    files = _partition_files(source)
    rows = _row_count(files)
    choice = choose_engine(rows, params.dask_min_rows)
    if choice.engine == "dask":
        with dask_client(params.dask_scheduler) as client:
            counted = count_paths(
                files,
                client=client,
                threshold=params.dask_min_rows,
                scheduler=params.dask_scheduler,
            )
    else:
        counted = count_paths(files, threshold=params.dask_min_rows)
    finding = Finding(
        code="path_count_engine",
        severity="info",
        subject=relative,
        value=float(rows),
        message=f"{relative}: {counted.n_journeys:,} journeys in {len(files)} partition(s) "
        f"counted into {len(counted.table):,} distinct paths by the {choice.engine} engine "
        f"({choice.reason}). Campaigns and touch ages are not kept from partitions.",
        rule=f"Dask at or above {params.dask_min_rows:,} touches (dask_min_rows)",
    )
    return LoadedPaths(
        counted.data,
        "paths",
        relative,
        [Path(f) for f in files],
        counted.n_touches,
        [finding],
    )
