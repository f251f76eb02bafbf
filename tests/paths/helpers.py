"""Small workspaces written by hand for the path tests."""

from __future__ import annotations

from pathlib import Path

from attribution_analysis.workspace import Workspace


def workspace_with(root: Path, files: dict[str, str]) -> Workspace:
    ws = Workspace.create(root)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return ws
