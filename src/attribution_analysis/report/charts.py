"""Static charts, drawn server-side with matplotlib and inlined in the report as SVG.

Why static SVG: the report must open offline, from a file, with no CDN and nothing to run; an
inline SVG is text in the HTML, scales on any screen, prints, and its labels stay text (so
names are escaped like the rest of the page). The same figure is also saved as PNG and SVG
under ``reports/figures/`` for slides.

Every chart draws intervals from the output files (90% HDI thick, 95% HDI thin); none draws a
bare point estimate. Names reach matplotlib as plain text: math parsing is off, so a '$' in a
campaign name is a dollar sign, and the SVG writer escapes '<' and '&'.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pydantic import BaseModel

from attribution_analysis.contracts.allocation import AllocationReport
from attribution_analysis.contracts.budget import BudgetOptimization
from attribution_analysis.contracts.outputs import ChannelContributions, MMMDiagnostics
from attribution_analysis.report import chart_store
from attribution_analysis.report.chart_store import Chart
from attribution_analysis.report.views import top_entities

STYLE = {
    "svg.fonttype": "none",  # text stays text: small files, selectable, escaped by the writer
    "svg.hashsalt": "attribution-analysis-report",  # stable clip-path ids between runs
    "text.parse_math": False,  # '$' in a name is not mathtext
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "figure.dpi": 100,
    "savefig.dpi": 150,
}
PALETTE = ["#1f5f8b", "#e07b39", "#3a9a5b", "#b8434a", "#7b5ea7", "#8c6d31", "#d16ba5", "#5f7f8f"]
BASE_COLOR = "#9aa5ad"
COMPONENT_COLOR = "#c9b27c"  # organic series and events: neither base nor paid media
MAX_LABEL = 40  # characters of a name shown on an axis (full names are in the tables)

_RENDERED: dict[str, Chart] = {}
_DRAWING = threading.Lock()
_RENDERED_MAX = 64
_REMEMBERING = threading.Lock()


@functools.cache
def _code_key() -> str:
    """What else decides a chart's bytes: the report package's code and version and
    matplotlib's version, so that a stored chart from other code is never shown."""
    from attribution_analysis import __version__

    digest = hashlib.sha256(f"{mpl.__version__} {__version__}".encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        # An installation without readable sources: the versions decide.
        with contextlib.suppress(OSError):
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _memoised(draw: Callable[..., Chart | None]) -> Callable[..., Chart | None]:
    """Draw a chart once per process for the same inputs, and once per chart store
    (``chart_store.use``). Rendering is deterministic (no dates in the files) and most of a
    report's time (matplotlib lays out every tick); a report regenerated after a change
    elsewhere, or every FAQ audience, reuses the charts whose inputs did not change. Keyed by
    the inputs' full JSON and the drawing code (``_code_key``), never by identity."""

    @functools.wraps(draw)
    def cached(*args: Any) -> Chart | None:
        parts = [a.model_dump_json() if isinstance(a, BaseModel) else repr(a) for a in args]
        key = hashlib.sha256("\x00".join([_code_key(), draw.__name__, *parts]).encode()).hexdigest()
        # One look-up, not "in" then "[]": another thread may evict the key in between.
        remembered = _RENDERED.get(key)
        if remembered is not None:
            return remembered
        stored = chart_store.read(key)
        if stored is not None:
            _remember(key, stored)
            return stored
        # The style is matplotlib's global state, read while drawing and while saving: one
        # chart at a time in the process, inside it (the server draws reports for several
        # workspaces in worker threads). Looked up again inside: the thread that held the
        # lock may have drawn this very chart.
        with _DRAWING:
            remembered = _RENDERED.get(key)
            if remembered is not None:
                return remembered
            with mpl.rc_context(STYLE):
                chart = draw(*args)
            if chart is None:
                return None
            _remember(key, chart)
            chart_store.write(key, chart)
            return chart

    return cached


def _remember(key: str, chart: Chart) -> None:
    """Keep ``chart`` in the process, the oldest of ``_RENDERED_MAX`` going first (under its
    own lock: a chart read from the store is kept outside the drawing lock)."""
    with _REMEMBERING:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.pop(next(iter(_RENDERED)), None)
        _RENDERED[key] = chart


def warm() -> None:
    """Draw and save a throwaway figure, outside the cache, so that the backends, the font
    and the PNG writer are loaded (about a second of a process's first chart): the server
    does it ahead of the first report (``StepSpec.preload``). No ``rc_context``: it changes
    matplotlib's global settings, which a report drawn meanwhile in another thread reads."""
    fig, ax = _new(1, 1, figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    ax.set_title("warm-up")
    for kind in ("svg", "png"):
        fig.savefig(io.BytesIO(), format=kind, bbox_inches="tight")


def _short(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


def _colors(channels: Sequence[str]) -> dict[str, str]:
    """One colour per channel, by sorted name, so a channel keeps its colour across charts."""
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(sorted(set(channels)))}


def _new(*grid: int, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """A figure outside pyplot: no global figure registry, safe in the MCP server's worker
    threads, nothing to close."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def _inline(svg: str, prefix: str) -> str:
    """Make a standalone SVG embeddable: drop the XML prolog, make ids unique per chart (many
    SVGs share one document), and let CSS size it."""
    svg = re.sub(r"^.*?(?=<svg)", "", svg, count=1, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    svg = re.sub(
        r'<svg([^>]*?)\swidth="[^"]*"\sheight="[^"]*"',
        rf'<svg\1 class="chart-svg" role="img" aria-labelledby="{prefix}-title"',
        svg,
        count=1,
    )
    return svg.strip()


def _finish(fig: Figure, chart_id: str, title: str, caption: str) -> Chart:
    # The tight bounding box is measured once for both files: bbox_inches="tight" lays the
    # figure out again for each file to measure it (a third of a report's drawing time).
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    bbox = fig.get_tightbbox(renderer).padded(mpl.rcParams["savefig.pad_inches"])
    svg_buffer = io.StringIO()
    fig.savefig(svg_buffer, format="svg", bbox_inches=bbox, metadata={"Date": None})
    png_buffer = io.BytesIO()
    fig.savefig(png_buffer, format="png", bbox_inches=bbox, metadata={"Software": None})
    svg = svg_buffer.getvalue()
    return Chart(
        id=chart_id,
        title=title,
        caption=caption,
        svg_inline=_inline(svg, chart_id),
        svg=svg.encode("utf-8"),
        png=png_buffer.getvalue(),
    )


def _whiskers(
    ax: Any,
    position: float,
    hdi90: Sequence[float],
    hdi95: Sequence[float],
    color: str,
    horizontal: bool = False,
) -> None:
    """95% HDI as a thin line, 90% HDI as a thick one."""
    draw = ax.hlines if horizontal else ax.vlines
    draw(position, hdi95[0], hdi95[1], color=color, linewidth=1.0, alpha=0.8)
    draw(position, hdi90[0], hdi90[1], color=color, linewidth=4.0, alpha=0.9)


@_memoised
def waterfall(result: ChannelContributions) -> Chart:
    """Base, then organic series and events (their own components), then each channel
    stacked on top, each step with its own interval."""
    channels = sorted(result.channels, key=lambda c: -c.total_contribution.mean)
    colors = _colors([c.channel for c in result.channels])
    components = result.components
    labels = [
        "base",
        *[_short(f"{c.name} ({c.kind})") for c in components],
        *[_short(c.channel) for c in channels],
    ]
    means = [
        result.base.total.mean,
        *[c.total_contribution.mean for c in components],
        *[c.total_contribution.mean for c in channels],
    ]
    intervals = [
        result.base.total,
        *[c.total_contribution for c in components],
        *[c.total_contribution for c in channels],
    ]
    fill = [
        BASE_COLOR,
        *[COMPONENT_COLOR for _ in components],
        *[colors[c.channel] for c in channels],
    ]
    fig, ax = _new(figsize=(7.5, 3.8))
    bottom = 0.0
    for i, (mean, iv, color) in enumerate(zip(means, intervals, fill, strict=True)):
        ax.bar(i, mean, bottom=bottom, color=color, width=0.6, alpha=0.85)
        offset = bottom  # the step's interval, drawn where the step ends
        _whiskers(
            ax,
            i,
            [offset + iv.hdi_90[0], offset + iv.hdi_90[1]],
            [offset + iv.hdi_95[0], offset + iv.hdi_95[1]],
            "#222222",
        )
        if i + 1 < len(means):
            ax.plot([i + 0.3, i + 0.7], [bottom + mean] * 2, color="#666666", linewidth=0.8)
        bottom += mean
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel(f"{result.target} over the window")
    ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    ax.set_title(
        "Contribution waterfall: base, "
        + ("organic series and events, " if components else "")
        + "then each channel"
    )
    fig.tight_layout()
    return _finish(
        fig,
        "contribution_waterfall",
        "Contribution waterfall",
        "Each bar is one component's posterior-mean contribution stacked on the previous ones; "
        "the black whiskers are that component's own 90% HDI (thick) and 95% HDI (thin). "
        "Components are uncertain together, so the whiskers do not add up.",
    )


@_memoised
def roas_intervals(result: ChannelContributions) -> Chart:
    """ROAS and marginal ROAS per channel, side by side, with intervals."""
    channels = result.channels
    colors = _colors([c.channel for c in channels])
    fig, axes = _new(1, 2, figsize=(8, 0.5 + 0.45 * len(channels) + 1), sharey=True)
    for ax, field, label in (
        (axes[0], "roas", "ROAS (average return)"),
        (axes[1], "mroas", "Marginal ROAS (next unit of spend)"),
    ):
        for i, c in enumerate(channels):
            iv = getattr(c, field)
            _whiskers(ax, i, iv.hdi_90, iv.hdi_95, colors[c.channel], horizontal=True)
            ax.plot(iv.mean, i, "o", color="white", markeredgecolor="#222222", markersize=5)
        ax.set_title(label)
        ax.set_xlabel(result.roas_unit or f"{result.target} per unit of spend")
        ax.axvline(0, color="#999999", linewidth=0.6)
    axes[0].set_yticks(range(len(channels)), [_short(c.channel) for c in channels])
    axes[0].invert_yaxis()
    fig.tight_layout()
    return _finish(
        fig,
        "roas_mroas",
        "ROAS and marginal ROAS",
        "Circle: posterior mean; thick bar: 90% HDI; thin bar: 95% HDI. Average ROAS is the "
        "contribution per unit of spend over the window; marginal ROAS is the return on the next "
        "unit at current spend.",
    )


@_memoised
def response_curves(budget: BudgetOptimization) -> Chart:
    """Outcome and marginal ROAS against spend over the horizon, one column per channel."""
    curves = budget.curves
    saturation = {a.channel: a.saturation for a in budget.allocations}
    colors = _colors([c.channel for c in curves])
    n = len(curves)
    columns = min(n, 4)
    rows = math.ceil(n / columns)
    fig, axes = _new(2 * rows, columns, figsize=(2.6 * columns + 0.6, 4.4 * rows), squeeze=False)
    for k in range(rows * columns):
        top, bottom = (
            axes[2 * (k // columns), k % columns],
            axes[2 * (k // columns) + 1, k % columns],
        )
        if k >= n:
            top.set_visible(False)
            bottom.set_visible(False)
            continue
        curve = curves[k]
        color = colors[curve.channel]
        spend = np.asarray(curve.spend)
        top.fill_between(spend, curve.outcome_low, curve.outcome_high, color=color, alpha=0.25)
        top.plot(spend, curve.outcome_mean, color=color, linewidth=1.6)
        bottom.fill_between(spend, curve.mroas_low, curve.mroas_high, color=color, alpha=0.25)
        bottom.plot(spend, curve.mroas_mean, color=color, linewidth=1.6)
        for ax in (top, bottom):
            ax.axvline(curve.current_spend, color="#222222", linestyle="--", linewidth=0.9)
            ax.axvline(curve.recommended_spend, color="#b8434a", linestyle=":", linewidth=1.2)
            ax.xaxis.set_major_formatter(ticker.EngFormatter())
        status = saturation.get(curve.channel)
        flag = " (saturated)" if status is not None and status.saturated else ""
        top.set_title(_short(curve.channel) + flag, color="#b8434a" if flag else "black")
        top.set_ylabel("outcome" if k % columns == 0 else "")
        bottom.set_ylabel("marginal ROAS" if k % columns == 0 else "")
        bottom.set_xlabel("spend over the horizon (input units)")
    fig.tight_layout()
    return _finish(
        fig,
        "response_curves",
        "Response and marginal ROAS curves",
        "Top row: media-driven outcome against spend over the planning horizon; bottom row: "
        "marginal ROAS. Line: posterior mean; band: 90% interval. Dashed: current spend; "
        "dotted red: recommended spend. '(saturated)' marks the optimizer's saturation flag.",
    )


@_memoised
def budget_shift(budget: BudgetOptimization) -> Chart:
    """Current against recommended spend per channel."""
    rows = budget.allocations
    fig, ax = _new(figsize=(7.5, 0.6 + 0.5 * len(rows) + 0.8))
    y = np.arange(len(rows))
    ax.barh(
        y - 0.2, [a.current_spend for a in rows], height=0.38, color=BASE_COLOR, label="current"
    )
    ax.barh(
        y + 0.2,
        [a.recommended_spend for a in rows],
        height=0.38,
        color="#1f5f8b",
        label="recommended",
    )
    ax.set_yticks(y, [_short(a.channel) for a in rows])
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    # No output records a currency: the unit is whatever the spend files were in.
    ax.set_xlabel(f"spend over {budget.horizon_periods} {budget.grain} periods (input units)")
    ax.legend(frameon=False, loc="lower right")
    ax.set_title("Budget: current and recommended spend")
    fig.tight_layout()
    return _finish(
        fig,
        "budget_reallocation",
        "Budget reallocation",
        "Spend is a decision, not an estimate, so it has no interval; the expected outcome of "
        "each mix and the lift, with their intervals, are in the table.",
    )


@_memoised
def campaigns(report: AllocationReport, top: int) -> Chart:
    """Top campaigns per channel: credit with its 90% interval when the output has one."""
    groups = top_entities(report, top)
    colors = _colors([b for b, _ in groups])
    n = len(groups)
    columns = min(n, 3)
    rows = math.ceil(n / columns)
    height = max(len(e) for _, e in groups)
    fig, axes = _new(
        rows,
        columns,
        figsize=(3.4 * columns + 1.2, (0.35 * height + 1.1) * rows),
        squeeze=False,
    )
    for k in range(rows * columns):
        ax = axes[k // columns, k % columns]
        if k >= n:
            ax.set_visible(False)
            continue
        block, entities = groups[k]
        y = np.arange(len(entities))
        ax.barh(
            y, [e.total_allocated for e in entities], color=colors[block], alpha=0.8, height=0.6
        )
        for i, e in enumerate(entities):
            if e.total_allocated_lower_90 is not None and e.total_allocated_upper_90 is not None:
                ax.hlines(
                    i,
                    e.total_allocated_lower_90,
                    e.total_allocated_upper_90,
                    color="#222222",
                    linewidth=1.2,
                )
        labels = [
            _short(e.entity) + (" *" if e.credit_set or e.cold_start else "") for e in entities
        ]
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set_title(_short(block))
        ax.xaxis.set_major_formatter(ticker.EngFormatter())
    fig.tight_layout()
    return _finish(
        fig,
        "campaign_allocation",
        "Campaign credit within channels",
        "Bars: credit allocated to each campaign (the channel's MMM contribution split by the "
        "allocation model); black lines: 90% interval from the contribution draws or the "
        "posterior. '*': cold start or not separable from another campaign (see the table).",
    )


def _trace_series(trace: dict[str, Any]) -> list[tuple[str, list[list[float]]]]:
    """Flatten {name: chains} and {name: {item: chains}} into (label, chains) pairs."""
    series = []
    for name, value in trace.items():
        if isinstance(value, dict):
            for item, chains in value.items():
                series.append((f"{name}[{item}]", chains))
        elif isinstance(value, list):
            series.append((name, value))
    return [(label, chains) for label, chains in series if chains and isinstance(chains[0], list)]


@_memoised
def trace_plots(diagnostics: MMMDiagnostics, order: Sequence[str], limit: int) -> Chart | None:
    """Thinned draws per chain for ``limit`` parameters, in the order given (worst first)."""
    series = dict(_trace_series(diagnostics.trace))
    labels = [label for label in order if label in series]
    labels += [label for label in series if label not in labels]
    labels = labels[:limit]
    if not labels or max(len(series[label][0]) for label in labels) < 2:
        return None  # a MAP/ADVI fit has no chains to draw
    columns = 3
    rows = math.ceil(len(labels) / columns)
    fig, axes = _new(rows, columns, figsize=(9, 1.5 * rows + 0.4), squeeze=False)
    for k in range(rows * columns):
        ax = axes[k // columns, k % columns]
        if k >= len(labels):
            ax.set_visible(False)
            continue
        for c, chain in enumerate(series[labels[k]]):
            ax.plot(chain, linewidth=0.6, alpha=0.8, color=PALETTE[c % len(PALETTE)])
        ax.set_title(_short(labels[k]), fontsize=8, fontweight="normal")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _finish(
        fig,
        "trace_plots",
        "Trace plots",
        "Thinned posterior draws of each chain (one colour per chain); parameters flagged by "
        "the prior-sensitivity check first. Chains that overlap and look like noise around a "
        "stable level have mixed; trends or separated chains would not have.",
    )


@_memoised
def ppc_coverage(diagnostics: MMMDiagnostics, target: str) -> Chart | None:
    """Observed outcome against the posterior predictive mean and 90% interval, per period."""
    series = diagnostics.ppc.get("series") if diagnostics.ppc else None
    if not isinstance(series, dict) or not all(
        k in series for k in ("observed", "mean", "lower_90", "upper_90")
    ):
        return None
    observed = np.asarray(series["observed"], dtype=float)
    low = np.asarray(series["lower_90"], dtype=float)
    high = np.asarray(series["upper_90"], dtype=float)
    x = np.arange(len(observed))
    outside = (observed < low) | (observed > high)
    fig, ax = _new(figsize=(9, 3.2))
    ax.fill_between(x, low, high, color="#1f5f8b", alpha=0.25, label="90% predictive interval")
    ax.plot(x, series["mean"], color="#1f5f8b", linewidth=1.2, label="predictive mean")
    ax.plot(
        x[~outside],
        observed[~outside],
        "o",
        color="#222222",
        markersize=2.5,
        label="observed, inside",
    )
    ax.plot(
        x[outside],
        observed[outside],
        "o",
        color="#b8434a",
        markersize=4,
        label="observed, outside",
    )
    ax.set_xlabel("period")
    ax.set_ylabel(target)
    ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))
    ax.legend(frameon=False, ncol=4, loc="upper left", fontsize=8)
    ax.set_title("Posterior predictive coverage")
    fig.tight_layout()
    return _finish(
        fig,
        "ppc_coverage",
        "Posterior predictive coverage",
        "Observed outcome per period against the model's posterior predictive 90% interval; "
        "red points fall outside it. The acceptance criterion on this coverage is in the "
        "criteria table.",
    )
