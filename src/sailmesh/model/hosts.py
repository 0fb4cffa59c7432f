"""Istio host names: short-name resolution, wildcard matching and intersection.

Owns: the rules by which a VirtualService host meets a Gateway server host and by which a
destination host names a Service. Must not know: Envoy, resources beyond plain strings.

Istio rules (pilot `host.Name`): `*` matches everything; `*.example.com` matches any name
ending in `.example.com` (any depth); two patterns intersect when either matches the
other, and the intersection is the more specific of the two.
"""

from __future__ import annotations

DOMAIN_SUFFIX = "svc.cluster.local"


def fqdn(host: str, namespace: str) -> str:
    """Resolve a short service name relative to `namespace` (Istio ResolveShortnameToFQDN).

    `httpbin` → `httpbin.<ns>.svc.cluster.local`; `httpbin.test.svc` is completed too;
    anything else (wildcards, external names, `name.ns`) is kept as written — the model
    completes `name.ns` only when such a Service exists, since `example.com` has the same
    shape.
    """
    if host.startswith("*"):
        return host
    parts = host.split(".")
    if len(parts) == 1:
        return f"{host}.{namespace}.{DOMAIN_SUFFIX}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.cluster.local"
    return host


def matches(name: str, pattern: str) -> bool:
    """Does host (or host pattern) `name` fall inside `pattern`?"""
    if pattern == "*":
        return True
    if name == "*":
        return False
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        if name.startswith("*."):
            return name[1:].endswith(suffix)
        return name.endswith(suffix) and len(name) > len(suffix)
    return name == pattern


def intersect(a: str, b: str) -> str | None:
    """The more specific of two overlapping host patterns, or None when disjoint."""
    if matches(a, b):
        return a
    if matches(b, a):
        return b
    return None


def split_server_host(host: str, gateway_namespace: str) -> tuple[str, str]:
    """A Gateway server host `ns/host` → (namespace filter, host).

    Istio: no prefix and `*/` mean any namespace; `./` means the Gateway's own namespace.
    """
    if "/" not in host:
        return "*", host
    ns, _, name = host.partition("/")
    if ns == ".":
        ns = gateway_namespace
    return ns, name
