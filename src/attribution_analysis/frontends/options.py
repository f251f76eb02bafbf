"""Command-line options from a step's parameters model: one option per field, no restated
defaults.

The rules, the same for every step (the CLI subcommand and the script share them):

- a field ``total_budget`` is the option ``--total-budget``; its help is the field's
  description, followed by its choices and the model's default (read from the model);
- an option left out is not passed at all, so the model applies its own default;
- a bool field is a flag pair ``--figures/--no-figures``;
- a list, dict or nested-model field takes a JSON value (``--covariates '["objective"]'``),
  or ``@FILE`` to read that JSON from a file;
- a field that may be null takes ``none`` (or ``null``) for null;
- every other value (numbers, dates, Literal choices) is passed as typed and validated by
  the model itself, so a refused value is the model's own message, under its flag.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from attribution_analysis.errors import ParameterError, arg

Kind = Literal["flag", "json", "value"]
NULL_WORDS = ("none", "null")
MAX_DEFAULT_SHOWN = 60  # characters; a longer default (a whole nested model) is not shown


def flag(name: str) -> str:
    """The command-line spelling of a parameter: ``total_budget`` -> ``--total-budget``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class FieldOption:
    """How one field of a parameters model is typed on the command line."""

    name: str  # the field
    flag: str  # --kebab-case
    kind: Kind
    help: str
    choices: tuple[str, ...] = ()
    nullable: bool = False  # 'none' gives null
    required: bool = False
    default: str | None = None  # the model's default as shown in help (None: not shown)
    metavar: str = "TEXT"


def _strip(annotation: Any) -> tuple[Any, bool]:
    """The annotation without Annotated[...] and without ``| None``; whether None was in."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(get_args(annotation))
        if len(members) == 1:
            inner, _ = _strip(members[0])
            return inner, nullable
        return Union[tuple(members)], nullable  # noqa: UP007 (a runtime union of members)
    return annotation, False


def _structured(annotation: Any) -> bool:
    """Lists, dicts, tuples, sets and models (or unions of them) are typed as JSON."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_structured(_strip(a)[0]) for a in get_args(annotation))
    if origin in (list, dict, tuple, set, frozenset):
        return True
    if annotation in (list, dict, tuple, set, frozenset):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


METAVARS: dict[Any, str] = {
    int: "INTEGER",
    float: "NUMBER",
    dt.date: "YYYY-MM-DD",
    dt.datetime: "DATETIME",
}


def _choices(annotation: Any) -> tuple[str, ...]:
    if get_origin(annotation) is Literal:
        return tuple(str(v) for v in get_args(annotation))
    return ()


def _default_text(info: FieldInfo) -> str | None:
    if info.default is not PydanticUndefined:
        value = info.default
    elif info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        return None
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if value is None:
        text = "none"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (list, dict, tuple)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text if len(text) <= MAX_DEFAULT_SHOWN else None


def field_options(model: type[BaseModel]) -> list[FieldOption]:
    """One option per field of ``model``, in declaration order."""
    options = []
    for name, info in model.model_fields.items():
        inner, nullable = _strip(info.annotation)
        if inner is bool:
            kind: Kind = "flag"
        elif _structured(inner):
            kind = "json"
        else:
            kind = "value"
        options.append(
            FieldOption(
                name=name,
                flag=flag(name),
                kind=kind,
                help=(info.description or "").strip(),
                choices=_choices(inner),
                nullable=nullable,
                required=info.is_required(),
                default=_default_text(info),
                metavar=METAVARS.get(inner, "TEXT"),
            )
        )
    return options


def _help(option: FieldOption) -> str:
    parts = [option.help] if option.help else []
    if option.kind == "json":
        parts.append("A JSON value, or @FILE to read it from a file.")
    if option.nullable and option.kind != "flag" and option.default not in (None, "none"):
        parts.append("'none' for null.")
    if option.required:
        parts.append("(required)")
    elif option.default is not None:
        parts.append(f"(default: {option.default})")
    return " ".join(parts)


def _metavar(option: FieldOption) -> str:
    if option.choices:
        return "[" + "|".join(option.choices) + "]"
    if option.kind == "json":
        return "JSON"
    return option.metavar


def parameters(model: type[BaseModel]) -> list[inspect.Parameter]:
    """The command-line parameters of ``model``'s fields, as keyword parameters typer reads
    (``Annotated[..., typer.Option(...)]``). Nothing is converted or defaulted here (every
    option defaults to None, i.e. left out): the model does both, so every front end shares
    the model's rules and defaults."""
    out = []
    for option in field_options(model):
        if option.kind == "flag":
            info = typer.Option(
                f"{option.flag}/--no-{option.flag[2:]}", help=_help(option), show_default=False
            )
            annotation: Any = Annotated[bool | None, info]
        else:
            info = typer.Option(
                option.flag, help=_help(option), metavar=_metavar(option), show_default=False
            )
            annotation = Annotated[str | None, info]
        out.append(
            inspect.Parameter(
                option.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    return out


def _json_value(option: FieldOption, text: str) -> Any:
    source = text
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ParameterError(
                f"could not read the file given to {arg(option.name)} ({path}): "
                f"{exc.strerror or exc}.",
                fix="give an existing JSON file after @, or the JSON value itself.",
                parameter=option.name,
            ) from None
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise ParameterError(
            f"{arg(option.name)} is not valid JSON ({exc.msg}, at character {exc.pos}).",
            fix="pass a JSON value (see --help for its shape), or @FILE holding one.",
            parameter=option.name,
        ) from None


def given_values(model: type[BaseModel], typed: dict[str, Any]) -> dict[str, Any]:
    """The fields the caller typed (``typed``: option values, None when left out), decoded
    (JSON, 'none'); those left out are absent, so the model's defaults apply."""
    values: dict[str, Any] = {}
    for option in field_options(model):
        value = typed.get(option.name)
        if value is None:
            continue
        if option.kind != "flag" and option.nullable and value.strip().lower() in NULL_WORDS:
            values[option.name] = None
        elif option.kind == "json":
            values[option.name] = _json_value(option, value)
        else:
            values[option.name] = value
    return values


def parse_params[M: BaseModel](model: type[M], typed: dict[str, Any]) -> M:
    """The step's parameters from the command line, validated by the model (its defaults
    for what was left out; a ValidationError names the field, worded per front end)."""
    return model.model_validate(given_values(model, typed))
