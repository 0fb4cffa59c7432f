"""Input text as documents that remember where each field was written: YAML (with the
input limits of `yaml_limits`) or JSON parsed into one `Document` per object, each with its
YAML node, so that any field path maps to its line; YAML syntax errors and duplicate keys
as `Problem`s at their line.

Owns: parsing and line lookup. Must not know: kinds, models, validation (see loader).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from sailmesh.resources import describe
from sailmesh.resources.errors import Problem
from sailmesh.resources.yaml_limits import (
    InputLimitError,
    LimitedLoader,
    check_document,
    check_json_text,
)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Document:
    """One object of the input with its YAML node, which knows the line of every field."""

    source: str
    data: Any
    node: yaml.Node | None
    prefix: Path  # ("items", 3) for an item of a `kind: List`

    def line(self, path: Path) -> int | None:
        return line_of(self.node, path)

    def problem(self, path: Path, message: str, ref: str | None = None, **kw: Any) -> Problem:
        field = describe.render_path(self.prefix + path) or None
        return Problem(self.source, self.line(path), ref, field, message, **kw)

    def item(self, index: int) -> Document:
        node = self.node
        if isinstance(node, yaml.MappingNode):
            node = _child(node, "items")
        child = node.value[index] if isinstance(node, yaml.SequenceNode) else None
        return Document(self.source, self.data["items"][index], child, ("items", index))


def parse_yaml(text: str, source: str) -> list[Document]:
    loader = LimitedLoader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                check_document(node)
            documents.append(Document(source, loader.construct_document(node), node, ()))
    finally:
        loader.dispose()
    return documents


def parse_json(text: str, source: str) -> list[Document] | None:
    """JSON that YAML 1.1 refuses (rare: e.g. tabs); no line numbers then."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    except RecursionError:
        raise InputLimitError("nesting too deep") from None
    check_json_text(data)
    return [Document(source, data, None, ())]


def yaml_problem(exc: yaml.YAMLError, source: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    what = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {what}" + (f" ({context})" if context else "")
    return Problem(source, line, None, None, message)


def _child(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    found = None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found = value_node  # the last one wins, as in the constructed data
    return found


def line_of(node: yaml.Node | None, path: Path) -> int | None:
    """The line of the deepest key of `path` present in the YAML (1-based)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = None
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    match = key_node, value_node
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def duplicate_keys(doc: Document) -> list[Problem]:
    """Kubernetes decodes YAML strictly: a key given twice in one mapping is an error."""
    problems: list[Problem] = []
    stack = [doc.node] if doc.node is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                stack.append(value_node)
                if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                    continue
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    problems.append(
                        Problem(
                            doc.source,
                            line,
                            None,
                            None,
                            f'mapping key "{key_node.value}" already defined at line {first[key_node.value]}',
                        )
                    )
                else:
                    first[key_node.value] = line
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return sorted(problems, key=lambda p: p.line or 0)
