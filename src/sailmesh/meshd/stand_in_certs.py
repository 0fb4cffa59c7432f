"""Public certificates for external-site stand-ins: the offline internet's root on disk, the
trust store every pod sees, and the Secret each annotated stand-in Service asks for.

Owns: which Secrets the mesh writes for stand-ins and when it rewrites them (missing, names
changed, another root, or renewal due), and never touching a Secret it did not make.
Must not know: pods, Envoy, how the root signs (sailmesh.ca.web).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sailmesh.ca import CertificateAuthority
from sailmesh.ca.storage import load_or_create_web_root, write_trust_bundle
from sailmesh.ca.web import issue_site_cert, needs_new_site_cert
from sailmesh.model.external_world import (
    ISSUED_FOR_ANNOTATION,
    PUBLIC_CERTIFICATE_ANNOTATION,
    external_hosts,
    public_certificate_secret,
)
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.base import Resource
from sailmesh.resources.core import Secret, Service
from sailmesh.resources.kinds import KINDS
from sailmesh.translate.origination import SYSTEM_ROOTS

# Where the host keeps its system roots (Debian's ca-certificates), which is also where
# pods, their curl and Envoy (origination without caCertificates) look for theirs.
SYSTEM_TRUST_STORE = Path(SYSTEM_ROOTS)


@dataclass(frozen=True)
class StandInProblem:
    ref: str
    field: str
    message: str


class StandInCertificates:
    def __init__(self, state_dir: Path, now: datetime) -> None:
        self.root: CertificateAuthority = load_or_create_web_root(state_dir, now)
        self.trust_bundle = write_trust_bundle(state_dir, self.root, SYSTEM_TRUST_STORE)

    def secrets(self, snap: Snapshot, now: datetime,
                ) -> tuple[list[Resource], list[StandInProblem]]:
        """Secrets to write (new or renewed) and the stand-ins whose Secret name is taken."""
        out: list[Resource] = []
        problems: list[StandInProblem] = []
        for svc in snap.of_kind(Service):
            name = public_certificate_secret(svc)
            if name is None:
                continue
            hosts = external_hosts(svc)
            current = snap.get(Secret, svc.namespace, name)
            if current is not None:
                owner = current.metadata.annotations.get(ISSUED_FOR_ANNOTATION)
                if owner is None:
                    problems.append(StandInProblem(
                        f"Service {svc.namespace}/{svc.name}",
                        f"metadata.annotations[{PUBLIC_CERTIFICATE_ANNOTATION}]",
                        f"Secret {svc.namespace}/{name} exists and was not made by sailmesh;"
                        " it is left as it is (name another Secret for the certificate)"))
                    continue
                if owner != svc.name:
                    continue  # another stand-in's certificate: the first Service keeps it
                if not needs_new_site_cert(current.values().get("tls.crt"), hosts,
                                           self.root.root, now):
                    continue
            site = issue_site_cert(self.root, hosts, now)
            out.append(KINDS["Secret"].model_validate({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": svc.namespace,
                             "annotations": {ISSUED_FOR_ANNOTATION: svc.name}},
                "data": {k: base64.b64encode(v).decode() for k, v in (
                    ("tls.crt", site.cert_pem), ("tls.key", site.key_pem),
                    ("ca.crt", self.root.root_pem))}}))
        return out, problems


__all__ = ["SYSTEM_TRUST_STORE", "StandInCertificates", "StandInProblem"]
