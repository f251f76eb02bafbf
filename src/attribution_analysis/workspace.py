"""The workspace: one root with ``raw/`` (inputs), ``analysis/`` (outputs) and ``reports/``.

Every path a step touches goes through :meth:`Workspace.resolve`, which refuses anything
that escapes the root (``..``, absolute paths, symlinks pointing out). Outputs are written
with :meth:`Workspace.commit`: all files go to temporary siblings first and are renamed into
place only once every one of them was written, so a failed step never leaves half a result
and an earlier good result is never partly overwritten.

A step's files become visible together: before the first rename, :meth:`Workspace.commit`
writes a journal naming every (temporary, target) pair, so a process killed between two
renames is rolled forward by the next writer (:meth:`Workspace.recover`), and temporary files
of a process killed before its journal are removed. One writer at a time: every writing step
holds the workspace's writer lock (:meth:`Workspace.writer`); a second one is told which step
and run hold it.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from attribution_analysis.errors import (
    AttributionError,
    MissingInputError,
    WorkspaceBusyError,
    WorkspaceError,
    step_ref,
)

if TYPE_CHECKING:  # only csv_bytes's annotation: a refusal or a light step need no pandas
    import pandas as pd

RAW = "raw"
ANALYSIS = "analysis"
REPORTS = "reports"
INTERNAL = ".attribution"  # run registry and caches; not an output
FILE_MODE = 0o644
JOURNAL = "commit-journal.json"  # (temporary, target) pairs of a commit being switched in
WRITER_LOCK = "writer.lock"
WRITER_INFO = "writer.json"  # who holds the writer lock, for the 'busy' message
TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
STAGE_PREFIX = "stage-"
# Test-only fault injection: a process whose ATTRIBUTION_FAULT_POINT names a point it reaches
# kills itself there with SIGKILL (tests/hardening/test_fault_injection.py).
FAULT_ENV = "ATTRIBUTION_FAULT_POINT"


def fault_point(name: str) -> None:
    """Die here, as a killed process would, when the fault-injection variable names ``name``."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def disk_error(exc: OSError, path: Path, action: str) -> WorkspaceError:
    """An OSError of the file system as an error the user can act on (what, where, fix)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WorkspaceError(
            f"no space left on the device holding {path.parent} while {action}; nothing was "
            "changed.",
            fix=f"free disk space there (shutil.disk_usage shows "
            f"{_free_mb(path.parent):.0f} MB free) and run the step again.",
            file=str(path),
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = "the file system is read-only" if exc.errno == errno.EROFS else "permission denied"
        return WorkspaceError(
            f"cannot write {path} while {action}: {reason}; nothing was changed.",
            fix="make the workspace writable for this user (or copy it to a writable place) "
            "and run the step again.",
            file=str(path),
        )
    return WorkspaceError(
        f"the file system refused {action} at {path}: {exc.strerror or exc}; nothing was changed.",
        fix="check the disk and the workspace folder, then run the step again.",
        file=str(path),
    )


def _free_mb(folder: Path) -> float:
    try:
        return shutil.disk_usage(folder).free / 2**20
    except OSError:
        return float("nan")


@dataclass(frozen=True)
class Workspace:
    """A workspace rooted at ``root``; construct with :meth:`open` or :meth:`create`."""

    root: Path

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Workspace:
        """Open an existing workspace directory (it must exist and be a directory)."""
        path = Path(root).expanduser()
        if not path.exists():
            raise WorkspaceError(
                f"workspace directory '{root}' does not exist.",
                fix="name an existing workspace, or create one from the user's table with "
                f"{step_ref('import_data')} (or a simulated one with "
                f"{step_ref('simulate_workspace')}).",
            )
        if not path.is_dir():
            raise WorkspaceError(f"workspace '{root}' is not a directory.", fix="pass a folder.")
        return cls(path.resolve())

    @classmethod
    def create(cls, root: str | os.PathLike[str]) -> Workspace:
        """Create the directory layout if missing and return the workspace."""
        path = Path(root).expanduser()
        for sub in (RAW, ANALYSIS, REPORTS):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return cls(path.resolve())

    # ----- paths -------------------------------------------------------------------------
    @property
    def raw(self) -> Path:
        return self.root / RAW

    @property
    def analysis(self) -> Path:
        return self.root / ANALYSIS

    @property
    def reports(self) -> Path:
        return self.root / REPORTS

    @property
    def internal(self) -> Path:
        return self.root / INTERNAL

    def internal_dir(self) -> Path:
        """``.attribution/``, created if missing, refused when it (or a file in it that the
        package writes) is a symlink or resolves outside the root: every write of the
        package's own, not only of outputs, stays inside the workspace."""
        path = self.internal
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise WorkspaceError(
                f"{INTERNAL} in {self.root} is a symlink or not a folder; the run registry, "
                "locks and staging must live inside the workspace.",
                fix=f"remove {path} (it holds only the run registry and scratch files) and run "
                "the step again.",
                file=INTERNAL,
            )
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, path, "creating the workspace's internal folder") from None
        for name in ("runs.sqlite", "runs.sqlite-journal", WRITER_LOCK, WRITER_INFO, JOURNAL):
            if (path / name).is_symlink():
                raise WorkspaceError(
                    f"{INTERNAL}/{name} is a symlink; the package's own files must live inside "
                    "the workspace.",
                    fix=f"remove {path / name} and run the step again.",
                    file=f"{INTERNAL}/{name}",
                )
        if not path.resolve().is_relative_to(self.root):
            raise WorkspaceError(
                f"{INTERNAL} resolves outside the workspace {self.root}.",
                fix=f"remove {path} and run the step again.",
                file=INTERNAL,
            )
        return path

    def resolve(self, relative: str | os.PathLike[str]) -> Path:
        """Resolve ``relative`` under the root, refusing absolute paths and escapes.

        Symlinks are followed before the check, so a link inside the workspace that points
        outside it is refused as well.
        """
        text = os.fspath(relative)
        if not text or "\x00" in text:
            raise WorkspaceError(f"invalid path {text!r}.", fix="use a relative path.")
        if os.path.isabs(text) or PurePosixPath(text).is_absolute() or text.startswith("~"):
            raise WorkspaceError(
                f"path '{text}' is absolute; only paths inside the workspace are allowed.",
                fix=f"give a path relative to the workspace root {self.root}.",
            )
        candidate = (self.root / text).resolve()
        if not candidate.is_relative_to(self.root):
            raise WorkspaceError(
                f"path '{text}' resolves to {candidate}, outside the workspace {self.root}.",
                fix="keep inputs and outputs inside the workspace (no '..', no symlinks "
                "pointing out of it).",
            )
        return candidate

    def require(self, relative: str, problem: str, fix: str) -> Path:
        """The path of an input a step cannot run without, or a MissingInputError naming it."""
        path = self.resolve(relative)
        if not path.exists():
            raise MissingInputError(problem, fix=fix, file=relative)
        return path

    def relative(self, path: Path) -> str:
        """The workspace-relative POSIX form of ``path`` (used in reports and metadata)."""
        return path.resolve().relative_to(self.root).as_posix()

    def raw_files(self, pattern: str) -> list[Path]:
        """Files under ``raw/`` matching ``pattern``, each checked to stay inside the root."""
        if not self.raw.is_dir():
            return []
        return [self.resolve(f"{RAW}/{p.name}") for p in sorted(self.raw.glob(pattern))]

    # ----- hashing -----------------------------------------------------------------------
    def sha256(self, path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def input_hashes(self, paths: list[Path]) -> dict[str, str]:
        return {self.relative(p): self.sha256(p) for p in sorted(paths)}

    # ----- atomic output -----------------------------------------------------------------
    def commit(self, outputs: Mapping[str, bytes], removes: Sequence[str] = ()) -> list[Path]:
        """Write every ``{relative path: bytes}`` atomically, all or nothing, and remove the
        files ``removes`` names (those not rewritten) in the same commit.

        Each file is first written to a temporary sibling and fsynced. Only when all are
        written, a journal of the (temporary, target) pairs and the removals is written to
        ``.attribution/`` and the files are renamed into place, then the removals made; the
        journal is removed last. A process killed before the journal leaves only temporary
        files (removed by the next writer); one killed after it is rolled forward by the next
        writer (:meth:`recover`), so the step's outputs are either all the old ones or all the
        new ones.
        """
        targets = {self.resolve(rel): data for rel, data in outputs.items()}
        staged: list[tuple[Path, Path]] = []
        current = next(iter(targets), self.root)
        try:
            for target, data in targets.items():
                current = target
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(
                    prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent
                )
                staged.append((Path(tmp), target))
                os.chmod(tmp, FILE_MODE)  # mkstemp creates 0600; outputs are meant to be read
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            fault_point("commit:staged")
            journal = self.internal_dir() / JOURNAL
            current = journal
            gone = [
                self.relative(self.resolve(r)) for r in removes if self.resolve(r) not in targets
            ]
            _write_synced(
                journal,
                json_bytes(
                    {
                        "renames": [[self.relative(t), self.relative(g)] for t, g in staged],
                        "removes": gone,
                    }
                ),
            )
        except BaseException as exc:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            if isinstance(exc, OSError):
                raise disk_error(exc, current, "writing the step's outputs") from None
            raise
        fault_point("commit:journaled")
        for index, (tmp, target) in enumerate(staged):
            os.replace(tmp, target)
            fault_point(f"commit:renamed:{index}")
        self._remove(gone)
        journal.unlink()
        return list(targets)

    def _remove(self, relatives: Sequence[str]) -> None:
        for relative in relatives:
            with contextlib.suppress(FileNotFoundError):
                self.resolve(relative).unlink()

    def recover(self) -> list[str]:
        """Finish or undo what a killed writer left: roll a journaled commit forward, then
        remove temporary output files and staging folders. Call only while holding the
        writer lock (no other writer can be mid-commit). Returns what it did, for the log."""
        done: list[str] = []
        internal = self.internal_dir()
        journal = internal / JOURNAL
        if journal.is_file():
            try:
                entry = json.loads(journal.read_text())
            except (OSError, ValueError):
                entry = {}  # unreadable: written before its fsync finished, so no rename ran
            if isinstance(entry, list):  # a journal written before removals were journaled
                entry = {"renames": entry}
            for tmp_rel, target_rel in entry.get("renames", []):
                tmp, target = self.resolve(tmp_rel), self.resolve(target_rel)
                if tmp.exists():
                    os.replace(tmp, target)
                    done.append(f"rolled forward {target_rel}")
            self._remove(entry.get("removes", []))
            done.extend(f"removed {r}" for r in entry.get("removes", []))
            journal.unlink()
        for folder in (self.analysis, self.reports, self.raw, self.root / "truth"):
            if folder.is_dir() and not folder.is_symlink():
                for leftover in folder.rglob(f".*{TMP_SUFFIX}"):
                    # only commit()'s own names: '.<target>.<8 random characters>.tmp'
                    if (
                        _TMP_NAME.match(leftover.name)
                        and leftover.is_file()
                        and not leftover.is_symlink()
                    ):
                        leftover.unlink()
                        done.append(f"removed {self.relative(leftover)}")
        for stage in internal.glob(f"{STAGE_PREFIX}*"):
            if stage.is_dir() and not stage.is_symlink():
                shutil.rmtree(stage, ignore_errors=True)
                done.append(f"removed {INTERNAL}/{stage.name}")
        return done

    @contextlib.contextmanager
    def writer(self, step: str, run_id: str, wait_seconds: float = 0.0) -> Iterator[None]:
        """Hold the workspace's writer lock for the body (re-entrant in one thread).

        A second writer is refused at once (or after ``wait_seconds``) with a
        :class:`WorkspaceBusyError` naming the step and run that hold the lock.
        """
        from filelock import FileLock, Timeout

        internal = self.internal_dir()
        lock = _LOCKS.setdefault(str(internal / WRITER_LOCK), FileLock(internal / WRITER_LOCK))
        try:
            lock.acquire(timeout=wait_seconds)
        except Timeout:
            raise _busy(internal / WRITER_INFO) from None
        except OSError as exc:
            raise disk_error(exc, internal / WRITER_LOCK, "taking the writer lock") from None
        outermost = lock.lock_counter == 1
        try:
            if outermost:
                info = {"step": step, "run_id": run_id, "pid": os.getpid(), "since": time.time()}
                with contextlib.suppress(OSError):
                    (internal / WRITER_INFO).write_text(json.dumps(info))
            yield
        finally:
            if outermost:
                with contextlib.suppress(OSError):
                    (internal / WRITER_INFO).unlink()
            lock.release()

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[Path]:
        """A scratch directory inside the workspace, removed afterwards."""
        internal = self.internal_dir()
        try:
            scratch = tempfile.TemporaryDirectory(dir=internal, prefix=STAGE_PREFIX)
        except OSError as exc:
            raise disk_error(exc, internal, "creating a staging folder") from None
        with scratch as tmp:
            yield Path(tmp)


# One lock object per lock file and process: FileLock counts re-entries per object, so a step
# that runs another step (a refit inside validation) does not lock itself out.
_LOCKS: dict[str, object] = {}


def _busy(info_path: Path) -> WorkspaceBusyError:
    try:
        info = json.loads(info_path.read_text())
        holder = f"{info['step']} run {info['run_id']} (process {info['pid']})"
        since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        who = f"{holder} has been writing since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        who = "another step is writing"
    return WorkspaceBusyError(
        f"workspace busy: {who}.",
        fix="wait for it to finish (list_runs / get_job show it) or cancel it, then run this "
        "step again; two writers at once would leave outputs from two different runs.",
    )


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def json_bytes(payload: object) -> bytes:
    """Deterministic, human-readable JSON (sorted keys would scramble the reading order).

    NaN and infinities are not JSON: a result holding one is refused with the field's path
    (it comes from inputs too large or degenerate for the arithmetic, e.g. 1e308 sales)."""
    try:
        text = json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:
        where = _non_finite_path(payload, "") or "a value"
        raise AttributionError(
            problem=f"the result is not a finite number at {where}; an input holds values "
            "too large or degenerate for the computation.",
            fix="check the input tables for extreme values (e.g. 1e308) or all-zero columns, "
            "correct them and run the steps again.",
            code="non_finite_result",
        ) from None
    return (text + "\n").encode()


def _non_finite_path(value: object, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path or "the top level"
    if isinstance(value, Mapping):
        items: list[tuple[str, object]] = [(f"{path}.{k}", v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for sub, item in items:
        found = _non_finite_path(item, sub)
        if found:
            return found.lstrip(".")
    return None


def csv_bytes(frame: pd.DataFrame, float_format: str | None = "%.10g") -> bytes:
    fast = _plain_csv(frame, float_format)
    if fast is not None:
        return fast
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format=float_format, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _plain_csv(frame: pd.DataFrame, float_format: str | None) -> bytes | None:
    """``frame.to_csv``'s bytes for a frame of plain columns (floats, integers, booleans,
    text without missing values), or None for any other frame.

    pandas formats each float through Python-level calls per cell (0.7 s for the 195,000
    draws of the decomposition's long table, most of that step's time); formatting whole
    columns with ``map`` and joining the rows gives the same bytes in a fraction of it. A
    frame with text that needs quoting is written by the ``csv`` module, which pandas itself
    writes with. ``tests/test_workspace.py`` checks the bytes against pandas on generated
    frames."""
    import numpy as np
    import pandas as pd

    if float_format is None or isinstance(frame.columns, pd.MultiIndex) or frame.empty:
        return None
    columns: list[list[str]] = []
    quoting = False
    for _, column in frame.items():
        dtype = column.dtype
        # NumPy dtypes, and pandas' own text dtype (which holds no NA when every value is a
        # str); other extension dtypes (nullable integers...) print their NA differently.
        if not isinstance(dtype, np.dtype | pd.StringDtype):
            return None
        kind = dtype.kind
        if kind == "f":
            values = column.to_numpy()
            text = list(map(float_format.__mod__, values.tolist()))
            if np.isnan(values).any():
                text = ["" if v != v else t for v, t in zip(values.tolist(), text, strict=True)]
            columns.append(text)
        elif kind in "iub":
            columns.append(list(map(str, column.to_numpy().tolist())))
        elif (
            kind == "O"
            and not column.isna().any()
            and pd.api.types.infer_dtype(column, skipna=False) == "string"
        ):
            columns.append(column.to_numpy(dtype=object).tolist())
            quoting = quoting or bool(column.str.contains(_NEEDS_QUOTES, regex=True).any())
        else:
            return None
    header = [str(c) for c in frame.columns]
    if quoting or len(header) == 1 or any(re.search(_NEEDS_QUOTES, h) for h in header):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(zip(*columns, strict=True))
        return buffer.getvalue().encode("utf-8")
    rows = map(",".join, zip(*columns, strict=True))
    return ("\n".join([",".join(header), *rows]) + "\n").encode("utf-8")


# What makes the csv module quote a field (the excel dialect: delimiter, quote character,
# line breaks); a one-column frame goes through the module too (it quotes an empty field).
_NEEDS_QUOTES = r'[,"\r\n]'
