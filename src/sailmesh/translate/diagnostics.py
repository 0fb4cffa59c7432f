"""Diagnostics of translation, and the catalogue of their stable codes.

Owns: the codes translation emits (credentials CRxxxx, gateway servers GWxxxx, routes
RTxxxx). The `Diagnostic` record itself lives in `model.diagnostics` so that the model can
report too without importing translation. Must not know: output formatting.
"""

from __future__ import annotations

from sailmesh.model.diagnostics import Diagnostic, Severity

__all__ = ["Diagnostic", "Severity"]

# Credentials (credentialName → Secret → SDS).
SECRET_NOT_FOUND = "CR0301"
SECRET_KEYS_MISSING = "CR0302"
SECRET_INVALID_PEM = "CR0303"
CERT_EXPIRED = "CR0304"
CREDENTIAL_CROSS_NAMESPACE = "CR0305"
CA_MISSING = "CR0306"
CERT_NOT_YET_VALID = "CR0307"

# Gateway servers.
SERVER_NO_CREDENTIAL = "GW0102"
WEAK_MIN_TLS_WITHOUT_CIPHERS = "GW0103"
UNSUPPORTED_TLS_MODE = "GW0104"
PASSTHROUGH_WITHOUT_ROUTE = "GW0105"
SAN_WITHOUT_CA = "GW0106"
HTTPS_WITHOUT_TLS = "GW0107"

# Routes.
ROUTE_DROPPED = "RT0401"

# Proxies.
SIDECAR_NOT_TRANSLATED = "TR0501"

# Egress: ServiceEntry clusters and TLS origination.
CLIENT_CREDENTIAL_WITHOUT_SELECTOR = "EG0701"
INSECURE_SKIP_VERIFY = "EG0702"
DNS_ROUND_ROBIN_ENDPOINTS = "EG0703"
REGISTRY_ONLY_BLOCKED = "EG0704"
ORIGINATION_FILE_UNREADABLE = "EG0705"
