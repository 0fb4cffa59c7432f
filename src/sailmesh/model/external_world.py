"""The outside world, locally: Services that stand in for hosts beyond the mesh.

Egress needs servers that are *not* part of the mesh — `wikipedia.org` with a certificate
from its own CA — on a machine that may have no network at all. A Service annotated

    sailmesh.io/external-hosts: "wikipedia.org,www.wikipedia.org"

is such a stand-in. Owns the three rules that make it one:
- it is not in the service registry: no mesh clusters, listeners or routes come from it,
  so the mesh sees those names only through ServiceEntries, as it would in a cluster;
- every pod's hosts file maps the listed names to the Service's ClusterIP (the names
  resolve inside sailmesh's pods and nowhere else — never on the host);
- its ClusterIP forwards to its pods as any Service does, so the "external" server can be
  any Deployment (keep it out of injection: a namespace without `istio-injection`).
A ServiceEntry with `resolution: DNS` then resolves through the pod's hosts file: Envoy's
resolver reads /etc/hosts before asking a name server.

A stand-in annotated `sailmesh.io/public-certificate: <secret>` also gets a certificate for
its names that pods trust as a public site's: the mesh keeps Secret `<secret>` (in the
Service's namespace, type kubernetes.io/tls) signed by the offline internet's root, which
is in every pod's system trust store (sailmesh.ca.web).
Must not know: Envoy, IO, how hosts files are written.
"""

from __future__ import annotations

from collections.abc import Mapping

from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.core import Service

EXTERNAL_HOSTS_ANNOTATION = "sailmesh.io/external-hosts"
PUBLIC_CERTIFICATE_ANNOTATION = "sailmesh.io/public-certificate"
# On a Secret the mesh made for a stand-in: the Service it is for. A Secret without it is
# the user's, and never overwritten.
ISSUED_FOR_ANNOTATION = "sailmesh.io/public-certificate-for"


def external_hosts(svc: Service) -> tuple[str, ...]:
    """The names a Service stands in for (empty for an ordinary Service)."""
    raw = svc.metadata.annotations.get(EXTERNAL_HOSTS_ANNOTATION, "")
    return tuple(dict.fromkeys(h.strip().lower() for h in raw.replace(" ", ",").split(",")
                               if h.strip()))


def is_external_service(svc: Service) -> bool:
    return bool(external_hosts(svc))


def public_certificate_secret(svc: Service) -> str | None:
    """The Secret a stand-in's public certificate goes to (None: it asks for none)."""
    if not is_external_service(svc):
        return None
    return svc.metadata.annotations.get(PUBLIC_CERTIFICATE_ANNOTATION, "").strip() or None


def stand_in_addresses(snap: Snapshot, vips: Mapping[tuple[str, str], str],
                       ) -> dict[str, str | None]:
    """Every name a stand-in claims → its ClusterIP (None until the runtime allocates one).

    A name claimed by two Services goes to the older one (first applied wins).
    """
    out: dict[str, str | None] = {}
    for svc in snap.of_kind(Service):
        for name in external_hosts(svc):
            out.setdefault(name, vips.get((svc.namespace, svc.name)))
    return out


def external_hosts_entries(snap: Snapshot, vips: Mapping[tuple[str, str], str],
                           ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Hosts-file rows (address, names) for every external stand-in with a ClusterIP."""
    rows: dict[str, list[str]] = {}
    for name, vip in stand_in_addresses(snap, vips).items():
        if vip is not None:
            rows.setdefault(vip, []).append(name)
    return tuple((vip, tuple(names)) for vip, names in rows.items())


__all__ = ["EXTERNAL_HOSTS_ANNOTATION", "ISSUED_FOR_ANNOTATION", "PUBLIC_CERTIFICATE_ANNOTATION",
           "external_hosts", "external_hosts_entries", "is_external_service",
           "public_certificate_secret", "stand_in_addresses"]
