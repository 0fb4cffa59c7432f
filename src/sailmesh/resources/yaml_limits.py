"""Limits on what one input may cost before it becomes resources.

Owns: the request and object size limits of the Kubernetes API server, YAML nesting and
alias-expansion limits (as go-yaml, which the API server and kubectl decode with, applies
them), refusing recursive aliases, and refusing text that is not valid Unicode (a lone
surrogate from a `"\\ud800"` escape cannot be stored or sent as UTF-8).
Must not know: kinds, fields, files. Raises `InputLimitError` with the line it is about.

Why here: PyYAML composes nodes recursively (a few thousand levels end in RecursionError),
shares aliased nodes in the composed graph (an alias bomb of a few hundred bytes expands
to millions of objects once constructed and stored) and turns `\\uD800` escapes into lone
surrogates. Each of these is checked on the node graph, before any object is built.
"""

from __future__ import annotations

import yaml

from sailmesh.sources import MAX_REQUEST_BYTES

# etcd's default request limit is 1.5 MiB; one object larger than that cannot be stored.
MAX_OBJECT_BYTES = 1536 * 1024
# go-yaml refuses documents nested deeper than 10000; no Kubernetes or Istio object comes
# anywhere near 100 levels, and PyYAML's recursive composer needs the margin.
MAX_DEPTH = 100
# go-yaml (decode.go allowedAliasRatio): past 1000 decoded values, a document where more
# than 99% of them come from aliases is "excessive aliasing"; the allowed share falls to
# 10% between 400,000 and 4,000,000 values. Small anchors (`<<: *defaults`) stay far under.
_ALIAS_MIN_VALUES = 1000


class InputLimitError(ValueError):
    """The input is refused before decoding; `line` is 1-based (None: the whole input)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def check_request_size(size: int) -> None:
    if size > MAX_REQUEST_BYTES:
        raise InputLimitError(f"Request entity too large: limit is {MAX_REQUEST_BYTES} bytes,"
                              f" got {size}")


class LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit, checked while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise InputLimitError(f"nesting deeper than {MAX_DEPTH} levels", mark.line + 1)
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self._depth -= 1


def check_document(node: yaml.Node) -> None:
    """Refuse recursive aliases, excessive aliasing and invalid Unicode in one document."""
    sizes: dict[int, int] = {}
    written = 0
    # Iterative post-order walk: (node, children done?). `open_` holds the nodes on the
    # current path, so an alias that points at one of them is a cycle.
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    open_: set[int] = set()
    while stack:
        current, done = stack.pop()
        key = id(current)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(current))
            continue
        if key in open_:
            raise InputLimitError("an alias refers to a value that contains it",
                                  current.start_mark.line + 1)
        if key in sizes:
            continue  # an alias to a node already measured
        written += 1
        if isinstance(current, yaml.ScalarNode):
            _check_text(current)
            sizes[key] = 1
            continue
        open_.add(key)
        stack.append((current, True))
        stack.extend((c, False) for c in _children(current))
    expanded = sizes[id(node)]
    if expanded > _ALIAS_MIN_VALUES and (expanded - written) / expanded > _allowed_alias_share(
            expanded):
        raise InputLimitError(f"document contains excessive aliasing: {written} values written"
                              f" expand to {expanded}", node.start_mark.line + 1)


def _allowed_alias_share(values: int) -> float:
    if values <= 400_000:
        return 0.99
    if values >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (values - 400_000) / 3_600_000


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_text(node: yaml.ScalarNode) -> None:
    try:
        node.value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = node.value[exc.start]
        raise InputLimitError(f"invalid Unicode: lone surrogate U+{ord(bad):04X} is not a"
                              " character", node.start_mark.line + 1) from None


def check_json_text(data: object) -> None:
    """The same Unicode rule for JSON input, which has no nodes (and so no lines)."""
    import json

    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputLimitError("invalid Unicode: a lone surrogate is not a character") from None
    except RecursionError:
        raise InputLimitError(f"nesting deeper than {MAX_DEPTH} levels") from None


__all__ = ["MAX_OBJECT_BYTES", "MAX_REQUEST_BYTES", "InputLimitError", "LimitedLoader",
           "check_document", "check_json_text", "check_request_size"]
