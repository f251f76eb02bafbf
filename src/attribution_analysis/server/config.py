"""Where the server may read and write, and how much work one call may ask for."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from attribution_analysis.errors import ParameterError, WorkspaceError
from attribution_analysis.steps import Sampling
from attribution_analysis.workspace import Workspace

RAW_SUFFIXES = (".csv",)
# Per chain, retry included: the default fit (6,000 draws) may sample 12,000 when it fails
# its gates, and no single request may ask more than the sampler contract's 20,000.
DEFAULT_MAX_DRAWS = 20_000


@dataclass(frozen=True)
class ServerConfig:
    root: Path  # every workspace lives under it
    max_draws: int = DEFAULT_MAX_DRAWS  # per chain, MMM and Bayesian allocation
    max_chains: int = 4
    max_rows: int = 2_000_000  # rows of any one raw CSV
    max_jobs: int = 2  # background jobs running at once

    @classmethod
    def at(cls, root: str | os.PathLike[str], **limits: int) -> ServerConfig:
        path = Path(root).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return cls(root=path.resolve(), **limits)

    def locate(self, name: str, must_exist: bool = True) -> Path:
        """The folder of workspace ``name`` under the root; anything that would leave the
        root (absolute paths, '..', a symlink pointing out) is refused."""
        if not name or not name.strip():
            raise WorkspaceError(
                "no workspace was named.", fix="pass a folder name under the root."
            )
        candidate = Path(name)
        if candidate.is_absolute() or candidate.drive:
            raise WorkspaceError(
                f"'{name}' is an absolute path; workspaces are named relative to the server's "
                "workspace root.",
                fix=f"pass a name such as 'demo' (the root is {self.root}).",
            )
        resolved = (self.root / candidate).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise WorkspaceError(
                f"'{name}' resolves outside the workspace root (through '..' or a symbolic "
                "link); the server only touches folders under its root.",
                fix=f"pass a folder under {self.root}.",
            )
        if resolved == self.root:
            raise WorkspaceError(
                "the workspace root itself is not a workspace.", fix="name a folder under it."
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
                    rows = _count_rows(path, self.max_rows + 2)
                    if rows > self.max_rows:
                        raise ParameterError(
                            f"raw/{path.name} has more than {self.max_rows:,} rows, this "
                            "server's limit.",
                            fix="aggregate the file (e.g. to weekly) or start the server with "
                            "a larger --max-rows.",
                        )


def _count_rows(path: Path, stop: int) -> int:
    """Data rows of a CSV, counting at most ``stop`` (a cap keeps the check cheap)."""
    rows = -1  # the header
    with path.open("rb") as handle:
        for _ in handle:
            rows += 1
            if rows >= stop:
                break
    return max(rows, 0)
