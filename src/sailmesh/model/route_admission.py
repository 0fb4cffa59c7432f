"""Which Routes the router admits, with the status OpenShift's router writes back.

Owns: the default host (`<name>-<namespace>.<apps domain>`), host ownership (the oldest
Route holding a host wins; a host belongs to one namespace; one Route per host and path),
the router's extended validation of a Route's certificates, and the `status.ingress`
entry of every Route. Must not know: HAProxy, Services, files.

OpenShift facts (openshift/router pkg/router/controller, routeapihelpers):
- Rejected Routes keep existing; the router reports `Admitted=False` with a reason:
  `HostAlreadyClaimed` ("route X already exposes host Y and is older"),
  `ExtendedValidationFailed` (unparsable certificate/key/CA, key not matching),
  `RouteNotAdmitted` for wildcard Routes when wildcards are not allowed (the default).
- Certificate data is never echoed: messages say "redacted ... data".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sailmesh.resources.openshift import Route

ROUTER_NAME = "default"
DEFAULT_APPS_DOMAIN = "apps.sailmesh.test"


@dataclass(frozen=True)
class Admitted:
    route: Route
    host: str
    path: str  # "" for the whole host


@dataclass(frozen=True)
class Rejection:
    reason: str
    message: str


@dataclass(frozen=True)
class Admission:
    admitted: list[Admitted]
    # (namespace, name) → why it is not served; admitted Routes are absent.
    rejected: dict[tuple[str, str], Rejection]
    hosts: dict[tuple[str, str], str]  # every Route's host, admitted or not

    def status(self, route: Route, apps_domain: str, now: str) -> dict[str, Any]:
        """`status` as `oc get route -o yaml` shows it."""
        key = (route.namespace, route.name)
        rejection = self.rejected.get(key)
        condition: dict[str, Any] = {"type": "Admitted", "lastTransitionTime": now,
                                     "status": "False" if rejection else "True"}
        if rejection:
            condition |= {"reason": rejection.reason, "message": rejection.message}
        return {"ingress": [{
            "host": self.hosts.get(key, ""),
            "routerName": ROUTER_NAME,
            "routerCanonicalHostname": f"router-{ROUTER_NAME}.{apps_domain}",
            "wildcardPolicy": route.spec.wildcard_policy or "None",
            "conditions": [condition],
        }]}


def default_host(route: Route, apps_domain: str) -> str:
    """OpenShift's generated host: `<name>-<namespace>.<domain>`, or `<subdomain>.<domain>`."""
    if route.spec.subdomain:
        return f"{route.spec.subdomain}.{apps_domain}"
    return f"{route.name}-{route.namespace}.{apps_domain}"


def admit(routes: Sequence[Route], apps_domain: str) -> Admission:
    """Routes in creation order (oldest first, as the store's snapshot lists them)."""
    admitted: list[Admitted] = []
    rejected: dict[tuple[str, str], Rejection] = {}
    hosts: dict[tuple[str, str], str] = {}
    owners: dict[str, Route] = {}  # host → the oldest admitted Route holding it
    paths: dict[tuple[str, str], Route] = {}  # (host, path) → its Route
    for route in routes:
        key = (route.namespace, route.name)
        host = (route.spec.host or default_host(route, apps_domain)).lower()
        path = route.spec.path or ""
        hosts[key] = host
        if route.spec.wildcard_policy == "Subdomain":
            rejected[key] = Rejection("RouteNotAdmitted", "wildcard routes are not allowed")
            continue
        problem = certificate_problem(route)
        if problem:
            rejected[key] = Rejection("ExtendedValidationFailed", problem)
            continue
        owner = owners.get(host)
        if owner is not None and owner.namespace != route.namespace:
            rejected[key] = Rejection(
                "HostAlreadyClaimed",
                f"route {owner.name} already exposes {host} and is older")
            continue
        holder = paths.get((host, path))
        if holder is not None:
            rejected[key] = Rejection(
                "HostAlreadyClaimed",
                f"route {holder.name} already exposes {host}{path} and is older")
            continue
        owners.setdefault(host, route)
        paths[(host, path)] = route
        admitted.append(Admitted(route, host, path))
    return Admission(admitted, rejected, hosts)


def certificate_problem(route: Route) -> str | None:
    """The router's extended validation of `spec.tls` (what it can parse and use)."""
    tls = route.spec.tls
    if tls is None or tls.termination == "passthrough":
        return None
    certs: list[x509.Certificate] = []
    if tls.certificate:
        try:
            certs = x509.load_pem_x509_certificates(tls.certificate.encode())
        except ValueError as exc:
            return _invalid("certificate", f"error decoding certificate: {exc}")
        if not tls.key:
            return _invalid("key", "no key specified")
    if tls.key:
        try:
            key = serialization.load_pem_private_key(tls.key.encode(), password=None)
        except (ValueError, TypeError) as exc:
            return _invalid("key", f"error decoding key: {exc}")
        if not certs:
            return _invalid("certificate", "no certificate specified")
        if key.public_key() != certs[0].public_key():
            return _invalid("key", "private key does not match public key")
    for field, value in (("caCertificate", tls.ca_certificate),
                         ("destinationCACertificate", tls.destination_ca_certificate)):
        if value:
            try:
                x509.load_pem_x509_certificates(value.encode())
            except ValueError as exc:
                return _invalid(field, f"error decoding certificate: {exc}")
    return None


def _invalid(field: str, why: str) -> str:
    words = {"certificate": "certificate", "key": "key", "caCertificate": "ca certificate",
             "destinationCACertificate": "destination ca certificate"}[field]
    return f'spec.tls.{field}: Invalid value: "redacted {words} data": {why}'


__all__ = ["DEFAULT_APPS_DOMAIN", "ROUTER_NAME", "Admission", "Admitted", "Rejection", "admit",
           "certificate_problem", "default_host"]
