"""The server draws a workspace's report charts once a step has changed their inputs
(``server/prefetch.py``): the charts drawn ahead are the report's own (it draws none of
them again), only chart-input steps ask for them, and a failure is logged, never raised."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from attribution_analysis.api import decompose_contributions, generate_report, optimize_budget
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.report import charts
from attribution_analysis.report.step import draw_charts
from attribution_analysis.server import prefetch
from attribution_analysis.workspace import Workspace

OVERRIDE = "prefetch test"


def test_the_charts_drawn_ahead_are_the_ones_the_report_draws(validated: Path):
    ws = Workspace.open(validated)
    decompose_contributions(ws, override_reason=OVERRIDE)
    optimize_budget(ws, OptimizeBudgetParams(draws=100, override_reason=OVERRIDE))
    charts._RENDERED.clear()
    drawn = draw_charts(ws)
    assert drawn >= 5  # waterfall, ROAS, budget shift, curves, trace, coverage
    ahead = set(charts._RENDERED)
    assert len(ahead) == drawn

    generate_report(ws)
    assert set(charts._RENDERED) == ahead  # the report drew nothing new
    # Negative control: other inputs are other charts (a new plan changes the budget ones).
    optimize_budget(ws, OptimizeBudgetParams(draws=100, max_change=0.1, override_reason=OVERRIDE))
    generate_report(ws)
    assert set(charts._RENDERED) - ahead


def test_requests_are_filtered_merged_and_failures_logged(tmp_path, monkeypatch, caplog):
    drawn: list[Path] = []

    def draw(folder: Path, keep_going) -> int:
        drawn.append(folder)
        if folder.name == "broken":
            raise RuntimeError("unreadable output")
        return 1

    _start_for_this_test(monkeypatch, draw)
    with caplog.at_level(logging.INFO, logger=prefetch.log.name):
        prefetch.request("validate_data", tmp_path / "a")  # not a chart input: ignored
        prefetch.request("decompose_contributions", tmp_path / "broken")
        assert prefetch.wait_idle(30)
        prefetch.request("allocate", tmp_path / "b")
        assert prefetch.wait_idle(30)
    assert drawn == [tmp_path / "broken", tmp_path / "b"]
    assert "ahead failed" in caplog.text and "unreadable output" in caplog.text


def test_the_drawing_gives_way_to_inline_steps(tmp_path, monkeypatch):
    """While an inline step runs nothing is drawn; a drawing stopped by one goes on after
    it (the negative control: without a step, it runs at once)."""
    calls: list[tuple[Path, bool]] = []

    def draw(folder: Path, keep_going) -> int:
        calls.append((folder, keep_going()))
        return 0

    _start_for_this_test(monkeypatch, draw)
    with prefetch.foreground():
        prefetch.request("optimize_budget", tmp_path / "c")
        assert not prefetch.wait_idle(0.5)  # waiting for the step to end
        assert calls == []
    assert prefetch.wait_idle(30)
    assert calls == [(tmp_path / "c", True)]

    stopped: list[Path] = []

    def stopped_by_a_step(folder: Path, keep_going) -> int:
        if not stopped:
            stopped.append(folder)
            prefetch._foreground += 1  # a step arrives mid-drawing
            assert not keep_going()
            threading.Timer(0.3, _step_ends).start()
            return 0
        stopped.append(folder)
        return 0

    monkeypatch.setattr(prefetch, "_draw", stopped_by_a_step)
    prefetch.request("validate_model", tmp_path / "d")
    time.sleep(0.1)
    assert prefetch.wait_idle(30)
    assert stopped == [tmp_path / "d", tmp_path / "d"]  # drawn again once the step ended


def _step_ends() -> None:
    with prefetch._changed:
        prefetch._foreground -= 1
        prefetch._changed.notify_all()


def _start_for_this_test(monkeypatch, draw) -> None:
    """The drawing thread with ``draw`` in place of the charts; requests are ignored again
    after the test (the thread, a daemon, stays idle)."""
    monkeypatch.setattr(prefetch, "_draw", draw)
    monkeypatch.setattr(prefetch, "_thread", prefetch._thread)
    prefetch.start()
