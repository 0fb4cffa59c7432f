"""DownstreamTlsContext of a gateway server, per Istio server TLS mode.

Owns: SIMPLE / MUTUAL / OPTIONAL_MUTUAL / ISTIO_MUTUAL contexts, SDS or file sources,
client-certificate pinning (SAN / SPKI / hash) and TLS parameters (meshConfig.tlsDefaults
as baseline, the server's own fields win). Must not know: Secrets' content (see
`credentials`), listeners, routes.
"""

from __future__ import annotations

import ipaddress

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from sailmesh.model import diagnostics as codes
from sailmesh.model.credentials import credential_base
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.gateway_merge import GatewayServer
from sailmesh.resources.networking import ServerTLSSettings
from sailmesh.resources.operator import MeshConfig
from sailmesh.translate.config_source import sds
from sailmesh.translate.credentials import ca_sds_name, sds_name

TlsProtocol = common_pb2.TlsParameters.TlsProtocol
# Istio's gateway enum maps 1:1 onto Envoy's.
TLS_VERSIONS: dict[str, int] = {
    "TLS_AUTO": TlsProtocol.TLS_AUTO,
    "TLSV1_0": TlsProtocol.TLSv1_0,
    "TLSV1_1": TlsProtocol.TLSv1_1,
    "TLSV1_2": TlsProtocol.TLSv1_2,
    "TLSV1_3": TlsProtocol.TLSv1_3,
}
# Istio: terminating gateway chains advertise HTTP/2 and HTTP/1.1.
GATEWAY_ALPN = ("h2", "http/1.1")
MUTUAL_MODES = frozenset({"MUTUAL", "OPTIONAL_MUTUAL", "ISTIO_MUTUAL"})
# SDS names of the proxy's own workload identity (served by the CA side, not by us).
WORKLOAD_CERT = "default"
ROOT_CA = "ROOTCA"


def server_tls_context(gs: GatewayServer,
                       mesh: MeshConfig) -> tuple[tls_pb2.DownstreamTlsContext, list[Diagnostic]]:
    tls = gs.server.tls
    assert tls is not None
    diags: list[Diagnostic] = []
    ctx = tls_pb2.DownstreamTlsContext()
    common = ctx.common_tls_context
    common.alpn_protocols.extend(GATEWAY_ALPN)
    pinning = _client_pinning(tls)
    mutual = tls.mode in MUTUAL_MODES
    if tls.mode == "ISTIO_MUTUAL":
        common.tls_certificate_sds_secret_configs.append(sds(WORKLOAD_CERT))
        _combined(common, pinning, ROOT_CA)
    elif tls.credential_name:
        name = credential_base(tls.credential_name)
        common.tls_certificate_sds_secret_configs.append(sds(sds_name(name)))
        if mutual:
            _combined(common, pinning, ca_sds_name(name))
    else:
        common.tls_certificates.append(common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(filename=tls.server_certificate or ""),
            private_key=base_pb2.DataSource(filename=tls.private_key or "")))
        if mutual:
            pinning.trusted_ca.filename = tls.ca_certificates or ""
            if tls.ca_crl:
                pinning.crl.filename = tls.ca_crl
            common.validation_context.CopyFrom(pinning)
    if not mutual and (tls.subject_alt_names or tls.verify_certificate_spki
                       or tls.verify_certificate_hash):
        # Envoy refuses SAN/SPKI/hash checks without a trusted CA; SIMPLE has none.
        diags.append(Diagnostic(
            "warning", f"Gateway {gs.gateway_key}", f"{gs.field}.tls",
            f"mode {tls.mode} does not verify clients: subjectAltNames / verifyCertificate* "
            "are ignored (use MUTUAL)", codes.SAN_WITHOUT_CA))
    # Istio sets the flag explicitly on every gateway context.
    ctx.require_client_certificate.value = tls.mode in ("MUTUAL", "ISTIO_MUTUAL")
    params, param_diags = _tls_params(gs, tls, mesh)
    if params is not None:
        common.tls_params.CopyFrom(params)
    return ctx, diags + param_diags


def _combined(common: common_pb2.CommonTlsContext,
              pinning: common_pb2.CertificateValidationContext, ca_name: str) -> None:
    combined = common.combined_validation_context
    # Envoy requires default_validation_context to be present, even when empty.
    combined.default_validation_context.CopyFrom(pinning)
    combined.validation_context_sds_secret_config.CopyFrom(sds(ca_name))


def _client_pinning(tls: ServerTLSSettings) -> common_pb2.CertificateValidationContext:
    vc = common_pb2.CertificateValidationContext()
    for san in tls.subject_alt_names:
        # Istio matches a SAN value against several SAN types; an address is an IP SAN.
        for san_type in _san_types(san):
            vc.match_typed_subject_alt_names.append(common_pb2.SubjectAltNameMatcher(
                san_type=san_type, matcher=string_pb2.StringMatcher(exact=san)))
    vc.verify_certificate_spki.extend(tls.verify_certificate_spki)
    vc.verify_certificate_hash.extend(tls.verify_certificate_hash)
    return vc


def _san_types(san: str) -> tuple[int, ...]:
    kind = common_pb2.SubjectAltNameMatcher.SanType
    try:
        ipaddress.ip_address(san)
    except ValueError:
        return (kind.DNS, kind.URI)
    return (kind.IP_ADDRESS,)


def _tls_params(gs: GatewayServer, tls: ServerTLSSettings,
                mesh: MeshConfig) -> tuple[common_pb2.TlsParameters | None, list[Diagnostic]]:
    # ISTIO_MUTUAL servers ignore meshConfig.tlsDefaults (Istio).
    defaults = mesh.tls_defaults if tls.mode != "ISTIO_MUTUAL" else None
    minimum = tls.min_protocol_version
    if minimum == "TLS_AUTO" and defaults is not None:
        minimum = defaults.min_protocol_version
    ciphers = list(tls.cipher_suites) or (list(defaults.cipher_suites) if defaults else [])
    curves = list(defaults.ecdh_curves) if defaults else []
    diags: list[Diagnostic] = []
    if minimum in ("TLSV1_0", "TLSV1_1") and not tls.cipher_suites:
        diags.append(Diagnostic(
            "warning", f"Gateway {gs.gateway_key}", f"{gs.field}.tls.minProtocolVersion",
            f"minimum {minimum} without cipherSuites is ineffective in Istio: the default "
            "cipher list has no cipher for TLS 1.0/1.1; list cipherSuites explicitly",
            codes.WEAK_MIN_TLS_WITHOUT_CIPHERS))
    if (minimum, tls.max_protocol_version, ciphers, curves) == ("TLS_AUTO", "TLS_AUTO", [], []):
        return None, diags
    params = common_pb2.TlsParameters(
        tls_minimum_protocol_version=TLS_VERSIONS[minimum],
        tls_maximum_protocol_version=TLS_VERSIONS[tls.max_protocol_version],
        cipher_suites=ciphers, ecdh_curves=curves)
    return params, diags
