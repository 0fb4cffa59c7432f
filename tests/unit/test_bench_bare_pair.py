"""bench/bare_envoy_pair.py, the sidecar benchmark's floor: its two Envoy configurations are
valid for the Envoy the sidecars run, and the pair really serves through mutual TLS (the
server's listener counts a handshake with a client certificate); the benchmark's arm order."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest
from bench import bare_envoy_pair as bare
from bench.sidecar_mtls import BARE_DIRECT, BARE_PAIR, BASE_NS, MESH_NS, admin_get, arm_order

from sailmesh.xds.bootstrap import envoy_binary


def test_the_arms_alternate_forwards_and_backwards_and_run_each_round():
    assert arm_order(3, floor=True) == [
        BASE_NS, MESH_NS, BARE_DIRECT, BARE_PAIR, BARE_PAIR, BARE_DIRECT, MESH_NS, BASE_NS,
        BASE_NS, MESH_NS, BARE_DIRECT, BARE_PAIR]
    assert arm_order(2, floor=False) == [BASE_NS, MESH_NS, MESH_NS, BASE_NS]


def test_both_configurations_pass_envoys_validation(tmp_path):
    ports = {"nginx": 1, "server_envoy": 2, "client_envoy": 3}
    certs = bare.write_certificates(tmp_path)
    for role, config in bare.bootstraps(ports, certs, tmp_path).items():
        path = tmp_path / f"{role}.json"
        path.write_text(json.dumps(config))
        proc = subprocess.run([str(envoy_binary()), "--mode", "validate", "-c", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]


def post(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: bare\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return reply


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is installed by make install")
def test_the_pair_serves_the_body_through_mutual_tls(tmp_path):
    pair = bare.BarePair(tmp_path, "x" * 9 + "\\n")
    pair.start()
    try:
        reply = post(pair.ports["client_envoy"])
        direct = post(pair.ports["nginx"])
        stats = dict(line.split(": ", 1) for line in
                     admin_get(str(tmp_path / "server.sock"), "/stats").splitlines() if ": " in line)
        assert (tmp_path / "server-key.pem").stat().st_mode & 0o777 == 0o600
    finally:
        pair.stop()
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"x" * 9 + b"\n")
    assert direct.startswith(b"HTTP/1.1 200") and direct.endswith(b"x" * 9 + b"\n")
    listener = f"listener.127.0.0.1_{pair.ports['server_envoy']}."
    assert int(stats[listener + "ssl.handshake"]) >= 1
    assert int(stats[listener + "ssl.no_certificate"]) == 0
    assert int(stats["http.inbound.downstream_rq_total"]) >= 1
