"""The OpenShift router → gateway hop: what the router sends for a Route, what the Istio
gateway behind the Route's Service accepts on that port, and whether that works.

Owns: judging a Route whose Service selects a gateway workload, with the router's facts
(sailmesh.router) and the gateway's merged servers (the model): reencrypt opens TLS with
NO SNI and ALPN h2,http/1.1, verifying the chain against destinationCACertificate only
(or the service CA and the name <svc>.<ns>.svc); edge and plain Routes send plain HTTP;
passthrough forwards the client's TLS (SNI = the Route's host). A gateway server that lists
hosts matches by SNI, so a reencrypt Route gets no filter chain: Envoy closes the
connection and the router answers 503 — as on OpenShift. Also the gateway's file-mounted
certificates (Secret volumes) as the gateway pod will see them.
Must not know: output, the CLI, HAProxy syntax.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from sailmesh.analysis.context import AnalysisContext, GatewayWorkload
from sailmesh.model.gateway_merge import TLS_PROTOCOLS, GatewayServer
from sailmesh.model.route_admission import admit
from sailmesh.model.route_backends import endpoint_port, service_port_of
from sailmesh.model.service_ca import is_service_ca, service_hostname
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.core import Deployment, Secret, Service
from sailmesh.resources.openshift import Route

REENCRYPT_ALPN = "h2,http/1.1"


@dataclass
class GatewayJudgement:
    gateway: str  # "Deployment istio-system/istio-ingressgateway"
    port: int  # the gateway pod's port the router connects to
    accepts: str
    works: bool
    reasons: list[str] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)  # "Gateway ns/name spec.servers[i]"


@dataclass
class RouterHop:
    route: str  # "Route ns/name"
    host: str
    termination: str  # "edge", "passthrough", "reencrypt" or "" (plain)
    sends: str
    verifies: str
    judgements: list[GatewayJudgement]

    @property
    def verdict(self) -> str:
        if not self.judgements:
            return "not judged (no gateway behind the Route)"
        ok = [j.works for j in self.judgements]
        return "works" if all(ok) else "fails" if not any(ok) else "partly fails"


def router_hops(ctx: AnalysisContext, apps_domain: str) -> list[RouterHop]:
    """One hop per admitted Route whose Services select a gateway workload."""
    routes = ctx.snapshot.of_kind(Route)
    hops = []
    for admitted in admit(routes, apps_domain).admitted:
        hop = router_hop(ctx, admitted.route, admitted.host)
        if hop.judgements:
            hops.append(hop)
    return hops


def router_hop(ctx: AnalysisContext, route: Route, host: str) -> RouterHop:
    tls = route.spec.tls
    termination = tls.termination if tls else ""
    if termination == "reencrypt":
        sends = f"TLS without SNI (ALPN {REENCRYPT_ALPN})"
        verifies = ("the server's chain against destinationCACertificate (no name check)"
                    if tls and tls.destination_ca_certificate else
                    "the server's chain against the service CA, and the name "
                    f"{service_hostname(route.spec.to.name, route.namespace)}")
    elif termination == "passthrough":
        sends = f"the client's own TLS, untouched (SNI {host} from the client)"
        verifies = "nothing (the client verifies the server)"
    else:
        sends = "plain HTTP (TLS, if any, ended at the router)"
        verifies = "nothing"
    judgements = []
    for ref in route.backends():
        svc = ctx.snapshot.get(Service, route.namespace, ref.name)
        if svc is None or not svc.spec.selector:
            continue
        port = service_port_of(svc, route)
        for workload in ctx.gateway_workloads:
            if workload.namespace != route.namespace or not selector_matches(
                    svc.spec.selector, workload.labels):
                continue
            number = endpoint_port(port, _container_ports(ctx, workload)) if port else None
            if number is not None:
                judgements.append(_judge(ctx, route, host, termination, workload, number))
    return RouterHop(route.ref, host, termination, sends, verifies, judgements)


def _container_ports(ctx: AnalysisContext, workload: GatewayWorkload) -> dict[str, int]:
    dep = ctx.snapshot.get(Deployment, workload.namespace, workload.name)
    if dep is None:
        return {}
    return {p.name: p.container_port for c in dep.spec.template.spec.containers
            for p in c.ports if p.name}


def _judge(ctx: AnalysisContext, route: Route, host: str, termination: str,
           workload: GatewayWorkload, port: int) -> GatewayJudgement:
    servers = [gs for gs in ctx.merged_servers(workload) if gs.target_port == port]
    j = GatewayJudgement(f"Deployment {workload.key}", port, "", False,
                         servers=[f"Gateway {gs.gateway_key} {gs.field}" for gs in servers])
    if not servers:
        j.accepts = "nothing (no Gateway server on this port)"
        j.reasons.append(f"no Gateway server of {j.gateway} listens on port {port}: the "
                         "connection is refused and the router answers 503")
        return j
    tls_servers = [gs for gs in servers if gs.protocol in TLS_PROTOCOLS]
    if not tls_servers:
        j.accepts = "plain HTTP"
        j.works = termination in ("", "edge")
        if not j.works:
            j.reasons.append(f"the router sends TLS to a plain {servers[0].protocol} server: "
                             "the gateway cannot read it and the router answers 503; use an "
                             "edge Route, or serve HTTPS on this port")
        return j
    j.accepts = "; ".join(_accepts(gs) for gs in tls_servers)
    if termination in ("", "edge"):
        j.reasons.append("the router sends plain HTTP to a TLS server: the handshake never "
                         "starts and the router answers 503; use a reencrypt or passthrough "
                         "Route")
        return j
    if termination == "passthrough":
        match = [gs for gs in tls_servers if _host_matches(gs, host)]
        j.works = bool(match)
        if not match:
            j.reasons.append(f"the client's SNI {host} matches no host of the servers on this "
                             f"port ({_hosts(tls_servers)}): the gateway closes the connection")
        return j
    catch_all = [gs for gs in tls_servers if "*" in gs.host_names]
    if not catch_all:
        j.reasons.append(
            f"the servers on port {port} match only by SNI ({_hosts(tls_servers)}), and "
            "OpenShift's router sends no SNI on a reencrypt Route: no filter chain matches, "
            "Envoy closes the connection and the router answers 503. Add a server with "
            "hosts: [\"*\"] on this port (the Route's host still reaches the VirtualService "
            "as the Host header), or use a passthrough Route so the client's SNI arrives")
        return j
    gs = catch_all[0]
    mode = gs.server.tls.mode if gs.server.tls else "SIMPLE"
    if mode in ("MUTUAL", "ISTIO_MUTUAL"):
        j.reasons.append(f"server {gs.port_name} ({mode}) asks for a client certificate; "
                         "the router presents none")
        return j
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
        j.reasons.append(f"server {gs.port_name} passes TLS through by SNI; without SNI "
                         "there is nowhere to send it")
        return j
    j.works, why = _certificate_verdict(ctx, route, workload, gs)
    j.reasons.append(why)
    return j


def _accepts(gs: GatewayServer) -> str:
    mode = gs.server.tls.mode if gs.server.tls else "SIMPLE"
    hosts = "any SNI" if "*" in gs.host_names else "SNI " + ", ".join(gs.host_names)
    return f"TLS {mode} ({hosts})"


def _hosts(servers: list[GatewayServer]) -> str:
    return ", ".join(sorted({h for gs in servers for h in gs.host_names}))


def _host_matches(gs: GatewayServer, host: str) -> bool:
    return any(h in ("*", host) or (h.startswith("*.") and host.endswith(h[1:]))
               for h in gs.host_names)


def _certificate_verdict(ctx: AnalysisContext, route: Route, workload: GatewayWorkload,
                         gs: GatewayServer) -> tuple[bool, str]:
    """Whether the router's verification of the gateway's certificate passes."""
    tls = route.spec.tls
    served = server_certificate(ctx, workload, gs)
    if served is None:
        return True, (f"server {gs.port_name} terminates TLS for any SNI; its certificate "
                      "could not be read here, so the router's check of it is not judged")
    chain, where = served
    cert = chain[0]
    if tls is None or not tls.destination_ca_certificate:
        return _service_ca_verdict(route, chain, where)
    try:
        cas = x509.load_pem_x509_certificates(tls.destination_ca_certificate.encode())
    except ValueError:
        return False, "destinationCACertificate cannot be read"
    if any(_signed_by(cert, ca) for ca in cas):
        return True, (f"the gateway presents {cert.subject.rfc4514_string()} ({where}), "
                      "signed by the destinationCACertificate; the router checks the chain "
                      "only, so the name does not matter")
    return False, (f"the gateway presents {cert.subject.rfc4514_string()} ({where}), issued by "
                   f"{cert.issuer.rfc4514_string()}, which destinationCACertificate does not "
                   "contain: verification fails and the router answers 503")


def _service_ca_verdict(route: Route, chain: list[x509.Certificate],
                        where: str) -> tuple[bool, str]:
    """No destinationCACertificate: the router trusts the service CA and checks the name
    <svc>.<ns>.svc. Whether the service CA issued the gateway's certificate is read from
    its own chain (the operator writes the certificate, then the CA, into tls.crt)."""
    cert, name = chain[0], service_hostname(route.spec.to.name, route.namespace)
    ca = next((c for c in chain[1:] if is_service_ca(c) and _signed_by(cert, c)), None)
    if ca is None:
        return False, ("no destinationCACertificate: the router trusts only the service CA and "
                       f"checks the name {name}; the gateway's certificate ({where}) is not "
                       "from the service CA, so the handshake fails and the router answers "
                       "503. Set destinationCACertificate to the CA that signed it, or have "
                       "the service CA issue it (annotate the Service "
                       "service.beta.openshift.io/serving-cert-secret-name)")
    try:
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not any(n == name or (n.startswith("*.") and name.split(".", 1)[1] == n[2:])
               for n in names):
        return False, (f"the gateway presents {cert.subject.rfc4514_string()} ({where}) from "
                       f"the service CA, but for {', '.join(names) or 'no DNS name'}, not "
                       f"{name}: the router's name check fails and it answers 503")
    return True, (f"the gateway presents {cert.subject.rfc4514_string()} ({where}), issued by "
                  f"the service CA ({ca.subject.rfc4514_string()}) for {name}: the router's "
                  "chain and name checks pass")


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    key = ca.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(cert.signature, cert.tbs_certificate_bytes,
                       ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, AssertionError):
        return False
    return True


def server_certificate(ctx: AnalysisContext, workload: GatewayWorkload,
                       gs: GatewayServer) -> tuple[list[x509.Certificate], str] | None:
    """The certificate chain a gateway server presents (leaf first): its credentialName
    Secret, or the Secret volume that holds its serverCertificate file."""
    tls = gs.server.tls
    if tls is None:
        return None
    data: bytes | None = None
    where = ""
    if tls.credential_name:
        secret = ctx.snapshot.get(Secret, workload.namespace, tls.credential_name)
        if secret is not None:
            data = secret.values().get("tls.crt") or secret.values().get("cert")
            where = f"Secret {workload.namespace}/{tls.credential_name}"
    elif tls.server_certificate:
        found = volume_file(ctx, workload, tls.server_certificate)
        if found is not None and found[1] is not None:
            data, where = found[1], f"{tls.server_certificate} from {found[0]}"
    if not data:
        return None
    try:
        return x509.load_pem_x509_certificates(data), where
    except ValueError:
        return None


def volume_file(ctx: AnalysisContext, workload: GatewayWorkload,
                path: str) -> tuple[str, bytes | None] | None:
    """(the Secret it comes from, its content or None when missing) for a file under one
    of the gateway's Secret volumes; None when no Secret volume holds that path."""
    dep = ctx.snapshot.get(Deployment, workload.namespace, workload.name)
    if dep is None:
        return None
    spec = dep.spec.template.spec
    volumes = {v.name: v for v in spec.volumes}
    p = PurePosixPath(path)
    for c in spec.containers:
        for m in c.volume_mounts:
            mount = PurePosixPath(m.mount_path)
            vol = volumes.get(m.name)
            if vol is None or vol.secret is None or mount not in p.parents:
                continue
            name = str(p.relative_to(mount))
            ref = f"Secret {workload.namespace}/{vol.secret.secret_name}"
            secret = ctx.snapshot.get(Secret, workload.namespace, vol.secret.secret_name)
            if secret is None:
                return ref, None
            files = secret.values()
            if vol.secret.items:
                files = {i.path: files[i.key] for i in vol.secret.items if i.key in files}
            return ref, files.get(name)
    return None


def unreadable_server_files(ctx: AnalysisContext) -> Iterator[tuple[GatewayServer, str, str]]:
    """(server, field, why) for serverCertificate/privateKey/caCertificates paths under a
    gateway's Secret volume whose Secret or key is missing."""
    seen: set[tuple[str, int, str]] = set()
    for workload in ctx.gateway_workloads:
        for gs in ctx.merged_servers(workload):
            tls = gs.server.tls
            if tls is None or tls.credential_name:
                continue
            for field_name, path in (("serverCertificate", tls.server_certificate),
                                     ("privateKey", tls.private_key),
                                     ("caCertificates", tls.ca_certificates)):
                if not path or (gs.gateway_key, gs.index, field_name) in seen:
                    continue
                found = volume_file(ctx, workload, path)
                if found is None or found[1] is not None:
                    continue
                seen.add((gs.gateway_key, gs.index, field_name))
                source, _ = found
                secret = ctx.snapshot.get(Secret, workload.namespace, source.split("/", 1)[1])
                why = (f"{path} comes from {source}, which does not exist (the volume is "
                       "optional, so the gateway starts without the file)" if secret is None
                       else f"{path}: {source} has no key {PurePosixPath(path).name} (it has "
                       f"{', '.join(sorted(secret.values())) or 'none'})")
                yield gs, field_name, why


__all__ = ["GatewayJudgement", "RouterHop", "router_hop", "router_hops", "server_certificate",
           "unreadable_server_files", "volume_file"]
