"""Strict check of the FAQ's numbers: each one against the one field it was read from.

draft_faq writes beside each FAQ the values it printed, in print order, each with the file and
JSON path it came from (``faq_<audience>.sources.json``). This check walks the Markdown with
that list: every record must appear, in order; every number inside a record must be the value
of *its* field (re-read here from the file, not taken from the record), rounded as printed or
bounded as printed ('< 0.0001'); and the text between records (the templates' fixed wording)
may hold no digit at all, except the interval labels '90% HDI' and the like.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
from pathlib import Path
from typing import Any

from attribution_analysis.registry import RunRegistry
from attribution_analysis.report import trace
from attribution_analysis.workspace import Workspace

# Interval labels: the level of an interval, part of its name (the field hdi_90), not a value.
LEVEL = re.compile(r"\b(?:90|95)% (?=HDI|interval|highest-density|posterior predictive|bootstrap)")
NUMBER = re.compile(r"(?<![\w.])([-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?)(%?)(?![\w])")
DIGITS = re.compile(r"\d+")


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


def _check_record(record: dict[str, Any], resolve: Resolver) -> list[str]:
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
    text = LEVEL.sub(" ", record["text"])
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
        for digits in DIGITS.findall(text):
            if not any(digits in s for s in strings):
                problems.append(f"{digits} in {record['text']!r} is in none of its fields")
        return problems
    tokens = NUMBER.findall(text)
    if len(tokens) != len(numeric) or DIGITS.search(NUMBER.sub(" ", text)):
        return [*problems, f"{record['text']!r}: {len(tokens)} numbers for {len(numeric)} fields"]
    for (token, percent), (fact, value) in zip(tokens, numeric, strict=True):
        problem = _number_ok(token, percent, value, fact)
        if problem:
            problems.append(problem)
    return problems


def _untraced(fixed: str) -> list[str]:
    """Digits in the templates' own text: a number typed in, or computed in the template."""
    fixed = LEVEL.sub(" ", fixed)
    return [
        f"untraced number {m.group()!r} in …{fixed[max(0, m.start() - 40) : m.end() + 20]!r}…"
        for m in NUMBER.finditer(fixed)
    ]


def faq_number_problems(markdown: str, records: list[dict[str, Any]], root: Path) -> list[str]:
    resolve = Resolver(root)
    problems: list[str] = []
    pos = 0
    for record in records:
        at = markdown.find(record["text"], pos)
        if at < 0:
            problems.append(f"recorded value not printed where expected: {record['text']!r}")
            continue
        problems += _untraced(markdown[pos:at])
        problems += _check_record(record, resolve)
        pos = at + len(record["text"])
    problems += _untraced(markdown[pos:])
    return problems


def count_numbers(markdown: str) -> int:
    return len(NUMBER.findall(LEVEL.sub(" ", markdown)))
