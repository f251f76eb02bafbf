"""The server draws a workspace's report charts in a process of its own once a step has
changed their inputs (``server/prefetch.py``, ``report/draw_ahead.py``), and its reports
read them from a chart store (``report/chart_store.py``): the charts drawn ahead are the
report's own (it draws none of them again), only chart-input steps ask for them, a newer
request stops a stale drawing, and a failure is logged, never raised."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attribution_analysis.api import decompose_contributions, generate_report, optimize_budget
from attribution_analysis.contracts.budget import OptimizeBudgetParams
from attribution_analysis.report import chart_store, charts
from attribution_analysis.server import prefetch
from attribution_analysis.workspace import Workspace

OVERRIDE = "prefetch test"


def _no_drawing_here(*_args, **_kwargs):
    raise AssertionError("the report drew a chart in this process")


def test_the_charts_drawn_ahead_are_the_ones_the_report_draws(
    validated: Path, tmp_path, monkeypatch
):
    ws = Workspace.open(validated)
    decompose_contributions(ws, override_reason=OVERRIDE)
    optimize_budget(ws, OptimizeBudgetParams(draws=100, override_reason=OVERRIDE))
    store = tmp_path / "charts"
    # The very command the server runs, in a process of its own.
    drawer = subprocess.Popen(
        prefetch._command(store), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    # A drawing stopped before it starts draws nothing, and the stop concerns its id only.
    drawer.stdin.write(f"draw 1 {validated}\nstop 1\ndraw 2 {validated}\n")
    drawer.stdin.flush()
    assert drawer.stdout.readline() == "ready\n"
    assert drawer.stdout.readline() == "1 stopped\n"
    drawn = int(drawer.stdout.readline().removeprefix("2 drew "))
    assert drawn >= 5  # waterfall, ROAS, budget shift, curves, trace, coverage
    assert len(list(store.glob("*.json"))) == drawn
    # The end of input (the server gone) stops a drawing and ends the process.
    drawer.stdin.write(f"draw 3 {validated}\n")
    drawer.stdin.close()
    assert drawer.stdout.readline() == "3 stopped\n"
    assert drawer.wait(30) == 0

    monkeypatch.setattr(charts, "_RENDERED", {})
    monkeypatch.setattr(chart_store, "_STORE", store)
    finish = charts._finish
    monkeypatch.setattr(charts, "_finish", _no_drawing_here)
    generate_report(ws)  # every chart from the store: _finish would raise

    # A report called while the drawing runs draws only the charts not yet stored.
    unfinished = {"trace_plots", "ppc_coverage"}
    for file in store.glob("*.json"):
        if json.loads(file.read_text())["id"] in unfinished:
            file.unlink()
    drawn_here: list[str] = []

    def counted(fig, chart_id, *args):
        drawn_here.append(chart_id)
        return finish(fig, chart_id, *args)

    charts._RENDERED.clear()
    monkeypatch.setattr(charts, "_finish", counted)
    generate_report(ws)
    assert set(drawn_here) == unfinished
    monkeypatch.setattr(charts, "_finish", _no_drawing_here)
    # Negative control: other inputs are other charts (a new plan changes the budget ones).
    optimize_budget(ws, OptimizeBudgetParams(draws=100, max_change=0.1, override_reason=OVERRIDE))
    with pytest.raises(AssertionError, match="drew a chart"):
        generate_report(ws)


def _chart(n: int) -> chart_store.Chart:
    return chart_store.Chart(
        id=f"c{n}",
        title="t",
        caption="<c>",
        svg_inline="<svg/>",
        svg=b"<svg>\xc3\xa9</svg>",
        png=bytes(range(256)) * 3,
    )


def test_a_stored_chart_is_read_back_whole_and_only_for_the_same_code(tmp_path, monkeypatch):
    drawn: list[int] = []

    @charts._memoised
    def fake(n: int) -> chart_store.Chart:
        drawn.append(n)
        return _chart(n)

    monkeypatch.setattr(charts, "_RENDERED", {})
    monkeypatch.setattr(chart_store, "_STORE", tmp_path)
    assert fake(1) == _chart(1) and drawn == [1]
    charts._RENDERED.clear()  # another process: only the store holds it
    assert fake(1) == _chart(1) and drawn == [1]  # read back, byte for byte

    (file,) = tmp_path.glob("*.json")
    file.write_text(file.read_text()[:100])  # a torn file reads as absent: drawn again
    charts._RENDERED.clear()
    assert fake(1) == _chart(1) and drawn == [1, 1]

    charts._RENDERED.clear()  # other drawing code: the stored chart is not used
    monkeypatch.setattr(charts, "_code_key", lambda: "other code")
    assert fake(1) == _chart(1) and drawn == [1, 1, 1]

    charts._RENDERED.clear()  # negative control: without a store, nothing is read
    monkeypatch.setattr(chart_store, "_STORE", None)
    fake(1)
    assert drawn == [1, 1, 1, 1]


def test_the_store_keeps_the_newest_files(tmp_path, monkeypatch):
    monkeypatch.setattr(chart_store, "_STORE", tmp_path)
    monkeypatch.setattr(chart_store, "MAX_FILES", 2)
    for n in range(3):
        chart_store.write(f"k{n}", _chart(n))
        time.sleep(0.02)  # distinct modification times
    assert sorted(f.stem for f in tmp_path.glob("*.json")) == ["k1", "k2"]
    assert chart_store.read("k0") is None and chart_store.read("k2") == _chart(2)
    assert not list(tmp_path.glob(".*.part"))


# A stand-in for the drawing process (report/draw_ahead.py), speaking its protocol with its
# own request reader. It records the folders it was sent; "broken" fails, "crash" ends the
# process, "chatty" writes a line outside the protocol, "hang" never answers.
FAKE_DRAWER = """
import sys, time
from attribution_analysis.report.draw_ahead import Requests
print("ready", flush=True)
requests = Requests()
while (asked := requests.next_draw()) is not None:
    request_id, folder = asked
    with open({record!r}, "a") as record:
        record.write(folder + "\\n")
    if folder.endswith("broken"):
        print(request_id, "failed: RuntimeError: unreadable output", flush=True)
        continue
    if folder.endswith("crash"):
        sys.exit(3)
    if folder.endswith("chatty"):
        print("library chatter", flush=True)
    if folder.endswith(("chatty", "hang")):
        time.sleep(60)
    begun = time.monotonic()
    while time.monotonic() - begun < {seconds}:
        requests.poll()
        if request_id in requests.stopped:
            break
        time.sleep(0.01)
    print(request_id, "stopped" if request_id in requests.stopped else "drew 1", flush=True)
"""


@pytest.fixture
def drawing(tmp_path, monkeypatch):
    """Start the drawing thread with the stand-in drawer; the received-folders file."""
    received = tmp_path / "received.txt"

    def begin(seconds: float) -> Path:
        code = FAKE_DRAWER.format(record=str(received), seconds=seconds)
        monkeypatch.setattr(prefetch, "_command", lambda store: [sys.executable, "-c", code])
        for name, value in (
            ("_thread", None),
            ("_drawer", None),
            ("_stopped", False),
            ("_pending", {}),
        ):
            monkeypatch.setattr(prefetch, name, value)
        monkeypatch.setattr(chart_store, "_STORE", None)
        prefetch.start(tmp_path / "charts")
        return received

    yield begin
    prefetch.stop()
    if prefetch._thread is not None:
        prefetch._thread.join(10)


def _received(record: Path) -> list[str]:
    return record.read_text().split() if record.exists() else []


def test_requests_are_filtered_queued_and_failures_logged(tmp_path, drawing, caplog, monkeypatch):
    record = drawing(0.1)
    with caplog.at_level(logging.INFO, logger=prefetch.log.name):
        prefetch.request("validate_data", tmp_path / "a")  # not a chart input: ignored
        prefetch.request("decompose_contributions", tmp_path / "broken")
        prefetch.request("allocate", tmp_path / "b")
        assert prefetch.wait_idle(30)
        assert _received(record) == [str(tmp_path / "broken"), str(tmp_path / "b")]
        assert "unreadable output" in caplog.text
        assert f"drew 1 report charts for {tmp_path / 'b'}" in caplog.text

        first = prefetch._drawer
        prefetch.request("allocate", tmp_path / "crash")  # the process dies: logged...
        assert prefetch.wait_idle(30)
        assert "the process ended (exit code 3)" in caplog.text
        prefetch.request("allocate", tmp_path / "c")  # ...and the next request gets a new one
        assert prefetch.wait_idle(30)
        assert prefetch._drawer is not first
        assert f"drew 1 report charts for {tmp_path / 'c'}" in caplog.text

        # A line outside the protocol, or no answer in time: that process is replaced.
        monkeypatch.setattr(prefetch, "ANSWER_SECONDS", 2.0)
        for odd in ("chatty", "hang"):
            drawer = prefetch._drawer
            prefetch.request("allocate", tmp_path / odd)
            assert prefetch.wait_idle(30)
            assert drawer.process.poll() is not None  # ended, not left hanging
            prefetch.request("allocate", tmp_path / "d")
            assert prefetch.wait_idle(30)
            assert prefetch._drawer is not drawer
    assert "said 'library chatter'" in caplog.text and "did not answer in 2 s" in caplog.text
    assert _received(record)[-1] == str(tmp_path / "d")


def test_a_newer_request_stops_the_stale_drawing(tmp_path, drawing, caplog):
    """The same workspace asked for again mid-drawing: the drawing is stopped and started
    again at once, not waited for; its report stops it too (negative controls: another
    workspace's request queues behind it, another step or workspace does not stop it)."""
    record = drawing(20)
    c, d = tmp_path / "c", tmp_path / "d"
    with caplog.at_level(logging.INFO, logger=prefetch.log.name):
        prefetch.request("optimize_budget", c)
        _wait_for(lambda: _received(record) == [str(c)])
        prefetch.request("optimize_budget", c)
        _wait_for(lambda: _received(record) == [str(c)] * 2)  # well before its 20 s
        assert "stopped drawing the report charts" in caplog.text
        prefetch.request("optimize_budget", d)
        prefetch.before("optimize_budget", c)  # not a step that draws them
        prefetch.before("generate_report", tmp_path / "e")  # another workspace's report
        time.sleep(0.5)
        assert _received(record) == [str(c)] * 2  # none of these stopped it; d waits
        prefetch.before("generate_report", c)  # its report draws them itself
        _wait_for(lambda: _received(record) == [str(c)] * 2 + [str(d)])
        process = prefetch._drawer.process
        prefetch.stop()  # the shutdown ends the process and the thread
        assert process.wait(10) is not None
        assert prefetch.wait_idle(10)
    assert "ahead failed" not in caplog.text


def _wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("the drawing thread did not get there in time")


def test_the_drawer_ends_at_once_when_the_server_is_killed(tmp_path):
    """Its input kept open elsewhere (no end of input to notice): the drawer still ends
    within seconds of its parent's death (negative control: alive while the parent lives)."""
    import os

    read_end, write_end = os.pipe()  # the test keeps the write end open throughout
    command = prefetch._command(tmp_path / "charts")
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"drawer = subprocess.Popen({command!r}, stdin={read_end}, pass_fds=({read_end},),"
            " stdout=subprocess.DEVNULL)\n"
            "print(drawer.pid, flush=True)\n"
            "time.sleep(120)\n",
        ],
        pass_fds=(read_end,),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        drawer = int(parent.stdout.readline())
        time.sleep(2)
        os.kill(drawer, 0)  # alive while its parent lives
        parent.kill()
        parent.wait(10)
        _wait_for(lambda: not _alive(drawer), seconds=10)
    finally:
        os.close(write_end)
        os.close(read_end)
        parent.kill()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
