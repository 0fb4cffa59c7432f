"""Words for what is wrong: field paths in YAML spelling and pydantic errors as sentences.

Owns: rendering and parsing field paths (`spec.servers[0].tls.mode`,
`metadata.labels[app.kubernetes.io/name]`), describing a value ("string \"abc\""), and
turning a pydantic `ValidationError` into (path, message, hint) with did-you-mean hints
drawn from the model itself. Must not know: files, lines, YAML, Istio rules.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from sailmesh.resources.names import did_you_mean

Path = tuple[str | int, ...]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TOKEN = re.compile(r"\[([^\]]*)\]|\.?([^.\[\]]+)")
# Parts of a pydantic `loc` that name a union member or a validator, not a field.
_LOC_TAG = re.compile(
    r"(int|str|float|bool|bytes|none|\[key\]|(list|dict|set|tuple|literal|function|tagged-union"
    r"|nullable|constrained|is-instance|json-or-python|chain|lax-or-strict)\b.*)"
)
# pydantic error type prefix → the type the user should have written.
_EXPECTED = {
    "int": "integer",
    "string": "string",
    "bool": "boolean",
    "float": "number",
    "dict": "object",
    "model": "object",
    "model_attributes": "object",
    "list": "list",
    "tuple": "list",
    "set": "list",
}
_TYPE_ERROR = re.compile(
    r"(int|string|bool|float|dict|model|model_attributes|list|tuple|set)_(type|parsing|from_float)$"
)


def render_path(path: Iterable[str | int]) -> str:
    """("spec", "servers", 0, "tls") → `spec.servers[0].tls`; odd keys go in brackets."""
    out = ""
    for part in path:
        if isinstance(part, int) or not _IDENT.fullmatch(part):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def parse_path(text: str) -> Path:
    """The inverse of `render_path`; `[3]` becomes the list index 3."""
    parts: list[str | int] = []
    for bracketed, plain in _TOKEN.findall(text):
        if plain:
            parts.append(plain)
        else:
            parts.append(int(bracketed) if bracketed.isdigit() else bracketed)
    return tuple(parts)


def got(value: Any) -> str:
    """How a value reads in a message: `string "abc"`, `integer 5`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f'string "{shown}"'
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def validation_errors(
    exc: ValidationError, model: type[BaseModel], data: Any
) -> list[tuple[Path, str, str | None]]:
    """One (path, message, hint) per field; a union's several type errors become one."""
    grouped: dict[Path, list[dict[str, Any]]] = {}
    for detail in exc.errors(include_url=False):
        grouped.setdefault(_path_from_loc(data, detail["loc"]), []).append(dict(detail))
    out: list[tuple[Path, str, str | None]] = []
    for path, errors in grouped.items():
        expected = [_EXPECTED[m.group(1)] for e in errors if (m := _TYPE_ERROR.match(e["type"]))]
        others = [e for e in errors if not _TYPE_ERROR.match(e["type"])]
        if expected:
            wanted = " or ".join(dict.fromkeys(expected))
            out.append((path, f"expected {wanted}, got {got(errors[0]['input'])}", None))
        seen: set[str] = set()
        for err in others:
            message, hint = _sentence(err, path, model)
            if message not in seen:
                seen.add(message)
                out.append((path, message, hint))
    return out


def _path_from_loc(data: Any, loc: tuple[str | int, ...]) -> Path:
    """Follow pydantic's loc through the input, so dict keys and list indices are told apart."""
    path: list[str | int] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict):
            key = next((k for k in cur if k == part or str(k) == str(part)), None)
            if key is not None:
                path.append(str(key))
                cur = cur[key]
            elif not (isinstance(part, str) and _LOC_TAG.fullmatch(part)):
                path.append(str(part))  # a missing or unknown field
                cur = None
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            path.append(part)
            cur = cur[part]
        # anything else names a union member or validator: not part of the YAML path
    return tuple(path)


def _sentence(err: dict[str, Any], path: Path, model: type[BaseModel]) -> tuple[str, str | None]:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    last = path[-1] if path else ""
    if kind == "missing":
        return f'missing required field "{last}"', None
    if kind == "extra_forbidden":
        options = fields_at(model, path[:-1])
        guess = did_you_mean(str(last), options)
        if guess:
            return f'unknown field "{last}"', f'did you mean "{guess}"?'
        return f'unknown field "{last}"', ("known fields: " + ", ".join(options)) if options else None
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        shown = f'"{value}"' if isinstance(value, str) else got(value)
        guess = did_you_mean(str(value), allowed) if isinstance(value, str) else None
        if guess:
            return f"unknown value {shown}", f'did you mean "{guess}"?'
        return f"unknown value {shown}", "must be one of: " + ", ".join(allowed)
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return ("must not be empty" if n == 1 else f"must have at least {n} items"), None
    bounds = {
        "greater_than_equal": ">=",
        "less_than_equal": "<=",
        "greater_than": ">",
        "less_than": "<",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"invalid value {got(value)}: must be {bounds[kind]} {limit}", None
    message = str(err.get("msg", "invalid value"))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, "), None


def fields_at(model: type[BaseModel], path: Path) -> list[str]:
    """The YAML names of the fields accepted at `path` inside `model` ([] when not a model)."""
    tp: Any = model
    for part in path:
        tp = _step(tp, part)
        if tp is None:
            return []
    target = _as_model(tp)
    if target is None:
        return []
    return [info.alias or name for name, info in target.model_fields.items()]


def _step(tp: Any, part: str | int) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _step(args[0], part)
    if origin in (Union, types.UnionType):
        for arg in args:
            if arg is not type(None) and (found := _step(arg, part)) is not None:
                return found
        return None
    if isinstance(part, int) and origin in (list, tuple, set):
        return args[0] if args else Any
    if origin is dict:
        return args[1] if len(args) == 2 else Any
    target = _as_model(tp)
    if target is not None and isinstance(part, str):
        for name, info in target.model_fields.items():
            if part in (info.alias, name):
                return info.annotation
    return None


def _as_model(tp: Any) -> type[BaseModel] | None:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (Union, types.UnionType):
        models = [a for a in typing.get_args(tp) if _as_model(a) is not None]
        return _as_model(models[0]) if models else None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    return None


__all__ = ["fields_at", "got", "parse_path", "render_path", "validation_errors"]
