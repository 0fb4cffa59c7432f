"""Immutable, versioned xDS snapshots, one per proxy node.

Owns: turning the caller's typed resources into a frozen ``Snapshot`` (resources packed as
``Any`` once, so later edits to the caller's messages cannot leak in), content-hash versions
per type (the same config always gets the same version, so re-applying it pushes nothing),
the ``consistent()`` completeness check, and the node id → snapshot map.

Must not know: gRPC, streams, what a proxy has acknowledged, or how resources were made.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
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


def _digest(parts: list[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        # Length-prefix each part so ("ab", "c") and ("a", "bc") hash differently.
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()[:_VERSION_LENGTH]


@dataclass(frozen=True)
class TypeSnapshot:
    """All resources of one type for one node. ``resources`` must not be altered."""

    type_url: str
    version: str
    resources: Mapping[str, any_pb2.Any]

    @classmethod
    def build(cls, type_url: str, messages: Mapping[str, Message]) -> "TypeSnapshot":
        if type_url not in _NAME_FIELD:
            known = ", ".join(sorted(_NAME_FIELD))
            raise XdsError(f"unknown xDS type {type_url!r}; serve one of: {known}")
        expected = type_url.removeprefix("type.googleapis.com/")
        packed: dict[str, any_pb2.Any] = {}
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
            any_message = any_pb2.Any()
            # deterministic=True: map fields serialise in key order, so equal content
            # hashes equal and gets the same version.
            any_message.Pack(message, deterministic=True)
            packed[name] = any_message
        parts = [part for name, m in packed.items() for part in (name.encode(), m.value)]
        return cls(type_url, _digest(parts), MappingProxyType(packed))

    def names(self) -> frozenset[str]:
        return frozenset(self.resources)


@dataclass(frozen=True)
class Snapshot:
    """Every served type for one node, at one version. Always holds all five types."""

    version: str
    types: Mapping[str, TypeSnapshot]

    @classmethod
    def build(cls, resources: Resources) -> "Snapshot":
        for type_url in resources:
            if type_url not in _NAME_FIELD:
                TypeSnapshot.build(type_url, {})  # raises the descriptive XdsError
        types = {
            type_url: TypeSnapshot.build(type_url, resources.get(type_url, {}))
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
        for name, packed in self.of(type_urls.LISTENER).resources.items():
            listener = listener_pb2.Listener()
            packed.Unpack(listener)
            for route in sorted(references.listener_route_names(listener) - have[type_urls.ROUTE]):
                problems.append(f"listener {name!r} needs route configuration {route!r}")
            missing = references.listener_secret_names(listener) - have[type_urls.SECRET]
            problems.extend(f"listener {name!r} needs secret {s!r}" for s in sorted(missing))
        for name, packed in self.of(type_urls.CLUSTER).resources.items():
            cluster = cluster_pb2.Cluster()
            packed.Unpack(cluster)
            endpoints = references.cluster_endpoint_name(cluster)
            if endpoints is not None and endpoints not in have[type_urls.ENDPOINT]:
                problems.append(f"cluster {name!r} needs cluster load assignment {endpoints!r}")
            missing = references.cluster_secret_names(cluster) - have[type_urls.SECRET]
            problems.extend(f"cluster {name!r} needs secret {s!r}" for s in sorted(missing))
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
