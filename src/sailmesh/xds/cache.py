"""Immutable, versioned xDS snapshots, one per proxy node.

Owns: turning the caller's typed resources into a frozen ``Snapshot`` (resources packed as
``Any`` once, so later edits to the caller's messages cannot leak in), content-hash versions
per resource and per type (the same config always gets the same version, so re-applying it
pushes nothing, and a delta stream sends only the resources whose version moved),
the ``consistent()`` completeness check, and the node id → snapshot map.

Must not know: gRPC, streams, what a proxy has acknowledged, or how resources were made.
"""

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from . import references, type_urls
from .errors import XdsError

Resources = Mapping[str, Mapping[str, Message]]
"""type_url → resource name → typed proto message (the caller's input)."""

# The field in each resource that Envoy reads as its name; the map key must agree with it or
# the proxy would subscribe to a name the snapshot files under another one.
_NAME_FIELD: Mapping[str, str] = {
    type_urls.LISTENER: "name",
    type_urls.ROUTE: "name",
    type_urls.CLUSTER: "name",
    type_urls.ENDPOINT: "cluster_name",
    type_urls.SECRET: "name",
}
_VERSION_LENGTH = 16
# How `consistent` names each type.
_KIND_NAMES: Mapping[str, str] = {
    type_urls.LISTENER: "listener",
    type_urls.ROUTE: "route configuration",
    type_urls.CLUSTER: "cluster",
    type_urls.ENDPOINT: "cluster load assignment",
    type_urls.SECRET: "secret",
}


def _digest(parts: list[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        # Length-prefix each part so ("ab", "c") and ("a", "bc") hash differently.
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()[:_VERSION_LENGTH]


class Packer:
    """Packs each message object once while it stays in use: a push hands many nodes the
    same message objects (a service's clusters shared by every client), and a node whose
    config did not change the same objects again.

    A round is one publication of every node: a node published a second time starts the
    next round, and what the round before last packed is forgotten. Contract: a message
    must not be changed once published (a changed config is a new message).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # set_resources_threadsafe packs off the loop
        self._nodes: set[str] = set()
        self._current: dict[int, _Packed] = {}
        self._previous: dict[int, _Packed] = {}

    def start(self, node_id: str) -> None:
        """A node's snapshot is about to be packed."""
        with self._lock:
            if node_id in self._nodes:
                self._nodes.clear()
                self._previous, self._current = self._current, {}
            self._nodes.add(node_id)

    def pack(self, type_url: str, message: Message) -> "_Packed":
        key = id(message)
        with self._lock:
            hit = self._current.get(key) or self._previous.get(key)
        if hit is None or hit.message is not message:  # an id is reused only once freed
            hit = _Packed.of(type_url, message)
        with self._lock:
            self._current[key] = hit
        return hit


# What a resource names that must be in the same snapshot: (type_url, name) pairs.
Needs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Packed:
    message: Message
    packed: any_pb2.Any
    needs: Needs
    version: str  # a hash of the packed bytes: equal content, equal version

    @classmethod
    def of(cls, type_url: str, message: Message) -> "_Packed":
        any_message = any_pb2.Any()
        # deterministic=True: map fields serialise in key order, so equal content hashes
        # equal and gets the same version.
        any_message.Pack(message, deterministic=True)
        return cls(message, any_message, _needs(type_url, message), _digest([any_message.value]))


def _needs(type_url: str, message: Message) -> Needs:
    if isinstance(message, listener_pb2.Listener):
        return (*((type_urls.ROUTE, r) for r in sorted(references.listener_route_names(message))),
                *((type_urls.SECRET, s) for s in sorted(references.listener_secret_names(message))))
    if isinstance(message, cluster_pb2.Cluster):
        endpoints = references.cluster_endpoint_name(message)
        return (*(((type_urls.ENDPOINT, endpoints),) if endpoints is not None else ()),
                *((type_urls.SECRET, s) for s in sorted(references.cluster_secret_names(message))))
    return ()


@dataclass(frozen=True)
class TypeSnapshot:
    """All resources of one type for one node. ``resources`` must not be altered."""

    type_url: str
    version: str
    resources: Mapping[str, any_pb2.Any]
    # Per resource, what else it names (see `Snapshot.consistent`).
    needs: Mapping[str, Needs] = field(default_factory=dict)
    # Per resource, the hash of its packed bytes (a delta stream's resource version).
    versions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, type_url: str, messages: Mapping[str, Message],
              packer: Packer | None = None) -> "TypeSnapshot":
        if type_url not in _NAME_FIELD:
            known = ", ".join(sorted(_NAME_FIELD))
            raise XdsError(f"unknown xDS type {type_url!r}; serve one of: {known}")
        expected = type_url.removeprefix("type.googleapis.com/")
        packed: dict[str, any_pb2.Any] = {}
        needs: dict[str, Needs] = {}
        versions: dict[str, str] = {}
        for name in sorted(messages):
            message = messages[name]
            actual = message.DESCRIPTOR.full_name
            if actual != expected:
                raise XdsError(f"{type_url} resource {name!r} is a {actual}, not a {expected}")
            inner_name = getattr(message, _NAME_FIELD[type_url])
            if inner_name != name:
                raise XdsError(
                    f"{type_url} resource filed as {name!r} names itself {inner_name!r} "
                    f"(field {_NAME_FIELD[type_url]}); the two must match"
                )
            done = (packer.pack(type_url, message) if packer is not None
                    else _Packed.of(type_url, message))
            packed[name], needs[name], versions[name] = done.packed, done.needs, done.version
        parts = [part for name, v in versions.items() for part in (name.encode(), v.encode())]
        return cls(type_url, _digest(parts), MappingProxyType(packed), MappingProxyType(needs),
                   MappingProxyType(versions))

    def names(self) -> frozenset[str]:
        return frozenset(self.resources)


@dataclass(frozen=True)
class Snapshot:
    """Every served type for one node, at one version. Always holds all five types."""

    version: str
    types: Mapping[str, TypeSnapshot]

    @classmethod
    def build(cls, resources: Resources, packer: Packer | None = None) -> "Snapshot":
        for type_url in resources:
            if type_url not in _NAME_FIELD:
                TypeSnapshot.build(type_url, {})  # raises the descriptive XdsError
        types = {
            type_url: TypeSnapshot.build(type_url, resources.get(type_url, {}), packer)
            for type_url in type_urls.ADS_ORDER
        }
        version = _digest([f"{t}={types[t].version}".encode() for t in type_urls.ADS_ORDER])
        return cls(version, MappingProxyType(types))

    def of(self, type_url: str) -> TypeSnapshot:
        return self.types[type_url]

    def consistent(self) -> list[str]:
        """Problems that would leave a proxy warming forever; empty when complete.

        go-control-plane's rule: every EDS name a cluster fetches and every RDS name a
        listener fetches must be in the snapshot; sailmesh adds SDS names, because a TLS
        listener whose secret never arrives never starts. Reported, never raised: the
        caller decides whether to publish an incomplete snapshot.
        """
        problems: list[str] = []
        have = {type_url: self.of(type_url).names() for type_url in type_urls.ADS_ORDER}
        for kind in (type_urls.LISTENER, type_urls.CLUSTER):
            for name, needs in self.of(kind).needs.items():
                problems.extend(f"{_KIND_NAMES[kind]} {name!r} needs {_KIND_NAMES[t]} {n!r}"
                                for t, n in needs if n not in have[t])
        return problems


class SnapshotCache:
    """The latest snapshot of every node; loop-thread only."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}

    def set(self, node_id: str, snapshot: Snapshot) -> bool:
        """Store ``snapshot``; False when the node already had this exact version."""
        previous = self._snapshots.get(node_id)
        self._snapshots[node_id] = snapshot
        return previous is None or previous.version != snapshot.version

    def get(self, node_id: str) -> Snapshot | None:
        return self._snapshots.get(node_id)

    def remove(self, node_id: str) -> None:
        self._snapshots.pop(node_id, None)

    def nodes(self) -> list[str]:
        return sorted(self._snapshots)
