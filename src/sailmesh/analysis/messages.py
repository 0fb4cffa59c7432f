"""Analysis messages and the shape of an analyzer: what `sailctl analyze` reports.

Owns: the `Message` record (code, level, resource `Kind ns/name`, field, text, fix), the
`Analyzer` table row, `--suppress` rules and level thresholds. Must not know: how analyzers
look at the config, how output is printed, files (a message's `origin` is set by the caller).

Levels follow istioctl analyze: Error (exit status 1), Warning, Info.

Codes: where istioctl has the same check, the message's primary code is Istio's (IST0101 …)
so that istioctl habits (grep, suppressions) carry over; our stable SM code follows at the
end of the line: `Error [IST0101] (Gateway test/gw gw.yaml:12) field: text Fix: … [SM0101]`.
Checks that Kiali has and istioctl lacks carry Kiali's code after ours (`[SM0166] [KIA0207]`).
A suppression may name any of the codes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sailmesh.analysis.context import AnalysisContext

Level = Literal["Error", "Warning", "Info"]
LEVEL_ORDER: dict[str, int] = {"Error": 0, "Warning": 1, "Info": 2}


@dataclass(frozen=True)
class Finding:
    """What an analyzer function yields; the table row adds code and level."""

    ref: str  # "Kind ns/name" ("" for a file that holds no readable object)
    field: str | None
    message: str
    origin: str | None = None  # "file:line", when the analyzer knows it (input problems)


@dataclass(frozen=True)
class Message:
    code: str
    level: Level
    ref: str
    field: str | None
    message: str
    fix: str
    pitfall: str  # "#9": the row of the user-pitfalls list this catches ("" when none)
    istio_code: str | None = None  # istioctl's code of the same check
    origin: str | None = None  # "file:line" when the resource was read from a file
    kiali_code: str | None = None  # Kiali's validation code of the same check

    @property
    def primary_code(self) -> str:
        """The code shown first: Istio's when there is one, else ours."""
        return self.istio_code or self.code

    @property
    def key(self) -> tuple[str, str, str]:
        """The resource's (kind, namespace, name), as `Resource.key`."""
        kind, _, rest = self.ref.partition(" ")
        ns, _, name = rest.rpartition("/")
        return kind, ns, name

    def located(self, origin: str | None) -> Message:
        return replace(self, origin=origin)

    @property
    def namespace(self) -> str:
        return ref_namespace(self.ref)

    def line(self) -> str:
        """istioctl's one-line form: `Error [IST0101] (Gateway test/x x.yaml:3) message`,
        then the fix, then our code when the primary one is Istio's."""
        where = f" {self.field}:" if self.field else ""
        place = " ".join(p for p in (self.ref, self.origin) if p)
        ours = f" [{self.code}]" if self.istio_code else ""
        ours += f" [{self.kiali_code}]" if self.kiali_code else ""
        return (f"{self.level} [{self.primary_code}] ({place}){where} {self.message}"
                f" Fix: {self.fix}{ours}")

    def as_dict(self) -> dict[str, object]:
        return {"code": self.primary_code, "sailmeshCode": self.code,
                "istioCode": self.istio_code, "kialiCode": self.kiali_code,
                "level": self.level, "resource": self.ref,
                "origin": self.origin, "field": self.field, "message": self.message,
                "fix": self.fix, "pitfall": self.pitfall}


def ref_namespace(ref: str) -> str:
    """The namespace of "Kind ns/name" ("" for cluster-scoped kinds and no resource)."""
    _, _, name = ref.partition(" ")
    return name.partition("/")[0] if "/" in name else ""


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
    kiali_code: str | None = None  # Kiali's validation code, for checks istioctl lacks

    def run(self, ctx: AnalysisContext) -> list[Message]:
        return [Message(self.code, self.level, f.ref, f.field, f.message, self.fix, self.pitfall,
                        self.istio_code, f.origin, self.kiali_code) for f in self.check(ctx)]


# --- suppression and thresholds ---------------------------------------------------------------


@dataclass(frozen=True)
class Suppression:
    """`CODE=Kind ns/name` as istioctl's --suppress: `*` globs in the resource; the code is
    an IST or SM code (or `*`)."""

    code: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Suppression:
        code, sep, resource = text.partition("=")
        code, resource = code.strip(), resource.strip()
        if not sep or not code or not resource:
            raise ValueError(f"{text!r}: expected CODE=Kind ns/name (e.g. "
                             "\"IST0101=Gateway test/*\" or \"SM0106=*\")")
        return cls(code.upper() if code != "*" else code, resource)

    def matches(self, m: Message) -> bool:
        if self.code != "*" and self.code not in (m.code, m.istio_code, m.kiali_code):
            return False
        return fnmatch.fnmatchcase(m.ref, self.resource)


def suppress(messages: Sequence[Message], rules: Sequence[Suppression]) -> list[Message]:
    return [m for m in messages if not any(r.matches(m) for r in rules)]


def at_least(messages: Sequence[Message], level: str) -> list[Message]:
    """Messages of `level` or more severe."""
    return [m for m in messages if LEVEL_ORDER[m.level] <= LEVEL_ORDER[level]]
