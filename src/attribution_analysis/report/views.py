"""Facts the report and the FAQ templates phrase: verdicts, rankings that respect intervals,
flags. Nothing here computes a statistic; it selects, orders and compares output fields.
The wording lives in the templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from attribution_analysis.contracts.allocation import AllocationReport, EntityResult
from attribution_analysis.contracts.common import Finding, Interval
from attribution_analysis.contracts.outputs import ChannelContribution, Criterion
from attribution_analysis.report import fmt
from attribution_analysis.report.inputs import PRODUCERS, ReportInputs

METHOD_LABELS = {
    "bayesian_nuts": "Bayesian MMM, full posterior by NUTS (PyMC-Marketing)",
    "bayesian_map": "quick MAP fit (a point estimate labelled not for decisions)",
    "bayesian_advi": "quick ADVI fit (an approximation labelled not for decisions)",
    "ridge_bootstrap": "ridge-regression fallback (Robyn-style) with bootstrap intervals",
}


LOO_LABELS = {
    "elpd_loo": "expected log predictive density (elpd)",
    "se": "standard error of elpd",
    "p_loo": "effective number of parameters",
    "max_pareto_k": "largest Pareto k",
    "n_pareto_k_above_0_7": "observations with Pareto k above the threshold",
}


@dataclass
class Verdict:
    """Whether the model may be used for decisions, and why (from mmm_diagnostics.json)."""

    status: str  # 'passed', 'failed', 'override', 'quick' or 'not_validated'
    method: str | None = None
    criteria: list[Criterion] = field(default_factory=list)
    failed: list[Criterion] = field(default_factory=list)
    override: str | None = None


@dataclass
class Ranked:
    """Channels ordered by the posterior mean of one field, with the ones the data cannot
    separate from the first (their 90% HDIs overlap)."""

    field: str
    order: list[ChannelContribution]
    ties_with_first: list[ChannelContribution]

    @property
    def first(self) -> ChannelContribution:
        return self.order[0]

    def value(self, channel: ChannelContribution) -> Interval:
        return getattr(channel, self.field)


def verdict(inputs: ReportInputs) -> Verdict:
    if not inputs.diagnostics.ok:
        method = inputs.fit.value.method if inputs.fit.ok else None  # type: ignore[union-attr]
        return Verdict("not_validated", method)
    d = inputs.diagnostics.value
    assert d is not None
    failed = [c for c in d.criteria if not c.passed]
    override = None
    if inputs.contributions.ok:
        override = inputs.contributions.value.metadata.extra.get("override_reason")  # type: ignore[union-attr]
    override = override or d.override
    if d.method in ("bayesian_map", "bayesian_advi"):
        status = "quick"
    elif not failed:
        status = "passed"
    elif override:
        status = "override"
    else:
        status = "failed"
    return Verdict(status, d.method, list(d.criteria), failed, override)


def rank(channels: list[ChannelContribution], field_name: str) -> Ranked | None:
    if not channels:
        return None
    order = sorted(channels, key=lambda c: -getattr(c, field_name).mean)
    top = getattr(order[0], field_name)
    ties = [c for c in order[1:] if fmt.overlaps(top, getattr(c, field_name))]
    return Ranked(field_name, order, ties)


def warnings(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity in ("warning", "error")]


def prior_dominated(inputs: ReportInputs) -> list[str]:
    if not inputs.diagnostics.ok:
        return []
    return [
        str(row.get("channel"))
        for row in inputs.diagnostics.value.prior_comparison  # type: ignore[union-attr]
        if row.get("prior_dominates")
    ]


def trace_order(inputs: ReportInputs) -> list[str]:
    """Parameters flagged by power-scaling sensitivity first: those are the ones a reader
    should see the chains of."""
    if not inputs.diagnostics.ok:
        return []
    rows = inputs.diagnostics.value.prior_sensitivity  # type: ignore[union-attr]
    flagged = [str(r["parameter"]) for r in rows if r.get("diagnosis") not in (None, "✓")]
    rest = [str(r["parameter"]) for r in rows if str(r["parameter"]) not in flagged]
    # psense names per-channel parameters 'name[channel]', the trace 'name[channel]' too
    return flagged + rest


def top_entities(report: AllocationReport, top: int) -> list[tuple[str, list[EntityResult]]]:
    """The ``top`` entities by credit in each block (channel); blocks by total credit."""
    blocks: dict[str, list[EntityResult]] = {}
    for entity in report.entities:
        blocks.setdefault(entity.block, []).append(entity)
    ordered = sorted(blocks.items(), key=lambda kv: -sum(e.total_allocated for e in kv[1]))
    return [
        (block, sorted(entities, key=lambda e: -e.total_allocated)[:top])
        for block, entities in ordered
    ]


def lift_tests_used(inputs: ReportInputs) -> bool | None:
    """Whether the fit was calibrated with the lift tests (None: no fit manifest)."""
    return inputs.fit.value.params.calibrate if inputs.fit.ok else None  # type: ignore[union-attr]


def is_interval(value: Any) -> bool:
    return isinstance(value, dict) and "mean" in value and "hdi_90" in value


MAX_PATH_ROWS = 40


def path_report(payload: dict[str, Any]) -> Any | None:
    """The path-attribution output through its own contract when it matches; None sends the
    section to the generic tables below (another version of that step wrote the file)."""
    try:
        from attribution_analysis.contracts.paths import PathAttributionReport
    except ImportError:
        return None
    try:
        return PathAttributionReport.model_validate(payload)
    except ValueError:
        return None


def path_shares(report: Any) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    """(channels, methods, {(channel, method): share}) from the credits of every method."""
    methods = [m.method for m in report.methods]
    channels: list[str] = []
    shares: dict[tuple[str, str], float] = {}
    for method in report.methods:
        for credit in method.credits:
            if credit.channel not in channels:
                channels.append(credit.channel)
            shares[(credit.channel, method.method)] = credit.share
    return channels, methods, shares


def path_tables(payload: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    """Read path attribution defensively (its contract is owned by another step): the
    top-level scalars, and every list of records as a table of scalars and intervals."""
    scalars = [
        (k, v)
        for k, v in payload.items()
        if k != "metadata" and isinstance(v, str | int | float | bool) and v is not None
    ]
    tables = []
    for key, value in payload.items():
        if not (isinstance(value, list) and value and all(isinstance(r, dict) for r in value)):
            continue
        columns: list[str] = []
        for row in value[:MAX_PATH_ROWS]:
            for name, cell in row.items():
                simple = isinstance(cell, str | int | float | bool) or is_interval(cell)
                if simple and name not in columns:
                    columns.append(name)
        if columns:
            tables.append(
                {
                    "name": key,
                    "columns": columns,
                    "rows": value[:MAX_PATH_ROWS],
                    "more": max(0, len(value) - MAX_PATH_ROWS),
                }
            )
    return scalars, tables


# ----- jinja -------------------------------------------------------------------------------
# Markdown punctuation that can change the meaning of a name: code, emphasis, links, table
# cells, entities, and '<' where it could open an HTML tag (a '<' before a digit or a space,
# as in 'R-hat < 1.05', cannot, and stays readable).
MD_SPECIAL = re.compile(r"([\\`*\[\]|]|<(?=[A-Za-z/!?])|&(?=#?\w+;))")


def md_escape(text: object) -> str:
    """Backslash-escape Markdown punctuation in a name, so '<script>' or '|' in a campaign name
    stays text in the Markdown and in the HTML made from it."""
    return MD_SPECIAL.sub(r"\\\1", str(text))


def tidy_markdown(text: str) -> str:
    """A blank line before every heading and never more than one in a row (template blocks
    leave uneven spacing, and a heading glued to a paragraph may not render as one)."""
    text = re.sub(r"\n*^(#{1,6} )", r"\n\n\1", text, flags=re.M)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def cell(value: Any) -> str:
    """A path-attribution table cell: intervals and numbers formatted, text as is."""
    if is_interval(value):
        low, high = value["hdi_90"]
        return f"{fmt.num(value['mean'])} (90% HDI {fmt.num(low)} to {fmt.num(high)})"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return fmt.num(value)
    return str(value)


def environment() -> Environment:
    """Templates shipped in the package; autoescape for every HTML template (names are
    untrusted text), none for Markdown (escaped with the ``md`` filter instead)."""
    env = Environment(
        loader=PackageLoader("attribution_analysis.report", "templates"),
        autoescape=lambda name: name is not None and ".html" in name,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=fmt.num,
        pct=fmt.pct,
        integer=fmt.integer,
        iv=fmt.interval,
        bounds=fmt.bounds,
        md=md_escape,
        cell=cell,
    )
    env.globals.update(
        producers=PRODUCERS,
        path_shares=path_shares,
        loo_labels=LOO_LABELS,
        method_labels=METHOD_LABELS,
        overlaps=fmt.overlaps,
        is_interval=is_interval,
    )
    return env
