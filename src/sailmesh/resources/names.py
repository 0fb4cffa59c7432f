"""Name grammar: Kubernetes object names, namespaces, Istio hosts, and did-you-mean.

Owns: the syntax rules for names and hosts, each returning a message worded like the
system that defines the rule (Kubernetes apimachinery, Istio's validation webhook), or
None when the name is fine. Must not know: resources, files, where a name came from.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# Istio host labels are case-insensitive DNS labels (RFC 1035 §2.3.1, relaxed to allow a
# leading digit as RFC 1123 §2.1 does).
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?")


def dns1123_subdomain(value: str) -> str | None:
    """Most Kubernetes object names (apimachinery IsDNS1123Subdomain)."""
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric"
            " characters, '-' or '.', and must start and end with an alphanumeric character"
            " (e.g. 'example.com', regex used for validation is"
            " '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return None


def dns1123_label(value: str) -> str | None:
    """Namespace names, port names, subset names (apimachinery IsDNS1123Label)."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS1123_LABEL.fullmatch(value):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters"
            " or '-', and must start and end with an alphanumeric character (e.g. 'my-name',"
            "  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    return None


def dns1035_label(value: str) -> str | None:
    """Service names: they become DNS labels, so they may not start with a digit."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS1035_LABEL.fullmatch(value):
        return (
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-',"
            " start with an alphabetic character, and end with an alphanumeric character"
            " (e.g. 'my-name',  or 'abc-123', regex used for validation is"
            " '[a-z]([-a-z0-9]*[a-z0-9])?')"
        )
    return None


def wildcard_host(host: str) -> str | None:
    """A DNS name where `*` may only be the whole first label (Istio ValidateWildcardDomain).

    `*` alone means every host. `*.example.com` is fine; `foo*.example.com` and
    `*foo.example.com` are not: Envoy's domain matching has no partial-label wildcards.
    """
    if host == "*":
        return None
    if not host:
        return "host must not be empty"
    if len(host) > 255:
        return "host name is longer than 255 characters"
    labels = host.split(".")
    if labels[0] == "*":
        labels = labels[1:]
    for label in labels:
        if "*" in label:
            return f'invalid host "{host}": a wildcard must be the whole first label, as in "*.example.com"'
        if not label:
            return f'invalid host "{host}": empty label'
        if len(label) > 63 or not _HOST_LABEL.fullmatch(label):
            return f'invalid host "{host}": label "{label}" is not a valid DNS label'
    return None


def gateway_server_host(host: str) -> str | None:
    """A Gateway server host: `[namespace/]dnsName`, namespace being `.`, `*` or a name."""
    if "/" not in host:
        return wildcard_host(host)
    namespace, _, name = host.partition("/")
    if "/" in name:
        return f'invalid host "{host}": expected "namespace/host"'
    if namespace not in (".", "*") and dns1123_label(namespace):
        return f'invalid host "{host}": namespace "{namespace}" is not a valid namespace name'
    return wildcard_host(name)


def host_within(narrow: str, wide: str) -> bool:
    """Whether every name matched by `narrow` is also matched by `wide` (wildcards aware)."""
    narrow, wide = narrow.lower(), wide.lower()
    if wide == "*" or narrow == wide:
        return True
    if wide.startswith("*."):
        return narrow.endswith(wide[1:])
    return False


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """The option the user most likely meant: same letters ignoring case/`_`/`-`, else close."""
    choices = list(options)

    def squash(s: str) -> str:
        return s.replace("_", "").replace("-", "").lower()

    for choice in choices:
        if squash(choice) == squash(word):
            return choice
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


__all__ = [
    "did_you_mean",
    "dns1035_label",
    "dns1123_label",
    "dns1123_subdomain",
    "gateway_server_host",
    "host_within",
    "wildcard_host",
]
