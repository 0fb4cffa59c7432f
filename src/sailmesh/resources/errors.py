"""Problems found in user input, and the exception that rejects an input whole.

Owns: the shape of one finding (`Problem`: where, which object, which field, what, how
bad, what to do), how it prints, and `Findings`, the collector rules write into.
Must not know: YAML, pydantic, or any rule.

Error tree of `sailmesh.resources`::

    Exception
     └── ResourceError        the input is rejected whole; `.problems` lists every finding
                              (errors and the warnings seen beside them), one per line

Warnings alone never raise: the loader returns them next to the accepted resources.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding, printed like a compiler diagnostic.

    `source:line: Kind ns/name: field.path: message; hint` — parts that are unknown are
    left out, warnings carry a `warning:` marker after the location.
    """

    source: str
    line: int | None
    ref: str | None
    field: str | None
    message: str
    severity: Severity = "error"
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def at(self, source: str, line: int | None) -> Problem:
        """The same finding placed in a file (validation rules do not know files)."""
        return replace(self, source=source, line=line)

    def __str__(self) -> str:
        where = self.source or "-"
        if self.line is not None:
            where = f"{where}:{self.line}"
        parts = [where]
        if self.severity == "warning":
            parts.append("warning")
        if self.ref:
            parts.append(self.ref)
        if self.field:
            parts.append(self.field)
        text = ": ".join(parts) + ": " + self.message
        if self.hint:
            text += f"; {self.hint}"
        return text


class Findings:
    """Problems of one resource as rules find them: field paths, no file or line yet."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.items: list[Problem] = []

    def error(self, field: str, message: str, hint: str | None = None) -> None:
        self.items.append(Problem("", None, self.ref, field, message, "error", hint))

    def warning(self, field: str, message: str, hint: str | None = None) -> None:
        self.items.append(Problem("", None, self.ref, field, message, "warning", hint))


class ResourceError(Exception):
    """Input rejected: nothing of it may be applied. `problems` holds every finding."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(str(self))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


__all__ = ["Findings", "Problem", "ResourceError", "Severity"]
