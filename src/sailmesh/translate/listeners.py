"""Gateway listeners: merged Gateway servers → one Listener per listener port.

Owns: listener names and addresses (plus the host binding), filter chains per server kind
(plaintext HTTP collapsed into one chain; one chain per terminating HTTPS server; one chain
per VirtualService `tls` match for PASSTHROUGH), SNI matching, `tls_inspector`, and the
HttpConnectionManager / TcpProxy filters. Must not know: Secret contents (see
`credentials`), route contents (see `routes`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.gateway_merge import TLS_PROTOCOLS, GatewayServer
from sailmesh.model.hosts import fqdn, intersect
from sailmesh.model.indexes import bound_gateways
from sailmesh.model.mesh import MeshModel
from sailmesh.model.proxy import Proxy
from sailmesh.resources.networking import VirtualService
from sailmesh.resources.operator import MeshConfig
from sailmesh.translate.access_log import access_logs
from sailmesh.translate.config_source import pack
from sailmesh.translate.credentials import resolve_credential
from sailmesh.translate.http_manager import HCM, hcm_filter, http_connection_manager
from sailmesh.translate.routes import gateway_route_config, http_route_name, https_route_name
from sailmesh.translate.tcp_routes import route_target, tcp_proxy_filter
from sailmesh.translate.tls_context import server_tls_context
from sailmesh.translate.tracing import hcm_tracing

PASSTHROUGH_MODES = frozenset({"PASSTHROUGH", "AUTO_PASSTHROUGH"})
CATCH_ALL = ""  # claim key of a chain without server_names


def listener_name(port: int) -> str:
    return f"0.0.0.0_{port}"


@dataclass
class GatewayListeners:
    listeners: dict[str, listener_pb2.Listener] = field(default_factory=dict)
    routes: dict[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    secrets: dict[str, secret_pb2.Secret] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def gateway_listeners(model: MeshModel, proxy: Proxy, servers: Sequence[GatewayServer], *,
                      now: datetime) -> GatewayListeners:
    out = GatewayListeners()
    by_port: dict[int, list[GatewayServer]] = defaultdict(list)
    for gs in servers:
        by_port[gs.target_port].append(gs)
    for port in sorted(by_port):
        chains = _Chains()
        plain = [gs for gs in by_port[port] if gs.protocol not in TLS_PROTOCOLS]
        if plain:
            name = http_route_name(port)
            config, diags = gateway_route_config(model, name, plain)
            out.routes[name] = config
            out.diagnostics += diags
            chains.add(CATCH_ALL, (), _chain((), _hcm(name, port, tls=False, mesh=model.mesh,
                                                      proxy=proxy)))
        for gs in by_port[port]:
            if gs.protocol in TLS_PROTOCOLS:
                _tls_server(model, proxy, gs, chains, out, now)
        if not chains.chains:
            continue  # every server was omitted; an empty listener would be rejected
        # Istio's gateway listeners are outbound: with tracing on, Envoy sends the route's
        # operation upstream (x-envoy-decorator-operation), as a client sidecar does.
        listener = listener_pb2.Listener(
            name=listener_name(port), traffic_direction=base_pb2.OUTBOUND,
            address=_address("0.0.0.0", port), filter_chains=chains.chains)
        if proxy.host_bind_netns:
            listener.additional_addresses.append(listener_pb2.AdditionalAddress(
                address=_address("127.0.0.1", port, netns=proxy.host_bind_netns)))
            # The LoadBalancer Services' addresses on their Service ports (80, 443 …), as
            # a cloud load balancer in front of the gateway would answer.
            for lb in proxy.load_balancers:
                if lb.target_port == port:
                    listener.additional_addresses.append(listener_pb2.AdditionalAddress(
                        address=_address(lb.address, lb.port, netns=proxy.host_bind_netns)))
        if any(c.filter_chain_match.server_names for c in chains.chains):
            listener.listener_filters.append(lc.ListenerFilter(
                name="envoy.filters.listener.tls_inspector",
                typed_config=pack(tls_inspector_pb2.TlsInspector())))
        out.diagnostics += chains.diagnostics
        out.listeners[listener.name] = listener
    return out


@dataclass
class _Chains:
    """Filter chains of one listener; Envoy rejects two chains matching the same SNI."""

    chains: list[lc.FilterChain] = field(default_factory=list)
    claims: dict[str, str] = field(default_factory=dict)  # server name → who has it
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def add(self, owner: str, names: Sequence[str], chain: lc.FilterChain,
            gs: GatewayServer | None = None) -> bool:
        keys = list(names) or [CATCH_ALL]
        taken = [k for k in keys if k in self.claims]
        if taken and gs is not None:
            what = f"SNI {taken[0]}" if taken[0] else "the catch-all (no SNI) match"
            self.diagnostics.append(Diagnostic(
                "warning", f"Gateway {gs.gateway_key}", f"{gs.field}.hosts",
                f"{what} on port {gs.server.port.number} is already used by "
                f"{self.claims[taken[0]]}; {owner} is ignored (first wins)",
                codes.GATEWAY_HOST_CONFLICT))
            return False
        for k in keys:
            self.claims[k] = owner
        self.chains.append(chain)
        return True


def _tls_server(model: MeshModel, proxy: Proxy, gs: GatewayServer, chains: _Chains,
                out: GatewayListeners, now: datetime) -> None:
    tls = gs.server.tls
    ref = f"Gateway {gs.gateway_key}"
    if tls is None:
        out.diagnostics.append(Diagnostic("error", ref, f"{gs.field}.tls",
                                          f"server {gs.port_name} has protocol {gs.protocol} "
                                          "but no tls settings; it is ignored",
                                          codes.HTTPS_WITHOUT_TLS))
        return
    if tls.mode in PASSTHROUGH_MODES:
        if tls.mode == "AUTO_PASSTHROUGH":
            out.diagnostics.append(Diagnostic(
                "warning", ref, f"{gs.field}.tls.mode", "AUTO_PASSTHROUGH is not supported "
                "yet; the server is ignored", codes.UNSUPPORTED_TLS_MODE))
            return
        _passthrough(model, gs, chains, out)
        return
    if gs.protocol != "HTTPS":
        out.diagnostics.append(Diagnostic(
            "warning", ref, f"{gs.field}.tls.mode", f"protocol {gs.protocol} with mode "
            f"{tls.mode} (TLS termination to TCP routes) is not supported yet; the server is "
            "ignored", codes.UNSUPPORTED_TLS_MODE))
        return
    if tls.credential_name:
        result = resolve_credential(model, proxy, gs, now=now,
                                    with_ca=tls.mode in ("MUTUAL", "OPTIONAL_MUTUAL"))
        out.diagnostics += result.diagnostics
        if result.secrets is None:
            return  # omitted so that the other chains of the listener keep working
        secrets = result.secrets
    elif tls.mode == "ISTIO_MUTUAL":
        secrets = {}
    elif tls.server_certificate and tls.private_key and (
            tls.mode == "SIMPLE" or tls.ca_certificates):
        if not _server_files_readable(proxy, gs, out):
            return  # omitted: Envoy would reject the whole listener for a missing file
        secrets = {}
    else:
        out.diagnostics.append(Diagnostic(
            "error", ref, f"{gs.field}.tls", f"mode {tls.mode} needs credentialName or "
            "serverCertificate + privateKey" + ("" if tls.mode == "SIMPLE" else
                                                " + caCertificates")
            + "; this server's filter chain is omitted", codes.SERVER_NO_CREDENTIAL))
        return
    context, diags = server_tls_context(gs, model.mesh)
    out.diagnostics += diags
    names = () if "*" in gs.host_names else gs.host_names
    route = https_route_name(gs)
    chain = _chain(names, _hcm(route, gs.target_port, tls=True, mesh=model.mesh, proxy=proxy))
    chain.transport_socket.name = "envoy.transport_sockets.tls"
    chain.transport_socket.typed_config.Pack(context)
    if chains.add(gs.describe(), names, chain, gs):
        config, route_diags = gateway_route_config(model, route, [gs])
        out.routes[route] = config
        out.secrets.update(secrets)
        out.diagnostics += route_diags


def _server_files_readable(proxy: Proxy, gs: GatewayServer, out: GatewayListeners) -> bool:
    """Whether the gateway's Envoy can read the server's certificate, key and CA files in
    its own pod (Istio's file-mounted gateway certificates, e.g. the Secret
    istio-ingressgateway-certs at /etc/istio/ingressgateway-certs)."""
    tls = gs.server.tls
    if proxy.file_problem is None or tls is None:
        return True
    files = [("serverCertificate", tls.server_certificate), ("privateKey", tls.private_key),
             ("caCertificates", tls.ca_certificates if tls.mode != "SIMPLE" else None)]
    failed = [(f, path, why) for f, path in files if path
              if (why := proxy.file_problem(path)) is not None]
    if not failed:
        return True
    field_name, _, _ = failed[0]
    what = "; ".join(f"{path}: {why}" for _, path, why in failed)
    out.diagnostics.append(Diagnostic(
        "error", f"Gateway {gs.gateway_key}", f"{gs.field}.tls.{field_name}",
        f"{proxy.ref} cannot read {what}; server {gs.port_name} is left out of its listener "
        "(create the Secret the gateway mounts there, e.g. `kubectl create -n istio-system "
        "secret tls istio-ingressgateway-certs --key KEY --cert CERT`, or use credentialName)",
        codes.SERVER_FILE_UNREADABLE))
    return False


def _passthrough(model: MeshModel, gs: GatewayServer, chains: _Chains,
                 out: GatewayListeners) -> None:
    """Istio: one chain per VirtualService `tls[].match` whose sniHosts meet the server's
    hosts (and whose `port`, if any, is the server port), with tcp_proxy to its cluster."""
    added = 0
    for vs in model.virtual_services_for(gs.gateway_key):
        for i, route in enumerate(vs.spec.tls):
            for j, match in enumerate(route.match):
                if match.port is not None and match.port != gs.server.port.number:
                    continue
                if match.gateways and gs.gateway_key not in {
                        g if "/" in g else f"{vs.namespace}/{g}" for g in match.gateways}:
                    continue
                names = _sni_intersection(match.sni_hosts, vs, gs)
                if not names:
                    continue
                cluster = route_target(model, vs, route.route)
                if cluster is None:
                    continue
                sni = () if "*" in names else tuple(names)
                owner = f"VirtualService {vs.namespace}/{vs.name} tls[{i}].match[{j}]"
                chain = _chain(sni, tcp_proxy_filter(cluster, access_logs(model.mesh, tcp=True)))
                if chains.add(owner, sni, chain, gs):
                    added += 1
    if added == 0:
        out.diagnostics.append(Diagnostic(
            "info", f"Gateway {gs.gateway_key}", gs.field,
            f"PASSTHROUGH server {gs.port_name} has no VirtualService tls route bound to it "
            "(gateways + sniHosts + port); connections to it are closed",
            codes.PASSTHROUGH_WITHOUT_ROUTE))


def _sni_intersection(sni_hosts: Sequence[str], vs: VirtualService,
                      gs: GatewayServer) -> list[str]:
    if gs.gateway_key not in bound_gateways(vs):
        return []
    out: set[str] = set()
    for sni in sni_hosts:
        for ns, host in gs.hosts:
            if ns in ("*", vs.namespace):
                hit = intersect(fqdn(sni, vs.namespace), host)
                if hit is not None:
                    out.add(hit)
    return sorted(out)


def _hcm(route_name: str, port: int, *, tls: bool, mesh: MeshConfig, proxy: Proxy) -> lc.Filter:
    hcm = http_connection_manager(f"outbound_0.0.0.0_{port}", rds=route_name,
                                  access_log=access_logs(mesh),
                                  tracing=hcm_tracing(mesh, proxy.namespace, proxy.labels))
    # Istio gateway defaults: trust the peer address (the gateway is the edge),
    # normalize paths before matching (RFC 3986 §6), and replace any client-supplied
    # XFCC with the verified client certificate's subject, URI and DNS SANs.
    hcm.forward_client_cert_details = HCM.SANITIZE_SET
    hcm.use_remote_address.value = True
    hcm.normalize_path.value = True
    if tls:
        details = hcm.set_current_client_cert_details
        details.subject.value = True
        details.uri = True
        details.dns = True
    return hcm_filter(hcm)


def _chain(server_names: Sequence[str], network_filter: lc.Filter) -> lc.FilterChain:
    chain = lc.FilterChain(filters=[network_filter])
    if server_names:
        chain.filter_chain_match.server_names.extend(server_names)
    return chain


def _address(ip: str, port: int, *, netns: str | None = None) -> address_pb2.Address:
    sock = address_pb2.SocketAddress(address=ip, port_value=port,
                                     protocol=address_pb2.SocketAddress.TCP)
    if netns:
        sock.network_namespace_filepath = netns
    return address_pb2.Address(socket_address=sock)
