"""Dask plumbing shared by the out-of-core engines (allocation EM, journey counts).

Ground floor: the domain engines (``allocation/distributed.py``, ``paths/distributed.py``)
import it; it imports no domain module. Nothing here imports dask, distributed or pyarrow at
module level: the plain install (without the ``[scale]`` extra) never loads them, and a call
that needs them says how to install them.

* :func:`dask_client`: the user's scheduler (an address) or a LocalCluster on this machine;
  an address nobody answers at is refused with the address and how to start a scheduler.
* :func:`parquet_partitions`: a Parquet file, folder, glob or explicit list of files, each
  checked to exist and to carry the expected columns with one type across partitions,
  naming the partition file and the column that differs; rows counted from the footers.
* :func:`choose_engine`: the automatic switch (in memory below a row threshold, Dask at or
  above it), with the reason in words for the step's output.
* :func:`cluster_failure`: a scheduler or worker lost mid-run, as a clear error.
"""

from __future__ import annotations

import glob
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from attribution_analysis.errors import DataValidationError, MissingInputError, ParameterError

if TYPE_CHECKING:
    from distributed import Client

Engine = Literal["memory", "dask"]
# Below this many rows the in-memory engines are faster (no scheduler, one pass in NumPy)
# and fit in memory: the in-memory EM does 10M rows in 6.5 s at 1.9 GB (issue #21).
DEFAULT_DASK_MIN_ROWS = 20_000_000
CONNECT_TIMEOUT_S = 10
INSTALL_FIX = "install the scale extra: pip install 'attribution-analysis[scale]'."
START_SCHEDULER_FIX = (
    "Start a scheduler with `dask scheduler` (it prints its address, tcp://HOST:8786) and "
    "at least one `dask worker tcp://HOST:8786`, or leave the address empty for a "
    "LocalCluster on this machine."
)


def require_scale_extra() -> None:
    """Refuse, with the install line, when dask/distributed/pyarrow are not importable."""
    missing = []
    for module in ("dask", "distributed", "pyarrow"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ParameterError(
            f"the Dask engine needs {', '.join(missing)}, which is not installed.",
            fix=INSTALL_FIX,
        )


@dataclass(frozen=True)
class EngineChoice:
    """Which engine runs and why, in words for the step's output."""

    engine: Engine
    rows: int
    threshold: int
    reason: str


def choose_engine(rows: int, threshold: int, forced: Engine | None = None) -> EngineChoice:
    """In memory below ``threshold`` rows, Dask at or above it (or ``forced``)."""
    if forced is not None:
        reason = f"{forced} engine requested ({rows:,} rows; automatic threshold {threshold:,})"
        return EngineChoice(forced, rows, threshold, reason)
    if rows >= threshold:
        return EngineChoice(
            "dask",
            rows,
            threshold,
            f"{rows:,} rows (from the Parquet footers) >= the threshold of {threshold:,}: "
            "out of core on Dask",
        )
    return EngineChoice(
        "memory",
        rows,
        threshold,
        f"{rows:,} rows < the threshold of {threshold:,}: in memory (faster at this size)",
    )


@dataclass(frozen=True)
class Partitions:
    """Parquet files of one table, checked: the same columns and types in each."""

    files: tuple[str, ...]
    rows: tuple[int, ...]  # per file, from its footer
    schema: dict[str, str]  # column -> Arrow type, as in the first file

    @property
    def total_rows(self) -> int:
        return sum(self.rows)


def expand_files(source: str | Path | Sequence[str | Path]) -> list[str]:
    """Files named by a path, folder, glob or list; a listed file that is absent is refused."""
    if isinstance(source, str | Path):
        text = str(source)
        if any(ch in text for ch in "*?["):
            files = sorted(glob.glob(text))
            if not files:
                raise MissingInputError(
                    f"no Parquet partition matches {text}.",
                    fix="check the pattern, or give the folder holding the partitions.",
                    file=text,
                )
            return files
        path = Path(text)
        if path.is_dir():
            files = sorted(str(p) for p in path.rglob("*.parquet"))
            if not files:
                raise MissingInputError(
                    f"the folder {text} holds no .parquet partition.",
                    fix="write the table there as Parquet files (one per partition).",
                    file=text,
                )
            return files
        candidates = [text]
    else:
        candidates = [str(p) for p in source]
    for name in candidates:
        if not os.path.isfile(name):
            raise MissingInputError(
                f"partition {name} is missing.",
                fix="restore the file, or leave it out of the list of partitions.",
                file=name,
            )
    return candidates


def parquet_partitions(
    source: str | Path | Sequence[str | Path], columns: dict[str, Sequence[str]]
) -> Partitions:
    """List and check the partitions of a Parquet table from their footers (no data read).

    ``columns`` maps each required column to the Arrow type families it may have (e.g.
    ``{"exposure": ("double", "float", "int")}``); every partition must carry it with the
    type the first partition has.
    """
    require_scale_extra()
    import pyarrow.parquet as pq

    files = expand_files(source)
    rows: list[int] = []
    schema: dict[str, str] = {}
    for name in files:
        try:
            metadata = pq.read_metadata(name)
        except FileNotFoundError as exc:
            raise MissingInputError(
                f"partition {name} is missing.", fix="restore the file.", file=name
            ) from exc
        except OSError as exc:
            raise DataValidationError(
                problem=f"partition {name} is not a readable Parquet file ({exc}).",
                fix="rewrite the partition as Parquet.",
                file=name,
                code="unreadable_partition",
            ) from exc
        arrow = metadata.schema.to_arrow_schema()
        types = {field.name: str(field.type) for field in arrow}
        for column, allowed in columns.items():
            if column not in types:
                raise DataValidationError(
                    problem=f"partition {name} has no column '{column}' (it has "
                    f"{', '.join(types) or 'no columns'}).",
                    fix="write every partition with the same columns.",
                    file=name,
                    column=column,
                    code="partition_schema",
                )
            seen = types[column]
            if not any(seen.startswith(kind) or kind in seen for kind in allowed):
                raise DataValidationError(
                    problem=f"partition {name}: column '{column}' is {seen}; expected "
                    f"{' or '.join(allowed)}.",
                    fix="write the column with the same type in every partition.",
                    file=name,
                    column=column,
                    code="partition_schema",
                )
            if column in schema and schema[column] != seen:
                raise DataValidationError(
                    problem=f"partition {name}: column '{column}' is {seen} where "
                    f"{files[0]} has {schema[column]}.",
                    fix="write the column with the same type in every partition.",
                    file=name,
                    column=column,
                    code="partition_schema",
                )
            schema.setdefault(column, seen)
        rows.append(int(metadata.num_rows))
    return Partitions(tuple(files), tuple(rows), schema)


def _probe(scheduler: str) -> None:
    """Refuse at once when nothing listens at a tcp:// address: the client itself retries
    until its timeout before it says so."""
    from urllib.parse import urlsplit

    if not scheduler.startswith("tcp://"):
        return
    parts = urlsplit(scheduler)
    try:
        with socket.create_connection(
            (parts.hostname or "localhost", parts.port or 8786), timeout=CONNECT_TIMEOUT_S
        ):
            pass
    except (OSError, ValueError) as exc:
        raise ParameterError(
            f"no Dask scheduler answers at {scheduler} ({exc}).",
            fix=START_SCHEDULER_FIX,
            parameter="dask_scheduler",
        ) from exc


@contextmanager
def dask_client(
    scheduler: str | None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str | int | None = None,
) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler``, or of a LocalCluster (None).

    An address where no scheduler answers within ``CONNECT_TIMEOUT_S`` is refused naming
    the address and how to start one. The LocalCluster (and the client) close on exit.
    """
    require_scale_extra()
    from distributed import Client, LocalCluster

    if scheduler is None:
        options: dict[str, object] = {
            "n_workers": n_workers,
            "threads_per_worker": threads_per_worker,
            "processes": processes,
            # No dashboard: nobody looks at it here, and its fixed port clashes between
            # clusters on one machine.
            "dashboard_address": ":0",
            "scheduler_kwargs": {"dashboard": False},
        }
        if memory_limit is not None:
            options["memory_limit"] = memory_limit
        with LocalCluster(**options) as cluster, Client(cluster) as client:
            yield client
        return
    _probe(scheduler)
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ParameterError(
            f"no Dask scheduler answers at {scheduler} ({type(exc).__name__}: {exc}).",
            fix=START_SCHEDULER_FIX,
            parameter="dask_scheduler",
        ) from exc
    try:
        yield client
    finally:
        client.close()


def cluster_failure(scheduler: str | None, during: str, exc: BaseException) -> ParameterError:
    """A scheduler or worker lost mid-run, as an error that says nothing was written."""
    where = f"the Dask scheduler at {scheduler}" if scheduler else "the local Dask cluster"
    return ParameterError(
        f"{where} failed during {during} ({type(exc).__name__}: {exc}); the run stopped and "
        "nothing was written.",
        fix="check that the scheduler and its workers are up (and have the memory a "
        "partition needs), then run the step again. " + START_SCHEDULER_FIX,
        parameter="dask_scheduler",
    )


def is_cluster_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost scheduler/worker rather than an error in the task itself."""
    from distributed.client import (
        ClosedClientError,
        FutureCancelledError,
        FuturesCancelledError,
    )
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    lost = (
        CommClosedError,
        ClosedClientError,
        KilledWorker,
        FutureCancelledError,
        FuturesCancelledError,
        TimeoutError,
        ConnectionError,
    )
    return isinstance(exc, lost)
