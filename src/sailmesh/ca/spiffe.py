"""SPIFFE ids: building and validating `spiffe://<trust domain>/<path>`.

Owns: the SPIFFE-ID grammar (SPIFFE ID spec §2) and Istio's path shape for workloads,
`/ns/<namespace>/sa/<service account>`. Must not know: certificates, Kubernetes objects.
"""

from __future__ import annotations

import re

from sailmesh.ca.errors import CAError

SCHEME = "spiffe://"

# SPIFFE ID §2.1: a trust domain holds only lowercase letters, digits, dots, dashes and
# underscores (no port, no userinfo, no percent-encoding).
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
# SPIFFE ID §2.2: a path segment holds only letters, digits, dots, dashes and underscores,
# and is neither empty, "." nor "..".
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
# SPIFFE ID §2.3: at most 2048 bytes in all; trust domain at most 255.
_MAX_ID_BYTES = 2048
_MAX_TRUST_DOMAIN_BYTES = 255


def check_trust_domain(trust_domain: str) -> str:
    """`trust_domain` unchanged if it is a valid SPIFFE trust domain name, else CAError."""
    if not trust_domain or _TRUST_DOMAIN.fullmatch(trust_domain) is None:
        raise CAError(
            f"invalid trust domain {trust_domain!r}: SPIFFE allows lowercase letters, digits, "
            "'.', '-' and '_' only (e.g. cluster.local)"
        )
    if len(trust_domain) > _MAX_TRUST_DOMAIN_BYTES:
        raise CAError(f"trust domain is longer than {_MAX_TRUST_DOMAIN_BYTES} characters")
    return trust_domain


def _check_segment(segment: str, what: str) -> str:
    if _SEGMENT.fullmatch(segment) is None or segment in {".", ".."}:
        raise CAError(f"invalid {what} {segment!r} for a SPIFFE id: use letters, digits, '.', '-' and '_'")
    return segment


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """Istio's workload identity: `spiffe://<td>/ns/<namespace>/sa/<service account>`."""
    check_trust_domain(trust_domain)
    _check_segment(namespace, "namespace")
    _check_segment(service_account, "service account")
    return check_spiffe_id(f"{SCHEME}{trust_domain}/ns/{namespace}/sa/{service_account}")


def check_spiffe_id(value: str) -> str:
    """`value` unchanged if it is a valid SPIFFE id with a non-empty path, else CAError."""
    if not value.startswith(SCHEME):
        raise CAError(f"invalid SPIFFE id {value!r}: must start with {SCHEME}")
    if len(value.encode()) > _MAX_ID_BYTES:
        raise CAError(f"SPIFFE id is longer than {_MAX_ID_BYTES} bytes")
    trust_domain, slash, path = value[len(SCHEME) :].partition("/")
    check_trust_domain(trust_domain)
    # A workload SVID names a workload, never the bare trust domain (X509-SVID §2).
    if not slash or not path:
        raise CAError(f"invalid SPIFFE id {value!r}: a workload id needs a path after the trust domain")
    for segment in path.split("/"):
        _check_segment(segment, "path segment")
    return value
