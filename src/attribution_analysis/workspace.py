"""The workspace: one root with ``raw/`` (inputs), ``analysis/`` (outputs) and ``reports/``.

Every path a step touches goes through :meth:`Workspace.resolve`, which refuses anything
that escapes the root (``..``, absolute paths, symlinks pointing out). Outputs are written
with :meth:`Workspace.commit`: all files go to temporary siblings first and are renamed into
place only once every one of them was written, so a failed step never leaves half a result
and an earlier good result is never partly overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from attribution_analysis.errors import MissingInputError, WorkspaceError

RAW = "raw"
ANALYSIS = "analysis"
REPORTS = "reports"
INTERNAL = ".attribution"  # run registry and caches; not an output
FILE_MODE = 0o644


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
                fix="pass the folder that holds raw/ (create one with `attribution simulate` "
                "or put your CSVs under <workspace>/raw/).",
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
    def commit(self, outputs: Mapping[str, bytes]) -> list[Path]:
        """Write every ``{relative path: bytes}`` atomically, all or nothing.

        Each file is first written to a temporary sibling and fsynced; only when all are
        written are they renamed into place (``os.replace`` is atomic per file). If writing
        any temporary fails, none of the targets is touched.
        """
        targets = {self.resolve(rel): data for rel, data in outputs.items()}
        staged: list[tuple[Path, Path]] = []
        try:
            for target, data in targets.items():
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(
                    prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
                )
                staged.append((Path(tmp), target))
                os.chmod(tmp, FILE_MODE)  # mkstemp creates 0600; outputs are meant to be read
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
        except BaseException:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise
        for tmp, target in staged:
            os.replace(tmp, target)
        return list(targets)

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[Path]:
        """A scratch directory inside the workspace, removed afterwards."""
        self.internal.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.internal, prefix="stage-") as tmp:
            yield Path(tmp)


def json_bytes(payload: object) -> bytes:
    """Deterministic, human-readable JSON (sorted keys would scramble the reading order)."""
    return (json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def csv_bytes(frame: pd.DataFrame, float_format: str | None = "%.10g") -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format=float_format, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")
