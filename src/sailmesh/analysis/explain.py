"""Explain one hop: what a client sends to a destination, what the server accepts, and the
verdict — the static half of `sailctl x tls-check`, also used by the mesh analyzers.

Owns: following a sidecar's mesh routes to where a connection really goes; the client side
(which DestinationRule applies, what the client proxy wraps around the application's
bytes, and why the other rules do not apply); the server endpoints (sidecars with their
inbound chains, plain workloads, gateway servers and their next hop, external servers).
The ends of a hop and its shapes live in `hop`, the verdict for each endpoint in
`hop_verdict`. Must not know: Envoy, IO, output.

Policy comes from `model.policy` only (`client_tls_of`, `destination_rule_sources`,
`effective_peer_auth`); this module never re-derives precedence, it explains it.

The layer model (Istio's behaviour, see reference/istio-tls-to-envoy.md):
- The application sends TLS when the port's protocol is HTTPS/TLS (port name prefix
  `https`/`tls`, `appProtocol`, or a ServiceEntry `protocol`), else plaintext.
- A client proxy wraps it: ISTIO_MUTUAL (or auto mTLS towards a sidecar that does not
  DISABLE) → mesh mTLS; SIMPLE/MUTUAL → TLS origination; DISABLE → nothing.
- A server sidecar picks a filter chain by port, TLS or not and the ALPN offered
  (`model.inbound.pick`, the same table its listener is built from): mesh mTLS is told
  apart from the application's own TLS by the mesh ALPN a client sidecar offers; HTTP ports
  parse HTTP, TCP/TLS ports pass bytes, unnamed ports are sniffed; no chain closes the
  connection, an mTLS chain requires the mesh's client certificate.
- The application (or external server) then needs what it speaks: TLS or plaintext.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.hop import (
    GATEWAY_ALIASES,
    TLS_PROTOCOLS,
    ClientSide,
    Destination,
    ExplainError,
    Hop,
    ServerSide,
    Source,
    entry_port_tls,
    find_destination,
    service_port_tls,
)
from sailmesh.analysis.hop_verdict import judge
from sailmesh.analysis.outbound_scope import not_imported, outbound_view
from sailmesh.analysis.workloads import MeshWorkload, selected_by, target_port
from sailmesh.model.credentials import denial_message, lookup_credential
from sailmesh.model.external_world import EXTERNAL_HOSTS_ANNOTATION
from sailmesh.model.gateway_merge import GatewayServer
from sailmesh.model.hosts import fqdn, intersect, matches
from sailmesh.model.inbound import inbound_ports
from sailmesh.model.mesh import MeshModel, mesh_match_fits
from sailmesh.model.policy import (
    applying_destination_rule,
    client_tls_of,
    destination_rule_sources,
    merged_rule,
)
from sailmesh.model.proxy import Proxy
from sailmesh.model.services import exported_to
from sailmesh.resources.networking import (
    DestinationRule,
    HTTPMatchRequest,
    L4MatchAttributes,
    TLSMatchAttributes,
)


def explain(ctx: AnalysisContext, source: Source, dest: Destination) -> Hop:
    routed, route = follow_mesh_route(ctx, source, dest)
    client = _client(ctx, source, routed)
    # The SNI that reaches the server: the client proxy's when it wraps the connection in
    # (m)TLS of its own, else the application's own (the host it addressed).
    wraps = client.mode in ("ISTIO_MUTUAL", "SIMPLE", "MUTUAL")
    sni = (client.sni if wraps and client.sni and not client.sni.startswith("(")
           else dest.host if client.app_tls else None)
    servers = [judge(client, s) for s in _servers(ctx, routed, sni, source.namespace)]
    if routed is dest:
        return Hop(source, dest, client, servers, route=route)
    return Hop(source, routed, client, servers, asked=dest, route=route)


def follow_mesh_route(ctx: AnalysisContext, source: Source,
                      dest: Destination) -> tuple[Destination, list[str]]:
    """Where a sidecar's VirtualService (bound to `mesh`) sends a connection to `dest`, as
    the sidecar's listeners do: `http` routes by port (the first that fits), `tls` routes
    by the SNI (the host) and port, `tcp` routes by port. Returns `dest` itself when no
    route takes it elsewhere, and the reasons when one does."""
    if source.kind != "sidecar":
        return dest, []
    model = outbound_view(ctx, source)  # VirtualServices its Sidecar does not import: none
    vs = model.mesh_virtual_service(dest.host, source.namespace)
    svc = dest.definition
    sp = svc.port(dest.port) if svc is not None else None
    if vs is None or sp is None:
        return dest, []
    labels = dict(source.workload.labels) if source.workload else {}

    def fits(m: HTTPMatchRequest | TLSMatchAttributes | L4MatchAttributes) -> bool:
        return mesh_match_fits(m, dest.port, labels, source.namespace)

    protocol = sp.mesh_protocol
    found: tuple[str, list[Any], str] | None = None
    if protocol == "HTTP":
        for i, http in enumerate(vs.spec.http):
            hits = [m for m in http.match if fits(m)]
            if http.match and not hits:
                continue
            conditions = any(m.uri or m.headers or m.method or m.authority or m.query_params
                             or m.scheme or m.without_headers for m in hits)
            found = (f"http[{i}]", list(http.route),
                     " (for requests its uri/header conditions match; others fall through "
                     "to later routes)" if conditions else "")
            break
    elif protocol == "TLS":
        for i, tls in enumerate(vs.spec.tls):
            if any(fits(m) and dest.host in {fqdn(h, vs.namespace) for h in m.sni_hosts}
                   for m in tls.match):
                found = (f"tls[{i}]", list(tls.route), f" (SNI {dest.host})")
                break
    elif protocol == "TCP":
        for i, tcp in enumerate(vs.spec.tcp):
            if not tcp.match or any(fits(m) for m in tcp.match):
                found = (f"tcp[{i}]", list(tcp.route), "")
                break
    if found is None or not found[1]:
        return dest, []
    where, targets, note = found
    chosen = max(targets, key=lambda t: t.weight or 0)
    d = chosen.destination
    host = model.resolve_host(d.host, vs.namespace)
    port = d.port.number if d.port is not None else dest.port
    if (host, port, d.subset) == (dest.host, dest.port, None):
        return dest, []
    try:
        routed = find_destination(ctx, f"{host}:{port}", vs.namespace, source.namespace)
    except ExplainError as exc:
        # Requests there fail with 503; the route analyzers report the destination.
        return dest, [f"{vs.ref} {where} routes {dest.host}:{dest.port} to {host}:{port}, "
                      f"which cannot be followed ({exc}); the direct path is shown"]
    routed = dataclasses.replace(routed, subset=d.subset)
    split = (f"; {len(targets)} destinations by weight, the heaviest shown"
             if len(targets) > 1 else "")
    reasons = [f"{vs.ref} {where} (bound to mesh) sends {dest.host}:{dest.port} to "
               f"{host}:{port}" + (f" subset {d.subset}" if d.subset else "") + note + split]
    return routed, reasons


def _client(ctx: AnalysisContext, source: Source, dest: Destination) -> ClientSide:
    app_tls = (service_port_tls(ctx, dest.service, dest.port) if dest.service is not None
               else entry_port_tls(dest.entry_port)[0] if dest.entry_port is not None else False)
    sp = dest.service.port(dest.port) if dest.service is not None else None
    http = sp is not None and sp.mesh_protocol == "HTTP"
    gateway_says = None
    if source.kind == "gateway" and source.workload is not None:
        # A gateway sends on what its server made of the connection: the HTTP it terminated,
        # or — through a `tls` route of a PASSTHROUGH server — the client's own TLS.
        passthrough = _gateway_tls_route(ctx, source.workload, dest)
        app_tls = passthrough is not None
        gateway_says = (f"the gateway passes its client's TLS through ({passthrough})"
                        if passthrough else "the gateway sends the HTTP it terminated")
    app = "TLS" if app_tls else "plaintext"
    if not source.proxied:
        why = ("the client is outside the mesh" if source.kind == "outside"
               else f"{source.describe()} has no sidecar ({source.workload.sidecar_reason})"
               if source.workload else "no sidecar")
        return ClientSide(False, "NONE", "no client proxy", app_tls, http=http,
                          reasons=[f"{why}: the application's {app} goes out unchanged"])
    if (outside := not_imported(ctx, source, dest, app_tls, http)) is not None:
        return outside
    labels = dict(source.workload.labels) if source.workload else None
    # The rules that make up the applying DestinationRule: looked up once for the TLS, the
    # reasons and the rules that lost.
    rules = destination_rule_sources(ctx.model, source.namespace, dest.host, labels)
    tls = client_tls_of(ctx.model, merged_rule(rules), dest.port, dest.subset)
    mesh_sni = f"outbound_.{dest.port}_.{dest.subset or ''}_.{dest.host}"
    td = ctx.model.mesh.trust_domain
    identity = (source.workload.identity(td) if source.workload
                else f"spiffe://{td}/ns/{source.namespace}/sa/<service account>")
    reasons = [gateway_says or f"the application sends {app} (port {dest.port} of {dest.ref})"]
    others = _other_rules(ctx, source, dest, rules)
    if tls.settings is None:
        if tls.mode == "AUTO":
            reasons.append(("no DestinationRule sets tls" if tls.source == "default" else
                            f"{tls.source} applies but sets no tls for port {dest.port}")
                           + ": auto mTLS sends mesh mTLS to endpoints with a sidecar that "
                           "does not DISABLE mTLS, plaintext to the others")
            return ClientSide(True, "AUTO", "auto mTLS", app_tls, http=http,
                              sni=mesh_sni,
                              certificate=identity, reasons=reasons, other_rules=others)
        reasons.append("meshConfig.enableAutoMtls is false and no DestinationRule sets tls")
        return ClientSide(True, "DISABLE", "default", app_tls, http=http, reasons=reasons,
                          other_rules=others)
    s = tls.settings
    selected = bool(rules[0].spec.workload_selector)
    merged = rules[1:]
    reasons.append(f"{tls.source} applies to "
                   + (f"{source.describe()} (its workloadSelector selects it)" if selected
                      else f"clients in namespace {source.namespace}")
                   + f" and sets tls.mode {tls.mode}"
                   + (" (merged with " + ", ".join(dr.ref for dr in merged) + ", same "
                      "namespace and host: their subsets are added)" if merged else ""))
    client = ClientSide(True, tls.mode, tls.source, app_tls, http=http, reasons=reasons,
                        other_rules=others)
    if tls.mode == "ISTIO_MUTUAL":
        client.sni = s.sni or mesh_sni
        client.certificate = identity
    elif tls.mode in ("SIMPLE", "MUTUAL"):
        client.sni = s.sni or "(from the Host header)"
        if tls.mode == "MUTUAL":
            client.certificate = s.client_certificate or (
                f"credentialName {s.credential_name}" if s.credential_name else None)
        if tls.mode == "MUTUAL" and s.credential_name and source.workload is not None \
                and source.kind == "sidecar":
            cred = lookup_credential(s.credential_name, source.namespace, ctx.model.secret,
                                     ctx.model.secret_access(source.namespace,
                                                             source.workload.service_account))
            if cred.denied:
                client.left_out = (f"{tls.source} (credentialName): "
                                   + denial_message(cred, source.describe())
                                   + "; the client proxy's cluster is left out")
                client.reasons.append(client.left_out)
    return client


def _gateway_tls_route(ctx: AnalysisContext, gateway: MeshWorkload,
                       dest: Destination) -> str | None:
    """The `tls` route (of a VirtualService bound to a Gateway on this gateway workload)
    that passes connections through to `dest`, if any."""
    model = ctx.model
    proxy = Proxy("router", gateway.namespace, gateway.name, dict(gateway.labels), "")
    keys = {gs.gateway_key for gs in model.gateways_for(proxy).servers}
    for key in sorted(keys):
        for vs in model.virtual_services_for(key):
            for i, route in enumerate(vs.spec.tls):
                for r in route.route:
                    port = r.destination.port.number if r.destination.port else dest.port
                    if (model.resolve_host(r.destination.host, vs.namespace), port) == (
                            dest.host, dest.port):
                        return f"{vs.ref} tls[{i}]"
    return None


def _other_rules(ctx: AnalysisContext, source: Source, dest: Destination,
                 sources: tuple[DestinationRule, ...]) -> list[str]:
    """Every other DestinationRule for the host, with why it does not apply here (`sources`:
    the rules that make up the one that does)."""
    client_ns = source.namespace
    winner = sources[0] if sources else None
    out = []
    root = ctx.model.mesh.root_namespace
    for dr in ctx.snapshot.of_kind(DestinationRule):
        if dr is winner or not matches(dest.host, fqdn(dr.spec.host, dr.namespace)):
            continue
        if any(dr is src for src in sources):
            continue  # merged into the winner: named in the client's reasons
        selector = (dr.spec.workload_selector or {}).get("matchLabels") or {}
        if (selector and dr.namespace == client_ns
                and exported_to(dr.spec.export_to, dr.namespace, client_ns)):
            shown = ", ".join(f"{k}={v}" for k, v in selector.items())
            out.append(f"{dr.ref}: its workloadSelector ({shown}) " + (
                f"does not select {source.describe()}" if source.workload else
                "applies only to the pods it selects; name the source pod to see it")
                + (" (a rule with a selector comes before the namespace's others)"))
            continue
        out.append(f"{dr.ref}: {why_not_applied(dr, winner, client_ns, dest.namespace, root)}")
    return out


def why_not_applied(dr: DestinationRule, winner: DestinationRule | None, client_ns: str,
                    service_ns: str | None, root_ns: str) -> str:
    """Why `dr` is not the rule for clients in `client_ns` (`winner` is)."""
    if not exported_to(dr.spec.export_to, dr.namespace, client_ns):
        return f"exportTo {dr.spec.export_to} hides it from namespace {client_ns}"
    looked = [n for n in dict.fromkeys((client_ns, service_ns, root_ns)) if n]
    if dr.namespace not in looked:
        return (f"namespace {dr.namespace} is not looked in for clients in {client_ns} "
                f"(only {', '.join(looked)}: the client's, the service's and the root "
                "namespace)")
    if winner is not None and winner.namespace == dr.namespace:
        return (f"{winner.ref} in the same namespace wins (an exact host beats a wildcard, "
                "then the oldest wins); a later rule for the same host adds only subsets with "
                "new names, and its trafficPolicy only when the first has none")
    if winner is not None:
        return (f"{winner.ref} in namespace {winner.namespace} is found first (client, then "
                "service, then root namespace); rules of different namespaces are not merged")
    return "does not apply"


def _servers(ctx: AnalysisContext, dest: Destination, sni: str | None,
             client_ns: str) -> list[ServerSide]:
    if dest.entry is not None:
        assert dest.entry_port is not None
        _, server_tls = entry_port_tls(dest.entry_port)
        target = dest.entry_port.target_port or dest.port
        return [ServerSide(f"external {dest.host}", target, False, "NONE", "external",
                           "TLS" if server_tls else "plaintext", server_tls,
                           reasons=[f"{dest.entry.ref} declares port {dest.port} protocol "
                                    f"{dest.entry_port.protocol or 'unset'}"
                                    + (f", targetPort {target}" if target != dest.port else "")],
                           no_endpoints=_entry_without_endpoints(ctx, dest))]
    assert dest.service is not None
    svc = dest.service
    sp = svc.port(dest.port)
    assert sp is not None
    app_tls = service_port_tls(ctx, svc, dest.port)
    out = []
    subset = _subset_labels(ctx, dest, client_ns)
    for w in selected_by(ctx.workloads, svc, gateways=True):
        cport = target_port(sp, w)
        if cport is None or any(w.labels.get(k) != v for k, v in subset.items()):
            continue
        if w.router:
            out.append(_gateway_server(ctx, w, cport, sni))
            continue
        if not w.sidecar:
            out.append(ServerSide(w.ref, cport, False, "NONE", "no sidecar",
                                  "what the application speaks", app_tls,
                                  reasons=[f"no sidecar: {w.sidecar_reason}"]))
            continue
        chains = inbound_ports(ctx.model, w.as_policy_workload())
        port = next((c for c in chains if c.port == cport), None) or next(
            c for c in chains if c.port == 0)
        why = (f"{port.policy} sets {port.mode}" if port.policy != "default"
               else "no PeerAuthentication applies: PERMISSIVE by default")
        out.append(ServerSide(w.ref, cport, True, port.mode, port.policy,
                              ACCEPTS[(port.protocol, port.mode)], app_tls, chains=chains,
                              reasons=[f"sidecar ({w.sidecar_reason}); container port "
                                       f"{cport} ({PROTOCOL_NAMES[port.protocol]}): {why}"]))
    return out


def _entry_without_endpoints(ctx: AnalysisContext, dest: Destination) -> str | None:
    """Why an entry's cluster has no endpoint a proxy can use, or None. DNS endpoints are
    looked up in the proxy's pod, where only the hosts file answers (docs/egress.md)."""
    svc = dest.definition
    if svc is None or svc.resolution == "NONE":
        return None  # a wildcard host or NONE: the address the application dialled
    endpoints = ctx.model.service_endpoints(svc, dest.port)
    if svc.resolution not in ("DNS", "DNS_ROUND_ROBIN"):
        return None if endpoints else f"{dest.ref} has no endpoints for port {dest.port}"
    if any(ctx.model.resolves_in_pods(ep.ip) for ep in endpoints):
        return None
    names = ", ".join(sorted({ep.ip for ep in endpoints})) or dest.host
    return (f"no endpoints: {names} resolves in no pod (no Service annotated "
            f"{EXTERNAL_HOSTS_ANNOTATION} lists it), so the proxy's DNS cluster is empty")


# What a sidecar's chains on a port take, by (inbound protocol, mode) — `model.inbound`.
ACCEPTS = {
    ("HTTP", "STRICT"): "mesh mTLS only",
    ("HTTP", "PERMISSIVE"): "mesh mTLS or plaintext HTTP",
    ("HTTP", "DISABLE"): "plaintext HTTP only (no mTLS termination)",
    ("TCP", "STRICT"): "mesh mTLS only",
    ("TCP", "PERMISSIVE"): "mesh mTLS, plaintext, or the application's own TLS (passed on)",
    ("TCP", "DISABLE"): "anything, passed on as bytes (no mTLS termination)",
    ("AUTO", "STRICT"): "mesh mTLS only",
    ("AUTO", "PERMISSIVE"): "mesh mTLS, plaintext, or the application's own TLS (passed on)",
    ("AUTO", "DISABLE"): "anything, passed on (no mTLS termination)",
}
PROTOCOL_NAMES = {"HTTP": "HTTP port", "TCP": "TCP/TLS port: bytes",
                  "AUTO": "no protocol declared: sniffed", }


def _subset_labels(ctx: AnalysisContext, dest: Destination, client_ns: str) -> dict[str, str]:
    if dest.subset is None:
        return {}
    dr = applying_destination_rule(ctx.model, client_ns, dest.host)
    found = next((s for s in dr.spec.subsets if s.name == dest.subset), None) if dr else None
    return dict(found.labels) if found is not None else {}


def _gateway_server(ctx: AnalysisContext, w: MeshWorkload, cport: int,
                    sni: str | None) -> ServerSide:
    """A gateway workload as the server of a hop: its Gateway server on that listener port
    (by the SNI that arrives, for TLS servers), and where its routes send it on."""
    model = ctx.model
    proxy = Proxy("router", w.namespace, w.name, dict(w.labels), "")
    servers = [gs for gs in model.gateways_for(proxy).servers if gs.target_port == cport]
    gs = next((g for g in servers if g.protocol in TLS_PROTOCOLS and sni is not None
               and any(intersect(sni, h) for h in g.host_names)), None) or next(
        (g for g in servers if g.protocol not in TLS_PROTOCOLS), None)
    if gs is None:
        shown = ", ".join(g.describe() for g in servers) or "none"
        return ServerSide(w.ref, cport, False, "NONE", "gateway", "nothing (no server)", False,
                          gateway=True, refuses=(
                              f"no Gateway server on listener port {cport} matches "
                              + (f"SNI {sni}" if sni else "a connection without SNI")
                              + f" (servers there: {shown}); the gateway closes it"))
    mode = (gs.server.tls.mode if gs.server.tls is not None else None) or "plaintext"
    reason = f"{gs.describe()} ({gs.protocol}, tls {mode}) on listener port {cport}"
    if mode == "ISTIO_MUTUAL":
        side = ServerSide(w.ref, cport, True, "STRICT", gs.describe(),
                          "mesh mTLS only (ISTIO_MUTUAL)", False, gateway=True)
    elif mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        side = ServerSide(w.ref, cport, False, "NONE", gs.describe(),
                          f"TLS it terminates ({mode})", True, gateway=True)
    elif mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
        side = ServerSide(w.ref, cport, False, "NONE", gs.describe(),
                          "TLS it passes through by SNI", True, gateway=True)
    else:
        side = ServerSide(w.ref, cport, True, "DISABLE", gs.describe(), "plaintext", False,
                          gateway=True)
    side.reasons.append(reason)
    side.next_hop = _gateway_next_hop(model, gs)
    if side.next_hop:
        side.reasons.append(side.next_hop)
    return side


def _gateway_next_hop(model: MeshModel, gs: GatewayServer) -> str | None:
    """Where the gateway sends what this server takes: the first route of a VirtualService
    bound to its Gateway, with the tls-check command for that hop."""
    for vs in model.virtual_services_for(gs.gateway_key):
        routes = (vs.spec.tls if gs.server.tls is not None and gs.server.tls.mode in (
            "PASSTHROUGH", "AUTO_PASSTHROUGH") else vs.spec.http)
        for i, route in enumerate(routes):
            matches_ = [m for m in route.match
                        if (m.port is None or m.port == gs.server.port.number)
                        and (not m.gateways or gs.gateway_key in {
                            g if "/" in g else f"{vs.namespace}/{g}" for g in m.gateways})]
            if (route.match and not matches_) or not route.route:
                continue
            d = route.route[0].destination
            host = model.resolve_host(d.host, vs.namespace)
            port = f":{d.port.number}" if d.port is not None else ""
            kind = "tls" if routes is vs.spec.tls else "http"
            alias = next((a for a, v in GATEWAY_ALIASES.items()
                          if gs.gateway.spec.selector.get("istio") == v), None)
            check = (f"; next hop: sailctl x tls-check {alias} {host}{port}" if alias else "")
            return f"then {vs.ref} {kind}[{i}] sends it to {host}{port}{check}"
    return None
