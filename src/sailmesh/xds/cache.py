"""Immutable, versioned xDS snapshots, one per proxy node.

Owns: turning the caller's typed resources into a frozen ``Snapshot`` (resources packed as
``Any`` once, so later edits to the caller's messages cannot leak in), content-hash versions
per resource and per type (the same config always gets the same version, so re-applying it
pushes nothing, and a delta stream sends only the resources whose version moved),
the ``consistent()`` completeness check, and the node id → snapshot map.

A node's next snapshot is built from its last one: only names whose message is not the very
same object are checked and packed, the type version (a sum of per-resource hashes) is
adjusted by what changed, and the result records what it touched and dropped, so a stream
holding the last one compares only those names. A push that changes a few resources of
thousands costs each node a few, not thousands.

Must not know: gRPC, streams, what a proxy has acknowledged, or how resources were made.
"""

import functools
import hashlib
import itertools
import threading
from collections import ChainMap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

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
        return self.pack_all(type_url, [message])[0]

    def pack_all(self, type_url: str, messages: list[Message]) -> list["_Packed"]:
        """Each message packed, or its packing from this round or the one before."""
        with self._lock:
            hits = [self._current.get(id(m)) or self._previous.get(id(m)) for m in messages]
        done = [hit if hit is not None and hit.message is m  # an id is reused once freed
                else _Packed.of(type_url, m) for m, hit in zip(messages, hits, strict=True)]
        with self._lock:
            self._current.update((id(p.message), p) for p in done)
        return done


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
    # The caller's messages, by name: the next build of the node reuses what is unchanged.
    messages: Mapping[str, Message] = field(default_factory=dict)
    # Built from the type snapshot numbered `base` by sending `touched` (added or changed)
    # and removing `dropped`: a stream that holds `base` compares only those names.
    serial: int = field(default_factory=lambda: next(_serials), compare=False)
    base: int | None = None
    touched: frozenset[str] = frozenset()
    dropped: frozenset[str] = frozenset()
    # The version as a number: the sum of one hash per (name, resource version), kept so
    # that the next build adjusts it by what changed instead of hashing every name again.
    checksum: int = 0
    # Built from two layers (see `build_layered`): the node's own, and one it shares.
    layers: "tuple[TypeSnapshot, TypeSnapshot] | None" = None

    @classmethod
    def build(cls, type_url: str, messages: Mapping[str, Message],
              packer: Packer | None = None,
              previous: "TypeSnapshot | None" = None) -> "TypeSnapshot":
        """The type's resources packed. With ``previous`` (the node's last build of the
        type) only the names whose message is not the very same object are looked at; it is
        returned as it is when none changed."""
        if type_url not in _NAME_FIELD:
            known = ", ".join(sorted(_NAME_FIELD))
            raise XdsError(f"unknown xDS type {type_url!r}; serve one of: {known}")
        old = {} if previous is None else previous.messages
        changed = sorted([name for name, message in messages.items() if old.get(name) is not message])
        dropped = [name for name in old if name not in messages]
        if previous is not None and not changed and not dropped:
            return previous
        _check_names(type_url, messages, changed)
        ordered = [messages[name] for name in changed]
        done_all = (packer.pack_all(type_url, ordered) if packer is not None
                    else [_Packed.of(type_url, m) for m in ordered])
        packed = {} if previous is None else dict(previous.resources)
        needs = {} if previous is None else dict(previous.needs)
        versions = {} if previous is None else dict(previous.versions)
        kept = {} if previous is None else dict(previous.messages)
        checksum = 0 if previous is None else previous.checksum
        for name in dropped:
            checksum -= _item_hash(name, versions.pop(name))
            del packed[name], needs[name], kept[name]
        for name, message, done in zip(changed, ordered, done_all, strict=True):
            if name in versions:
                checksum -= _item_hash(name, versions[name])
            checksum += _item_hash(name, done.version)
            packed[name], needs[name], versions[name] = done.packed, done.needs, done.version
            kept[name] = message
        checksum %= _CHECKSUM_MODULUS
        return cls(type_url, f"{checksum:0{_VERSION_LENGTH}x}", MappingProxyType(packed),
                   MappingProxyType(needs), MappingProxyType(versions), MappingProxyType(kept),
                   base=None if previous is None else previous.serial,
                   touched=frozenset(changed), dropped=frozenset(dropped), checksum=checksum)

    @classmethod
    def build_layered(cls, type_url: str, own: Mapping[str, Message],
                      shared: Mapping[str, Message], packer: Packer | None = None,
                      previous: "TypeSnapshot | None" = None,
                      built: "SharedLayers | None" = None) -> "TypeSnapshot":
        """The type's resources given as two layers with no name in common: the node's
        `own`, and `shared`, a mapping that the nodes of one view hand over as the very same
        object. The shared layer is built once per build round (`built`) and the node's
        snapshot reads both layers through, so a node costs what its own layer and the
        changed names cost, not what the view holds. A name in both layers: built flat,
        the own one winning."""
        prev_own, prev_shared = (previous.layers if previous is not None
                                 and previous.layers is not None else (None, None))
        built = {} if built is None else built
        key = (type_url, id(shared), None if prev_shared is None else prev_shared.serial)
        hit = built.get(key)
        if hit is not None and hit[0] is shared:
            shared_snap = hit[1]
        else:
            shared_snap = cls.build(type_url, shared, packer, prev_shared)
            built[key] = (shared, shared_snap)
        own_snap = cls.build(type_url, own, packer, prev_own)
        if any(name in shared_snap.resources for name in own_snap.resources):
            return cls.build(type_url, dict(ChainMap(own, shared)), packer, previous)
        if own_snap is prev_own and shared_snap is prev_shared:
            return previous  # type: ignore[return-value]  # both layers were given
        versions = _Union(own_snap.versions, shared_snap.versions)
        if prev_own is not None and prev_shared is not None:
            # Each layer was built from the previous node snapshot's layer: what it
            # touched or dropped is what this node's snapshot touched or dropped (a name
            # moved from one layer to the other is touched, not dropped).
            layers = [(new, old) for new, old in ((own_snap, prev_own), (shared_snap, prev_shared))
                      if new is not old]
            touched = frozenset().union(*(new.touched for new, _ in layers))
            dropped = frozenset(n for new, _ in layers for n in new.dropped if n not in versions)
        elif previous is not None:
            touched = frozenset(n for n, v in versions.items() if previous.versions.get(n) != v)
            dropped = frozenset(n for n in previous.versions if n not in versions)
        else:
            touched, dropped = frozenset(versions), frozenset()
        checksum = (own_snap.checksum + shared_snap.checksum) % _CHECKSUM_MODULUS
        return cls(type_url, f"{checksum:0{_VERSION_LENGTH}x}",
                   _Union(own_snap.resources, shared_snap.resources),
                   _Union(own_snap.needs, shared_snap.needs), versions,
                   _Union(own_snap.messages, shared_snap.messages),
                   base=None if previous is None else previous.serial, touched=touched,
                   dropped=dropped, checksum=checksum, layers=(own_snap, shared_snap))

    def names(self) -> frozenset[str]:
        return frozenset(self.resources)


# Shared layers built in one build round: (type, id of the shared mapping, serial of the
# layer it was built from) → (the mapping, its layer).
SharedLayers = dict[tuple[str, int, int | None], tuple[Mapping[str, Message], TypeSnapshot]]


class _Union(Mapping[str, Any]):
    """Two mappings with no key in common, read as one."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: Mapping[str, Any], second: Mapping[str, Any]) -> None:
        self._first, self._second = first, second

    def __getitem__(self, key: str) -> Any:
        try:
            return self._first[key]
        except KeyError:
            return self._second[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first or key in self._second

    def __iter__(self) -> Iterator[str]:
        yield from self._first
        yield from self._second

    def __len__(self) -> int:
        return len(self._first) + len(self._second)


_serials = itertools.count(1)
_CHECKSUM_MODULUS = 1 << (4 * _VERSION_LENGTH)


def _item_hash(name: str, version: str) -> int:
    # The version is fixed-length hex, so name + version cannot be read two ways.
    digest = hashlib.blake2b(f"{name}{version}".encode(), digest_size=_VERSION_LENGTH // 2)
    return int.from_bytes(digest.digest(), "big")


def _check_names(type_url: str, messages: Mapping[str, Message], names: list[str]) -> None:
    expected = type_url.removeprefix("type.googleapis.com/")
    for name in names:
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


@dataclass(frozen=True)
class Snapshot:
    """Every served type for one node, at one version. Always holds all five types."""

    version: str
    types: Mapping[str, TypeSnapshot]

    @classmethod
    def build(cls, resources: Resources, packer: Packer | None = None,
              previous: "Snapshot | None" = None,
              shared: SharedLayers | None = None) -> "Snapshot":
        """``previous``: the node's last snapshot, whose unchanged types are kept as they are
        (the contract of `Packer`: a published message is never changed). A type given as a
        ``ChainMap`` of two mappings is built from layers (`TypeSnapshot.build_layered`):
        the node's own first, then one shared with other nodes; ``shared`` keeps the shared
        layers of one build round (pass the same dict for every node of a push)."""
        for type_url in resources:
            if type_url not in _NAME_FIELD:
                TypeSnapshot.build(type_url, {})  # raises the descriptive XdsError
        types = {}
        for type_url in type_urls.ADS_ORDER:
            messages = resources.get(type_url, {})
            last = None if previous is None else previous.of(type_url)
            if isinstance(messages, ChainMap) and len(messages.maps) == 2:
                types[type_url] = TypeSnapshot.build_layered(type_url, *messages.maps, packer,
                                                             last, shared)
            else:
                types[type_url] = TypeSnapshot.build(type_url, messages, packer, last)
        version = _digest([f"{t}={types[t].version}".encode() for t in type_urls.ADS_ORDER])
        return cls(version, MappingProxyType(types))

    def of(self, type_url: str) -> TypeSnapshot:
        return self.types[type_url]

    @functools.cached_property
    def problems(self) -> tuple[str, ...]:
        """``consistent()``, worked out once, when first asked (``status``)."""
        return tuple(self.consistent())

    def consistent(self) -> list[str]:
        """Problems that would leave a proxy warming forever; empty when complete.

        go-control-plane's rule: every EDS name a cluster fetches and every RDS name a
        listener fetches must be in the snapshot; sailmesh adds SDS names, because a TLS
        listener whose secret never arrives never starts. Reported, never raised: the
        caller decides whether to publish an incomplete snapshot.
        """
        problems: list[str] = []
        have = {type_url: self.of(type_url).resources for type_url in type_urls.ADS_ORDER}
        for kind in (type_urls.LISTENER, type_urls.CLUSTER):
            named = self.of(kind).needs
            if all(n in have[t] for t, n in set().union(*named.values())):
                continue  # the common case, without walking every resource's list
            for name, needs in sorted(named.items()):
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
