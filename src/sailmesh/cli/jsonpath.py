"""kubectl's JSONPath templates (`-o jsonpath=…`, `-o custom-columns=…`), on plain JSON data.

Owns: parsing a template into nodes and evaluating it against dicts/lists as kubectl does.
Must not know: resources, the mesh, click. Pure: text and data in, text out.

kubectl facts reproduced here (k8s.io/client-go/util/jsonpath, kubectl's JSONPath page):
1. A template is plain text with `{…}` actions. An action holds a path (`.a.b`, `$.a`, `@`),
   a quoted text (`{"\\n"}`), `range PATH` … `end`, or several of these side by side.
2. Path steps: `.name`, `['name']` (also `['a','b']` unions), `..name` (recursive
   descent: the value itself and every value below it, map keys in sorted order), `*`/`[*]`,
   `[i]`, `[i,j]`, `[start:end:step]` (negative indices count from the end and do not wrap),
   `[?(@.x==“v”)]` filters with == != < > <= >= and bare existence `?(@.x)`.
   `\\.` in a name escapes the dot (`.metadata.annotations.kubernetes\\.io/name`).
3. Missing keys print nothing (kubectl's `--allow-missing-template-keys` defaults to true).
4. Each action prints its results separated by one space; maps and lists print as compact
   JSON with sorted keys (Go's json.Marshal), strings as they are, booleans as true/false.
5. `range` iterates the elements of each list its path yields; inside, paths start at the
   current element.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class JSONPathError(ValueError):
    """A template kubectl would refuse; the message reads like kubectl's."""


# --- nodes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Path:
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Range:
    path: Path
    body: tuple[Node, ...]


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Union:
    # `['a.b', 'c']`: each quoted key is a path of its own, evaluated over all inputs in turn.
    branches: tuple[Path, ...]


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Recursive:
    pass


@dataclass(frozen=True)
class Index:
    # Each entry is an index (int) or a slice (start, end, step) with None for "absent".
    picks: tuple[int | tuple[int | None, int | None, int | None], ...]


@dataclass(frozen=True)
class Filter:
    left: Path
    op: str | None  # None: existence test
    right: Path | Any


Step = Field | Union | Wildcard | Recursive | Index | Filter
Node = Text | Path | Range


# --- parsing -------------------------------------------------------------------------------


def parse(template: str) -> tuple[Node, ...]:
    nodes, _rest = _parse_nodes(_actions(template), 0, top=True)
    return tuple(nodes)


def _actions(template: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and ("action", s) parts, honouring quotes inside braces."""
    parts: list[tuple[str, str]] = []
    i, n = 0, len(template)
    while i < n:
        start = template.find("{", i)
        if start < 0:
            parts.append(("text", template[i:]))
            break
        if start > i:
            parts.append(("text", template[i:start]))
        j, depth, quote = start + 1, 1, ""
        while j < n:
            ch = template[j]
            if quote:
                if ch == "\\":
                    j += 1
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= n:
            raise JSONPathError(f"unclosed action in template {template!r}")
        parts.extend(("action", a) for a in _split_action(template[start + 1 : j]))
        i = j + 1
    return parts


def _split_action(body: str) -> list[str]:
    """`{range .items[*]}` is one action; `{.a}` one; a quoted text is its own action."""
    body = body.strip()
    if body.startswith('"'):
        end = _closing_quote(body, 0)
        rest = body[end + 1 :].strip()
        return [body[: end + 1], *(_split_action(rest) if rest else [])]
    return [body]


def _closing_quote(s: str, start: int) -> int:
    q, j = s[start], start + 1
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == q:
            return j
        j += 1
    raise JSONPathError(f"unterminated quoted string in {s!r}")


def _parse_nodes(parts: list[tuple[str, str]], i: int, *, top: bool) -> tuple[list[Node], int]:
    nodes: list[Node] = []
    while i < len(parts):
        kind, value = parts[i]
        i += 1
        if kind == "text":
            nodes.append(Text(value))
        elif value == "end":
            if top:
                raise JSONPathError("not in range, nothing to end")
            return nodes, i
        elif value.startswith("range ") or value == "range":
            body, i = _parse_nodes(parts, i, top=False)
            nodes.append(Range(parse_path(value[len("range"):].strip()), tuple(body)))
        elif value.startswith('"'):
            nodes.append(Text(_unquote(value)))
        elif value:
            nodes.append(parse_path(value))
    if not top:
        raise JSONPathError("unclosed action: range without end")
    return nodes, i


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _unquote(quoted: str) -> str:
    inner, out, i = quoted[1:-1], [], 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner):
            out.append(_ESCAPES.get(inner[i + 1], inner[i + 1]))
            i += 2
        else:
            out.append(inner[i])
            i += 1
    return "".join(out)


_NAME_END = set(".[]()=!<>, \t")


def parse_path(text: str) -> Path:
    p = _PathParser(text)
    path = p.path()
    if p.i != len(text):
        raise JSONPathError(f"unrecognized character in action: {text[p.i:]!r}")
    return path


class _PathParser:
    def __init__(self, text: str) -> None:
        self.s, self.i = text, 0

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def path(self, stop: str = "") -> Path:
        steps: list[Step] = []
        if self.peek() in ("$", "@"):
            self.i += 1
        while self.i < len(self.s) and self.peek() not in stop:
            ch = self.peek()
            if ch == "." and self.peek(1) == ".":
                self.i += 2
                steps.append(Recursive())
                if self.peek() not in ("[", ""):
                    steps.append(self._dotted())
            elif ch == ".":
                self.i += 1
                if self.peek() in ("", "[") or self.peek() in stop:
                    continue  # `{.}` and `.[0]`: the current object
                steps.append(self._dotted())
            elif ch == "[":
                steps.extend(self._bracket())
            elif ch in " \t":
                break
            else:
                steps.append(self._dotted())
        return Path(tuple(steps))

    def _dotted(self) -> Step:
        if self.peek() == "*":
            self.i += 1
            return Wildcard()
        out = []
        while self.i < len(self.s) and self.s[self.i] not in _NAME_END:
            if self.s[self.i] == "\\" and self.i + 1 < len(self.s):
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            out.append(self.s[self.i])
            self.i += 1
        if not out:
            raise JSONPathError(f"invalid field name at {self.s[self.i:]!r} in {self.s!r}")
        return Field("".join(out))

    def _bracket(self) -> list[Step]:
        close = self._matching_bracket()
        body = self.s[self.i + 1 : close].strip()
        self.i = close + 1
        if body == "*":
            return [Wildcard()]
        if body.startswith("?(") and body.endswith(")"):
            return [_parse_filter(body[2:-1])]
        if body[:1] in ("'", '"'):
            # kubectl reads a quoted key as a path (`['a.b']` is `.a.b`; `\\.` keeps a dot).
            keys = [parse_path("." + q.strip()[1:-1]) for q in _split_top(body, ",")]
            return list(keys[0].steps) if len(keys) == 1 else [Union(tuple(keys))]
        picks: list[int | tuple[int | None, int | None, int | None]] = []
        for part in _split_top(body, ","):
            part = part.strip()
            try:
                if ":" in part:
                    bits = [int(b) if b.strip() else None for b in part.split(":")]
                    if len(bits) > 3:
                        raise ValueError(part)
                    bits += [None] * (3 - len(bits))
                    picks.append((bits[0], bits[1], bits[2]))
                else:
                    picks.append(int(part))
            except ValueError:
                raise JSONPathError(f"invalid array index {part!r} in {self.s!r}") from None
        return [Index(tuple(picks))]

    def _matching_bracket(self) -> int:
        depth, j, quote = 0, self.i, ""
        while j < len(self.s):
            ch = self.s[j]
            if quote:
                if ch == "\\":
                    j += 1
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    return j
            j += 1
        raise JSONPathError(f"unterminated array in {self.s!r}")


def _split_top(text: str, sep: str) -> list[str]:
    out, cur, quote = [], [], ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == sep:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return out


_FILTER = re.compile(r"^\s*(?P<left>.+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<right>.+?)\s*$")


def _parse_filter(body: str) -> Filter:
    m = _FILTER.match(body) if not _only_path(body) else None
    if m is None:
        return Filter(parse_path(body.strip()), None, None)
    return Filter(parse_path(m["left"]), m["op"], _operand(m["right"]))


def _only_path(body: str) -> bool:
    return not any(op in body for op in ("==", "!=", "<", ">"))


def _operand(text: str) -> Path | Any:
    if text[:1] in ("'", '"'):
        return _unquote(text)
    if text[:1] in ("@", "$", "."):
        return parse_path(text)
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text in ("true", "false"):
        return text == "true"
    raise JSONPathError(f"unrecognized filter operand {text!r}")


# --- evaluation ----------------------------------------------------------------------------


def evaluate(path: Path, data: Any) -> list[Any]:
    values = [data]
    for step in path.steps:
        values = list(_apply(step, values))
    return values


def _apply(step: Step, values: list[Any]) -> Iterator[Any]:
    if isinstance(step, Union):
        for branch in step.branches:
            for v in values:
                yield from evaluate(branch, v)
        return
    for v in values:
        match step:
            case Field(name):
                if isinstance(v, dict) and name in v:
                    yield v[name]
            case Wildcard():
                if isinstance(v, dict):
                    yield from (v[k] for k in sorted(v))
                elif isinstance(v, list):
                    yield from v
            case Recursive():
                yield from _descend(v)
            case Index(picks):
                if isinstance(v, list):
                    yield from _pick(v, picks)
            case Filter():
                if isinstance(v, list):
                    yield from (item for item in v if _keep(step, item))


def _descend(v: Any) -> Iterator[Any]:
    children = ([v[k] for k in sorted(v)] if isinstance(v, dict)
                else v if isinstance(v, list) else [])
    if children:
        yield v
        for c in children:
            yield from _descend(c)


def _pick(items: list[Any], picks: tuple[int | tuple[int | None, int | None, int | None], ...]
          ) -> Iterator[Any]:
    n = len(items)
    for p in picks:
        if isinstance(p, int):
            i = p + n if p < 0 else p
            if not 0 <= i < n:
                raise JSONPathError(f"array index out of bounds: index {p}, length {n}")
            yield items[i]
            continue
        start, end, step = p
        start = 0 if start is None else (start + n if start < 0 else start)
        end = n if end is None else (end + n if end < 0 else end)
        yield from items[max(start, 0) : min(end, n) : step or 1]


def _keep(f: Filter, item: Any) -> bool:
    left = evaluate(f.left, item)
    if f.op is None:
        return bool(left)
    right = evaluate(f.right, item) if isinstance(f.right, Path) else [f.right]
    if not left or not right:
        return False
    a, b = left[0], right[0]
    try:
        match f.op:
            case "==":
                return bool(a == b)
            case "!=":
                return bool(a != b)
            case "<":
                return bool(a < b)
            case ">":
                return bool(a > b)
            case "<=":
                return bool(a <= b)
            case ">=":
                return bool(a >= b)
    except TypeError:
        return False
    return False


def text_of(value: Any) -> str:
    """One value as kubectl prints it (rule 4)."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def go_text(value: Any) -> str:
    """A value as Go's `%v` prints it, which kubectl's custom-columns use: `[a b]`,
    `map[k:v]`, `<nil>`."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_text(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return text_of(value)


def render(nodes: tuple[Node, ...], data: Any) -> str:
    out: list[str] = []
    for node in nodes:
        match node:
            case Text(value):
                out.append(value)
            case Path():
                out.append(" ".join(text_of(v) for v in evaluate(node, data)))
            case Range(path, body):
                for value in evaluate(path, data):
                    for item in value if isinstance(value, list) else [value]:
                        out.append(render(body, item))
    return "".join(out)


def execute(template: str, data: Any) -> str:
    return render(parse(template), data)


def relaxed(expression: str) -> str:
    """kubectl's custom-columns relaxation: `.a.b`, `a.b` and `{.a.b}` are one path."""
    e = expression.strip()
    if e.startswith("{") and e.endswith("}"):
        e = e[1:-1]
    if e and not e.startswith((".", "$", "[")):
        e = "." + e
    return "{" + e + "}"
