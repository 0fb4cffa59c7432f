"""Admitted Routes → the files of an HAProxy router, laid out as OpenShift's router image
lays them out under /var/lib/haproxy (conf/haproxy.config, conf/*.map, router/certs,
router/cacerts).

Owns: the frontends and backends of OpenShift's haproxy-config.template, as facts:
- `public` (HTTP): `redirect scheme https` for Routes with insecure policy Redirect, then
  the host/path map `os_http_be.map` (plain Routes, and edge/reencrypt Routes with Allow);
  anything else goes to `openshift_default`, which answers 503.
- `public_ssl` (TCP): reads the SNI of the ClientHello; passthrough hosts go to their
  `be_tcp:<ns>:<name>` backend untouched; other TLS goes to `fe_sni` (SNI: the Route's
  certificate from `cert_config.map`, else the default wildcard) or `fe_no_sni` (default
  certificate), which terminate TLS and pick `be_edge_http:`/`be_secure:` by host and path.
- reencrypt servers: `ssl` with ALPN h2,http/1.1 and NO `sni` keyword, so no SNI is sent
  to the pod. With `destinationCACertificate`: `verify required ca-file <that CA>` and no
  name check (chain only). Without: the service CA with `verifyhost <svc>.<ns>.svc`.
- maps are regular expressions on `base` (host + path), the most specific path first.
- each backend's own settings (annotations, spec.httpHeaders) come from route_options.
Must not know: Istio, Kubernetes objects other than Routes, processes or sockets.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sailmesh.model.route_admission import Admitted
from sailmesh.model.route_backends import ServiceUnit
from sailmesh.router.route_options import backend_options

ROOT = "/var/lib/haproxy"
NO_SNI_PORT = 10443  # fe_no_sni / fe_sni on the router's own loopback, as in OpenShift
SNI_PORT = 10444

ERROR_503 = (
    "HTTP/1.0 503 Service Unavailable\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: private, max-age=0, no-cache, no-store\r\n"
    "Connection: close\r\n"
    "Content-Type: text/html\r\n\r\n"
    "<html><body><h1>Application is not available</h1>\n"
    "<p>The application is currently not serving requests at this endpoint. It may not "
    "have been started or is still starting.</p></body></html>\n"
)


@dataclass(frozen=True)
class RouterSettings:
    http_port: int = 80
    https_port: int = 443
    stats_port: int = 1936
    # Also listen on 127.0.0.1 of another network namespace (the host's), named as
    # HAProxy's `namespace` keyword wants it: a file under /var/run/netns.
    host_netns: str | None = None
    host_http_port: int | None = None
    host_https_port: int | None = None
    # Where the files are seen by HAProxy (the router image's layout).
    root: str = ROOT
    default_certificate: str = f"{ROOT}/conf/default_pub_keys.pem"
    service_ca: str = f"{ROOT}/service-ca.crt"

    @property
    def conf(self) -> str:
        return f"{self.root}/conf"


@dataclass(frozen=True)
class RouterFile:
    content: bytes
    mode: int = 0o644


def render(routes: Sequence[Admitted], units: Mapping[tuple[str, str], Sequence[ServiceUnit]],
           settings: RouterSettings) -> dict[str, RouterFile]:
    """Every file of the router, by path relative to /var/lib/haproxy. `units` gives each
    admitted Route's Services (`service_units`), keyed by (namespace, name)."""
    files: dict[str, RouterFile] = {"conf/error-page-503.http": RouterFile(ERROR_503.encode())}
    maps: dict[str, list[tuple[str, str]]] = {m: [] for m in (
        "os_http_be", "os_edge_reencrypt_be", "os_route_http_redirect", "os_tcp_be",
        "os_sni_passthrough")}
    crt_list: list[str] = []
    backends: list[str] = []
    for r in sorted(routes, key=_specificity):
        ns, name = r.route.namespace, r.route.name
        tls = r.route.spec.tls
        termination = tls.termination if tls else ""
        policy = tls.insecure_policy if tls else "Allow"
        backend = f"{_PREFIX[termination]}:{ns}:{name}"
        pattern = _route_regex(r.host, r.path)
        if termination == "passthrough":
            exact = f"^{_quote(r.host)}$"
            maps["os_sni_passthrough"].append((exact, "1"))
            maps["os_tcp_be"].append((exact, backend))
        elif termination:
            maps["os_edge_reencrypt_be"].append((pattern, backend))
        if termination == "" or policy == "Allow":
            maps["os_http_be"].append((pattern, backend))
        elif policy == "Redirect":
            maps["os_route_http_redirect"].append((pattern, "1"))
        if tls and tls.certificate and tls.key:
            pem = "\n".join(p.strip() for p in (tls.certificate, tls.key, tls.ca_certificate)
                            if p) + "\n"
            files[f"router/certs/{ns}:{name}.pem"] = RouterFile(pem.encode(), 0o600)
            crt_list.append(f"{settings.root}/router/certs/{ns}:{name}.pem [alpn h2,http/1.1] {r.host}")
        dest_ca = None
        if termination == "reencrypt" and tls and tls.destination_ca_certificate:
            dest_ca = f"router/cacerts/{ns}:{name}.pem"
            files[dest_ca] = RouterFile(tls.destination_ca_certificate.strip().encode() + b"\n")
        text, listed, allowed = _backend(backend, r, units.get((ns, name), ()), termination,
                                         f"{settings.root}/{dest_ca}" if dest_ca else None,
                                         settings)
        backends.append(text)
        if listed:
            files[listed] = RouterFile(allowed)
    for m, entries in maps.items():
        files[f"conf/{m}.map"] = RouterFile("".join(f"{k} {v}\n" for k, v in entries).encode())
    files["conf/cert_config.map"] = RouterFile("".join(f"{line}\n" for line in crt_list).encode())
    files["conf/haproxy.config"] = RouterFile((_head(settings) + "".join(backends)).encode())
    return files


_PREFIX = {"": "be_http", "edge": "be_edge_http", "reencrypt": "be_secure",
           "passthrough": "be_tcp"}


def _specificity(r: Admitted) -> tuple[str, int, str]:
    # Map lookups take the first matching line: per host, the longest path first.
    return (r.host, -len(r.path), r.path)


def _quote(text: str) -> str:
    """Go's regexp.QuoteMeta: only regular-expression metacharacters are escaped."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def _route_regex(host: str, path: str) -> str:
    """OpenShift's route regexp: the host with an optional trailing dot and port, then
    the path as a prefix on segment boundaries (a path ending in / matches below it)."""
    head = f"^{_quote(host)}\\.?(:[0-9]+)?"
    if not path or path == "/":
        return f"{head}(/.*)?$"
    if path.endswith("/"):
        return f"{head}{_quote(path)}.*$"
    return f"{head}{_quote(path)}(\\.[^/]*)?(/.*)?$"


def _listen(port: int, settings: RouterSettings, host_port: int | None,
            extra: str = "") -> str:
    lines = f"  bind :{port}{extra}\n"
    if settings.host_netns and host_port:
        lines += f"  bind 127.0.0.1:{host_port} namespace {settings.host_netns}{extra}\n"
    return lines


# On a reload the old worker would close idle keep-alive connections at once, racing a
# client that is just sending its next request on one. With this option it answers that
# request (with `Connection: close`) first, so a Route change fails no request.
_IDLE_CLOSE = "  option idle-close-on-response\n"


def _terminating_frontend(name: str, port: int, certs: str, conf: str) -> str:
    return (
        f"\nfrontend {name}\n"
        f"  bind 127.0.0.1:{port} ssl {certs} accept-proxy\n"
        "  mode http\n"
        + _IDLE_CLOSE
        + "  # HTTPoxy: never pass a Proxy header on\n"
        "  http-request del-header Proxy\n"
        "  # DNS names are case-insensitive (RFC 4343); the maps hold lower case\n"
        "  http-request set-header Host %[req.hdr(Host),lower]\n"
        f"  use_backend %[base,map_reg({conf}/os_edge_reencrypt_be.map)]\n"
        "  default_backend openshift_default\n"
    )


def _head(s: RouterSettings) -> str:
    conf = s.conf
    return (
        "global\n"
        # No global maxconn: HAProxy derives it from the file-descriptor limit it gets.
        f"  stats socket {s.root}/run/haproxy.sock mode 600 level admin expose-fd listeners\n"
        "  stats timeout 2m\n"
        "  ssl-default-bind-options ssl-min-ver TLSv1.2\n"
        "  tune.ssl.default-dh-param 2048\n"
        "\n"
        "defaults\n"
        "  maxconn 20000\n"
        f"  errorfile 503 {conf}/error-page-503.http\n"
        "  timeout connect 5s\n"
        "  timeout client 30s\n"
        "  timeout client-fin 1s\n"
        "  timeout server 30s\n"
        "  timeout server-fin 1s\n"
        "  timeout http-request 10s\n"
        "  timeout http-keep-alive 300s\n"
        "  timeout tunnel 1h\n"
        "\n"
        "listen stats\n"
        f"  bind :{s.stats_port}\n"
        "  mode http\n"
        "  monitor-uri /healthz\n"
        "\n"
        "frontend public\n"
        + _listen(s.http_port, s, s.host_http_port)
        + "  mode http\n"
        + _IDLE_CLOSE
        + "  tcp-request inspect-delay 5s\n"
        "  tcp-request content accept if HTTP\n"
        "  http-request del-header Proxy\n"
        "  http-request set-header Host %[req.hdr(Host),lower]\n"
        f"  acl secure_redirect base,map_reg_int({conf}/os_route_http_redirect.map) -m bool\n"
        "  redirect scheme https if secure_redirect\n"
        f"  use_backend %[base,map_reg({conf}/os_http_be.map)]\n"
        "  default_backend openshift_default\n"
        "\n"
        "frontend public_ssl\n"
        + _listen(s.https_port, s, s.host_https_port)
        + "  tcp-request inspect-delay 5s\n"
        "  tcp-request content accept if { req_ssl_hello_type 1 }\n"
        "  acl sni req.ssl_sni -m found\n"
        f"  acl sni_passthrough req.ssl_sni,lower,map_reg({conf}/os_sni_passthrough.map)"
        " -m found\n"
        f"  use_backend %[req.ssl_sni,lower,map_reg({conf}/os_tcp_be.map)]"
        " if sni sni_passthrough\n"
        "  use_backend be_sni if sni\n"
        "  default_backend be_no_sni\n"
        "\n"
        "backend be_sni\n"
        f"  server fe_sni 127.0.0.1:{SNI_PORT} weight 1 send-proxy\n"
        + _terminating_frontend(
            "fe_sni", SNI_PORT, f"crt {s.default_certificate} crt-list {conf}/cert_config.map", conf)
        + "\nbackend be_no_sni\n"
        f"  server fe_no_sni 127.0.0.1:{NO_SNI_PORT} weight 1 send-proxy\n"
        + _terminating_frontend("fe_no_sni", NO_SNI_PORT, f"crt {s.default_certificate}", conf)
        + "\nbackend openshift_default\n"
        "  mode http\n"
        "  option forwardfor\n"
        "  option http-pretend-keepalive\n"
    )


def _backend(name: str, r: Admitted, units: Sequence[ServiceUnit], termination: str,
             dest_ca: str | None, settings: RouterSettings) -> tuple[str, str | None, bytes]:
    """The backend's text, and its allowlist file (path, content) when it needs one."""
    active = sum(1 for u in units if u.weight > 0)
    ns, route_name = r.route.namespace, r.route.name
    allowlist = f"router/allowlists/{ns}:{route_name}.txt"
    cookie = hashlib.sha256(f"{ns}/{route_name}".encode()).hexdigest()[:32]
    opts = backend_options(r.route, termination, active, cookie, f"{settings.root}/{allowlist}")
    out = [f"\n# Route {ns}/{route_name}: {r.host}{r.path} ({termination or 'plain http'})",
           f"backend {name}"]
    listed = (allowlist, ("\n".join(opts.allowlist) + "\n").encode()) if opts.allowlist else None
    if termination == "passthrough":
        out += [f"  balance {opts.balance}", *(f"  {line}" for line in opts.lines),
                "  hash-type consistent", "  timeout check 5000ms"]
        for u in units:
            if u.weight == 0:
                continue  # without cookies weight 0 means nothing; OpenShift leaves them out
            out += [f"  server {s.name} {s.ip}:{s.port} weight {s.weight}" for s in u.servers]
        return "\n".join(out) + "\n", *(listed or (None, b""))
    secure_cookie = termination in ("edge", "reencrypt") and (
        r.route.spec.tls is not None and r.route.spec.tls.insecure_policy != "Allow")
    out += [
        "  mode http",
        "  option redispatch",
        "  option forwardfor",
        f"  balance {opts.balance}",
        *(f"  {line}" for line in opts.lines),
        "  timeout check 5000ms",
        "  http-request add-header X-Forwarded-Host %[req.hdr(host)]",
        "  http-request add-header X-Forwarded-Port %[dst_port]",
        "  http-request add-header X-Forwarded-Proto http if !{ ssl_fc }",
        "  http-request add-header X-Forwarded-Proto https if { ssl_fc }",
        "  http-request add-header X-Forwarded-Proto-Version h2 if { ssl_fc_alpn -i h2 }",
        "  http-request add-header Forwarded"
        " for=%[src];host=%[req.hdr(host)];proto=%[req.hdr(X-Forwarded-Proto)]",
    ]
    if opts.cookie:
        out.append(f"  cookie {opts.cookie} insert indirect nocache httponly"
                   + (" secure attr SameSite=None" if secure_cookie else ""))
    out += [f"  {line}" for line in opts.header_lines]
    for u in units:
        for s in u.servers:
            line = f"  server {s.name} {s.ip}:{s.port}"
            if opts.cookie:
                line += f" cookie {hashlib.sha256(s.name.encode()).hexdigest()[:32]}"
            line += f" weight {s.weight}"
            if termination == "reencrypt":
                # No `sni`: OpenShift's router sends no server name to the pod.
                line += " ssl alpn h2,http/1.1"
                if dest_ca:
                    line += f" verify required ca-file {dest_ca}"
                else:
                    line += f" verifyhost {u.hostname} verify required ca-file {settings.service_ca}"
            out.append(line)
    return "\n".join(out) + "\n", *(listed or (None, b""))


__all__ = ["ROOT", "RouterFile", "RouterSettings", "render"]
