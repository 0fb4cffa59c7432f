"""Gateway credentials: credentialName → Secret → validated SDS secrets.

Owns: where Istio looks for a gateway credential, which Secret keys it reads, the SDS names
it serves them under, and the PEM checks (parse, key matches certificate, validity at
`now`). Must not know: listeners or routes; it never reads files or clocks.

Istio facts (pilot credentials controller / gateway SDS):
- credentialName is read in the namespace of the gateway *workload*, not of the Gateway.
  A `ns/name` credential in another namespace is refused on purpose (a Gateway author
  must not be able to reference secrets of namespaces they do not own).
- Keys `tls.crt` / `tls.key` / `ca.crt` / `ca.crl`, or generic `cert` / `key` / `cacert`;
  the generic pair wins when both `cert` and `key` are present.
- SDS names: `kubernetes://<name>` (certificate + key), `kubernetes://<name>-cacert`
  (trust bundle): from Secret `<name>-cacert` if it exists, else from `<name>`'s CA key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.mesh import GatewayServer, MeshModel
from sailmesh.model.proxy import Proxy

SDS_PREFIX = "kubernetes://"
CA_SUFFIX = "-cacert"


def credential_base(credential_name: str) -> str:
    """The Secret name of a credentialName (`ns/name` → `name`)."""
    return credential_name.rpartition("/")[2]


def sds_name(credential: str) -> str:
    return f"{SDS_PREFIX}{credential}"


def ca_sds_name(credential: str) -> str:
    return f"{SDS_PREFIX}{credential}{CA_SUFFIX}"


@dataclass(frozen=True)
class CredentialResult:
    """Secrets to serve for one server, or None when its chain must be omitted."""

    secrets: dict[str, secret_pb2.Secret] | None
    diagnostics: tuple[Diagnostic, ...]


def resolve_credential(model: MeshModel, proxy: Proxy, gs: GatewayServer, *, with_ca: bool,
                       now: datetime) -> CredentialResult:
    tls = gs.server.tls
    assert tls is not None and tls.credential_name
    field = f"{gs.field}.tls.credentialName"
    ref = f"Gateway {gs.gateway_key}"
    where = (f"credentialName of {ref}, server {gs.port_name}; gateway credentials are read "
             f"from the gateway workload's namespace {proxy.namespace}")
    credential = tls.credential_name
    if "/" in credential:
        ns, _, credential = credential.partition("/")
        if ns != proxy.namespace:
            return _fail(ref, field, codes.CREDENTIAL_CROSS_NAMESPACE,
                         f"credentialName {tls.credential_name} refers to namespace {ns}; "
                         f"Istio refuses credentials outside the gateway workload's namespace "
                         f"{proxy.namespace} on purpose (copy the Secret there)")
    secret = model.secret(proxy.namespace, credential)
    if secret is None:
        return _fail(ref, field, codes.SECRET_NOT_FOUND,
                     f"Secret {proxy.namespace}/{credential} not found ({where})")
    values = secret.values()
    pair = cert_and_key(values)
    if pair is None:
        return _fail(ref, field, codes.SECRET_KEYS_MISSING,
                     f"Secret {proxy.namespace}/{credential} has no certificate and key "
                     f"(keys tls.crt + tls.key or cert + key; found: "
                     f"{', '.join(sorted(values)) or 'none'}) ({where})")
    cert_pem, key_pem = pair
    diags = list(_check_pair(ref, field, f"Secret {proxy.namespace}/{credential}",
                             cert_pem, key_pem, now))
    if any(d.severity == "error" for d in diags):
        return CredentialResult(None, tuple(diags))
    secrets = {sds_name(credential): secret_pb2.Secret(
        name=sds_name(credential),
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=cert_pem),
            private_key=base_pb2.DataSource(inline_bytes=key_pem)))}
    if with_ca:
        ca_secret = model.secret(proxy.namespace, credential + CA_SUFFIX)
        source = ca_secret.values() if ca_secret is not None else values
        source_name = credential + CA_SUFFIX if ca_secret is not None else credential
        ca_pem = source.get("ca.crt") or source.get("cacert")
        if ca_pem is None:
            diags.append(_error(ref, field, codes.CA_MISSING,
                                f"mode {tls.mode} needs a CA to verify clients: neither Secret "
                                f"{proxy.namespace}/{credential}{CA_SUFFIX} nor key ca.crt / "
                                f"cacert of Secret {proxy.namespace}/{credential} exists "
                                f"({where})"))
            return CredentialResult(None, tuple(diags))
        problem = _check_ca(ca_pem)
        if problem:
            diags.append(_error(ref, field, codes.SECRET_INVALID_PEM,
                                f"Secret {proxy.namespace}/{source_name}: CA {problem}"))
            return CredentialResult(None, tuple(diags))
        validation = common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=ca_pem))
        crl = source.get("ca.crl")
        if crl:
            validation.crl.CopyFrom(base_pb2.DataSource(inline_bytes=crl))
        secrets[ca_sds_name(credential)] = secret_pb2.Secret(
            name=ca_sds_name(credential), validation_context=validation)
    return CredentialResult(secrets, tuple(diags))


def cert_and_key(values: dict[str, bytes]) -> tuple[bytes, bytes] | None:
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


def _check_pair(ref: str, field: str, secret: str, cert_pem: bytes, key_pem: bytes,
                now: datetime) -> list[Diagnostic]:
    out = []
    for severity, message in check_certificate(cert_pem, key_pem, now):
        if severity == "error":
            code = codes.SECRET_INVALID_PEM
        elif "expired" in message:
            code = codes.CERT_EXPIRED
        else:
            code = codes.CERT_NOT_YET_VALID
        if severity == "error":
            out.append(_error(ref, field, code, f"{secret}: {message}"))
        else:
            out.append(Diagnostic("warning", ref, field, f"{secret}: {message}", code))
    return out


def _check_ca(ca_pem: bytes) -> str | None:
    try:
        x509.load_pem_x509_certificates(ca_pem)
    except ValueError as exc:
        return f"does not parse as PEM ({exc})"
    return None


def _error(ref: str, field: str, code: str, message: str) -> Diagnostic:
    return Diagnostic("error", ref, field, message + "; this server's filter chain is omitted",
                      code)


def _fail(ref: str, field: str, code: str, message: str) -> CredentialResult:
    return CredentialResult(None, (_error(ref, field, code, message),))
