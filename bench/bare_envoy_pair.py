"""A bare pair of Envoys with mutual TLS and nothing of the mesh: the floor that
bench/sidecar_mtls.py holds its sidecars against, on the same machine and in the same run.

    client (open_loop.py) -> client Envoy -> mTLS -> server Envoy -> nginx     (the pair)
    client (open_loop.py) -> nginx                                            (its direct arm)

All on 127.0.0.1, no network namespace, no iptables, no xDS, no telemetry, no Istio
filters: two Envoy processes from static files, run by the same binary with the same
command line as a sidecar (`xds.bootstrap.envoy_argv`: 2 worker threads), and the same
nginx answering the same 1 KB. The client's listener is plain HTTP and its one cluster
speaks TLS 1.3 with a P-256 SPIFFE certificate from the mesh's CA code; the server requires
that client certificate and checks its SPIFFE prefix, as a sidecar's inbound does. What this
pair adds over its direct arm is what two Envoys and one mTLS hop cost on this machine; what
the sidecars add beyond it is the mesh's own share (interception, network namespaces, the
Istio listener and filter chains, telemetry).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from sailmesh.ca import CertificateAuthority, issue_workload_cert, spiffe_id
from sailmesh.xds.bootstrap import envoy_argv

TRUST_DOMAIN = "cluster.local"
_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
_HCM = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
        "HttpConnectionManager")
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _address(port: int) -> dict:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _tls_context(files: dict[str, Path]) -> dict:
    return {
        "tls_params": {"tls_minimum_protocol_version": "TLSv1_3",
                       "tls_maximum_protocol_version": "TLSv1_3"},
        "tls_certificates": [{"certificate_chain": {"filename": str(files["chain"])},
                              "private_key": {"filename": str(files["key"])}}],
        "validation_context": {
            "trusted_ca": {"filename": str(files["root"])},
            "match_typed_subject_alt_names": [
                {"san_type": "URI", "matcher": {"prefix": f"spiffe://{TRUST_DOMAIN}/"}}],
        },
    }


def _http_chain(stat_prefix: str, cluster: str) -> dict:
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
        "@type": _HCM, "stat_prefix": stat_prefix,
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
    }}


def _cluster(name: str, port: int, transport_socket: dict | None = None) -> dict:
    cluster = {"name": name, "type": "STATIC", "connect_timeout": "1s",
               "load_assignment": {"cluster_name": name, "endpoints": [
                   {"lb_endpoints": [{"endpoint": {"address": _address(port)}}]}]}}
    if transport_socket:
        cluster["transport_socket"] = transport_socket
    return cluster


def bootstraps(ports: dict[str, int], certs: dict[str, dict[str, Path]], admin: Path) -> dict[str, dict]:
    """The two Envoys' static configurations (admin on Unix sockets under `admin`)."""
    server_tls = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": _TLS + "DownstreamTlsContext", "require_client_certificate": True,
        "common_tls_context": _tls_context(certs["server"])}}
    client_tls = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": _TLS + "UpstreamTlsContext", "common_tls_context": _tls_context(certs["client"])}}
    return {
        "server": {
            "admin": {"address": {"pipe": {"path": str(admin / "server.sock"), "mode": 0o600}}},
            "static_resources": {
                "listeners": [{"name": "inbound", "address": _address(ports["server_envoy"]),
                               "filter_chains": [{"filters": [_http_chain("inbound", "app")],
                                                  "transport_socket": server_tls}]}],
                "clusters": [_cluster("app", ports["nginx"])]}},
        "client": {
            "admin": {"address": {"pipe": {"path": str(admin / "client.sock"), "mode": 0o600}}},
            "static_resources": {
                "listeners": [{"name": "outbound", "address": _address(ports["client_envoy"]),
                               "filter_chains": [{"filters": [_http_chain("outbound", "server")]}]}],
                "clusters": [_cluster("server", ports["server_envoy"], client_tls)]}},
    }


def write_certificates(workdir: Path) -> dict[str, dict[str, Path]]:
    """A fresh P-256 CA and an X.509-SVID for each side, as PEM files (keys 0600)."""
    now = datetime.now(UTC)
    ca = CertificateAuthority.self_signed(TRUST_DOMAIN, "ecdsa-p256", now)
    out = {}
    for role in ("client", "server"):
        cert = issue_workload_cert(ca, spiffe_id=spiffe_id(TRUST_DOMAIN, "bare", role), now=now)
        files = {"chain": workdir / f"{role}.pem", "key": workdir / f"{role}-key.pem",
                 "root": workdir / "root.pem"}
        files["chain"].write_bytes(cert.cert_chain_pem)
        files["key"].touch(mode=0o600)
        files["key"].write_bytes(cert.key_pem)
        files["root"].write_bytes(cert.root_pem)
        out[role] = files
    return out


def nginx_conf(workdir: Path, port: int, body: str) -> str:
    """The pods' server block (bench/sidecar_mtls.py's APPS), on loopback, with every path
    nginx writes kept under `workdir`."""
    temp = " ".join(f"{kind}_temp_path {workdir}/{kind};" for kind in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"worker_processes 1; pid {workdir}/nginx.pid; error_log {workdir}/nginx.err;\n"
            f"events {{}}\nhttp {{ {temp} access_log off;\n"
            f"  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000; "
            f"keepalive_timeout 300s;\n    location / {{ return 200 \"{body}\"; }} }} }}\n")


class BarePair:
    """nginx and the two Envoys, started in `workdir` and stopped by `stop()`."""

    def __init__(self, workdir: Path, body: str) -> None:
        self.workdir = workdir
        self.body = body
        self.ports = {k: free_port() for k in ("nginx", "server_envoy", "client_envoy")}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        conf = self.workdir / "nginx.conf"
        conf.write_text(nginx_conf(self.workdir, self.ports["nginx"], self.body))
        self.procs["nginx"] = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"],
                                               stderr=subprocess.DEVNULL)
        for role, config in bootstraps(self.ports, write_certificates(self.workdir), self.workdir).items():
            path = self.workdir / f"{role}-envoy.json"
            path.write_text(json.dumps(config))
            self.procs[f"envoy {role}"] = subprocess.Popen(
                envoy_argv(path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self.serving():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs.values()):
                self.stop()
                raise RuntimeError(f"the bare Envoy pair did not serve within 20 s (see {self.workdir})")
            time.sleep(0.1)

    def serving(self) -> bool:
        """One request through the pair answers 200 with the body."""
        try:
            with socket.create_connection(("127.0.0.1", self.ports["client_envoy"]), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: bare\r\nConnection: close\r\n\r\n")
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            return reply.startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def nginx_pids(self) -> list[int]:
        """nginx's master and its worker (the worker answers the requests)."""
        master = self.procs["nginx"].pid
        with open(f"/proc/{master}/task/{master}/children") as f:
            return [master, *(int(c) for c in f.read().split())]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
