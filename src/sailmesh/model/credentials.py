"""credentialName → Secret → certificate, key and CA: one rule for gateways (server TLS),
TLS origination (client TLS), and the analyzers that explain both.

Owns: where a credentialName is read, which Secret keys hold what, where the CA comes from,
and the PEM checks (parse, key matches certificate, validity at `now`). Must not know:
Envoy (SDS names and secrets are translation's), listeners, output; never reads files or
clocks.

Istio facts (pilot credentials controller, gateway and DestinationRule SDS):
- A credentialName is read in the namespace of the proxy that uses it (the gateway
  *workload's*, not the Gateway's or the DestinationRule's). `ns/name` naming another
  namespace is refused on purpose: a config author must not reach secrets of namespaces
  they do not own.
- Keys `tls.crt` / `tls.key` / `ca.crt` / `ca.crl`, or generic `cert` / `key` / `cacert`;
  the generic pair wins when both `cert` and `key` are present.
- The CA (and CRL) comes from Secret `<name>-cacert` when it exists — then only from it —
  else from `<name>`'s own `ca.crt` / `cacert`.
- Authorization (pilot/pkg/xds/sds.go filterAuthorizedResources, credentials/kube
  secrets.go Authorize): istiod serves the certificate and key (`kubernetes://<name>`) only
  when the proxy's service account may `list` `secrets` in its own namespace (a
  SubjectAccessReview); otherwise the resource is not served and the cluster or listener
  that names it fails. The CA half (`kubernetes://<name>-cacert`, even when read from
  `<name>`'s own `ca.crt`) is public and never checked. `access` carries that answer for
  the proxy (`model.rbac`); None where it is not checked (gateways: see `Credential.denied`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sailmesh.model.rbac import Access
from sailmesh.resources.core import Secret

CA_SUFFIX = "-cacert"
SecretLookup = Callable[[str, str], Secret | None]


def credential_base(credential_name: str) -> str:
    """The Secret name of a credentialName (`ns/name` → `name`)."""
    return credential_name.rpartition("/")[2]


@dataclass(frozen=True)
class Credential:
    """A credentialName as the proxy in `namespace` reads it."""

    credential_name: str
    namespace: str  # where it is read
    name: str  # the Secret's name
    other_namespace: str | None  # `ns/name` naming another namespace: refused
    secret: Secret | None
    ca_secret: Secret | None  # `<name>-cacert`, when it exists
    access: Access | None = None  # may the proxy read Secrets of `namespace`; None: unchecked

    @property
    def ref(self) -> str:
        return f"Secret {self.namespace}/{self.name}"

    @property
    def denied(self) -> str | None:
        """Why the proxy is not served this credential's certificate and key, or None.
        (Istio's installation grants its gateways' service accounts the right by a Role;
        sailmesh's gateways are checked as so granted.)"""
        if self.access is None or self.access.allowed:
            return None
        return self.access.reason

    @property
    def ca_ref(self) -> str:
        """The Secret the CA is read from."""
        return self.ref + CA_SUFFIX if self.ca_secret is not None else self.ref

    def values(self) -> dict[str, bytes]:
        return self.secret.values() if self.secret is not None else {}

    def cert_and_key(self) -> tuple[bytes, bytes] | None:
        return cert_and_key(self.values())

    def _ca_values(self) -> dict[str, bytes]:
        return self.ca_secret.values() if self.ca_secret is not None else self.values()

    def ca(self) -> bytes | None:
        values = self._ca_values()
        return values.get("ca.crt") or values.get("cacert")

    def crl(self) -> bytes | None:
        return self._ca_values().get("ca.crl")

    def ca_keys(self) -> list[str]:
        """The keys of the Secret the CA is read from (for messages)."""
        return sorted(self._ca_values())


def lookup_credential(credential_name: str, namespace: str, secret: SecretLookup,
                      access: Access | None = None) -> Credential:
    """A credentialName as the proxy in `namespace` reads it; `access`: whether that proxy's
    service account may list Secrets there (`MeshModel.credential_access`), None when
    not checked."""
    ns, sep, name = credential_name.rpartition("/")
    other = ns if sep and ns != namespace else None
    if other is not None:
        return Credential(credential_name, namespace, name, other, None, None, access)
    return Credential(credential_name, namespace, name, None, secret(namespace, name),
                      secret(namespace, name + CA_SUFFIX), access)


def denial_message(cred: Credential, who: str) -> str:
    """The message for a credential whose certificate and key the proxy is not served."""
    return (f"{who} may not read {cred.ref}: {cred.denied}. Istio serves a sidecar the "
            f"certificate and key of a credentialName only when its service account may list "
            f"Secrets in namespace {cred.namespace} (e.g. kubectl create role NAME "
            f"--verb=list --resource=secrets -n {cred.namespace} and a RoleBinding to it)")


def cert_and_key(values: Mapping[str, bytes]) -> tuple[bytes, bytes] | None:
    # Istio: the generic pair wins when both are present.
    if "cert" in values and "key" in values:
        return values["cert"], values["key"]
    if "tls.crt" in values and "tls.key" in values:
        return values["tls.crt"], values["tls.key"]
    return None


def check_certificate(cert_pem: bytes, key_pem: bytes, now: datetime) -> list[tuple[str, str]]:
    """Problems of a certificate/key pair as (severity, message); empty when sound."""
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        return [("error", f"certificate does not parse as PEM ({exc})")]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        return [("error", f"private key does not parse as unencrypted PEM ({exc})")]
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if leaf.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        return [("error", f"private key does not match certificate {leaf.subject.rfc4514_string()}")]
    if leaf.not_valid_after_utc < now:
        return [("warning", f"certificate {leaf.subject.rfc4514_string()} expired at "
                            f"{leaf.not_valid_after_utc.isoformat()}; it is still served and "
                            "clients will reject it")]
    if leaf.not_valid_before_utc > now:
        return [("warning", f"certificate {leaf.subject.rfc4514_string()} is not valid before "
                            f"{leaf.not_valid_before_utc.isoformat()}")]
    return []


def check_ca(ca_pem: bytes) -> str | None:
    """Why a CA bundle is unusable, or None."""
    try:
        x509.load_pem_x509_certificates(ca_pem)
    except ValueError as exc:
        return f"does not parse as PEM ({exc})"
    return None
