"""Diagnostics: the one way the model, translation and the push planner report problems,
and the one catalogue of their stable codes.

Owns: the `Diagnostic` record and every code the running mesh reports (`apply`, `status`):
cross-resource problems the model finds, translation's credential/gateway/route/egress
codes, and the control plane's own (identities, pods, proxies). The analyzer's SMxxxx codes
live in `analysis.catalogue`. Must not know: Envoy, output formatting. Nothing here logs;
callers decide what to show.

Codes are never reused or renumbered: users grep for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    ref: str  # "Kind ns/name" of the resource the user must look at
    field: str | None  # path inside that resource, e.g. "spec.servers[1].hosts"
    message: str
    code: str  # stable, e.g. "GW0101"

    def __str__(self) -> str:
        where = f" {self.field}" if self.field else ""
        return f"{self.severity} {self.code} {self.ref}{where}: {self.message}"

    def as_dict(self) -> dict[str, str | None]:
        """The wire form `apply` and `status` print."""
        return {"severity": self.severity, "ref": self.ref, "field": self.field,
                "message": self.message, "code": self.code}


# Cross-resource problems found while building the model.
GATEWAY_HOST_CONFLICT = "GW0101"
VS_GATEWAY_NOT_FOUND = "VS0201"
VS_UNKNOWN_DESTINATION = "VS0202"
VS_DESTINATION_PORT_AMBIGUOUS = "VS0203"
VS_DESTINATION_PORT_UNKNOWN = "VS0204"
SERVICE_ENTRY_HOST_CONFLICT = "SE0601"

# Credentials (credentialName → Secret → SDS).
SECRET_NOT_FOUND = "CR0301"
SECRET_KEYS_MISSING = "CR0302"
SECRET_INVALID_PEM = "CR0303"
CERT_EXPIRED = "CR0304"
CREDENTIAL_CROSS_NAMESPACE = "CR0305"
CA_MISSING = "CR0306"
CERT_NOT_YET_VALID = "CR0307"
CREDENTIAL_NOT_AUTHORIZED = "CR0308"  # the proxy's service account may not list Secrets

# Gateway servers.
SERVER_NO_CREDENTIAL = "GW0102"
WEAK_MIN_TLS_WITHOUT_CIPHERS = "GW0103"
UNSUPPORTED_TLS_MODE = "GW0104"
PASSTHROUGH_WITHOUT_ROUTE = "GW0105"
SAN_WITHOUT_CA = "GW0106"
HTTPS_WITHOUT_TLS = "GW0107"
# serverCertificate / privateKey / caCertificates name a file the gateway cannot read.
SERVER_FILE_UNREADABLE = "GW0108"

# Routes.
ROUTE_DROPPED = "RT0401"

# Proxies.
SIDECAR_NOT_TRANSLATED = "TR0501"
# Translating one proxy failed: it keeps its last good configuration.
PROXY_NOT_TRANSLATED = "TR0502"

# Egress: ServiceEntry clusters and TLS origination.
CLIENT_CREDENTIAL_WITHOUT_SELECTOR = "EG0701"
INSECURE_SKIP_VERIFY = "EG0702"
DNS_ROUND_ROBIN_ENDPOINTS = "EG0703"
REGISTRY_ONLY_BLOCKED = "EG0704"
ORIGINATION_FILE_UNREADABLE = "EG0705"
# A stand-in's `sailmesh.io/public-certificate` names a Secret the user made.
STAND_IN_SECRET_TAKEN = "EG0706"

# The mesh's identities: the CA (cacerts, key type) and each workload's certificate.
CA_NOT_CONFIGURED = "CA0001"
WORKLOAD_CERT_FAILED = "CA0002"

# Pods: a pod that cannot start (unknown image, missing ConfigMap or Secret).
POD_CANNOT_START = "RT0001"

# The OpenShift router: a Route it does not admit (status Admitted=False, with OpenShift's
# reason), and a configuration HAProxy refused (the router keeps its previous one).
ROUTE_NOT_ADMITTED = "OR0101"
ROUTER_CONFIG_REFUSED = "OR0102"
