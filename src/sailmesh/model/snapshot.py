"""Immutable, versioned views of the applied configuration, and the seam they come through.

A Snapshot is what every later stage reads: the model indexes it, translation never sees
where it came from. A `ConfigSource` hands out snapshots and says when a new one is due;
the file store (`sailmesh.store`) is today's source, and another (a Kubernetes API watch)
can be added without touching the model or translation.

Resources are ordered by creation (oldest first) because Istio's merge rules ("first
wins", "oldest Gateway wins") depend on it. Lookups by kind and by name are indexed once
per snapshot, so a push that asks them per proxy and per service stays linear.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sailmesh.resources.base import Resource

R = TypeVar("R", bound=Resource)


@dataclass(frozen=True)
class Snapshot:
    """All applied resources at one version. Contract: never mutated after creation."""

    resources: tuple[Resource, ...] = ()
    version: str = field(default="")
    # Filled on first use; the resources never change, so neither do these.
    _by_kind: dict[type, list[Resource]] = field(default_factory=dict, init=False,
                                                 repr=False, compare=False)
    _by_name: dict[tuple[type, str, str], Resource] = field(default_factory=dict, init=False,
                                                           repr=False, compare=False)

    @classmethod
    def of(cls, resources: Iterable[Resource],
           fingerprints: Callable[[Resource], bytes] | None = None) -> Snapshot:
        """`fingerprints`: each resource's `fingerprint`, when the caller keeps them (the
        store does, per unchanged file)."""
        ordered = tuple(sorted(resources, key=_creation_order))
        digest = hashlib.sha256()
        for r in ordered:
            digest.update(fingerprint(r) if fingerprints is None else fingerprints(r))
        return cls(resources=ordered, version=digest.hexdigest()[:16])

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def of_kind(self, kind: type[R]) -> list[R]:
        """Resources of one kind, oldest first. Contract: the list must not be altered."""
        found = self._by_kind.get(kind)
        if found is None:
            found = [r for r in self.resources if isinstance(r, kind)]
            self._by_kind[kind] = found
        return found  # type: ignore[return-value]

    def get(self, kind: type[R], namespace: str, name: str) -> R | None:
        if not self._by_name:
            # Oldest first: setdefault keeps the first of two same-named resources, as a
            # scan would. Indexed under every Resource class of its type, so that asking
            # for a base class finds it too.
            for r in self.resources:
                ns = r.namespace if r.NAMESPACED else ""
                for cls in type(r).__mro__:
                    if isinstance(cls, type) and issubclass(cls, Resource):
                        self._by_name.setdefault((cls, ns, r.name), r)
        found = self._by_name.get((kind, namespace if kind.NAMESPACED else "", name))
        return found  # type: ignore[return-value]


class ConfigSource(Protocol):
    """Where applied configuration comes from."""

    def snapshot(self) -> Snapshot:
        """Everything applied now, as one immutable snapshot."""
        ...

    def watch(self, on_change: Callable[[], None]) -> Callable[[], None]:
        """Call `on_change` (from any thread) whenever a new snapshot may differ from the
        last; returns a function that stops the watch."""
        ...


def fingerprint(r: Resource) -> bytes:
    """What the snapshot version hashes of a resource: its content as JSON."""
    return r.model_dump_json(by_alias=True, exclude_none=True).encode()


def _creation_order(r: Resource) -> tuple[str, str, str, str]:
    # creationTimestamp is RFC 3339 with fixed width, so text order is time order; the
    # stable key after it makes ties deterministic (Istio breaks ties by ns/name too).
    return (r.metadata.creation_timestamp or "", r.kind, r.namespace, r.name)
