"""The access-log service (envoy.service.accesslog.v3) our proxies stream their entries to.

Owns: one gRPC server per proxy pod, on a socket in that pod's proxy directory (as its xDS
channel): entries arriving there are that pod's, whatever node id a stream's identifier
claims, so no pod can report for another. Each stream opens with an identifier whose log
name (`inbound` or `outbound`) later messages may omit; every entry is handed to the sink
with the channel's node id and the log name. Must not know: labels or metrics.
IO only; loop-thread only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
from envoy.data.accesslog.v3 import accesslog_pb2 as data_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

_log = logging.getLogger(__name__)

# (node id, log name, entry): an HTTPAccessLogEntry or a TCPAccessLogEntry.
Sink = Callable[[str, str, data_pb2.HTTPAccessLogEntry | data_pb2.TCPAccessLogEntry], None]


class _Channel(als_pb2_grpc.AccessLogServiceServicer):
    def __init__(self, node_id: str, sink: Sink) -> None:
        self._node_id = node_id
        self._sink = sink

    async def StreamAccessLogs(
        self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> als_pb2.StreamAccessLogsResponse:
        log_name = ""
        async for message in request_iterator:
            if message.HasField("identifier"):
                log_name = message.identifier.log_name
            entries = (message.http_logs.log_entry if message.HasField("http_logs")
                       else message.tcp_logs.log_entry)
            for entry in entries:
                try:
                    self._sink(self._node_id, log_name, entry)
                except Exception:  # one bad entry never ends the proxy's stream
                    _log.exception("access-log entry from %s not recorded", self._node_id)
        return als_pb2.StreamAccessLogsResponse()


class AccessLogService:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._channels: dict[str, tuple[Path, grpc.aio.Server]] = {}

    async def open_channel(self, node_id: str, path: Path, owner: int = 0) -> None:
        """Take `node_id`'s entries on the socket `path` (uid/gid `owner`, mode 0600).
        Idempotent: an open channel at the same path is kept."""
        current = self._channels.get(node_id)
        if current is not None and current[0] == path and path.is_socket():
            return
        await self.close_channel(node_id)
        path.unlink(missing_ok=True)
        server = grpc.aio.server()
        als_pb2_grpc.add_AccessLogServiceServicer_to_server(_Channel(node_id, self._sink), server)
        server.add_insecure_port(f"unix:{path}")
        await server.start()
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
        for node_id in list(self._channels):
            await self.close_channel(node_id)


__all__ = ["AccessLogService", "Sink"]
