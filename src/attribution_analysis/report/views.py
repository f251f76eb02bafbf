"""Facts the report and the FAQ templates phrase: verdicts, rankings that respect intervals,
flags. Nothing here computes a statistic; it selects, orders and compares output fields.
The wording lives in the templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.bccache import Bucket, BytecodeCache

from attribution_analysis.contracts.allocation import AllocationReport, EntityResult
from attribution_analysis.contracts.budget import MOVE_TOLERANCE
from attribution_analysis.contracts.common import Finding, Interval
from attribution_analysis.contracts.outputs import ChannelContribution, Criterion
from attribution_analysis.contracts.paths import ChannelCredit, PathAttributionReport
from attribution_analysis.report import fmt, trace
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


def _value(item: Any) -> Any:
    return item.value


def verdict(inputs: ReportInputs, view: Callable[[Any], Any] = _value) -> Verdict:
    """``view`` reads an input's value (the FAQ passes one that traces every field)."""
    if not inputs.diagnostics.ok:
        method = view(inputs.fit).method if inputs.fit.ok else None
        return Verdict("not_validated", method)
    d = view(inputs.diagnostics)
    assert d is not None
    failed = [c for c in d.criteria if not c.passed]
    override = None
    if inputs.contributions.ok:
        override = view(inputs.contributions).metadata.extra.get("override_reason")
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


# Allocation channel totals further than this from the decomposition's get a visible note.
ALLOCATION_TOLERANCE = 0.01
# Comparison operators a criterion's rule may state, as the report prints them.
OPERATORS = {"<=": "≤", ">=": "≥", "≤": "≤", "≥": "≥", "<": "<", ">": ">"}
RULE_OPERATOR = re.compile(r"<=|>=|≤|≥|<|>")


@dataclass
class CriterionView:
    """An acceptance criterion as the rule states it: value and threshold as percentages
    when the rule is written in percent ('>= 90% of observations ...'), and the rule's own
    comparison operator in front of the threshold."""

    criterion: Any
    as_pct: bool
    operator: str


def criterion_views(criteria: list[Any]) -> list[CriterionView]:
    views = []
    for c in criteria:
        rule = str(c.rule)
        found = RULE_OPERATOR.search(rule)
        views.append(CriterionView(c, "%" in rule, OPERATORS[found.group()] if found else ""))
    return views


def prior_limits(diagnostics: Any) -> tuple[Any, Any]:
    """(shift limit, overlap limit) that validate_model recorded with its prior comparison;
    (None, None) for a file written before it recorded them (the report then quotes none)."""
    rule = diagnostics.prior_comparison_rule if diagnostics is not None else None
    if rule is None:
        return None, None
    return rule.shift_limit, rule.overlap_limit


# Why a productivity coefficient has no interval, when the summary lets us say.
NO_INTERVAL_PREDATES = "predates"
NO_INTERVAL_UNEXPLAINED = "unexplained"


def coefficient_gaps(allocation: AllocationReport | None) -> dict[str, str]:
    """Coefficient name -> why it has no interval: ``predates`` when the file has no interval
    fields at all (written before the allocation computed them: rerun allocate), else the
    message of a finding about coefficients when the summary gives one, else
    ``unexplained``. Never a guessed reason."""
    if allocation is None:
        return {}
    stated = [
        str(f.message) for f in allocation.findings if "coefficient" in f"{f.code} {f.subject}"
    ]
    gaps = {}
    for c in allocation.coefficients:
        if c.lower_90 is not None and c.upper_90 is not None:
            continue
        if not {"lower_90", "upper_90", "std_error"} & c.model_fields_set:
            gaps[c.name] = NO_INTERVAL_PREDATES
        else:
            gaps[c.name] = stated[0] if stated else NO_INTERVAL_UNEXPLAINED
    return gaps


@dataclass
class PriorRow:
    """One channel of the vague-prior refit: its fields, which limit flagged it, whether a lift
    test calibrates it, and the default-prior ROAS interval when the decomposition holds it."""

    channel: Any
    row: dict[str, Any]
    flagged: bool
    by_shift: bool
    by_overlap: bool
    calibrated: bool
    roas: Any | None = None  # Interval of the default-prior fit (mmm_channel_contributions)


def calibrated_channels(lift_tests: list[Any] | None, lift_used: bool | None) -> list[Any]:
    """Channels with a lift test the fit was calibrated with, in the order of the tests."""
    if not lift_tests or not lift_used:
        return []
    seen: list[Any] = []
    for test in lift_tests:
        if test.channel not in seen:
            seen.append(test.channel)
    return seen


def prior_rows(
    diagnostics: Any, contributions: Any, calibrated: list[Any], limits: tuple[Any, Any]
) -> list[PriorRow]:
    """Every row of ``prior_comparison``; ``limits`` = (shift limit, overlap limit) as the
    diagnostics recorded them, (None, None) when they did not (no measure is then named)."""
    if diagnostics is None:
        return []
    shift_limit, overlap_limit = limits
    roas = {c.channel: c.roas for c in contributions.channels} if contributions else {}
    rows = []
    for row in diagnostics.prior_comparison:
        channel = row.get("channel")
        shift, ovl = row.get("relative_shift"), row.get("overlap")
        interval = roas.get(channel)
        mean = row.get("roas_informative")
        same_fit = (
            interval is not None
            and mean is not None
            and abs(interval.mean - mean) <= 1e-9 * max(abs(mean), 1e-12)
        )
        rows.append(
            PriorRow(
                channel=channel,
                row=row,
                flagged=bool(row.get("prior_dominates")),
                by_shift=None not in (shift, shift_limit) and abs(shift) > shift_limit,
                by_overlap=None not in (ovl, overlap_limit) and ovl < overlap_limit,
                calibrated=channel in calibrated,
                roas=interval if same_fit else None,
            )
        )
    return rows


@dataclass
class ChannelTotal:
    """A channel's MMM total (the decomposition: the one source) next to the total the
    allocation split across campaigns."""

    channel: Any
    mmm: Any | None  # Interval from mmm_channel_contributions.json, None if absent there
    block: Any  # BlockTotal of allocation_summary.json
    differs: bool


def channel_totals(contributions: Any, allocation: Any) -> list[ChannelTotal]:
    if allocation is None:
        return []
    mmm = {c.channel: c.total_contribution for c in contributions.channels} if contributions else {}
    out = []
    for block in allocation.block_totals:
        interval = mmm.get(block.block)
        differs = interval is not None and abs(block.total - interval.mean) > (
            ALLOCATION_TOLERANCE * abs(interval.mean)
        )
        out.append(ChannelTotal(block.block, interval, block, differs))
    return out


def productivity_drivers(allocation: Any) -> tuple[list[Any], dict[str, str]]:
    """Coefficients worth reading as drivers, and the reference levels they are relative to.

    The intercept sets the level only; in the campaign allocation the channel terms only put
    each channel's exposure units on one scale, so they are no statement about campaigns.
    """
    if allocation is None:
        return [], {}
    skip_channel = allocation.source == "mta"
    drivers = [
        c
        for c in allocation.coefficients
        if c.name != "intercept" and not (skip_channel and c.name.startswith("channel["))
    ]
    references = {
        column: level
        for column, level in allocation.reference_levels.items()
        if not (skip_channel and column == "channel")
    }
    return drivers, references


# ----- the decision ----------------------------------------------------------------------
# Channels named on each side of the recommendation sentence (the table has them all).
NAMED_MOVES_PER_SIDE = 2
# A plan without a robustness check states no direction of its own: a change within
# MOVE_TOLERANCE of current spend reads as 'hold', as the optimizer reads it.
# What each robustness variant changed, as the sentence says it (unknown names: the
# variant's own description).
VARIANT_LABELS = {
    "risk_averse": "a risk-averse objective",
    "risk_neutral": "the expected-outcome objective",
    "recent_basis": "current spend taken from the last horizon",
    "year_basis": "current spend taken from the last year",
    "wider_limits": "wider limits",
    "narrower_limits": "narrower limits",
}
UNDECIDED = ("prior_driven", "not_separable")


@dataclass
class Move:
    """One channel the plan moves, as the decision names it."""

    allocation: Any  # ChannelAllocation of the plan (traced in the report)
    direction: str  # 'increase' or 'decrease'
    robust: bool | None  # None: the plan has no robustness check
    flips_in: list[Any]  # variant names in which the direction differs
    at_limit: str | None  # 'min' or 'max': the limit, not the data, set the spend
    undecided: bool  # prior-driven or not separable: its curve rests on assumptions

    @property
    def channel(self) -> Any:
        return self.allocation.channel


@dataclass
class Decision:
    """What the recommendation sentence says, selected from a plan's fields: the moves to
    name (largest changes, robust ones first), what they are robust to, and the cautions."""

    plan: Any
    increases: list[Move]  # named in the sentence
    decreases: list[Move]  # named in the sentence
    more_moves: bool  # the plan moves channels the sentence does not name
    moves: list[Move]  # every channel the plan moves
    checked: list[Any]  # the robustness variants that could be planned
    fragile: list[Move]  # moves whose direction flips in some variant
    into_undecided: list[Move]  # money into a prior-driven or not separable channel
    at_limits: list[Move]
    losing: list[Any]  # allocations whose spend loses money at current spend

    @property
    def robust(self) -> list[Move]:
        return [m for m in self.moves if m.robust]

    @property
    def named(self) -> list[Move]:
        return [*self.decreases, *self.increases]


def _direction(allocation: Any) -> str:
    change = allocation.change_pct
    if change is None:  # no current spend: any spend is an increase
        return "increase" if allocation.recommended_spend > 0 else "hold"
    if change > MOVE_TOLERANCE:
        return "increase"
    if change < -MOVE_TOLERANCE:
        return "decrease"
    return "hold"


def variant_label(variant: Any) -> Any:
    """How the sentence names a robustness variant."""
    return VARIANT_LABELS.get(str(variant.name), variant.description)


def decision(plan: Any) -> Decision | None:
    """The decision a plan states (None without a plan). Directions are the plan's own
    (its robustness check's) where it has one."""
    if plan is None:
        return None
    checks = {str(c.channel): c for c in plan.robustness.channels} if plan.robustness else {}
    moves = []
    for a in plan.allocations:
        check = checks.get(str(a.channel))
        direction = str(check.direction) if check is not None else _direction(a)
        if direction == "hold":
            continue
        moves.append(
            Move(
                allocation=a,
                direction=direction,
                robust=bool(check.robust) if check is not None else None,
                flips_in=list(check.flips_in) if check is not None else [],
                at_limit=(check.at_limit if check is not None else a.bound_active) or None,
                undecided=a.identification in UNDECIDED,
            )
        )
    # Robust moves first, then the largest changes: what a reader should act on leads.
    order = sorted(moves, key=lambda m: (m.robust is False, -abs(float(m.allocation.change))))
    increases = [m for m in order if m.direction == "increase"][:NAMED_MOVES_PER_SIDE]
    decreases = [m for m in order if m.direction == "decrease"][:NAMED_MOVES_PER_SIDE]
    checked = [v for v in plan.robustness.variants if not v.infeasible] if plan.robustness else []
    return Decision(
        plan=plan,
        increases=increases,
        decreases=decreases,
        more_moves=len(increases) + len(decreases) < len(moves),
        moves=order,
        checked=checked,
        fragile=[m for m in order if m.robust is False],
        into_undecided=[m for m in order if m.direction == "increase" and m.undecided],
        at_limits=[m for m in order if m.at_limit],
        losing=[
            a
            for a in plan.allocations
            if a.break_even is not None and a.break_even.verdict == "loses_money"
        ],
    )


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


def lift_reading(inputs: ReportInputs) -> str | None:
    """How the fit read its lift tests ('counterfactual' or 'steady_state'; None: no fit)."""
    return inputs.fit.value.params.lift_reading if inputs.fit.ok else None  # type: ignore[union-attr]


def is_interval(value: Any) -> bool:
    return isinstance(value, dict) and "mean" in value and "hdi_90" in value


def path_shares(
    report: PathAttributionReport,
) -> tuple[list[str], list[str], dict[tuple[str, str], ChannelCredit]]:
    """(channels, methods, {(channel, method): credit}) from the credits of every method; a
    credit carries its share and, when bootstrapped, the share's 90% interval."""
    methods = [m.method for m in report.methods]
    channels: list[str] = []
    shares: dict[tuple[str, str], ChannelCredit] = {}
    for method in report.methods:
        for credit in method.credits:
            if credit.channel not in channels:
                channels.append(credit.channel)
            shares[(credit.channel, method.method)] = credit
    return channels, methods, shares


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


def plain(value: Any) -> str:
    """The text of a value without its trace: for an HTML attribute, which is not visible
    text, so recording it would put a source where no reader sees the value."""
    return f"{value}"


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


class _MemoryBytecodeCache(BytecodeCache):
    """Compiled templates kept for the process. Each report and FAQ builds its own
    environment (the recorder differs per call), which would otherwise compile every
    template again (about 1.5 s a call); jinja keys the cache by the template's source
    checksum, so an edited template is compiled afresh."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def get_bucket(
        self, environment: Environment, name: str, filename: str | None, source: str
    ) -> Bucket:
        # jinja compiles the environment's ``finalize`` calls into the code only when one is
        # set, and keys its cache by name and source alone: code compiled without a recorder
        # would be served to a page with one, and its source records would come out empty.
        finalized = environment.finalize is not None
        key = self.get_cache_key(f"{name}\x00finalize={finalized}", filename)
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _MemoryBytecodeCache()


def warm_templates() -> None:
    """Compile every shipped template into the process's bytecode cache (about 0.8 s for the
    report's): the server does it ahead of the first call (``StepSpec.preload``). With a
    recorder, as the report and the FAQ render (the code differs without one)."""
    env = environment(trace.Recorder())
    for name in env.list_templates():
        env.get_template(name)


def environment(recorder: trace.Recorder | None = None) -> Environment:
    """Templates shipped in the package; autoescape for every HTML template (names are
    untrusted text), none for Markdown (escaped with the ``md`` filter instead).

    With a ``recorder``, every traced value printed is recorded with its source field (the
    FAQ); the number filters keep the sources of traced values either way."""
    env = Environment(
        loader=PackageLoader("attribution_analysis.report", "templates"),
        autoescape=lambda name: name is not None and ".html" in name,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=recorder.finalize if recorder is not None else None,
        bytecode_cache=_BYTECODE,
    )
    out = trace.formatted
    env.filters.update(
        num=lambda v: out(fmt.num_parts(v)),
        points=lambda v: out(fmt.num_parts(v, 1)),  # percentage points, one decimal
        pct=lambda v, signed=False: out(fmt.pct_parts(v, signed)),
        integer=lambda v: out(fmt.integer_parts(v)),
        iv=lambda v, as_pct=False: out(fmt.interval_parts(v, as_pct)),
        bounds=lambda v, as_pct=False, level=90: out(fmt.bounds_parts(v, as_pct, level)),
        vrange=lambda low, high, as_pct=False: out(fmt.range_parts(low, high, as_pct)),
        prob=lambda v, draws=None: out(fmt.probability_parts(v, draws)),
        rel_error=lambda v: out(fmt.rel_error_parts(v)),
        # executive rounding (the decision and the summary; the tables keep full figures)
        ex_amount=lambda v, signed=False: out(fmt.executive_amount_parts(v, signed)),
        ex_iv=lambda v, signed=False: out(fmt.executive_interval_parts(v, signed)),
        ex_pct=lambda v, signed=False: out(fmt.executive_pct_parts(v, signed)),
        ex_pct_iv=lambda v, signed=False: out(fmt.executive_pct_interval_parts(v, signed)),
        ex_ratio=lambda v: out(fmt.executive_ratio_parts(v)),
        ex_ratio_iv=lambda v: out(fmt.executive_ratio_interval_parts(v)),
        md=trace.keep(md_escape),
        replace=trace.keep(env.filters["replace"]),
        upper=trace.keep(env.filters["upper"]),
        join=trace.traced_join,
        cell=cell,
        plain=plain,
    )
    env.globals.update(
        producers=PRODUCERS,
        path_shares=path_shares,
        loo_labels=LOO_LABELS,
        method_labels=METHOD_LABELS,
        overlaps=fmt.overlaps,
        is_interval=is_interval,
        criterion_views=criterion_views,
        variant_label=variant_label,
    )
    return env
