"""Analysis messages and the shape of an analyzer: what `sailctl analyze` reports.

Owns: the `Message` record (code, level, resource `Kind ns/name`, field, text, fix) and the
`Analyzer` table row. Must not know: how analyzers look at the config, how output is printed.

Levels follow istioctl analyze: Error (exit status 1), Warning, Info.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sailmesh.analysis.context import AnalysisContext

Level = Literal["Error", "Warning", "Info"]
LEVEL_ORDER: dict[str, int] = {"Error": 0, "Warning": 1, "Info": 2}


@dataclass(frozen=True)
class Finding:
    """What an analyzer function yields; the table row adds code and level."""

    ref: str  # "Kind ns/name"
    field: str | None
    message: str


@dataclass(frozen=True)
class Message:
    code: str
    level: Level
    ref: str
    field: str | None
    message: str
    fix: str
    pitfall: str  # "#9": the row of the user-pitfalls list this catches ("" when none)

    @property
    def namespace(self) -> str:
        """The namespace of `ref` ("" for cluster-scoped kinds)."""
        _, _, name = self.ref.partition(" ")
        return name.partition("/")[0] if "/" in name else ""

    def line(self) -> str:
        """istioctl's one-line form: `Error [SM0101] (Gateway test/x) message`."""
        where = f" {self.field}:" if self.field else ""
        return f"{self.level} [{self.code}] ({self.ref}){where} {self.message} Fix: {self.fix}"

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "level": self.level, "origin": self.ref,
                "field": self.field, "message": self.message, "fix": self.fix,
                "pitfall": self.pitfall}


@dataclass(frozen=True)
class Analyzer:
    """One row of the analyzer table: a stable code, a level, and a pure check."""

    code: str
    level: Level
    name: str
    pitfall: str  # "#9", or "" for reference checks that are no listed pitfall
    fix: str
    check: Callable[[AnalysisContext], Iterable[Finding]]
    istio_code: str | None = None  # the istioctl code of the same check, when there is one

    def run(self, ctx: AnalysisContext) -> list[Message]:
        return [Message(self.code, self.level, f.ref, f.field, f.message, self.fix, self.pitfall)
                for f in self.check(ctx)]
