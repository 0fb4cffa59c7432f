"""Analyzers of Gateway servers and the gateway workloads they configure.

Owns: checks of pitfalls #13 (host-specific TLS servers only: clients without SNI are
refused), #14 (one certificate on Gateways of one workload: HTTP/2 connection reuse gives
404s; IST0138), #15 (one host and port claimed by Gateways of one workload, first Gateway
wins; IST0145), #17 (`protocol: TLS` + credential and no mode), #19 (TLS 1.0/1.1 minimum
without cipherSuites; meshMTLS does not reach gateways), a Gateway selector matching no
gateway workload (IST0101) and a server port that no Service of its workloads exposes
(IST0162). Which Gateways share a workload follows istioctl: the same selector, or selectors
that both match some pod (IST0145); a selector that includes the other's labels (IST0138).
Must not know: output, clocks, the CLI. Merging itself is the model's (`gateways_for`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import Finding
from sailmesh.model.gateway_merge import TLS_PROTOCOLS, GatewayServer
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.networking import Gateway, ServerTLSSettings
from sailmesh.resources.operator import IstioOperator

WEAK_VERSIONS = frozenset({"TLSV1_0", "TLSV1_1"})


def selector_without_workload(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0101 (referenced selector not found): the Gateway configures nothing."""
    for gw in ctx.snapshot.of_kind(Gateway):
        if not ctx.workloads_of(gw):
            labels = ", ".join(f"{k}={v}" for k, v in sorted(gw.spec.selector.items()))
            yield Finding(gw.ref, "spec.selector",
                          f"selector {{{labels}}} matches no gateway workload (no Deployment's "
                          "pod template has these labels); this Gateway is applied nowhere.")


def sni_only_servers(ctx: AnalysisContext) -> Iterator[Finding]:
    """#13: a TLS port whose servers all name hosts needs SNI; `*` would catch the rest."""
    seen: set[tuple[str, int]] = set()
    for workload in ctx.gateway_workloads:
        by_port: dict[int, list[GatewayServer]] = defaultdict(list)
        for gs in ctx.merged_servers(workload):
            if gs.protocol in TLS_PROTOCOLS:
                by_port[gs.server.port.number].append(gs)
        for port, servers in sorted(by_port.items()):
            if any("*" in gs.host_names for gs in servers):
                continue
            hosts = ", ".join(sorted({h for gs in servers for h in gs.host_names}))
            for gw_key in dict.fromkeys(gs.gateway_key for gs in servers):
                if (gw_key, port) in seen:
                    continue
                seen.add((gw_key, port))
                first = next(gs for gs in servers if gs.gateway_key == gw_key)
                yield Finding(f"Gateway {gw_key}", f"{first.field}.hosts",
                              f"port {port} of gateway workload {workload.key} has only "
                              f"host-specific TLS servers ({hosts}); clients that send no SNI "
                              "(URLs with an IP address, load-balancer health checks) are "
                              "refused with a connection reset.")


def _same_certificate(a: ServerTLSSettings, b: ServerTLSSettings) -> bool:
    """One credentialName, or (without credentialName) one serverCertificate + privateKey."""
    if a.credential_name or b.credential_name:
        return a.credential_name == b.credential_name
    return bool(a.server_certificate and a.server_certificate == b.server_certificate
                and a.private_key and a.private_key == b.private_key)


def shared_credential(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0138, pitfall #14: browsers reuse an HTTP/2 connection for every host its
    certificate covers. Told to a Gateway when another Gateway that selects at least its
    labels (and so runs where it does) serves the same certificate (istioctl's rule)."""
    gateways = ctx.snapshot.of_kind(Gateway)
    for gw in gateways:
        for other in gateways:
            if other is gw or not all(other.spec.selector.get(k) == v
                                      for k, v in gw.spec.selector.items()):
                continue
            for i, mine in enumerate(gw.spec.servers):
                for theirs in other.spec.servers:
                    if mine.tls and theirs.tls and _same_certificate(mine.tls, theirs.tls):
                        what = mine.tls.credential_name or mine.tls.server_certificate
                        yield Finding(gw.ref, f"spec.servers[{i}].tls",
                                      f"certificate {what} is also served by Gateway "
                                      f"{other.namespace}/{other.name} (hosts "
                                      f"{', '.join(theirs.hosts)}); a client reusing an HTTP/2 "
                                      "connection opened for one of these hosts for another "
                                      "gets 404, because each server has its own routes.")


def _share_workload(ctx: AnalysisContext, a: Gateway, b: Gateway) -> bool:
    """Do two Gateways configure one gateway workload? The same selector does, and so do
    different ones that both match some pod (a sub-selector of the other, istioctl's rule)."""
    if a.spec.selector == b.spec.selector:
        return True
    return any(selector_matches(a.spec.selector, w.labels)
               and selector_matches(b.spec.selector, w.labels) for w in ctx.workloads)


def overlapping_hosts(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0145, pitfall #15: two Gateways on one workload claim the same host (and
    bind) on the same port, whatever the protocol; the oldest Gateway's server wins. One
    finding per server of each Gateway involved."""
    gateways = ctx.snapshot.of_kind(Gateway)  # oldest first
    for gw in gateways:
        others = [o for o in gateways if o is not gw and _share_workload(ctx, gw, o)]
        for i, server in enumerate(gw.spec.servers):
            claims = {(h, server.bind) for h in server.hosts}
            rivals = [o for o in others if any(
                s.port.number == server.port.number and claims & {(h, s.bind) for h in s.hosts}
                for s in o.spec.servers)]
            if not rivals:
                continue
            names = ",".join(sorted(f"{o.namespace}/{o.name}" for o in rivals))
            older = [o for o in rivals if gateways.index(o) < gateways.index(gw)]
            fate = (f"this server is dropped where they meet: Gateway {older[0].namespace}/"
                    f"{older[0].name} is older and the first wins" if older else
                    "this Gateway is the oldest, so its server wins and theirs are dropped")
            labels = ",".join(f"{k}={v}" for k, v in sorted(gw.spec.selector.items()))
            yield Finding(gw.ref, f"spec.servers[{i}]",
                          f"Conflict with gateways {names} (workload selector {labels}, port "
                          f"{server.port.number}, hosts {','.join(server.hosts)}); {fate}.")


def tls_without_mode(ctx: AnalysisContext) -> Iterator[Finding]:
    """#17: `protocol: TLS` defaults to PASSTHROUGH, so the credential is silently unused."""
    for gw in ctx.snapshot.of_kind(Gateway):
        for i, server in enumerate(gw.spec.servers):
            tls = server.tls
            if (server.port.protocol.upper() == "TLS" and tls is not None
                    and "mode" not in tls.model_fields_set
                    and (tls.credential_name or tls.credential_names or tls.server_certificate)):
                yield Finding(gw.ref, f"spec.servers[{i}].tls.mode",
                              "protocol TLS with a credential and no mode: the mode defaults to "
                              "PASSTHROUGH, so the gateway does not terminate TLS and the "
                              "credential is ignored.")


def weak_min_tls(ctx: AnalysisContext) -> Iterator[Finding]:
    """#19: Istio's default cipher list has no cipher usable by TLS 1.0/1.1 clients."""
    defaults = ctx.model.mesh.tls_defaults
    for gw in ctx.snapshot.of_kind(Gateway):
        for i, server in enumerate(gw.spec.servers):
            tls = server.tls
            if tls is None or tls.cipher_suites or tls.mode == "ISTIO_MUTUAL":
                continue
            minimum = tls.min_protocol_version
            if minimum == "TLS_AUTO":
                minimum = defaults.min_protocol_version
            if minimum in WEAK_VERSIONS:
                yield Finding(gw.ref, f"spec.servers[{i}].tls.minProtocolVersion",
                              f"minimum {minimum} without cipherSuites: the default cipher "
                              "list has no cipher for TLS 1.0/1.1, so old clients are still "
                              "rejected.")


def mesh_mtls_not_gateways(ctx: AnalysisContext) -> Iterator[Finding]:
    """#19: meshConfig.meshMTLS is the sidecars' inbound mTLS only (Istio MeshConfig docs)."""
    has_tls_gateway = any(s.tls is not None for g in ctx.snapshot.of_kind(Gateway)
                          for s in g.spec.servers)
    if not has_tls_gateway:
        return
    for op in ctx.snapshot.of_kind(IstioOperator):
        mesh = op.spec.mesh_config
        if "mesh_mtls" in mesh.model_fields_set:
            yield Finding(op.ref, "spec.meshConfig.meshMTLS",
                          "meshMTLS applies to the server side of sidecar mutual TLS only; "
                          "it does not change the TLS versions or ciphers of gateways.")


def port_not_on_service(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0162: a server port that no Service selecting the Gateway's workloads exposes
    (neither as `port` nor as `targetPort`) cannot be reached through a Service; with no
    Service at all, no port can."""
    for gw in ctx.snapshot.of_kind(Gateway):
        workloads = ctx.workloads_of(gw)
        if not workloads:
            continue  # IST0101 (selector matches nothing) reports it
        port_map: dict[int, int] = {}
        for workload in workloads:
            for port, target in ctx.model.gateway_port_map(workload.proxy()).items():
                port_map.setdefault(port, target)
        exposed = set(port_map) | set(port_map.values())
        labels = ", ".join(f"{k}={v}" for k, v in sorted(gw.spec.selector.items()))
        known = (f"Service ports {', '.join(f'{p}→{t}' for p, t in sorted(port_map.items()))}"
                 if port_map else "no Service selects them")
        for i, server in enumerate(gw.spec.servers):
            if server.port.number not in exposed:
                yield Finding(gw.ref, f"spec.servers[{i}].port.number",
                              f"The gateway is listening on a target port (port "
                              f"{server.port.number}) that is not defined in the Service "
                              f"associated with its workload instances (Pod selector {labels}; "
                              f"{known}); it is not reachable through a Service.")
