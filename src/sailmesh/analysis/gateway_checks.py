"""Analyzers of Gateway servers as merged onto each gateway workload.

Owns: checks of pitfalls #13 (host-specific TLS servers only: clients without SNI are
refused), #14 (one credential on several servers: HTTP/2 connection reuse gives 404s), #15
(overlapping hosts on one port, first Gateway wins), #17 (`protocol: TLS` + credential and
no mode), #19 (TLS 1.0/1.1 minimum without cipherSuites; meshMTLS does not reach gateways),
a Gateway selector matching no gateway workload and a server port that the gateway's
Service does not expose (IST0162).
Must not know: output, clocks, the CLI. Merging itself is the model's (`gateways_for`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.credential_checks import TERMINATING_MODES
from sailmesh.analysis.messages import Finding
from sailmesh.model import diagnostics as model_codes
from sailmesh.model.credentials import credential_base
from sailmesh.model.mesh import TLS_PROTOCOLS, GatewayServer
from sailmesh.resources.networking import Gateway
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


def shared_credential(ctx: AnalysisContext) -> Iterator[Finding]:
    """#14: browsers reuse an HTTP/2 connection for every host its certificate covers."""
    users: dict[tuple[str, str], dict[tuple[str, int], GatewayServer]] = defaultdict(dict)
    for workload in ctx.gateway_workloads:
        for gs in ctx.merged_servers(workload):
            tls = gs.server.tls
            if tls and tls.credential_name and tls.mode in TERMINATING_MODES:
                key = (workload.namespace, credential_base(tls.credential_name))
                users[key].setdefault((gs.gateway_key, gs.index), gs)
    for (ns, credential), servers in users.items():
        if len(servers) < 2:
            continue
        for gs in servers.values():
            others = "; ".join(f"{o.describe()} (hosts {', '.join(o.host_names)})"
                               for o in servers.values() if o is not gs)
            yield Finding(f"Gateway {gs.gateway_key}", f"{gs.field}.tls.credentialName",
                          f"credential {ns}/{credential} is also used by {others}; a client "
                          "reusing an HTTP/2 connection opened for one of these hosts for "
                          "another gets 404, because each server has its own routes.")


def overlapping_hosts(ctx: AnalysisContext) -> Iterator[Finding]:
    """#15: the model's first-wins merge drops the later server; name winner and loser."""
    seen: set[Finding] = set()
    for workload in ctx.gateway_workloads:
        for d in ctx.model.gateways_for(workload.proxy()).diagnostics:
            if d.code != model_codes.GATEWAY_HOST_CONFLICT:
                continue
            finding = Finding(d.ref, d.field, f"on gateway workload {workload.key}, {d.message}.")
            if finding not in seen:
                seen.add(finding)
                yield finding


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
    """Istio IST0162: a server port that the gateway workload's Service does not expose
    (neither as `port` nor as `targetPort`) cannot be reached through that Service."""
    for gw in ctx.snapshot.of_kind(Gateway):
        for workload in ctx.workloads_of(gw):
            port_map = ctx.model.gateway_port_map(workload.proxy())
            if not port_map:
                continue  # no Service selects the workload: nothing to compare with
            exposed = set(port_map) | set(port_map.values())
            for i, server in enumerate(gw.spec.servers):
                if server.port.number not in exposed:
                    labels = ", ".join(f"{k}={v}" for k, v in sorted(gw.spec.selector.items()))
                    known = ", ".join(f"{p}→{t}" for p, t in sorted(port_map.items()))
                    yield Finding(gw.ref, f"spec.servers[{i}].port.number",
                                  f"The gateway is listening on a target port (port "
                                  f"{server.port.number}) that is not defined in the Service "
                                  f"associated with its workload instances (Pod selector "
                                  f"{labels}; Service ports {known}); it is not reachable "
                                  "through that Service.")
