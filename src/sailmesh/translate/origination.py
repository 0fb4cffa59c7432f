"""TLS origination: DestinationRule SIMPLE / MUTUAL → the UpstreamTlsContext of a cluster.

Owns: how a sidecar or gateway opens TLS to a server of its own choosing (usually outside
the mesh): the server's CA (`caCertificates` file, the `-cacert` half of a `credentialName`
Secret, or the system roots), `subjectAltNames`, `sni`, `insecureSkipVerify`, the client
certificate of MUTUAL (files or `credentialName`), and auto SNI for HTTP clusters.
Must not know: listeners, routes, which DestinationRule applies (see `model.policy`).

Istio facts (pilot cluster builder, DestinationRule reference):
- No `sni`: on HTTP clusters the SNI comes from the request's Host (`auto_sni`), and the
  server certificate is checked against that name (`auto_san_validation`) unless
  `subjectAltNames` are given or verification is off.
- No `caCertificates` / `credentialName`: the server is verified against the system roots.
- `credentialName` is read from the namespace of the proxy that uses it (the client pod, or
  the gateway workload). SDS names `kubernetes://<name>` (certificate + key, MUTUAL) and
  `kubernetes://<name>-cacert` (CA: Secret `<name>-cacert`, else key ca.crt / cacert).
  For sidecars Istio honours it only in a DestinationRule with a `workloadSelector`.
- `insecureSkipVerify: true` turns verification off altogether (and `apply` warns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from envoy.config.core.v3 import base_pb2, protocol_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from envoy.type.matcher.v3 import string_pb2

from sailmesh.model import diagnostics as codes
from sailmesh.model.credentials import (
    CA_SUFFIX,
    SecretLookup,
    check_certificate,
    credential_base,
    denial_message,
    lookup_credential,
)
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.policy import ClientTLS
from sailmesh.model.proxy import Proxy
from sailmesh.model.rbac import Access
from sailmesh.translate.config_source import sds
from sailmesh.translate.credentials import ca_sds_name, sds_name

# SIMPLE/MUTUAL without caCertificates: Istio verifies with the system roots.
SYSTEM_ROOTS = "/etc/ssl/certs/ca-certificates.crt"
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


@dataclass(frozen=True)
class Origination:
    """What a cluster needs for SIMPLE / MUTUAL: its context, the SDS secrets it names and,
    for HTTP clusters without `sni`, the auto-SNI protocol options."""

    context: tls_pb2.UpstreamTlsContext
    secrets: dict[str, secret_pb2.Secret]
    http_options: hpo.HttpProtocolOptions | None


@dataclass(frozen=True)
class FileCheck:
    """The client proxy (`who`, e.g. `Pod app/sleep-… (sidecar)`) and whether its Envoy can
    read a path of its own filesystem: `problem(path)` is None, or why not."""

    who: str
    problem: Callable[[str], str | None]


def file_check(proxy: Proxy) -> FileCheck | None:
    return FileCheck(proxy.ref, proxy.file_problem) if proxy.file_problem else None


@dataclass(frozen=True)
class OriginationInput:
    tls: ClientTLS
    namespace: str  # where credentialName Secrets are read: the proxy's namespace
    http: bool  # the cluster carries HTTP (auto SNI applies)
    default_sni: str | None  # SNI for non-HTTP clusters without `sni` (a DNS host)
    sidecar: bool
    selector: bool  # the DestinationRule has a workloadSelector
    field: str  # where the settings sit in their DestinationRule, for diagnostics
    cluster: str = ""  # the cluster being built, for diagnostics
    files: FileCheck | None = None  # None: file paths are not checked (golden tests)
    # Whether the client proxy may be served credentialName keys (`credentials`); None:
    # not checked.
    access: Access | None = None


def originate(inp: OriginationInput, secret: SecretLookup, now: datetime,
              diags: list[Diagnostic]) -> Origination | None:
    """The origination of one cluster; None (with a diagnostic) when it cannot be built —
    the caller then leaves the cluster out, so requests fail closed with 503."""
    s = inp.tls.settings
    assert s is not None and s.mode in ("SIMPLE", "MUTUAL")
    ctx = tls_pb2.UpstreamTlsContext()
    common = ctx.common_tls_context
    # Envoy's client default stops at TLS 1.2; offer 1.3 too, as Istio's mesh clients do.
    common.tls_params.CopyFrom(common_pb2.TlsParameters(
        tls_minimum_protocol_version=common_pb2.TlsParameters.TLSv1_2,
        tls_maximum_protocol_version=common_pb2.TlsParameters.TLSv1_3))
    secrets: dict[str, secret_pb2.Secret] = {}
    verify = not s.insecure_skip_verify
    if s.credential_name:
        if inp.sidecar and not inp.selector:
            diags.append(Diagnostic(
                "error", inp.tls.source, f"{inp.field}.credentialName",
                f"credentialName {s.credential_name} needs a DestinationRule with a "
                "workloadSelector when the client is a sidecar (Istio reads client "
                "credentials only for selected workloads); the cluster is left out, so "
                "requests to it fail with 503", codes.CLIENT_CREDENTIAL_WITHOUT_SELECTOR))
            return None
        built = _credential(inp, secret, now, diags, verify)
        if built is None:
            return None
        secrets = built
        name = credential_base(s.credential_name)
        if s.mode == "MUTUAL":
            common.tls_certificate_sds_secret_configs.append(sds(sds_name(name)))
        if verify and ca_sds_name(name) in secrets:
            combined = common.combined_validation_context
            combined.default_validation_context.CopyFrom(_pins(s.subject_alt_names))
            combined.validation_context_sds_secret_config.CopyFrom(sds(ca_sds_name(name)))
        elif verify:
            _file_validation(common, SYSTEM_ROOTS, None, s.subject_alt_names)
    else:
        if not _files_readable(inp, verify, diags):
            return None
        if verify:
            _file_validation(common, s.ca_certificates or SYSTEM_ROOTS, s.ca_crl,
                             s.subject_alt_names)
        if s.mode == "MUTUAL":
            common.tls_certificates.append(common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(filename=s.client_certificate or ""),
                private_key=base_pb2.DataSource(filename=s.private_key or "")))
    options = None
    if s.sni:
        ctx.sni = s.sni
    elif inp.http:
        options = hpo.HttpProtocolOptions(
            explicit_http_config=hpo.HttpProtocolOptions.ExplicitHttpConfig(
                http_protocol_options=protocol_pb2.Http1ProtocolOptions()),
            upstream_http_protocol_options=protocol_pb2.UpstreamHttpProtocolOptions(
                auto_sni=True, auto_san_validation=verify and not s.subject_alt_names))
    elif inp.default_sni:
        # Not HTTP, so no Host to take the name from: the entry's DNS host is the name the
        # server is dialled by. It is also checked against the certificate (sailmesh;
        # Istio checks only the CA here), the way auto SAN validation does for HTTP.
        ctx.sni = inp.default_sni
        if verify and not s.subject_alt_names:
            _add_san(common, inp.default_sni)
    return Origination(ctx, secrets, options)


def _files_readable(inp: OriginationInput, verify: bool, diags: list[Diagnostic]) -> bool:
    """Whether the client's Envoy can read every file the settings name. Envoy would refuse
    the proxy's whole cluster update over one missing file; Istio's agent would hold just this
    cluster back. Same here: the cluster is left out for this proxy (its requests get 503),
    and the message names the proxy, the field and the file."""
    s = inp.tls.settings
    assert s is not None
    if inp.files is None:
        return True
    wanted = [("caCertificates", s.ca_certificates or (SYSTEM_ROOTS if verify else None)),
              ("caCrl", s.ca_crl if verify else None)]
    if s.mode == "MUTUAL":
        wanted += [("clientCertificate", s.client_certificate), ("privateKey", s.private_key)]
    failed = [(name, path, problem) for name, path in wanted
              if path and (problem := inp.files.problem(path)) is not None]
    if not failed:
        return True
    reasons = {problem for _, _, problem in failed}
    what = (", ".join(path for _, path, _ in failed) + f" ({reasons.pop()})" if len(reasons) == 1
            else ", ".join(f"{path} ({problem})" for _, path, problem in failed))
    if all(name == "caCertificates" for name, _, _ in failed) and not s.ca_certificates:
        hint = "the system CA bundle is missing (install ca-certificates, or set caCertificates)"
    else:
        hint = ("mount them into the proxy with the pod annotations sidecar.istio.io/userVolume"
                " and sidecar.istio.io/userVolumeMount, or use credentialName")
        if not inp.selector:
            hint += "; a workloadSelector limits the DestinationRule to the pods that have them"
    diags.append(Diagnostic(
        "warning", inp.tls.source, f"{inp.field}.{failed[0][0]}",
        f"{inp.files.who} cannot read {what}; cluster {inp.cluster} is left out for this "
        f"proxy, so its requests to it fail with 503; {hint}", codes.ORIGINATION_FILE_UNREADABLE))
    return False


def _credential(inp: OriginationInput, secret: SecretLookup, now: datetime,
                diags: list[Diagnostic], verify: bool) -> dict[str, secret_pb2.Secret] | None:
    s = inp.tls.settings
    assert s is not None and s.credential_name
    field = f"{inp.field}.credentialName"
    where = (f"credentialName of {inp.tls.source}; client credentials are read from the "
             f"namespace of the proxy that uses them, {inp.namespace}")
    cred = lookup_credential(s.credential_name, inp.namespace, secret, inp.access)
    if cred.other_namespace is not None:
        diags.append(_error(inp, field, codes.CREDENTIAL_CROSS_NAMESPACE,
                            f"credentialName {s.credential_name} refers to namespace "
                            f"{cred.other_namespace}; Istio reads client credentials only "
                            f"from the proxy's own namespace {inp.namespace} (copy the Secret "
                            "there)"))
        return None
    if cred.secret is None:
        diags.append(_error(inp, field, codes.SECRET_NOT_FOUND, f"{cred.ref} not found ({where})"))
        return None
    out: dict[str, secret_pb2.Secret] = {}
    if s.mode == "MUTUAL" and cred.denied:
        diags.append(_error(inp, field, codes.CREDENTIAL_NOT_AUTHORIZED,
                            denial_message(cred, "the client sidecar")))
        return None
    if s.mode == "MUTUAL":
        pair = cred.cert_and_key()
        if pair is None:
            diags.append(_error(inp, field, codes.SECRET_KEYS_MISSING,
                                f"{cred.ref} has no certificate and key "
                                "(tls.crt + tls.key or cert + key) for MUTUAL"))
            return None
        for severity, message in check_certificate(pair[0], pair[1], now):
            if severity == "error":
                diags.append(_error(inp, field, codes.SECRET_INVALID_PEM,
                                    f"{cred.ref}: {message}"))
                return None
            diags.append(Diagnostic("warning", inp.tls.source, field, f"{cred.ref}: {message}",
                                    codes.CERT_EXPIRED))
        out[sds_name(cred.name)] = secret_pb2.Secret(
            name=sds_name(cred.name), tls_certificate=common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(inline_bytes=pair[0]),
                private_key=base_pb2.DataSource(inline_bytes=pair[1])))
    ca_pem = cred.ca()
    if ca_pem is not None:
        out[ca_sds_name(cred.name)] = secret_pb2.Secret(
            name=ca_sds_name(cred.name),
            validation_context=common_pb2.CertificateValidationContext(
                trusted_ca=base_pb2.DataSource(inline_bytes=ca_pem)))
    elif verify and s.mode == "SIMPLE":
        diags.append(_error(inp, field, codes.CA_MISSING,
                            f"SIMPLE with credentialName needs the server's CA: neither Secret "
                            f"{inp.namespace}/{cred.name}{CA_SUFFIX} nor key ca.crt / cacert of "
                            f"{cred.ref} exists ({where})"))
        return None
    return out


def _pins(sans: list[str]) -> common_pb2.CertificateValidationContext:
    vc = common_pb2.CertificateValidationContext()
    for san in sans:
        vc.match_typed_subject_alt_names.append(common_pb2.SubjectAltNameMatcher(
            san_type=common_pb2.SubjectAltNameMatcher.SanType.DNS,
            matcher=string_pb2.StringMatcher(exact=san)))
    return vc


def _add_san(common: common_pb2.CommonTlsContext, san: str) -> None:
    vc = (common.combined_validation_context.default_validation_context
          if common.HasField("combined_validation_context") else common.validation_context)
    vc.match_typed_subject_alt_names.append(common_pb2.SubjectAltNameMatcher(
        san_type=common_pb2.SubjectAltNameMatcher.SanType.DNS,
        matcher=string_pb2.StringMatcher(exact=san)))


def _file_validation(common: common_pb2.CommonTlsContext, ca: str, crl: str | None,
                     sans: list[str]) -> None:
    vc = common.validation_context
    vc.CopyFrom(_pins(sans))
    vc.trusted_ca.filename = ca
    if crl:
        vc.crl.filename = crl


def _error(inp: OriginationInput, field: str, code: str, message: str) -> Diagnostic:
    return Diagnostic("error", inp.tls.source, field,
                      message + "; the cluster is left out, so requests to it fail with 503",
                      code)


__all__ = ["SYSTEM_ROOTS", "Origination", "OriginationInput", "SecretLookup", "originate"]
