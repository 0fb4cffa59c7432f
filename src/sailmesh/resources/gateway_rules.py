"""Gateway rules of Istio's validation webhook: server ports, hosts and TLS settings.

Owns: every check of one Gateway's servers, including the TLS mode ↔ credential rules
that decide whether a gateway can terminate TLS at all. Must not know: files, Secrets
(whether a credential exists is a state check for `analysis/`), Envoy.
"""

from __future__ import annotations

from sailmesh.resources import names
from sailmesh.resources.errors import Findings
from sailmesh.resources.networking import Gateway, ServerTLSSettings

# Istio's Gateway port protocols (protocol.Parse is case-insensitive).
GATEWAY_PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS")
_TLS_PROTOCOLS = {"HTTPS", "TLS"}
_HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}
_TLS_ORDER = {"TLSV1_0": 0, "TLSV1_1": 1, "TLSV1_2": 2, "TLSV1_3": 3}
_SECRET_HINT = "put the Secret in the gateway workload's namespace (istio-system)"


def check_gateway(gw: Gateway, f: Findings) -> None:
    if not gw.spec.servers:
        f.error("spec.servers", "gateway must have at least one server")  # Istio's webhook
    port_names: dict[str, int] = {}
    for i, server in enumerate(gw.spec.servers):
        at = f"spec.servers[{i}]"
        for j, host in enumerate(server.hosts):
            if problem := names.gateway_server_host(host):
                f.error(f"{at}.hosts[{j}]", problem)
        name = server.port.name
        if not name:
            f.error(f"{at}.port.name", "port name must be set")
        elif name in port_names:
            f.error(
                f"{at}.port.name",
                f'port names in servers must be unique: duplicate name "{name}"',
                f"spec.servers[{port_names[name]}] already uses it",
            )
        else:
            port_names[name] = i
        protocol = server.port.protocol.upper()
        if protocol not in GATEWAY_PROTOCOLS:
            guess = names.did_you_mean(protocol, GATEWAY_PROTOCOLS)
            f.error(
                f"{at}.port.protocol",
                f'unknown protocol "{server.port.protocol}"',
                f'did you mean "{guess}"?' if guess else "one of " + ", ".join(GATEWAY_PROTOCOLS),
            )
            continue
        tls = server.tls
        if tls is None:
            if protocol in _TLS_PROTOCOLS:
                f.error(
                    at,
                    "server must have TLS settings for HTTPS/TLS protocols",
                    "add tls: {mode: SIMPLE, credentialName: <secret>}"
                    if protocol == "HTTPS"
                    else "add tls: {mode: PASSTHROUGH} or a terminating mode",
                )
            continue
        if protocol not in _TLS_PROTOCOLS:
            # Istio lets an HTTP server carry only `httpsRedirect` (mode left PASSTHROUGH).
            redirect_only = tls.mode == "PASSTHROUGH" and not _server_cert_fields(tls)
            if protocol not in _HTTP_PROTOCOLS:
                f.error(f"{at}.tls", "server cannot have TLS settings for non HTTPS/TLS ports")
            elif not redirect_only:
                f.error(
                    f"{at}.tls",
                    "server cannot have TLS settings for plain text HTTP ports",
                    "use protocol HTTPS to terminate TLS; only httpsRedirect is allowed here",
                )
            continue
        _server_tls(tls, f"{at}.tls", protocol, f)


def _server_cert_fields(tls: ServerTLSSettings) -> list[str]:
    """The YAML names of the certificate-bearing fields that are set."""
    fields = {
        "serverCertificate": tls.server_certificate,
        "privateKey": tls.private_key,
        "caCertificates": tls.ca_certificates,
        "caCrl": tls.ca_crl,
        "credentialName": tls.credential_name,
        "credentialNames": tls.credential_names,
        "tlsCertificates": tls.tls_certificates,
    }
    return [name for name, value in fields.items() if value]


def _server_tls(tls: ServerTLSSettings, at: str, protocol: str, f: Findings) -> None:
    _tls_versions(tls, at, f)
    for j, cred in enumerate([tls.credential_name, *(tls.credential_names or [])]):
        if cred and "/" in cred:
            field = f"{at}.credentialName" if j == 0 else f"{at}.credentialNames[{j - 1}]"
            f.error(
                field,
                f'credentialName "{cred}" names another namespace: Istio refuses'
                " cross-namespace credentials for gateways (a Gateway could otherwise"
                " read any namespace's secrets)",
                f"{_SECRET_HINT} and write credentialName: {cred.rsplit('/', 1)[1]}",
            )
    mode = tls.mode
    set_fields = _server_cert_fields(tls)
    if mode == "ISTIO_MUTUAL":
        for field in set_fields:
            f.error(
                f"{at}.{field}",
                f"ISTIO_MUTUAL TLS cannot have associated {field}",
                "ISTIO_MUTUAL serves the gateway's mesh certificate; use MUTUAL to present"
                " your own certificate",
            )
        return
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
        if not set_fields:
            return
        # Pitfall: `protocol: TLS` + credentialName reads like termination, but an absent
        # mode is PASSTHROUGH and the credential is silently ignored.
        if protocol == "TLS" and "mode" not in tls.model_fields_set:
            f.warning(
                f"{at}.mode",
                "mode is not set, so it defaults to PASSTHROUGH and "
                + " and ".join(set_fields)
                + " will be ignored: the gateway will not terminate TLS",
                "set mode: SIMPLE (or MUTUAL) to terminate TLS with this credential",
            )
        else:
            f.warning(f"{at}.mode", f"{mode} mode does not use certificates, they will be ignored")
        return
    sources = [
        name
        for name, present in (
            ("credentialName", tls.credential_name),
            ("credentialNames", tls.credential_names),
            ("serverCertificate/privateKey", tls.server_certificate or tls.private_key),
            ("tlsCertificates", tls.tls_certificates),
        )
        if present
    ]
    if len(sources) > 1:
        f.error(
            at,
            "only one of credentialName, credentialNames, serverCertificate/privateKey,"
            " tlsCertificates may be set",
            "found " + " and ".join(sources),
        )
        return
    label = "SIMPLE TLS" if mode == "SIMPLE" else "MUTUAL TLS"
    if tls.ca_crl and (tls.credential_name or mode == "SIMPLE"):
        f.error(
            f"{at}.caCrl",
            "CRL is not supported with SIMPLE TLS"
            if mode == "SIMPLE"
            else "CRL is not supported with credentialName; put ca.crl in the credential",
        )
    if tls.credential_name or tls.credential_names:
        return  # certificate (and, for MUTUAL, the CA) come from the Secret
    if mode != "SIMPLE" and not tls.ca_certificates:
        f.error(
            f"{at}.caCertificates",
            f"{label} requires a client CA bundle",
            "set caCertificates, or use credentialName with a Secret holding ca.crt",
        )
    if not (tls.server_certificate or tls.private_key or tls.tls_certificates):
        f.error(
            at,
            f"{label} requires credentialName, or serverCertificate and privateKey",
            f"create a kubernetes.io/tls Secret; {_SECRET_HINT} and name it in credentialName",
        )
        return
    if not tls.tls_certificates:
        if not tls.server_certificate:
            f.error(f"{at}.serverCertificate", f"{label} requires a server certificate")
        if not tls.private_key:
            f.error(f"{at}.privateKey", f"{label} requires a private key")


def _tls_versions(tls: ServerTLSSettings, at: str, f: Findings) -> None:
    low, high = tls.min_protocol_version, tls.max_protocol_version
    if low in ("TLSV1_0", "TLSV1_1") and not tls.cipher_suites:
        f.warning(
            f"{at}.minProtocolVersion",
            f"{low} has no effect without cipherSuites: the default cipher list no longer"
            " includes ciphers these versions can use, so such clients are still rejected",
            "set cipherSuites, e.g. [ECDHE-RSA-AES128-SHA, AES128-SHA]",
        )
    if low in _TLS_ORDER and high in _TLS_ORDER and _TLS_ORDER[low] > _TLS_ORDER[high]:
        f.error(
            f"{at}.minProtocolVersion",
            f"minProtocolVersion {low} is higher than maxProtocolVersion {high}",
        )


__all__ = ["GATEWAY_PROTOCOLS", "check_gateway"]
