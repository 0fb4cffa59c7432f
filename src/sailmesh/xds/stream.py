"""One ADS stream's protocol state, sans IO: requests in, responses and records out.

Theory of operation (state-of-the-world ADS, Envoy "xDS REST and gRPC protocol" doc):

1. Every response carries the type's snapshot version and a nonce unique on this stream.
2. A request whose ``response_nonce`` is not the latest nonce sent for its type is stale:
   the client has not seen our newest response yet, so the request is ignored ("the
   management server should not send a DiscoveryResponse for a stale request").
3. A request carrying the latest nonce is an ACK, or a NACK when ``error_detail`` is set.
   After a NACK the proxy keeps its last good config; we record the error and do not resend
   the rejected content until the snapshot or the subscription changes.
4. LDS and CDS are wildcard: each response is the complete set. RDS, EDS and SDS answer the
   names of the client's latest request that the snapshot holds; nothing is sent for a
   subscription the snapshot cannot satisfy yet.
5. A type is sent when its content (version, names sent) differs from what was last sent on
   this stream, or when the client asks with no nonce (its first request for the type).
6. A new snapshot is pushed in ADS order (``type_urls.ADS_ORDER``). When CDS is pushed, EDS
   is resent even if unchanged: a replaced cluster warms until it receives its endpoints, and
   a SotW proxy without the EDS cache does not get them otherwise (envoyproxy/envoy#13009).

Everything that changes what is sent lives in this file. It must not know gRPC, asyncio,
clocks, or how resources were built; nonces come from an injectable iterator.
"""

import enum
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from envoy.service.discovery.v3 import discovery_pb2

from . import type_urls
from .cache import Snapshot


@dataclass(frozen=True)
class Ack:
    type_url: str
    version: str
    nonce: str


@dataclass(frozen=True)
class Nack:
    type_url: str
    version: str  # the version the proxy rejected (what we sent with that nonce)
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
class StreamOutput:
    """What the IO layer must do: send ``responses`` in order, report ``records``."""

    responses: tuple[discovery_pb2.DiscoveryResponse, ...] = ()
    records: tuple[Record, ...] = ()


class Applied(enum.Enum):
    APPLIED = "applied"
    PENDING = "pending"
    REJECTED = "rejected"


@dataclass(frozen=True)
class TypeStatus:
    """One type's protocol state on one stream (a copy; safe to keep)."""

    type_url: str
    requested: bool = False
    subscribed: frozenset[str] = frozenset()
    sent_version: str | None = None
    sent_nonce: str | None = None
    sent_names: frozenset[str] | None = None
    acked_version: str | None = None
    acked_nonce: str | None = None
    last_nack: Nack | None = None

    @property
    def latest_rejected(self) -> bool:
        return self.last_nack is not None and self.last_nack.nonce == self.sent_nonce

    @property
    def latest_acked(self) -> bool:
        return self.sent_nonce is not None and self.acked_nonce == self.sent_nonce


def _counter() -> Iterator[str]:
    return (str(n) for n in itertools.count(1))


@dataclass
class AdsStream:
    """Protocol state of one ADS stream for one node."""

    node_id: str
    snapshot: Snapshot | None = None
    nonces: Iterator[str] = field(default_factory=_counter)
    _types: dict[str, TypeStatus] = field(init=False)

    def __post_init__(self) -> None:
        self._types = {t: TypeStatus(t) for t in type_urls.ADS_ORDER}

    def status(self) -> Mapping[str, TypeStatus]:
        return MappingProxyType(dict(self._types))

    def receive(self, request: discovery_pb2.DiscoveryRequest) -> StreamOutput:
        """Apply one DiscoveryRequest; return what to send and what happened."""
        type_url = request.type_url
        state = self._types.get(type_url)
        nonce = request.response_nonce
        if state is None:
            return StreamOutput(records=(Ignored(type_url, nonce, "type not served"),))
        # Rule 2. A nonce we never sent on this stream (none sent yet) cannot be stale: it
        # is the client resuming after a reconnect and is treated as a first request.
        if nonce and state.sent_nonce is not None and nonce != state.sent_nonce:
            reason = f"stale nonce; latest sent is {state.sent_nonce}"
            return StreamOutput(records=(Ignored(type_url, nonce, reason),))
        records: list[Record] = []
        if nonce and nonce == state.sent_nonce:  # rule 3
            if request.HasField("error_detail"):
                nack = Nack(
                    type_url,
                    state.sent_version or "",
                    nonce,
                    request.error_detail.message,
                    request.error_detail.code,
                )
                state = replace(state, last_nack=nack)
                records.append(nack)
            else:
                state = replace(state, acked_version=request.version_info, acked_nonce=nonce)
                records.append(Ack(type_url, request.version_info, nonce))
        subscribed = state.subscribed
        if type_url not in type_urls.WILDCARD:
            subscribed = frozenset(request.resource_names)
        self._types[type_url] = replace(state, requested=True, subscribed=subscribed)
        response = self._respond(type_url, force=not nonce)
        return StreamOutput(tuple(r for r in [response] if r is not None), tuple(records))

    def update(self, snapshot: Snapshot) -> StreamOutput:
        """Adopt a new snapshot; return the pushes it causes, in ADS order (rule 6)."""
        self.snapshot = snapshot
        responses: list[discovery_pb2.DiscoveryResponse] = []
        clusters_pushed = False
        for type_url in type_urls.ADS_ORDER:
            force = type_url == type_urls.ENDPOINT and clusters_pushed
            response = self._respond(type_url, force=force)
            if response is not None:
                responses.append(response)
                clusters_pushed = clusters_pushed or type_url == type_urls.CLUSTER
        return StreamOutput(tuple(responses))

    def applied(self, snapshot: Snapshot) -> Applied:
        """Whether this proxy runs every type of ``snapshot``.

        REJECTED when the latest response of a type carried the snapshot's version and was
        NACKed. A subscribed type is APPLIED when its latest response carried the version,
        covered every subscribed name the snapshot holds, and was ACKed. RDS, EDS and SDS
        with nothing subscribed that the snapshot holds need no response at all.
        """
        for type_url, state in self._types.items():
            target = snapshot.of(type_url)
            if state.latest_rejected and state.sent_version == target.version:
                return Applied.REJECTED
        for type_url, state in self._types.items():
            target = snapshot.of(type_url)
            if type_url in type_urls.WILDCARD:
                wanted = target.names() if state.requested else None
            else:
                wanted = state.subscribed & target.names()
                if not wanted:
                    continue
            if wanted is None or not (
                state.latest_acked
                and state.sent_version == target.version
                and wanted <= (state.sent_names or frozenset())
            ):
                return Applied.PENDING
        return Applied.APPLIED

    def _respond(self, type_url: str, *, force: bool) -> discovery_pb2.DiscoveryResponse | None:
        state = self._types[type_url]
        if self.snapshot is None or not state.requested:
            return None
        target = self.snapshot.of(type_url)
        if type_url in type_urls.WILDCARD:
            # Rule 4: an empty wildcard response is meaningful (delete all) and lets the
            # proxy finish its initial fetch, so it is sent too.
            names = target.names()
        else:
            names = state.subscribed & target.names()
            if not names:
                return None
        unchanged = state.sent_version == target.version and state.sent_names == names
        if unchanged and not force:  # rule 5
            return None
        nonce = next(self.nonces)
        response = discovery_pb2.DiscoveryResponse(
            version_info=target.version,
            type_url=type_url,
            nonce=nonce,
            resources=[target.resources[name] for name in sorted(names)],
        )
        self._types[type_url] = replace(
            state, sent_version=target.version, sent_nonce=nonce, sent_names=names
        )
        return response
