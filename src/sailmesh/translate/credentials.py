"""Gateway credentials: a resolved credentialName → validated SDS secrets.

Owns: the SDS names Istio serves gateway credentials under (`kubernetes://<name>` for the
certificate and key, `kubernetes://<name>-cacert` for the trust bundle) and the
diagnostics of a server whose credential cannot be served. Where a credential is read and
which keys hold what is `model.credentials`. Must not know: listeners or routes; it never
reads files or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from sailmesh.model import diagnostics as codes
from sailmesh.model.credentials import CA_SUFFIX, check_ca, check_certificate, lookup_credential
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.gateway_merge import GatewayServer
from sailmesh.model.mesh import MeshModel
from sailmesh.model.proxy import Proxy

SDS_PREFIX = "kubernetes://"


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
    cred = lookup_credential(tls.credential_name, proxy.namespace, model.secret)
    if cred.other_namespace is not None:
        return _fail(ref, field, codes.CREDENTIAL_CROSS_NAMESPACE,
                     f"credentialName {tls.credential_name} refers to namespace "
                     f"{cred.other_namespace}; Istio refuses credentials outside the gateway "
                     f"workload's namespace {proxy.namespace} on purpose (copy the Secret there)")
    if cred.secret is None:
        return _fail(ref, field, codes.SECRET_NOT_FOUND, f"{cred.ref} not found ({where})")
    pair = cred.cert_and_key()
    if pair is None:
        return _fail(ref, field, codes.SECRET_KEYS_MISSING,
                     f"{cred.ref} has no certificate and key "
                     f"(keys tls.crt + tls.key or cert + key; found: "
                     f"{', '.join(sorted(cred.values())) or 'none'}) ({where})")
    cert_pem, key_pem = pair
    diags = list(_check_pair(ref, field, cred.ref, cert_pem, key_pem, now))
    if any(d.severity == "error" for d in diags):
        return CredentialResult(None, tuple(diags))
    secrets = {sds_name(cred.name): secret_pb2.Secret(
        name=sds_name(cred.name),
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=cert_pem),
            private_key=base_pb2.DataSource(inline_bytes=key_pem)))}
    if with_ca:
        ca_pem = cred.ca()
        if ca_pem is None:
            diags.append(_error(ref, field, codes.CA_MISSING,
                                f"mode {tls.mode} needs a CA to verify clients: neither Secret "
                                f"{proxy.namespace}/{cred.name}{CA_SUFFIX} nor key ca.crt / "
                                f"cacert of {cred.ref} exists ({where})"))
            return CredentialResult(None, tuple(diags))
        problem = check_ca(ca_pem)
        if problem:
            diags.append(_error(ref, field, codes.SECRET_INVALID_PEM,
                                f"{cred.ca_ref}: CA {problem}"))
            return CredentialResult(None, tuple(diags))
        validation = common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=ca_pem))
        crl = cred.crl()
        if crl:
            validation.crl.CopyFrom(base_pb2.DataSource(inline_bytes=crl))
        secrets[ca_sds_name(cred.name)] = secret_pb2.Secret(
            name=ca_sds_name(cred.name), validation_context=validation)
    return CredentialResult(secrets, tuple(diags))


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


def _error(ref: str, field: str, code: str, message: str) -> Diagnostic:
    return Diagnostic("error", ref, field, message + "; this server's filter chain is omitted",
                      code)


def _fail(ref: str, field: str, code: str, message: str) -> CredentialResult:
    return CredentialResult(None, (_error(ref, field, code, message),))
