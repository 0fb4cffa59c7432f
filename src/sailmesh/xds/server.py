"""The ADS gRPC server: all of the xds package's IO.

Owns: the grpc.aio server on a Unix socket, per-node channels (one more socket per proxy,
bound to that proxy's node id: the only way a proxy in a pod reaches the control plane,
as Istio's per-pod SDS socket; a request for any other node id on it is refused and
logged), one asyncio task pair per proxy stream (a reader
feeding ``AdsStream`` and a writer draining that stream's outbox), the per-node snapshot
cache, status, events and ``wait_applied``. Proxies speak incremental (delta) ADS only, so a
change sends each proxy the resources that changed, not all of its config again. A slow or
dead proxy only ever blocks its own writer; publishing a snapshot never awaits a stream.

Must not know: how resources are made (it serves what it is given, per node id) or Istio.
Loop-thread only, except the ``*_threadsafe`` methods, which the runtime supervisor calls
from its own thread.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import grpc
from envoy.service.discovery.v3 import ads_pb2, discovery_pb2

from . import type_urls
from .cache import Packer, Resources, SharedLayers, Snapshot, SnapshotCache
from .errors import XdsError
from .stream import (
    Ack,
    AdsStream,
    Applied,
    Entries,
    Ignored,
    Nack,
    Record,
    Response,
    StreamOutput,
    TypeStatus,
)

_log = logging.getLogger(__name__)

# sockaddr_un.sun_path is 108 bytes including the terminating NUL on Linux.
_MAX_SOCKET_PATH = 107

_ADS_SERVICE = ads_pb2.DESCRIPTOR.services_by_name["AggregatedDiscoveryService"].full_name

EventKind = Literal["connect", "disconnect", "push", "ack", "nack", "ignored", "refused"]


@dataclass(frozen=True)
class XdsEvent:
    """Something a proxy stream did, for the caller's log."""

    kind: EventKind
    node_id: str
    type_url: str = ""
    version: str = ""
    nonce: str = ""
    detail: str = ""

    def __str__(self) -> str:
        parts = [self.kind, self.node_id, type_urls.short_name(self.type_url)]
        parts += [f"version={self.version}" if self.version else "", self.detail]
        return " ".join(p for p in parts if p)


SyncState = Literal["SYNCED", "NACK", "STALE", "NOT SENT", "DISCONNECTED"]


@dataclass(frozen=True)
class NodeStatus:
    """What the server knows about one node; ``types`` is keyed by type URL."""

    node_id: str
    snapshot_version: str | None
    connected_since: datetime | None
    types: Mapping[str, TypeStatus]
    problems: tuple[str, ...] = ()

    def nack_message(self, type_url: str) -> str | None:
        """The error detail of the type's last NACK, if any."""
        nack = self.types[type_url].last_nack
        return None if nack is None else nack.message

    def sync_state(self) -> tuple[SyncState, str]:
        """istioctl proxy-status's view of the node, with why when it is not SYNCED:
        DISCONNECTED (no stream), NACK (Envoy rejected what was last sent: its message),
        STALE (sent, not yet confirmed), NOT SENT (nothing asked for yet), SYNCED."""
        if self.connected_since is None:
            return "DISCONNECTED", "no xDS stream from the proxy"
        for type_url, t in self.types.items():
            if t.latest_rejected and t.last_nack is not None:
                return "NACK", (f"{type_urls.short_name(type_url)} rejected by Envoy: "
                                f"{t.last_nack.message[:1500]}")
        pending = [type_urls.short_name(u) for u, t in self.types.items()
                   if t.sent_nonce is not None and not t.latest_acked]
        if pending:
            return "STALE", f"{', '.join(pending)} sent, not yet confirmed"
        if not any(t.sent_nonce for t in self.types.values()):
            return "NOT SENT", "the proxy has not asked for its configuration yet"
        return "SYNCED", ""


@dataclass
class _Connection:
    stream: AdsStream
    since: datetime
    # None tells the writer to end the RPC.
    outbox: asyncio.Queue[Response | None] = field(default_factory=asyncio.Queue)


class XdsServer:
    """Incremental ADS (LDS, RDS, CDS, EDS, SDS) for many proxies on a Unix socket."""

    def __init__(self, socket_path: Path) -> None:
        if len(str(socket_path).encode()) > _MAX_SOCKET_PATH:
            raise XdsError(
                f"socket path {socket_path} is longer than {_MAX_SOCKET_PATH} bytes, the "
                "Unix socket limit; use a shorter state directory"
            )
        self.socket_path = socket_path
        self.on_event: Callable[[XdsEvent], None] | None = None
        self._cache = SnapshotCache()
        self._packer = Packer()
        self._entries = Entries()  # encoded response entries, shared by every stream
        self._connections: dict[str, list[_Connection]] = {}
        self._server: grpc.aio.Server | None = None
        self._channels: dict[str, tuple[Path, grpc.aio.Server]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # Per node: set (and dropped) when something wait_applied looks at changes.
        self._changed: dict[str, asyncio.Event] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise XdsError("xDS server already started")
        self._loop = asyncio.get_running_loop()
        self._changed = {}
        if self.socket_path.is_socket():
            self.socket_path.unlink()  # left by a previous run that did not stop cleanly
        self._server = await self._listen(self.socket_path, None)

    async def _listen(self, path: Path, node_id: str | None) -> grpc.aio.Server:
        server = grpc.aio.server(
            options=[
                # The bootstrap has Envoy ping every 30 s; gRPC's default would answer
                # such pings on an idle stream with GOAWAY "too_many_pings".
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
                ("grpc.http2.max_ping_strikes", 0),
            ]
        )
        server.add_generic_rpc_handlers((_handler(self, node_id),))
        server.add_insecure_port(f"unix:{path}")
        await server.start()
        return server

    async def open_channel(self, node_id: str, path: Path, owner: int = 0) -> None:
        """Serve `node_id`, and only it, on the socket `path` (owned by uid/gid `owner`,
        mode 0600). Idempotent: an open channel at the same path is kept."""
        if len(str(path).encode()) > _MAX_SOCKET_PATH:
            raise XdsError(f"socket path {path} is longer than {_MAX_SOCKET_PATH} bytes")
        current = self._channels.get(node_id)
        if current is not None and current[0] == path and path.is_socket():
            return
        await self.close_channel(node_id)
        path.unlink(missing_ok=True)
        server = await self._listen(path, node_id)
        os.chown(path, owner, owner)
        os.chmod(path, 0o600)
        self._channels[node_id] = (path, server)

    async def close_channel(self, node_id: str) -> None:
        found = self._channels.pop(node_id, None)
        if found is None:
            return
        path, server = found
        await server.stop(grace=0.2)
        path.unlink(missing_ok=True)

    def channels(self) -> dict[str, Path]:
        return {node: path for node, (path, _server) in self._channels.items()}

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        for connections in self._connections.values():
            for connection in connections:
                connection.outbox.put_nowait(None)
        for node_id in list(self._channels):
            await self.close_channel(node_id)
        await server.stop(grace=0.5)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    # -- publishing --------------------------------------------------------------------

    def set_resources(self, node_id: str, resources: Resources) -> str:
        """Publish ``resources`` as the node's snapshot; return its version.

        Connected streams of the node get the changed types at once; a node that connects
        later gets the snapshot on its first requests.
        """
        return self.publish(self.build({node_id: resources}))[node_id]

    def set_resources_threadsafe(self, node_id: str, resources: Resources) -> str:
        """``set_resources`` from another thread: builds here, publishes on the loop."""
        loop = self._require_loop()
        built = self.build({node_id: resources})
        loop.call_soon_threadsafe(self.publish, built)
        return built[node_id].version

    def build(self, resources: Mapping[str, Resources]) -> dict[str, Snapshot]:
        """Each node's snapshot, packed and checked: the CPU part of publishing, safe to run
        off the loop (one builder at a time). Types whose messages are the very objects of
        the node's current snapshot are taken from it; a message shared by several nodes is
        packed once. Nothing is served until ``publish``."""
        built = {}
        shared: SharedLayers = {}  # layers several nodes share are built once
        for node_id, node_resources in resources.items():
            self._packer.start(node_id)
            built[node_id] = Snapshot.build(node_resources, self._packer,
                                            self._cache.get(node_id), shared)
        return built

    def publish(self, snapshots: Mapping[str, Snapshot]) -> dict[str, str]:
        """Serve every node's new snapshot at once (loop thread: no stream sees a part of
        it); returns each node's version."""
        self._entries.rotate()
        for node_id, snapshot in snapshots.items():
            self._publish(node_id, snapshot)
        return {node_id: snapshot.version for node_id, snapshot in snapshots.items()}

    def remove_node(self, node_id: str) -> None:
        """Forget the node's snapshot and end its open streams."""
        self._cache.remove(node_id)
        for connection in self._connections.get(node_id, []):
            connection.outbox.put_nowait(None)
        self._notify(node_id)

    def _publish(self, node_id: str, snapshot: Snapshot) -> None:
        if self._cache.set(node_id, snapshot):
            for connection in self._connections.get(node_id, []):
                self._deliver(connection, connection.stream.update(snapshot))
        self._notify(node_id)

    # -- observing ---------------------------------------------------------------------

    def connected(self) -> list[str]:
        return sorted(node for node, conns in self._connections.items() if conns)

    def status(self, node_id: str) -> NodeStatus:
        snapshot = self._cache.get(node_id)
        connection = self._latest(node_id)
        if connection is None:
            types = MappingProxyType({t: TypeStatus(t) for t in type_urls.ADS_ORDER})
        else:
            types = connection.stream.status()
        return NodeStatus(
            node_id=node_id,
            snapshot_version=None if snapshot is None else snapshot.version,
            connected_since=None if connection is None else connection.since,
            types=types,
            problems=() if snapshot is None else snapshot.problems,
        )

    async def wait_applied(self, node_id: str, version: str, timeout: float) -> bool:
        """True once the node's newest stream ACKed every type of snapshot ``version``.

        False at once when a type of that version was NACKed (the error is in ``status``)
        or when ``version`` is not the node's current snapshot (superseded or unknown);
        False when ``timeout`` seconds pass first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed.setdefault(node_id, asyncio.Event())
            snapshot = self._cache.get(node_id)
            if snapshot is None or snapshot.version != version:
                return False
            connection = self._latest(node_id)
            if connection is not None:
                applied = connection.stream.applied(snapshot)
                if applied is not Applied.PENDING:
                    return applied is Applied.APPLIED
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def wait_applied_threadsafe(self, node_id: str, version: str, timeout: float) -> bool:
        """``wait_applied`` from another thread; blocks that thread, not the loop."""
        loop = self._require_loop()
        future: Future[bool] = asyncio.run_coroutine_threadsafe(
            self.wait_applied(node_id, version, timeout), loop
        )
        return future.result(timeout + 5)

    # -- streams (called by the servicer) ----------------------------------------------

    async def _serve(
        self,
        requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext,
        bound: str | None,
    ) -> AsyncIterator[bytes]:
        first = await anext(requests, None)
        if first is None:
            return
        node_id = first.node.id
        if not node_id:
            # set_node_on_first_message_only: the first request is the only one with a node.
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first request lacks node.id")
        if bound is not None and node_id != bound:
            # A pod's channel serves its own node only: nothing of another identity leaves.
            _log.warning("refused node id %s on the channel of %s", node_id, bound)
            self._emit(XdsEvent("refused", node_id, detail=f"on the channel of {bound}"))
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"this channel serves {bound} only")
        stream = AdsStream(node_id, snapshot=self._cache.get(node_id), entries=self._entries)
        connection = _Connection(stream, datetime.now(UTC))
        self._connections.setdefault(node_id, []).append(connection)
        self._emit(XdsEvent("connect", node_id, detail=context.peer()))
        reader = asyncio.create_task(self._read(connection, first, requests))
        try:
            while (response := await connection.outbox.get()) is not None:
                yield response.wire
        finally:
            reader.cancel()
            self._connections[node_id].remove(connection)
            if not self._connections[node_id]:
                del self._connections[node_id]
            self._emit(XdsEvent("disconnect", node_id))
            self._notify(node_id)

    async def _read(
        self,
        connection: _Connection,
        first: discovery_pb2.DeltaDiscoveryRequest,
        requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
    ) -> None:
        try:
            self._deliver(connection, connection.stream.receive(first))
            async for request in requests:
                self._deliver(connection, connection.stream.receive(request))
        except (grpc.RpcError, asyncio.CancelledError):
            pass  # the proxy went away; the writer's finally cleans up
        except Exception:
            # A bug here must end this one stream visibly, not the server or other streams.
            _log.exception("xDS stream of %s failed", connection.stream.node_id)
        finally:
            connection.outbox.put_nowait(None)

    def _deliver(self, connection: _Connection, output: StreamOutput) -> None:
        node_id = connection.stream.node_id
        for response in output.responses:
            connection.outbox.put_nowait(response)
            self._emit(
                XdsEvent(
                    "push",
                    node_id,
                    response.type_url,
                    response.system_version_info,
                    response.nonce,
                    f"{len(response.names)} resource(s), "
                    f"{len(response.removed_resources)} removed",
                )
            )
        for record in output.records:
            self._emit(_record_event(node_id, record))
        if output.records:
            self._notify(node_id)

    # -- plumbing ----------------------------------------------------------------------

    def _latest(self, node_id: str) -> _Connection | None:
        connections = self._connections.get(node_id)
        return connections[-1] if connections else None

    def _notify(self, node_id: str) -> None:
        # Wake the node's wait_applied calls; each re-checks its own condition. Only the
        # node's: an ACK of one proxy must not make a push re-check every other proxy.
        changed = self._changed.pop(node_id, None)
        if changed is not None:
            changed.set()

    def _emit(self, event: XdsEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            # A broken logger must not take a proxy's config stream down with it.
            _log.exception("xDS on_event callback failed for %s", event)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._server is None:
            raise XdsError("xDS server not started; await start() first")
        return self._loop


def _record_event(node_id: str, record: Record) -> XdsEvent:
    match record:
        case Ack():
            return XdsEvent("ack", node_id, record.type_url, record.version, record.nonce)
        case Nack():
            return XdsEvent("nack", node_id, record.type_url, record.version, record.nonce, record.message)
        case Ignored():
            return XdsEvent("ignored", node_id, record.type_url, "", record.nonce, record.reason)


def _handler(server: XdsServer, node_id: str | None) -> grpc.GenericRpcHandler:
    """The ADS service with its delta rpc, whose responses leave as the stream encoded them
    (no serialiser: ``_serve`` yields each response's wire bytes). The state-of-the-world
    rpc is not served (gRPC answers UNIMPLEMENTED): every proxy's bootstrap asks for
    DELTA_GRPC. ``node_id``: the node a pod's channel serves; None on the shared socket."""

    # grpc.aio streams responses only from an async generator *function*, so this
    # forwards; aclosing() runs _serve's cleanup as soon as the RPC ends.
    async def delta(requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
                    context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(server._serve(requests, context, node_id)) as stream:
            async for wire in stream:
                yield wire

    return grpc.method_handlers_generic_handler(_ADS_SERVICE, {
        "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
            delta, request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString),
    })
