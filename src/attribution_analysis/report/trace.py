"""Where each number in the FAQ comes from.

The FAQ templates read the outputs through *traced* views: every number or string they get
knows the file and the JSON path it was read from (``channels[2].roas.hdi_90[0]`` in
``analysis/mmm_channel_contributions.json``). The formatting filters keep that knowledge, and
the environment's ``finalize`` hook records every traced value as it is printed:

    {"text": "0.0409 (90% HDI < 0.0001 to 0.0828)",
     "facts": [{"shown": "0.0409", "file": "...", "path": ["channels", 1, "roas", "mean"],
                "value": 0.04090812, "relation": "~", "scale": 1.0}, ...]}

in print order. ``draft_faq`` writes that list beside each FAQ (``faq_<audience>.sources.json``)
and the test checks every number of the Markdown against exactly the field recorded for it.
Anything printed without a trace (a number typed into a template, a value computed in the
template) has no record, and the test finds it out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from attribution_analysis.contracts.common import Metadata
from attribution_analysis.provenance import build_metadata
from attribution_analysis.report import fmt

if TYPE_CHECKING:
    from attribution_analysis.report.inputs import ReportInputs

REGISTRY = "run registry"  # 'file' of the facts read from the workspace run registry
SHA256 = "<sha256>"  # path of a file's own digest (the audit trail's hashes)


@dataclasses.dataclass(frozen=True)
class Src:
    file: str
    path: tuple[Any, ...] = ()

    def child(self, *steps: Any) -> Src:
        return Src(self.file, (*self.path, *steps))


class TracedFloat(float):
    src: Src


class TracedInt(int):
    src: Src


class Text(str):
    """A string that knows its facts: a source string (names, dates, ids), or the output of a
    formatting filter applied to traced numbers."""

    facts: list[dict[str, Any]]


def _text(value: str, facts: list[dict[str, Any]]) -> Text:
    out = Text(value)
    out.facts = facts
    return out


def _source_fact(src: Src, value: Any, relation: str) -> dict[str, Any]:
    return {
        "shown": str(value),
        "file": src.file,
        "path": list(src.path),
        "value": value,
        "relation": relation,
        "scale": 1.0,
    }


class Node:
    """An attribute view of a pydantic model or dataclass whose fields are traced.

    ``remap`` maps attribute names to JSON paths where the object is not its file's JSON
    (the fit manifest's ``method`` is ``result.method`` in analysis/mmm_fit.json)."""

    __slots__ = ("_obj", "_remap", "_src")

    def __init__(self, obj: Any, src: Src, remap: dict[str, tuple[Any, ...]] | None = None):
        self._obj = obj
        self._src = src
        self._remap = remap or {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._obj, name)
        if callable(value) and not isinstance(value, BaseModel | type):
            return value
        steps = self._remap.get(name, (name,))
        return wrap(value, Src(self._src.file, (*self._src.path, *steps)))

    def __getitem__(self, key: Any) -> Any:
        return self.__getattr__(key)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"Node({self._obj!r} @ {self._src})"


def wrap(value: Any, src: Src) -> Any:
    """``value`` with its source attached, recursively (bools and None stay as they are)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Node | TracedFloat | TracedInt | Text):
        return value
    if isinstance(value, float):
        out: Any = TracedFloat(value)
        out.src = src
        return out
    if isinstance(value, int):
        out = TracedInt(value)
        out.src = src
        return out
    if isinstance(value, dt.date | dt.datetime):
        text = value.isoformat()
        return _text(str(value), [_source_fact(src, text, "text")])
    if isinstance(value, str):
        return _text(value, [_source_fact(src, value, "text")])
    if isinstance(value, dict):
        return {
            _text(str(k), [_source_fact(src.child(k), str(k), "key")]): wrap(v, src.child(k))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [wrap(v, src.child(i)) for i, v in enumerate(value)]
    if isinstance(value, BaseModel) or dataclasses.is_dataclass(value):
        return Node(value, src)
    return value


def const(module: str, name: str) -> Any:
    """A rule's constant from the code (a threshold), traced to ``module:name``."""
    return wrap(getattr(importlib.import_module(module), name), Src(module, (name,)))


def facts_of(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, Text):
        return list(value.facts)
    if isinstance(value, TracedFloat | TracedInt):
        return [_source_fact(value.src, value, "=")]
    return []


def _piece_fact(piece: fmt.Piece) -> dict[str, Any] | None:
    value = piece.value
    if not isinstance(value, TracedFloat | TracedInt):
        return None
    return {
        "shown": piece.text,
        "file": value.src.file,
        "path": list(value.src.path),
        "value": float(value) if isinstance(value, float) else int(value),
        "relation": piece.relation,
        "scale": piece.scale,
    }


def formatted(parts: fmt.Parts) -> str:
    """Join a formatter's parts; when its numbers are traced, a :class:`Text` with their
    facts (every number traced, or the text is plain: the test then finds the untraced one)."""
    text = fmt.join(parts)
    pieces = [p for p in parts if isinstance(p, fmt.Piece)]
    facts = [_piece_fact(p) for p in pieces]
    if pieces and all(f is not None for f in facts):
        return _text(text, [f for f in facts if f is not None])
    return text


def keep(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A string filter that keeps the facts of its input (``md``, ``replace``, ``upper``);
    Jinja's context-passing filters keep their marker, so Jinja still passes the context."""
    pass_arg = getattr(fn, "jinja_pass_arg", None)

    def result(value: Any, out: Any) -> Any:
        facts = facts_of(value)
        return _text(str(out), facts) if facts and isinstance(out, str) else out

    if pass_arg is None:

        def filtered(value: Any, *args: Any, **kwargs: Any) -> Any:
            return result(value, fn(value, *args, **kwargs))

        return filtered

    def filtered_with_context(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        return result(value, fn(context, value, *args, **kwargs))

    filtered_with_context.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return filtered_with_context


def traced_join(items: Iterable[Any], separator: str = "", attribute: str | None = None) -> str:
    """Jinja's ``join`` that keeps the facts of the items joined."""
    values = list(items)
    if attribute is not None:
        values = [getattr(v, attribute, None) or v[attribute] for v in values]
    text = separator.join(str(v) for v in values)
    facts = [f for v in values for f in facts_of(v)]
    return _text(text, facts) if facts else text


class Recorder:
    """Collects, in print order, every traced value a template prints."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def finalize(self, value: Any) -> Any:
        facts = facts_of(value)
        if not facts:
            return value
        text = str(int(value)) if isinstance(value, TracedInt) else str(value)
        if isinstance(value, TracedFloat):
            text = repr(float(value))
        self.records.append({"text": text, "facts": facts})
        return text


def page_metadata(step: str, run_id: str, inputs: ReportInputs, params: BaseModel) -> Metadata:
    """Provenance of a rendered page (report or FAQ): this run, the software, and the hashes
    of the outputs it was rendered from, so a page can be matched to the analysis it shows."""
    contributions = inputs.contributions.value if inputs.contributions.ok else None
    return build_metadata(
        step=step,
        input_hashes=inputs.hashes,
        data_range=contributions.metadata.data_range if contributions else None,
        run_id=run_id,
        extra={"params": params.model_dump(mode="json")},
    )


def sources_json(
    *,
    page: dict[str, str],
    params: dict[str, Any],
    records: list[dict[str, Any]],
    metadata: Metadata,
) -> bytes:
    """The ``*.sources.json`` written beside a page: ``page`` names it (``{"report": path}``
    or ``{"markdown": path}``, the keys the number check reads), ``params`` what the wording
    depended on, ``records`` every traced value printed in order, and ``metadata`` the
    provenance every output JSON carries."""
    payload = {
        **page,
        "params": params,
        "records": records,
        "metadata": metadata.model_dump(mode="json"),
    }
    return json.dumps(payload, indent=1, default=str).encode("utf-8")
