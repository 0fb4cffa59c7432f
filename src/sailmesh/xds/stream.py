"""One incremental (delta) ADS stream's protocol state, sans IO: requests in, responses and
records out.

Theory of operation (Envoy "xDS REST and gRPC protocol", Incremental xDS):

1. Per type, the stream remembers what the proxy holds: resource name → version (the hash of
   the resource's packed bytes). A response carries only the resources whose version differs
   from what the proxy holds, and in ``removed_resources`` the held names the snapshot no
   longer has. A change of one cluster sends that cluster, not the other thousand.
2. LDS and CDS are wildcard: a first request with no names (Envoy's legacy form) or ``*``
   subscribes to every resource of the type. RDS, EDS and SDS are subscribed and
   unsubscribed by name; a name newly subscribed is sent even when the proxy is thought to
   hold it (the protocol requires it). Unsubscribing needs no response.
3. Every response has a nonce unique on the stream; a request carrying one is the ACK of that
   response, or its NACK when ``error_detail`` is set. Responses may be in flight together
   (delta has no stale-nonce rule): a type is confirmed when its latest response is ACKed.
   Subscription changes on any request are honoured whatever its nonce.
4. After a NACK the proxy keeps what it had; the stream keeps the rejected versions as held,
   so the rejected content is not resent until it changes (going back to the good content
   is a change, and is sent).
5. On reconnect the proxy lists what it holds in ``initial_resource_versions``: only what
   differs is sent, and held names the snapshot lacks are removed.
6. A new snapshot is pushed in ADS order (``type_urls.ADS_ORDER``). A cluster that is sent is
   a new cluster instance in Envoy that warms until it receives its endpoints, even unchanged
   ones (Envoy's resource-warming note, envoyproxy/envoy#13009): its ClusterLoadAssignment
   is resent right after it.
7. A wildcard type with nothing in the snapshot still gets an (empty) first response, which
   lets the proxy finish its initial fetch; nothing is sent for names the snapshot lacks.
8. A response is put together from encoded pieces: each resource's entry (its
   ``DeltaDiscoveryResponse.resources`` element: name, version, packed resource) is encoded
   once and shared by every stream that sends it (``Entries``), and the response is those
   entries between its encoded header and tail fields, byte for byte what serialising the
   whole message would give. A hundred proxies connecting at once cost one encoding of each
   resource and a join per response, not a message copy of every resource per proxy.

Everything that changes what is sent lives in this file. It must not know gRPC, asyncio,
clocks, or how resources were built; nonces come from an injectable iterator.
"""

import enum
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from envoy.service.discovery.v3 import discovery_pb2

from . import type_urls
from .cache import Snapshot, TypeSnapshot

WILDCARD_NAME = "*"


@dataclass(frozen=True)
class Ack:
    type_url: str
    version: str  # the type's snapshot version the acknowledged response brought
    nonce: str


@dataclass(frozen=True)
class Nack:
    type_url: str
    version: str  # the type's snapshot version of the rejected response
    nonce: str
    message: str
    code: int


@dataclass(frozen=True)
class Ignored:
    type_url: str
    nonce: str
    reason: str


Record = Ack | Nack | Ignored


@dataclass(frozen=True)
class Response:
    """One DeltaDiscoveryResponse as it goes on the wire (``wire``: the serialised message),
    with the fields the IO layer reports."""

    type_url: str
    nonce: str
    system_version_info: str
    names: tuple[str, ...]  # the resources sent, in order
    removed_resources: tuple[str, ...]
    wire: bytes

    def message(self) -> discovery_pb2.DeltaDiscoveryResponse:
        """The response decoded (tests, debugging)."""
        return discovery_pb2.DeltaDiscoveryResponse.FromString(self.wire)


class Entries:
    """Each resource's encoded response entry, by (type, name, version), shared by the
    streams of a server (rule 8). The version is the hash of the packed resource, so the
    key names the entry's whole content. Entries not used since the ``rotate`` before last
    are forgotten (the server rotates at each publication)."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, str, str], bytes] = {}
        self._previous: dict[tuple[str, str, str], bytes] = {}

    def rotate(self) -> None:
        self._previous, self._current = self._current, {}

    def get(self, target: TypeSnapshot, name: str) -> bytes:
        key = (target.type_url, name, target.versions[name])
        entry = self._current.get(key)
        if entry is None:
            entry = self._previous.get(key)
            if entry is None:
                resource = discovery_pb2.Resource(name=name, version=key[2],
                                                  resource=target.resources[name])
                entry = discovery_pb2.DeltaDiscoveryResponse(
                    resources=[resource]).SerializeToString()
            self._current[key] = entry
        return entry


@dataclass(frozen=True)
class StreamOutput:
    """What the IO layer must do: send ``responses`` in order, report ``records``."""

    responses: tuple[Response, ...] = ()
    records: tuple[Record, ...] = ()


class Applied(enum.Enum):
    APPLIED = "applied"
    PENDING = "pending"
    REJECTED = "rejected"


@dataclass(frozen=True)
class TypeStatus:
    """One type's protocol state on one stream (a copy; safe to keep).

    ``sent_version`` is the type's snapshot version as of the latest response, ``held`` how
    many resources of the type the proxy holds, ``sent_resources``/``removed_resources``
    how many were sent/removed on this stream in all."""

    type_url: str
    requested: bool = False
    wildcard: bool = False
    subscribed: frozenset[str] = frozenset()
    held: int = 0
    sent_version: str | None = None
    sent_nonce: str | None = None
    acked_version: str | None = None
    acked_nonce: str | None = None
    last_nack: Nack | None = None
    sent_resources: int = 0
    removed_resources: int = 0

    @property
    def latest_rejected(self) -> bool:
        return self.last_nack is not None and self.last_nack.nonce == self.sent_nonce

    @property
    def latest_acked(self) -> bool:
        return self.sent_nonce is not None and self.acked_nonce == self.sent_nonce


@dataclass
class _TypeState:
    """What a ``TypeStatus`` summarises: the names and versions behind it."""

    info: TypeStatus
    names: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)  # name → version the proxy holds
    owed: bool = False  # a wildcard subscription awaiting its first response (rule 7)
    in_flight: dict[str, str] = field(default_factory=dict)  # nonce → type version, in order
    # The type snapshot `held` was last brought in line with (every wanted name at its
    # version, nothing held beyond it); None once a subscription change may have moved it.
    synced: TypeSnapshot | None = None

    def status(self) -> TypeStatus:
        return replace(self.info, subscribed=frozenset(self.names), held=len(self.held))

    def wanted(self, target: TypeSnapshot) -> Iterable[str]:
        """The snapshot's names this proxy is subscribed to."""
        if self.info.wildcard:
            return target.resources.keys()
        return (n for n in self.names if n in target.resources)

    def settle(self, nonce: str) -> str | None:
        """Forget ``nonce`` and every older response still in flight; its type version, or
        None when this stream never sent it (or it was settled already)."""
        if nonce not in self.in_flight:
            return None
        while True:
            sent, version = next(iter(self.in_flight.items()))
            del self.in_flight[sent]
            if sent == nonce:
                return version


def _counter() -> Iterator[str]:
    return (str(n) for n in itertools.count(1))


@dataclass
class AdsStream:
    """Protocol state of one delta ADS stream for one node."""

    node_id: str
    snapshot: Snapshot | None = None
    nonces: Iterator[str] = field(default_factory=_counter)
    # The server's, shared by its streams; None: each response encodes its own.
    entries: Entries | None = None
    _types: dict[str, _TypeState] = field(init=False)

    def __post_init__(self) -> None:
        self._types = {t: _TypeState(TypeStatus(t)) for t in type_urls.ADS_ORDER}

    def status(self) -> Mapping[str, TypeStatus]:
        return MappingProxyType({t: s.status() for t, s in self._types.items()})

    def receive(self, request: discovery_pb2.DeltaDiscoveryRequest) -> StreamOutput:
        """Apply one DeltaDiscoveryRequest; return what to send and what happened."""
        type_url = request.type_url
        state = self._types.get(type_url)
        nonce = request.response_nonce
        if state is None:
            return StreamOutput(records=(Ignored(type_url, nonce, "type not served"),))
        records: list[Record] = []
        if nonce:  # rule 3
            version = state.settle(nonce)
            if version is None:
                records.append(Ignored(type_url, nonce, "not a response in flight on this stream"))
            elif request.HasField("error_detail"):
                nack = Nack(type_url, version, nonce, request.error_detail.message,
                            request.error_detail.code)
                state.info = replace(state.info, last_nack=nack)
                records.append(nack)
            else:
                state.info = replace(state.info, acked_version=version, acked_nonce=nonce)
                records.append(Ack(type_url, version, nonce))
        force = self._subscribe(state, request)
        response = self._respond(state, force)
        return StreamOutput(tuple(r for r in [response] if r is not None), tuple(records))

    def update(self, snapshot: Snapshot) -> StreamOutput:
        """Adopt a new snapshot; return the pushes it causes, in ADS order (rule 6)."""
        self.snapshot = snapshot
        responses: list[Response] = []
        endpoints: set[str] = set()
        for type_url in type_urls.ADS_ORDER:
            response = self._respond(self._types[type_url],
                                     endpoints if type_url == type_urls.ENDPOINT else set())
            if response is None:
                continue
            responses.append(response)
            if type_url == type_urls.CLUSTER:
                needs = snapshot.of(type_url).needs
                endpoints = {n for name in response.names for t, n in needs[name]
                             if t == type_urls.ENDPOINT}
        return StreamOutput(tuple(responses))

    def applied(self, snapshot: Snapshot) -> Applied:
        """Whether this proxy runs every type of ``snapshot``.

        REJECTED when the latest response of a type was sent for the snapshot's version of
        that type and was NACKed. APPLIED when, for every type, the proxy holds exactly the
        snapshot's versions of what it subscribes to (a wildcard type must have been asked
        for) and the latest response is ACKed.
        """
        for type_url, state in self._types.items():
            info = state.info
            if info.latest_rejected and info.sent_version == snapshot.of(type_url).version:
                return Applied.REJECTED
        for type_url, state in self._types.items():
            target, info = snapshot.of(type_url), state.info
            if type_url in type_urls.WILDCARD and not info.requested:
                return Applied.PENDING
            if info.sent_nonce is not None and not info.latest_acked:
                return Applied.PENDING
            if state.synced is target:
                continue  # checked when it was sent: every ACK need not walk every name
            if any(state.held.get(n) != target.versions[n] for n in state.wanted(target)):
                return Applied.PENDING
            if info.wildcard and not state.held.keys() <= target.resources.keys():
                return Applied.PENDING
        return Applied.APPLIED

    def _subscribe(self, state: _TypeState,
                   request: discovery_pb2.DeltaDiscoveryRequest) -> set[str]:
        """Apply the request's subscription changes (rules 2 and 5); the names that must be
        sent whatever the proxy holds.

        Subscribing or unsubscribing names keeps ``synced``: every name still wanted stays
        at the synced version, and the new names are forced (a sidecar changes its EDS names
        on every cluster change; comparing its thousand names each time was most of the
        stream's work). A wildcard switch, or held versions the request lists, change what
        ``held`` holds: everything is compared."""
        subscribe = set(request.resource_names_subscribe)
        unsubscribe = set(request.resource_names_unsubscribe)
        if (request.initial_resource_versions or WILDCARD_NAME in subscribe
                or WILDCARD_NAME in unsubscribe):
            state.synced = None
        if not state.info.requested:
            state.info = replace(state.info, requested=True)
            state.held.update(request.initial_resource_versions)
            if state.info.type_url in type_urls.WILDCARD and not subscribe and not unsubscribe:
                subscribe.add(WILDCARD_NAME)  # the legacy form of a wildcard subscription
        if WILDCARD_NAME in subscribe and not state.info.wildcard:
            state.info = replace(state.info, wildcard=True)
            state.owed = True
        if WILDCARD_NAME in unsubscribe:
            state.info = replace(state.info, wildcard=False)
        for name in unsubscribe - {WILDCARD_NAME}:
            state.names.discard(name)
            if not state.info.wildcard:
                state.held.pop(name, None)
        named = subscribe - {WILDCARD_NAME}
        state.names |= named
        return named - request.initial_resource_versions.keys()

    def _respond(self, state: _TypeState,
                 force: set[str]) -> Response | None:
        if self.snapshot is None or not state.info.requested:
            return None
        target = self.snapshot.of(state.info.type_url)
        if state.synced is target and not force and not state.owed:
            return None  # the proxy holds this very type snapshot: nothing to compare
        if state.synced is not None and (state.synced is target
                                         or target.base == state.synced.serial):
            # The proxy holds this type snapshot, or the one it was built from: only the
            # names the build touched or dropped can differ (and those the caller forces).
            candidates = set(force) if state.synced is target else target.touched | force
            if not state.info.wildcard:
                candidates &= state.names
            changed = sorted(n for n in candidates if n in target.resources
                             and (n in force or state.held.get(n) != target.versions[n]))
            removed = sorted(n for n in target.dropped if n in state.held)
        else:
            changed = sorted(n for n in state.wanted(target)
                             if n in force or state.held.get(n) != target.versions[n])
            removed = sorted(n for n in state.held if n not in target.resources)
        state.synced = target  # what follows sends exactly what `held` lacks of it
        if not changed and not removed and not state.owed:
            return None
        nonce = next(self.nonces)
        # Fields in number order, as the message's own serialisation writes them (rule 8).
        head = discovery_pb2.DeltaDiscoveryResponse(system_version_info=target.version)
        tail = discovery_pb2.DeltaDiscoveryResponse(
            type_url=state.info.type_url, nonce=nonce, removed_resources=removed)
        entries = self.entries or Entries()
        wire = b"".join([head.SerializeToString(), *(entries.get(target, n) for n in changed),
                         tail.SerializeToString()])
        response = Response(state.info.type_url, nonce, target.version, tuple(changed),
                            tuple(removed), wire)
        for name in changed:
            state.held[name] = target.versions[name]
        for name in removed:
            del state.held[name]
        state.owed = False
        state.in_flight[nonce] = target.version
        state.info = replace(state.info, sent_version=target.version, sent_nonce=nonce,
                             sent_resources=state.info.sent_resources + len(changed),
                             removed_resources=state.info.removed_resources + len(removed))
        return response
