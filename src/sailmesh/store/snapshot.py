"""Immutable, versioned views of the applied configuration.

A Snapshot is what every later stage reads: the model indexes it, translation never sees
the store itself. Resources are ordered by creation (oldest first) because Istio's merge
rules ("first wins", "oldest Gateway wins") depend on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from sailmesh.resources.base import Resource

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class Snapshot:
    """All applied resources at one version. Contract: never mutated after creation."""

    resources: tuple[Resource, ...] = ()
    version: str = field(default="")

    @classmethod
    def of(cls, resources: Iterable[Resource]) -> Snapshot:
        ordered = tuple(sorted(resources, key=_creation_order))
        digest = hashlib.sha256()
        for r in ordered:
            digest.update(r.model_dump_json(by_alias=True, exclude_none=True).encode())
        return cls(resources=ordered, version=digest.hexdigest()[:16])

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def of_kind(self, kind: type[R]) -> list[R]:
        """Resources of one kind, oldest first."""
        return [r for r in self.resources if isinstance(r, kind)]

    def get(self, kind: type[R], namespace: str, name: str) -> R | None:
        for r in self.resources:
            if isinstance(r, kind) and r.name == name and (
                not r.NAMESPACED or r.namespace == namespace
            ):
                return r
        return None


def _creation_order(r: Resource) -> tuple[str, str, str, str]:
    # creationTimestamp is RFC 3339 with fixed width, so text order is time order; the
    # stable key after it makes ties deterministic (Istio breaks ties by ns/name too).
    return (r.metadata.creation_timestamp or "", r.kind, r.namespace, r.name)
