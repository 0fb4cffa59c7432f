"""`sailctl proxy-config`: what a proxy really runs, read from Envoy's live config dump.

Tables follow istioctl's columns so output reads the same. The data comes only from the
Envoy admin endpoint (a Unix socket in the proxy's run directory), never from our own
translation: this is the ground truth that `translate` is checked against.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
from cryptography import x509

from sailmesh.cli.common import namespace_option
from sailmesh.cli.output import emit, fail, table
from sailmesh.cli.pod_cmds import find_pod

DUMP_TYPES = {
    "bootstrap": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
    "clusters": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
    "listeners": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
    "routes": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
    "secrets": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
    "endpoints": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
}


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self._path)


def admin_get(admin_socket: str, path: str) -> Any:
    conn = _UnixHTTPConnection(admin_socket)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    except OSError as exc:
        fail(f"cannot reach the proxy's admin endpoint {admin_socket}: {exc}")
    finally:
        conn.close()
    if resp.status != 200:
        fail(f"proxy admin {path}: HTTP {resp.status}")
    return json.loads(body)


def config_dump(admin_socket: str) -> dict[str, dict[str, Any]]:
    dump = admin_get(admin_socket, "/config_dump?include_eds")
    out = {}
    for section in dump.get("configs", []):
        for name, type_url in DUMP_TYPES.items():
            if section.get("@type") == type_url:
                out[name] = section
    return out


# --- listeners -------------------------------------------------------------------------


def listeners(dump: dict[str, Any]) -> list[dict[str, Any]]:
    sec = dump.get("listeners", {})
    out = [s["listener"] for s in sec.get("static_listeners", [])]
    out += [d["active_state"]["listener"] for d in sec.get("dynamic_listeners", [])
            if "active_state" in d]
    return out


def _chain_match(chain: dict[str, Any]) -> str:
    m = chain.get("filter_chain_match", {})
    parts = []
    if m.get("server_names"):
        parts.append("SNI: " + ",".join(m["server_names"]))
    if m.get("transport_protocol"):
        parts.append("Trans: " + m["transport_protocol"])
    if m.get("application_protocols"):
        parts.append("App: " + ",".join(m["application_protocols"]))
    if m.get("destination_port"):
        parts.append(f"Port: {m['destination_port']}")
    return "; ".join(parts) or "ALL"


def _chain_destination(chain: dict[str, Any]) -> str:
    for f in chain.get("filters", []):
        cfg = f.get("typed_config", {})
        if "rds" in cfg:
            return f"Route: {cfg['rds']['route_config_name']}"
        if "route_config" in cfg:
            for vh in cfg["route_config"].get("virtual_hosts", []):
                for r in vh.get("routes", []):
                    m = r.get("match", {})
                    if "prefix" in m:
                        return f"Inline Route: {m['prefix']}*"
                    if "path" in m:
                        return f"Inline Route: {m['path']}"
            return "Inline Route"
        if cfg.get("@type", "").endswith("TcpProxy"):
            return f"Cluster: {cfg.get('cluster', '')}"
    return "Non-HTTP/Non-TCP"


def listener_rows(dump: dict[str, Any], port: int | None, name: str | None) -> list[list[Any]]:
    rows = []
    for lst in listeners(dump):
        sa = lst.get("address", {}).get("socket_address", {})
        lport = sa.get("port_value", 0)
        if (port is not None and lport != port) or (name and lst.get("name") != name):
            continue
        chains = list(lst.get("filter_chains", []))
        if "default_filter_chain" in lst:
            chains.append(lst["default_filter_chain"])
        for chain in chains:
            rows.append([sa.get("address", ""), lport, _chain_match(chain), _chain_destination(chain)])
    rows.sort(key=lambda r: r[1])
    return rows


# --- routes ----------------------------------------------------------------------------


def route_configs(dump: dict[str, Any]) -> list[dict[str, Any]]:
    sec = dump.get("routes", {})
    out = [s["route_config"] for s in sec.get("static_route_configs", [])]
    out += [d["route_config"] for d in sec.get("dynamic_route_configs", [])]
    return out


def _route_match(r: dict[str, Any]) -> str:
    m = r.get("match", {})
    if "prefix" in m:
        return m["prefix"] + "*"
    if "path" in m:
        return m["path"]
    if "safe_regex" in m:
        return m["safe_regex"].get("regex", "")
    return "*"


def _virtual_service(r: dict[str, Any]) -> str:
    cfg = r.get("metadata", {}).get("filter_metadata", {}).get("istio", {}).get("config", "")
    parts = cfg.strip("/").split("/")
    if len(parts) >= 7:  # /apis/<group>/<version>/namespaces/<ns>/virtual-service/<name>
        return f"{parts[-1]}.{parts[-3]}"
    return "404" if r.get("direct_response", {}).get("status") == 404 else ""


def route_rows(dump: dict[str, Any], name: str | None) -> list[list[Any]]:
    rows = []
    for rc in route_configs(dump):
        if name and rc.get("name") != name:
            continue
        for vh in rc.get("virtual_hosts", []):
            domains = vh.get("domains", [])
            shown = domains[0] if domains else ""
            if len(domains) > 1:
                shown += f" + {len(domains) - 1} more..."
            for r in vh.get("routes", []) or [{}]:
                rows.append([rc.get("name", ""), vh.get("name", ""), shown, _route_match(r),
                             _virtual_service(r) if r else "404"])
    return rows


# --- clusters and endpoints -------------------------------------------------------------


def clusters(dump: dict[str, Any]) -> list[dict[str, Any]]:
    sec = dump.get("clusters", {})
    out = [s["cluster"] for s in sec.get("static_clusters", [])]
    out += [d["cluster"] for d in sec.get("dynamic_active_clusters", [])]
    return out


def _split_cluster(name: str) -> tuple[str, str, str, str]:
    parts = name.split("|")
    if len(parts) == 4:
        direction, port, subset, fqdn = parts
        return fqdn, port or "-", subset or "-", direction
    return name, "-", "-", "-"


def cluster_rows(dump: dict[str, Any], port: int | None, fqdn: str | None) -> list[list[Any]]:
    rows = []
    for c in clusters(dump):
        host, cport, subset, direction = _split_cluster(c.get("name", ""))
        if (fqdn and host != fqdn) or (port is not None and cport != str(port)):
            continue
        ctype = c.get("type", "EDS" if "eds_cluster_config" in c else "STATIC")
        rows.append([host, cport, subset, direction, ctype, ""])
    rows.sort(key=lambda r: (r[0], str(r[1])))
    return rows


def endpoint_rows(admin_socket: str, cluster: str | None) -> list[list[Any]]:
    data = admin_get(admin_socket, "/clusters?format=json")
    rows = []
    for cs in data.get("cluster_statuses", []):
        if cluster and cs.get("name") != cluster:
            continue
        for h in cs.get("host_statuses", []):
            sa = h.get("address", {}).get("socket_address", {})
            addr = f"{sa.get('address')}:{sa.get('port_value')}" if sa else "unix"
            health = h.get("health_status", {})
            state = "UNHEALTHY" if health.get("failed_outlier_check") else (
                health.get("eds_health_status", "HEALTHY"))
            outlier = "FAILED" if health.get("failed_outlier_check") else "OK"
            rows.append([addr, state, outlier, cs.get("name", "")])
    return rows


# --- secrets ---------------------------------------------------------------------------


def _pem_blocks(name: str, secret: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """The certificates of one SDS secret and istioctl's TYPE for them: `CA` for the mesh's
    root (`ROOTCA`), `Cert Chain` for everything else, a credential's `-cacert` included
    (as istio.io's pages show it)."""
    tc = secret.get("tls_certificate")
    if tc:
        chain = tc.get("certificate_chain", {})
        yield "Cert Chain", _source_bytes(chain)
    vc = secret.get("validation_context")
    if vc:
        yield "CA" if name == "ROOTCA" else "Cert Chain", _source_bytes(vc.get("trusted_ca", {}))


def _source_bytes(src: dict[str, Any]) -> bytes:
    if "inline_bytes" in src:
        return base64.b64decode(src["inline_bytes"])
    if "inline_string" in src:
        return src["inline_string"].encode()
    if "filename" in src:
        try:
            with open(src["filename"], "rb") as f:
                return f.read()
        except OSError:
            return b""
    return b""


def secret_rows(dump: dict[str, Any]) -> list[list[Any]]:
    sec = dump.get("secrets", {})
    rows = []
    entries = [(s, "ACTIVE") for s in sec.get("dynamic_active_secrets", [])]
    entries += [(s, "WARMING") for s in sec.get("dynamic_warming_secrets", [])]
    entries += [(s, "STATIC") for s in sec.get("static_secrets", [])]
    for s, state in entries:
        for kind, pem in _pem_blocks(s.get("name", ""), s.get("secret", {})):
            certs = x509.load_pem_x509_certificates(pem) if pem.strip() else []
            if not certs:
                rows.append([s.get("name", ""), kind, state, "false", "", "", "", ""])
                continue
            leaf = certs[0]
            now = datetime.now(UTC)
            valid = leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc
            try:
                san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                sans = ",".join(str(v.value) for v in san)
            except x509.ExtensionNotFound:
                sans = ""
            rows.append([
                s.get("name", ""), kind, state, str(valid).lower(), str(leaf.serial_number),
                leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                sans or leaf.subject.rfc4514_string(),
            ])
    return rows


def protojson_names(value: Any) -> Any:
    """Envoy's admin dump names fields as in the .proto files (`dynamic_active_secrets`);
    istioctl prints the same messages as protobuf JSON, with lowerCamelCase names
    (`dynamicActiveSecrets`), which is what jq filters on Istio's pages select."""
    if isinstance(value, list):
        return [protojson_names(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {_camel(k): protojson_names(v) for k, v in value.items()}


def _camel(name: str) -> str:
    if "_" not in name or not name[:1].islower() or not name.replace("_", "").isalnum():
        return name
    first, *rest = name.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


# --- command ---------------------------------------------------------------------------

HEADERS = {
    "listener": ["ADDRESSES", "PORT", "MATCH", "DESTINATION"],
    "route": ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"],
    "cluster": ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"],
    "endpoint": ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"],
    "secret": ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER",
               "NOT BEFORE", "SANS/SUBJECT"],
}
ALIASES = {"listeners": "listener", "l": "listener", "routes": "route", "r": "route",
           "clusters": "cluster", "c": "cluster", "endpoints": "endpoint", "ep": "endpoint",
           "secrets": "secret", "s": "secret", "all": "all", "bootstrap": "bootstrap"}


@click.command("proxy-config")
@click.argument("what", type=click.Choice(sorted({*HEADERS, *ALIASES})), metavar="TYPE")
@click.argument("target", metavar="POD|deploy/NAME")
@namespace_option
@click.option("-o", "--output", default=None, help="json|yaml")
@click.option("--port", type=int, default=None, help="Filter listeners/clusters by port.")
@click.option("--name", default=None, help="Filter by listener/route name.")
@click.option("--fqdn", default=None, help="Filter clusters by service FQDN.")
@click.option("--cluster", default=None, help="Filter endpoints by cluster name.")
def proxy_config(what: str, target: str, namespace: str | None, output: str | None,
                 port: int | None, name: str | None, fqdn: str | None, cluster: str | None) -> None:
    """Show a proxy's live Envoy configuration: listener|route|cluster|endpoint|secret|all."""
    kind = ALIASES.get(what, what)
    pod = find_pod(target, namespace)
    admin = pod.get("admin")
    if not admin:
        fail(f"pod {pod['name']} has no proxy (no sidecar or gateway Envoy)")
    dump = config_dump(admin)
    if output:
        raw = {
            "listener": listeners(dump), "route": route_configs(dump), "cluster": clusters(dump),
            "secret": dump.get("secrets", {}), "bootstrap": dump.get("bootstrap", {}),
            "endpoint": dump.get("endpoints", {}), "all": dump,
        }[kind]
        emit(protojson_names(raw), output)
        return
    kinds = ["listener", "route", "cluster", "endpoint", "secret"] if kind == "all" else [kind]
    blocks = []
    for k in kinds:
        rows = {
            "listener": lambda: listener_rows(dump, port, name),
            "route": lambda: route_rows(dump, name),
            "cluster": lambda: cluster_rows(dump, port, fqdn),
            "endpoint": lambda: endpoint_rows(admin, cluster),
            "secret": lambda: secret_rows(dump),
        }[k]()
        blocks.append(table(HEADERS[k], rows))
    click.echo("\n\n".join(blocks))
