"""Gateway merging: the servers of every Gateway selecting one gateway workload, as Istio
merges them onto its listeners.

Owns: `GatewayServer` (one server of a Gateway on a gateway workload, with the listener
port it lands on), the first-wins merge of servers per listener port and host, and the
conflict diagnostics it finds. Must not know: Envoy, IO, clocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.hosts import split_server_host
from sailmesh.resources.networking import Gateway, Server

# Protocols whose servers are matched by SNI and so can collide on a host (Istio merges
# plaintext HTTP servers on one port into a single chain instead).
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})


@dataclass(frozen=True)
class GatewayServer:
    """One server of a Gateway, as merged onto a gateway workload."""

    gateway: Gateway
    index: int  # position in spec.servers, for diagnostics
    server: Server
    target_port: int  # the listener port this server lands on

    @property
    def gateway_key(self) -> str:
        return f"{self.gateway.namespace}/{self.gateway.name}"

    @property
    def field(self) -> str:
        return f"spec.servers[{self.index}]"

    @property
    def protocol(self) -> str:
        return self.server.port.protocol.upper()

    @property
    def port_name(self) -> str:
        return self.server.port.name or f"{self.protocol.lower()}-{self.server.port.number}"

    @property
    def hosts(self) -> tuple[tuple[str, str], ...]:
        """(namespace filter, host) pairs; see `hosts.split_server_host`."""
        return tuple(split_server_host(h, self.gateway.namespace) for h in self.server.hosts)

    @property
    def host_names(self) -> tuple[str, ...]:
        """Hosts without `ns/`, de-duplicated and sorted (Istio's SNI list order)."""
        return tuple(sorted({h for _, h in self.hosts}))

    def describe(self) -> str:
        return f"Gateway {self.gateway_key} server {self.port_name}"


@dataclass(frozen=True)
class GatewayMerge:
    servers: tuple[GatewayServer, ...]
    diagnostics: tuple[Diagnostic, ...]


def merge_gateways(selecting: Sequence[Gateway], port_map: Mapping[int, int]) -> GatewayMerge:
    """The servers of the Gateways selecting one gateway workload (oldest Gateway first),
    on the listener ports `port_map` gives (Service port → target port).

    Istio (MergeGateways): a TLS server whose host is already served on the same
    listener port by an earlier server is dropped — first wins; a port cannot carry
    both plaintext and TLS servers (the later one is dropped).
    """
    servers: list[GatewayServer] = []
    diags: list[Diagnostic] = []
    sni_claims: dict[tuple[int, str], GatewayServer] = {}
    port_kind: dict[int, tuple[bool, GatewayServer]] = {}
    for gw in selecting:
        for index, server in enumerate(gw.spec.servers):
            gs = GatewayServer(gw, index, server, port_map.get(server.port.number,
                                                               server.port.number))
            is_tls = gs.protocol in TLS_PROTOCOLS
            first = port_kind.setdefault(gs.target_port, (is_tls, gs))
            if first[0] != is_tls:
                diags.append(_conflict(gs, first[1], f"port {server.port.number} already "
                                       f"carries {'TLS' if first[0] else 'plaintext'} "
                                       f"servers of {first[1].describe()}"))
                continue
            if is_tls:
                taken = [(h, sni_claims[(gs.target_port, h)]) for h in gs.host_names
                         if (gs.target_port, h) in sni_claims]
                if taken:
                    host, owner = taken[0]
                    diags.append(_conflict(gs, owner, f"host {host} on port "
                                           f"{server.port.number} is already served by "
                                           f"{owner.describe()}"))
                    continue
                for h in gs.host_names:
                    sni_claims[(gs.target_port, h)] = gs
            servers.append(gs)
    return GatewayMerge(tuple(servers), tuple(diags))


def _conflict(loser: GatewayServer, owner: GatewayServer, why: str) -> Diagnostic:
    return Diagnostic(
        severity="warning", ref=f"Gateway {loser.gateway_key}", field=loser.field,
        message=f"server {loser.port_name} is ignored: {why} (Gateway {owner.gateway_key} is "
                "older; the first Gateway wins)",
        code=codes.GATEWAY_HOST_CONFLICT,
    )
