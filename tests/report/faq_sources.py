"""Strict check of the FAQ's and the report's numbers: each one against the one field it was
read from.

draft_faq and generate_report write beside their output the values they printed, in print
order, each with the file and JSON path it came from (``faq_<audience>.sources.json``,
``mmm_executive_summary.sources.json``). This check walks the text with that list: every
record must appear, in order; every number inside a record must be the value of *its* field
(re-read here from the file, not taken from the record), rounded as printed or bounded as
printed ('< 0.0001'); a quoted string must appear verbatim; and the text between records (the
templates' fixed wording) may hold no number at all, except the labels of interval levels the
outputs record ('90% HDI' where some field is an ``hdi_90``).
"""

from __future__ import annotations

import hashlib
import html
import importlib
import json
import math
import re
from pathlib import Path
from typing import Any

from attribution_analysis.registry import RunRegistry
from attribution_analysis.report import trace
from attribution_analysis.workspace import Workspace

# Interval labels: the level of an interval is part of its field's name (hdi_90, lower_90,
# ks_critical_95, spearman_p05), not a value. A label passes only for a level some output
# field carries and only before a word that names an interval or quantile, so a typed '80%
# interval', or '95% HDI' where no output has a 95% interval, is found out.
LABEL_WORDS = (
    r"HDI|interval|highest-density|posterior predictive|bootstrap|credible|critical|quantile"
)
LEVEL_KEY = re.compile(r"(?:hdi|lower|upper|coverage|critical)_(\d{2})$|_p(\d{2})$")
NUMBER = re.compile(r"(?<![\w.])([-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?)(%?)(?![\w])")
DIGITS = re.compile(r"\d+")
# Any recorded level, for counting numbers only (count_numbers), not for checking them.
ANY_LEVEL = re.compile(rf"\b\d{{1,2}}% (?={LABEL_WORDS})")

# String fields whose numbers cannot be matched to a numeric field, and why:
# - identifiers: ids, hashes, dates, times, versions, file paths, names of entities, channels,
#   scenarios and criteria; their digits are part of the name, not a quantity;
# - prose written by the producing step (messages, rules, descriptions, reasons): the step
#   rendered its own numbers into the text and does not store each one as a field (a
#   finding's message quotes an F statistic that has no field of its own), so there is no
#   field to match; the check still requires the string to be printed verbatim, and the
#   templates print the numeric field itself wherever one exists.
# Any other string field whose text holds a number must match a numeric field beside it.
IDENTIFIER_FIELDS = {
    trace.SHA256,
    "run_id",
    "timestamp",
    "started_at",
    "finished_at",
    "start",
    "end",
    "first_date",
    "last_date",
    "mmm_start",
    "mmm_end",
    "package",
    "package_version",
    "library_versions",
    "input_hashes",
    "entity",
    "entities",
    "channel",
    "block",
    "campaign",
    "subject",
    "name",
    "file",
    "geo",
    "parameter",
    "credit_set",
    "code",
    "model_path",
    "step",
    "plan_name",
}
PROSE_FIELDS = {
    "message",
    "method",  # the optimizer's: 'grid search (64 steps, ...) + SLSQP from 2 of 3 starts'
    "rule",
    "description",
    "objective",
    "split_rule",
    "reason",
    "grain_reason",
    "override",
    "override_reason",
    "caveats",
    "convention",
    "current_basis",
    "roas_unit",
    # the budget plan's own wording: its break-even threshold, total-outcome basis,
    # robustness summary, why break-even or a robustness variant is absent
    "basis",
    "total_outcome_basis",
    "summary",
    "break_even_note",
    "infeasible",
}
# Dict fields whose keys are names and whose values are strings of their own kind.
KEYED = {"library_versions", "input_hashes", "sampler"}

# Report only, in its fixed text: the report's own run (its id and time, from this run, not
# from an output) and the software that drew it (matplotlib, Jinja2, this package). Only
# these shapes: an ISO date or time, a dotted version of three parts or more (a decimal
# number never has two dots), a 16- or 64-character hex id. A year in the title (<h1>, the
# user's text) is dropped by ``visible_text``.
REPORT_EXEMPT = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?(?:[+-]\d{2}:\d{2}|Z)?)?"
    r"|(?<![\w.])\d+(?:\.\d+){2,}(?!\w|\.\d)"
    r"|\b[0-9a-f]{16}\b|\b[0-9a-f]{64}\b"
)
YEAR = re.compile(r"\b(?:19|20)\d{2}\b")


def recorded_levels(root: Path) -> set[int]:
    """Interval levels that some field of an output JSON names (hdi_90 -> 90)."""
    levels: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                found = LEVEL_KEY.search(str(key))
                if found:
                    levels.add(int(found.group(1) or found.group(2)))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((root / "analysis").glob("*.json")):
        walk(json.loads(path.read_text()))
    return levels


def level_labels(root: Path) -> re.Pattern[str]:
    levels = sorted(recorded_levels(root))
    if not levels:
        return re.compile(r"(?!)")
    alternatives = "|".join(str(level) for level in levels)
    return re.compile(rf"(?<![\d.])(?:{alternatives})% (?={LABEL_WORDS})")


def visible_text(html_text: str) -> str:
    """What a reader of the report sees as text: the body without tags, charts or comments.
    Charts are left out: their tick labels are matplotlib's choice of scale, not figures
    quoted from an output (the numbers a chart draws are in the tables beside it)."""
    body = html_text.split("</head>", 1)[-1]
    body = re.sub(r"<svg\b.*?</svg>", " ", body, flags=re.S)
    body = re.sub(r"<!--.*?-->", " ", body, flags=re.S)
    body = re.sub(r"<h1>.*?</h1>", lambda m: YEAR.sub(" ", m.group()), body, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return html.unescape(body)


class Resolver:
    """Reads a fact's field from the workspace itself."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, Any] = {}
        self.runs = {
            r["run_id"]: r for r in RunRegistry(Workspace.open(root)).list_runs(limit=10_000)
        }

    def __call__(self, fact: dict[str, Any]) -> Any:
        file, path = fact["file"], list(fact["path"])
        if file == trace.REGISTRY:
            return self.runs[path[0]][path[1]]
        if path == [trace.SHA256]:
            return hashlib.sha256((self.root / file).read_bytes()).hexdigest()
        if file.endswith(".json"):
            if file not in self.cache:
                self.cache[file] = json.loads((self.root / file).read_text())
            node: Any = self.cache[file]
        else:  # a rule's constant in the code, 'module' + [name]
            node = importlib.import_module(file)
            node = getattr(node, path.pop(0))
        if fact["relation"] == "key":
            *parent, key = path
            for step in parent:
                node = node[step]
            if key not in node:
                raise KeyError(key)
            return key
        for step in path:
            node = node[step]
        return node


def _decimals(token: str) -> int:
    mantissa, _, exponent = token.lower().partition("e")
    return len(mantissa.partition(".")[2]) - int(exponent or 0)


def _number_ok(token: str, percent: str, value: Any, fact: dict[str, Any]) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return f"{token}{percent}: field {fact['path']} is not a number ({value!r})"
    scale = float(fact["scale"])
    if (percent == "%") != (scale == 100.0):
        return f"{token}{percent}: printed {'with' if percent else 'without'} % for scale {scale}"
    shown = float(token.replace(",", ""))
    x = float(value) * scale
    relation = fact["relation"]
    if relation == "=":
        ok = shown == x
    elif relation == "<":
        ok = x < shown
    elif relation == ">":
        ok = x > shown
    else:
        ok = abs(shown - x) <= 0.5 * 10.0 ** -_decimals(token) * (1 + 1e-9)
    if not ok:
        return f"{token}{percent} does not read {fact['file']} {fact['path']} = {value!r}"
    return None


def _normal(text: str) -> str:
    """Undo what the string filters may do to a quoted field (md escapes, replace('_', ' '),
    upper), so the printed text can be compared with the field's own."""
    return text.replace("\\", "").replace("_", " ").lower()


def _field(fact: dict[str, Any]) -> str:
    """The name of the field a string fact was read from ('message', 'run_id', ...)."""
    path = [p for p in fact["path"] if isinstance(p, str)]
    if fact["file"] == trace.REGISTRY:
        return str(fact["path"][-1])
    if len(path) >= 2 and path[-2] in KEYED:
        return path[-2]
    if fact["relation"] == "key":
        return path[-2] if len(path) >= 2 else ""
    return path[-1] if path else ""


def _numeric_leaves(node: Any) -> list[float]:
    if isinstance(node, bool):
        return []
    if isinstance(node, int | float):
        return [float(node)]
    if isinstance(node, dict):
        return [v for value in node.values() for v in _numeric_leaves(value)]
    if isinstance(node, list):
        return [v for value in node for v in _numeric_leaves(value)]
    return []


def _text_problems(record: dict[str, Any], values: list[Any], resolve: Resolver) -> list[str]:
    """A quoted string must be printed verbatim: with every field's text taken out of the
    record's, no digit may remain (the old check let a digit through when it occurred
    anywhere in the field). A number inside a string field must match a numeric field
    beside it, unless the field is an identifier or the producing step's prose (see
    IDENTIFIER_FIELDS, PROSE_FIELDS)."""
    problems = []
    rest = _normal(record["text"])
    for value in sorted((str(v) for v in values), key=len, reverse=True):
        rest = rest.replace(_normal(value), " ")
    if DIGITS.search(rest):
        problems.append(f"{record['text']!r}: digits {DIGITS.findall(rest)} in none of its fields")
    for fact, value in zip(record["facts"], values, strict=True):
        field = _field(fact)
        if field in IDENTIFIER_FIELDS or field in PROSE_FIELDS:
            continue
        tokens = NUMBER.findall(str(value))
        if not tokens:
            continue
        parent = {**fact, "path": list(fact["path"][:-1]), "relation": "~"}
        try:
            beside = _numeric_leaves(resolve(parent))
        except (KeyError, IndexError, TypeError, AttributeError, OSError):
            beside = []
        for token, percent in tokens:
            shown = float(token.replace(",", "")) / (100.0 if percent else 1.0)
            tolerance = 0.5 * 10.0 ** -_decimals(token) / (100.0 if percent else 1.0)
            if not any(abs(shown - v) <= tolerance * (1 + 1e-9) for v in beside):
                problems.append(
                    f"{token}{percent} in string field {field!r} ({fact['path']}) matches no "
                    "numeric field beside it"
                )
    return problems


def _check_record(record: dict[str, Any], resolve: Resolver, level: re.Pattern[str]) -> list[str]:
    problems = []
    values = []
    for fact in record["facts"]:
        try:
            value = resolve(fact)
        except (KeyError, IndexError, TypeError, AttributeError, OSError) as exc:
            problems.append(f"{fact['file']} {fact['path']}: no such field ({exc!r})")
            value = None
        recorded = fact["value"]
        same = (
            math.isclose(float(value), float(recorded), rel_tol=1e-12, abs_tol=0)
            if isinstance(value, int | float) and isinstance(recorded, int | float)
            else str(value) == str(recorded)
        )
        if value is not None and not same and fact["file"] != trace.REGISTRY:
            problems.append(f"{fact['file']} {fact['path']}: recorded {recorded!r}, file {value!r}")
        values.append(value)
    text = level.sub(" ", record["text"])
    numeric = [
        (f, v)
        for f, v in zip(record["facts"], values, strict=True)
        if f["relation"] not in ("text", "key")
    ]
    strings = [
        str(v)
        for f, v in zip(record["facts"], values, strict=True)
        if f["relation"] in ("text", "key")
    ]
    if numeric and strings:
        return [*problems, f"record mixes numbers and text: {record['text']!r}"]
    if strings:
        return problems + _text_problems(record, values, resolve)
    tokens = NUMBER.findall(text)
    if len(tokens) != len(numeric) or DIGITS.search(NUMBER.sub(" ", text)):
        return [*problems, f"{record['text']!r}: {len(tokens)} numbers for {len(numeric)} fields"]
    for (token, percent), (fact, value) in zip(tokens, numeric, strict=True):
        problem = _number_ok(token, percent, value, fact)
        if problem:
            problems.append(problem)
    return problems


def _untraced(
    fixed: str, level: re.Pattern[str], exempt: re.Pattern[str] | None = None
) -> list[str]:
    """Numbers in the templates' own text: a number typed in, or computed in the template."""
    fixed = level.sub(" ", fixed)
    if exempt is not None:
        fixed = exempt.sub(" ", fixed)
    return [
        f"untraced number {m.group()!r} in …{fixed[max(0, m.start() - 40) : m.end() + 20]!r}…"
        for m in NUMBER.finditer(fixed)
    ]


def number_problems(
    text: str,
    records: list[dict[str, Any]],
    root: Path,
    exempt: re.Pattern[str] | None = None,
) -> list[str]:
    resolve = Resolver(root)
    level = level_labels(root)
    problems: list[str] = []
    pos = 0
    for record in records:
        at = text.find(record["text"], pos)
        if at < 0:
            problems.append(f"recorded value not printed where expected: {record['text']!r}")
            continue
        problems += _untraced(text[pos:at], level, exempt)
        problems += _check_record(record, resolve, level)
        pos = at + len(record["text"])
    problems += _untraced(text[pos:], level, exempt)
    return problems


def faq_number_problems(markdown: str, records: list[dict[str, Any]], root: Path) -> list[str]:
    return number_problems(markdown, records, root)


def report_number_problems(html_text: str, records: list[dict[str, Any]], root: Path) -> list[str]:
    """The report's visible text against its sources; only the report's own run and software
    versions are exempt (REPORT_EXEMPT)."""
    return number_problems(visible_text(html_text), records, root, REPORT_EXEMPT)


def count_numbers(text: str) -> int:
    return len(NUMBER.findall(ANY_LEVEL.sub(" ", text)))
