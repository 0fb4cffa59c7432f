"""What two running Envoys really do on a hop, read from their config dumps.

Owns: reading an outbound cluster's transport socket (plaintext, TLS, mesh mTLS, auto mTLS)
and a sidecar's inbound chains for one port (STRICT, PERMISSIVE, DISABLE) out of Envoy's
`/config_dump` JSON, and comparing them with the static verdict of `explain`.
Must not know: how dumps are fetched (the CLI reads the admin sockets), output.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sailmesh.translate.sidecar_inbound import INBOUND_LISTENER

TLS_SOCKET = "envoy.transport_sockets.tls"
WORKLOAD_SECRET = "default"  # SDS name of the proxy's own mesh certificate


@dataclass(frozen=True)
class Observed:
    """One side as Envoy runs it: a short kind and the detail behind it."""

    kind: str  # client: mTLS / TLS / plaintext / auto; server: STRICT / PERMISSIVE / DISABLE
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail}


def _section(dump: Mapping[str, Any], suffix: str) -> Mapping[str, Any]:
    for section in dump.get("configs", []):
        if str(section.get("@type", "")).endswith(suffix):
            return section
    return {}


def _clusters(dump: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    sec = _section(dump, "ClustersConfigDump")
    for entry in sec.get("static_clusters", []) + sec.get("dynamic_active_clusters", []):
        yield entry.get("cluster", {})


def _listeners(dump: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    sec = _section(dump, "ListenersConfigDump")
    for entry in sec.get("static_listeners", []):
        yield entry.get("listener", {})
    for entry in sec.get("dynamic_listeners", []):
        if "active_state" in entry:
            yield entry["active_state"].get("listener", {})


def _socket_kind(socket: Mapping[str, Any] | None) -> Observed:
    if not socket or socket.get("name") != TLS_SOCKET:
        return Observed("plaintext", "no TLS transport socket")
    ctx = socket.get("typed_config", {})
    common = ctx.get("common_tls_context", {})
    sds = [c.get("name") for c in common.get("tls_certificate_sds_secret_configs", [])]
    sni = ctx.get("sni") or "(Host header)"
    if WORKLOAD_SECRET in sds:
        return Observed("mTLS", f"mesh certificate (SDS {WORKLOAD_SECRET}), SNI {sni}")
    client_cert = " with a client certificate" if common.get("tls_certificates") else ""
    return Observed("TLS", f"TLS origination{client_cert}, SNI {sni}")


def client_side(dump: Mapping[str, Any], cluster: str) -> Observed | None:
    """How a proxy connects through `cluster` (None: no such cluster in the dump)."""
    for c in _clusters(dump):
        if c.get("name") != cluster:
            continue
        matches = c.get("transport_socket_matches", [])
        if matches:
            kinds = [f"{m.get('name', '?')}→{_socket_kind(m.get('transport_socket')).kind}"
                     for m in matches]
            return Observed("auto", "transport_socket_matches: " + ", ".join(kinds))
        return _socket_kind(c.get("transport_socket"))
    return None


def server_side(dump: Mapping[str, Any], port: int) -> Observed | None:
    """What a sidecar's virtualInbound accepts on container port `port` (None: no chain):
    the port's own chains, else the passthrough chains (those without a port)."""
    chains = [chain for lst in _listeners(dump) if lst.get("name") == INBOUND_LISTENER
              for chain in lst.get("filter_chains", [])]
    own = [c for c in chains if c.get("filter_chain_match", {}).get("destination_port") == port]
    tls = plain = False
    for chain in own or [c for c in chains
                         if "destination_port" not in c.get("filter_chain_match", {})]:
        match = chain.get("filter_chain_match", {})
        terminates = chain.get("transport_socket", {}).get("name") == TLS_SOCKET
        if match.get("transport_protocol") == "tls" and terminates:
            tls = True
        else:
            plain = True
    if not (tls or plain):
        return None
    kind = "PERMISSIVE" if tls and plain else "STRICT" if tls else "DISABLE"
    detail = {"PERMISSIVE": "an mTLS chain and a plaintext chain",
              "STRICT": "only an mTLS chain", "DISABLE": "only plaintext chains"}[kind]
    where = f"port {port}" if own else f"passthrough (no chains of port {port})"
    return Observed(kind, f"virtualInbound {where}: {detail}")


def client_agrees(static_mode: str, observed: Observed) -> bool:
    expected = {"ISTIO_MUTUAL": "mTLS", "SIMPLE": "TLS", "MUTUAL": "TLS",
                "DISABLE": "plaintext", "AUTO": "auto"}.get(static_mode)
    return expected == observed.kind
