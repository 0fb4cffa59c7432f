"""The access-log service (envoy.service.accesslog.v3) our proxies stream their entries to.

Owns: the gRPC server on a Unix socket and the streams: each stream opens with an
identifier (the proxy's node id and the log name, `inbound` or `outbound`) that later
messages may omit; every entry is handed to the sink with them. Must not know: labels or
metrics. IO only; loop-thread only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
from envoy.data.accesslog.v3 import accesslog_pb2 as data_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

_log = logging.getLogger(__name__)

# (node id, log name, entry): an HTTPAccessLogEntry or a TCPAccessLogEntry.
Sink = Callable[[str, str, data_pb2.HTTPAccessLogEntry | data_pb2.TCPAccessLogEntry], None]


class AccessLogService(als_pb2_grpc.AccessLogServiceServicer):
    def __init__(self, socket_path: Path, sink: Sink) -> None:
        self.socket_path = socket_path
        self._sink = sink
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        if self.socket_path.is_socket():
            self.socket_path.unlink()
        server = grpc.aio.server()
        als_pb2_grpc.add_AccessLogServiceServicer_to_server(self, server)
        server.add_insecure_port(f"unix:{self.socket_path}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=0.5)
            self._server = None
        self.socket_path.unlink(missing_ok=True)

    async def StreamAccessLogs(
        self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> als_pb2.StreamAccessLogsResponse:
        node_id = log_name = ""
        async for message in request_iterator:
            if message.HasField("identifier"):
                node_id = message.identifier.node.id
                log_name = message.identifier.log_name
            entries = (message.http_logs.log_entry if message.HasField("http_logs")
                       else message.tcp_logs.log_entry)
            for entry in entries:
                try:
                    self._sink(node_id, log_name, entry)
                except Exception:  # one bad entry never ends the proxy's stream
                    _log.exception("access-log entry from %s not recorded", node_id)
        return als_pb2.StreamAccessLogsResponse()


__all__ = ["AccessLogService", "Sink"]
