"""The SDS secrets of a proxy's mesh identity: `default` (its workload certificate and key)
and `ROOTCA` (the trust bundle its peers are verified against), the names Istio's proxies
request. Pure: PEM bytes in, typed Secret messages out. Must not know: how certificates are
issued or rotated (see `sailmesh.ca`).
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from sailmesh.translate.tls_context import ROOT_CA, WORKLOAD_CERT


def identity_secrets(cert_chain_pem: bytes, key_pem: bytes,
                     root_pem: bytes) -> dict[str, secret_pb2.Secret]:
    return {
        WORKLOAD_CERT: secret_pb2.Secret(name=WORKLOAD_CERT, tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=cert_chain_pem),
            private_key=base_pb2.DataSource(inline_bytes=key_pem))),
        ROOT_CA: secret_pb2.Secret(name=ROOT_CA, validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=root_pem))),
    }
