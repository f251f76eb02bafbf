"""Where the server may read and write, and how much work one call may ask for."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

from attribution_analysis.errors import ParameterError, WorkspaceError
from attribution_analysis.steps import Sampling
from attribution_analysis.workspace import Workspace

RAW_SUFFIXES = (".csv",)
# Per chain, retry included: the default fit (6,000 draws) may sample 12,000 when it fails
# its gates, and no single request may ask more than the sampler contract's 20,000.
DEFAULT_MAX_DRAWS = 20_000
DEFAULT_MAX_INPUT_BYTES = 512 * 1024 * 1024  # per raw CSV, checked with os.stat
DEFAULT_MAX_ARGUMENT_BYTES = 1024 * 1024  # a tool call's arguments, as JSON
# A raw input row is a few dozen fields: a longer line is a broken file (often a quote that
# swallowed the rest of it), refused before a parser holds it whole in memory. Also the
# block size of the scan below, so only a line spanning blocks can exceed it.
MAX_LINE_BYTES = 1024 * 1024
# No error text returned to a client is longer than this (plus a short note of what was cut).
MAX_ERROR_CHARS = 2_000

MAX_NAME_CHARS = 64
NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
NAME_RULE = (
    "a workspace is one folder name of ASCII letters, digits, '-', '_' and '.', not "
    f"starting with '.', at most {MAX_NAME_CHARS} characters (e.g. 'shop_2024')"
)
SHOWN_NAME_CHARS = 80


def shorten(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` whole when it has at most ``limit`` characters; else its first ``limit``
    characters and how many were cut, so an error can never flood a client."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} characters cut)"


def _shown(name: str) -> str:
    """A caller's name, quoted and escaped (a newline in it cannot forge a line of the
    reply) and cut (a megabyte of name is not echoed back)."""
    if len(name) > SHOWN_NAME_CHARS:
        return f"{ascii(name[:SHOWN_NAME_CHARS])[:-1]}…' ({len(name):,} characters)"
    return ascii(name)


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain workspace folder name, or None when it is one."""
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character (newline, carriage return, tab, ...)"
    if "/" in name or "\\" in name:
        return "it is a path, not one folder name"
    if name.startswith("."):
        return "names starting with '.' are reserved ('.attribution' holds the server's jobs)"
    if len(name) > MAX_NAME_CHARS:
        return f"it is {len(name):,} characters long, over {MAX_NAME_CHARS} characters"
    if not NAME_CHARS.fullmatch(name):
        odd = next(c for c in name if not NAME_CHARS.fullmatch(c))
        return f"it contains {odd!a}"
    return None


@dataclass(frozen=True)
class ServerConfig:
    root: Path  # every workspace lives under it
    max_draws: int = DEFAULT_MAX_DRAWS  # per chain, MMM and Bayesian allocation
    max_chains: int = 4
    max_rows: int = 2_000_000  # rows of any one raw CSV
    max_jobs: int = 2  # background jobs running at once
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES  # bytes of any one raw CSV
    max_argument_bytes: int = DEFAULT_MAX_ARGUMENT_BYTES  # a tool call's arguments, as JSON

    def __post_init__(self) -> None:
        for limit in LIMITS:
            value = getattr(self, limit)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"--{limit.replace('_', '-')} must be a whole number >= 1, got {value!r}."
                )

    @classmethod
    def at(cls, root: str | os.PathLike[str], **limits: int) -> ServerConfig:
        path = Path(root).expanduser()
        config = cls(root=path, **limits)  # limits are checked before the disk is touched
        path.mkdir(parents=True, exist_ok=True)
        return dataclasses.replace(config, root=path.resolve())

    def locate(self, name: str, must_exist: bool = True) -> Path:
        """The folder of workspace ``name`` under the root. ``name`` is one plain folder
        name (``NAME_RULE``); anything that would leave the root (absolute paths, '..', a
        symlink pointing out) or reach the server's own files ('.attribution') is refused."""
        if not isinstance(name, str) or not name or not name.strip():
            raise WorkspaceError(
                "no workspace was named.", fix="pass a folder name under the root."
            )
        candidate = Path(name)
        if candidate.is_absolute() or candidate.drive:
            raise WorkspaceError(
                f"{_shown(name)} is an absolute path; workspaces are named relative to the "
                "server's workspace root.",
                fix=f"pass a name such as 'demo' (the root is {self.root}).",
            )
        if ".." in re.split(r"[/\\]", name):
            raise WorkspaceError(
                f"{_shown(name)} leads outside the workspace root (through '..'); the server "
                "only touches folders under its root.",
                fix=f"{NAME_RULE}.",
            )
        problem = name_problem(name)
        if problem is not None:
            raise WorkspaceError(
                f"{_shown(name)} is not a workspace name: {problem}.", fix=f"{NAME_RULE}."
            )
        resolved = (self.root / name).resolve()
        if resolved.parent != self.root or resolved.name.startswith("."):
            raise WorkspaceError(
                f"{_shown(name)} resolves outside the workspace root (through a symbolic "
                "link); the server only touches folders under its root.",
                fix=f"pass a folder under {self.root}.",
            )
        if must_exist and not resolved.is_dir():
            raise WorkspaceError(
                f"workspace '{name}' does not exist under {self.root}.",
                fix="create it with simulate_workspace, or copy your raw/ files into "
                f"{self.root / name}/raw/.",
            )
        return resolved

    def workspace(self, name: str) -> Workspace:
        return Workspace.open(self.locate(name))

    def check_limits(self, sampling: Sampling | None, folder: Path) -> None:
        """Refuse work beyond the configured bounds before it starts. ``sampling`` is what
        the call will sample (``StepSpec.sampling``): None when it samples nothing."""
        draws, chains, retry = sampling if sampling is not None else (None, None, None)
        if draws is not None and draws > self.max_draws:
            raise ParameterError(
                f"{draws} draws per chain exceeds this server's limit of {self.max_draws}.",
                fix=f"ask for at most {self.max_draws} (or start the server with --max-draws).",
            )
        if retry is not None and retry > self.max_draws:
            raise ParameterError(
                f"{draws} draws per chain are within this server's limit of "
                f"{self.max_draws}, but the automatic retry of a fit that fails its "
                f"convergence gates would sample {retry}.",
                fix=f"ask for at most {self.max_draws * draws // retry} draws, pass "
                "retry=false, or start the server with a larger --max-draws.",
            )
        if chains is not None and chains > self.max_chains:
            raise ParameterError(
                f"{chains} chains exceeds this server's limit of {self.max_chains}.",
                fix=f"ask for at most {self.max_chains} (or start the server with --max-chains).",
            )
        raw = folder / "raw"
        if raw.is_dir():
            for path in sorted(raw.iterdir()):
                if path.suffix.lower() in RAW_SUFFIXES and path.is_file():
                    self._check_raw(path)

    def _check_raw(self, path: Path) -> None:
        """Bytes first (os.stat, nothing read), then rows and line lengths in one bounded
        scan: a file that would take minutes and gigabytes to parse is refused in
        milliseconds, naming itself."""
        size = os.stat(path).st_size
        if size > self.max_input_bytes:
            raise ParameterError(
                f"raw/{path.name} is {_size(size)}, over this server's limit of "
                f"{_size(self.max_input_bytes)} per raw file.",
                fix="aggregate the file (e.g. to weekly), drop columns the contract does not "
                "use, or start the server with a larger --max-input-bytes.",
            )
        rows, long_line = _scan_rows(path, self.max_rows + 2)
        if long_line is not None:
            raise ParameterError(
                f"raw/{path.name} has a line of more than {MAX_LINE_BYTES:,} bytes (line "
                f"{long_line:,}); a raw input row is a few dozen short fields.",
                fix="check that the file is the CSV you meant: an unclosed quote makes one "
                "field of the rest of the file.",
            )
        if rows > self.max_rows:
            raise ParameterError(
                f"raw/{path.name} has more than {self.max_rows:,} rows, this server's limit.",
                fix="aggregate the file (e.g. to weekly) or start the server with "
                "a larger --max-rows.",
            )


LIMITS = tuple(f.name for f in dataclasses.fields(ServerConfig) if f.name.startswith("max_"))


def _size(size: int) -> str:
    return f"{size:,} bytes" + (f" ({size / 2**20:,.1f} MiB)" if size >= 2**20 else "")


def _scan_rows(path: Path, stop: int) -> tuple[int, int | None]:
    """Data rows of a CSV, counting at most ``stop`` (a cap keeps the check cheap), and the
    1-based number of the first line longer than ``MAX_LINE_BYTES`` (None when none is).

    Reads blocks of ``MAX_LINE_BYTES``: a line inside one block is shorter than the limit,
    so only the bytes since the last newline need carrying from block to block."""
    lines = 0  # complete lines so far
    current = 0  # bytes since the last newline
    with path.open("rb") as handle:
        while block := handle.read(MAX_LINE_BYTES):
            first = block.find(b"\n")
            if first < 0:
                current += len(block)
                if current > MAX_LINE_BYTES:
                    return max(lines - 1, 0), lines + 1
                continue
            if current + first > MAX_LINE_BYTES:
                return max(lines - 1, 0), lines + 1
            lines += block.count(b"\n")
            current = len(block) - block.rfind(b"\n") - 1
            if lines - 1 >= stop:
                return stop, None
    if current:
        lines += 1  # a last line without a newline
    return max(lines - 1, 0), None  # the header is no data row
