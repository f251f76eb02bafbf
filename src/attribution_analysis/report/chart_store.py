"""Report charts kept as files, so that a chart drawn in one process serves another.

The server draws a workspace's charts ahead in a process of its own (``server/prefetch.py``,
``report/draw_ahead.py``); its reports find them here. One JSON file per chart, named by the
key ``charts`` gives it (the chart's inputs and the drawing code), written whole or not at
all. JSON, not pickle: reading a store never runs code. No matplotlib here, so the server
can point its reports at a store without importing it.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Chart:
    """One chart: id (also the figure file name), title, caption and its renderings."""

    id: str
    title: str
    caption: str
    svg_inline: str
    svg: bytes
    png: bytes


_STORE: Path | None = None
MAX_FILES = 256  # kept; the oldest go first (a demo report is 7 charts, 0.1-0.3 MB each)


def use(folder: Path | None) -> None:
    """Read charts from, and write them to, ``folder`` as well as the process's memory
    (None, the default: memory only, as a report run from the command line does)."""
    global _STORE
    _STORE = folder


def read(key: str) -> Chart | None:
    """The stored chart under ``key``; None when there is no store, no such file, or a file
    that does not read as a chart (it is then drawn again)."""
    if _STORE is None:
        return None
    path = _STORE / f"{key}.json"
    try:
        if path.is_symlink():  # only files the store wrote itself
            return None
        fields = json.loads(path.read_text(encoding="utf-8"))
        return Chart(
            id=fields["id"],
            title=fields["title"],
            caption=fields["caption"],
            svg_inline=fields["svg_inline"],
            svg=fields["svg"].encode("utf-8"),
            png=base64.b64decode(fields["png"], validate=True),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write(key: str, chart: Chart) -> None:
    """Store ``chart`` under ``key``, whole or not at all (a process stopped mid-write leaves
    a ``.part`` file that is never read), then keep the newest ``MAX_FILES`` (``_prune``)."""
    if _STORE is None:
        return
    fields = asdict(chart) | {
        "svg": chart.svg.decode("utf-8"),
        "png": base64.b64encode(chart.png).decode("ascii"),
    }
    try:
        _STORE.mkdir(parents=True, exist_ok=True)
        # A new file of its own (O_EXCL: never through a link planted under a known name).
        handle, partial = tempfile.mkstemp(dir=_STORE, prefix=f".{key}.", suffix=".part")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(fields, file)
        os.replace(partial, _STORE / f"{key}.json")
        _prune()
    except OSError:  # a full or read-only disk costs the next report a redraw, nothing else
        return


def _prune() -> None:
    """Keep the newest ``MAX_FILES`` charts; drop what a process stopped mid-write left an
    hour ago or more (a write under way is seconds old)."""
    assert _STORE is not None
    files = sorted(_STORE.glob("*.json"), key=lambda f: f.stat().st_mtime)
    for old in files[: max(0, len(files) - MAX_FILES)]:
        old.unlink(missing_ok=True)
    for partial in _STORE.glob(".*.part"):
        if time.time() - partial.stat().st_mtime > 3600:
            partial.unlink(missing_ok=True)
