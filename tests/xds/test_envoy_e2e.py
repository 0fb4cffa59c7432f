"""A real Envoy driven by XdsServer over a Unix socket: HTTP, HTTPS via SDS, live updates, NACK.

Everything listens on 127.0.0.1 ports picked free at test time; the ADS and admin sockets
live in the test's own temporary directory, so concurrent runs do not meet.
"""

import asyncio
import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from xds_messages import cluster, endpoints, listener, resources, route, secret

from sailmesh.xds import Resources, XdsEvent, XdsServer, envoy_argv, envoy_bootstrap, type_urls

NODE = "router~127.0.0.1~ingress.test~test.svc.cluster.local"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # keep test output for the latency lines


@pytest.fixture
def backends() -> Iterator[dict[str, int]]:
    servers = []
    for name in ("a", "b"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
        server.body = f"backend-{name}".encode()  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((name, server))
    yield {name: server.server_address[1] for name, server in servers}
    for _, server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class Pki:
    ca_path: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate

    def leaf(self) -> tuple[bytes, bytes, int]:
        """A fresh 127.0.0.1 server certificate: (cert PEM, key PEM, serial)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem, serial


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sailmesh xds test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Pki(path, key, cert)


def curl(url: str, ca: Path) -> str:
    done = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "3", "--cacert", str(ca), url],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else f"curl exit {done.returncode}: {done.stderr}"


def served_serial(port: int, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def until(check, deadline: float) -> float:  # type: ignore[no-untyped-def]
    """Poll the blocking ``check`` off-loop until it is true; return when it first was."""
    while True:
        if await asyncio.to_thread(check):
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise AssertionError(f"not true by the deadline: {check}")
        await asyncio.sleep(0.02)


@dataclass
class Ports:
    http: int
    https: int
    ready: int
    stats: int


def config(ports: Ports, backend: str, backend_port: int, cert: tuple[bytes, bytes, int]) -> Resources:
    return resources(
        listeners=[
            listener("http", port=ports.http, route="routes"),
            listener("https", port=ports.https, route="routes", secret="gateway-cert"),
        ],
        routes=[route("routes", cluster=backend)],
        clusters=[cluster(backend)],
        assignments=[endpoints(backend, port=backend_port)],
        secrets=[secret("gateway-cert", cert_pem=cert[0], key_pem=cert[1])],
    )


def test_envoy_follows_pushes_and_survives_a_nack(tmp_path: Path, backends: dict[str, int], pki: Pki) -> None:
    asyncio.run(_scenario(tmp_path, backends, pki))


async def _scenario(tmp: Path, backends: dict[str, int], pki: Pki) -> None:
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    events: list[XdsEvent] = []
    server = XdsServer(tmp / "xds.sock")
    server.on_event = events.append
    await server.start()
    log = (tmp / "envoy.log").open("w")
    envoy: subprocess.Popen[bytes] | None = None
    try:
        first_cert = pki.leaf()
        # Published before the proxy exists: it must get this on connect.
        v1 = server.set_resources(NODE, config(ports, "outbound|80||a", backends["a"], first_cert))
        assert server.status(NODE).problems == ()
        bootstrap = envoy_bootstrap(
            node_id=NODE,
            cluster="ingress.test",
            xds_socket=tmp / "xds.sock",
            admin_socket=tmp / "admin.sock",
            ready_port=ports.ready,
            stats_port=ports.stats,
            listen_address="127.0.0.1",
        )
        (tmp / "envoy.json").write_text(json.dumps(bootstrap))
        argv = envoy_argv(tmp / "envoy.json", concurrency=1, log_level="warning")
        envoy = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

        started = time.perf_counter()
        assert await server.wait_applied(NODE, v1, timeout=15), _tail(tmp, server)
        print(f"\ninitial config applied {time.perf_counter() - started:.3f}s after Envoy start")
        assert server.connected() == [NODE]
        assert server.status(NODE).connected_since is not None
        ready_url = f"http://127.0.0.1:{ports.ready}/healthz/ready"
        await until(lambda: curl(ready_url, pki.ca_path) == "ready\n", time.perf_counter() + 5)
        stats = await asyncio.to_thread(curl, f"http://127.0.0.1:{ports.stats}/stats/prometheus", pki.ca_path)
        assert "envoy_server_live" in stats

        http_url = f"http://127.0.0.1:{ports.http}/"
        https_url = f"https://127.0.0.1:{ports.https}/"
        assert await asyncio.to_thread(curl, http_url, pki.ca_path) == "backend-a"
        assert await asyncio.to_thread(curl, https_url, pki.ca_path) == "backend-a"
        assert await asyncio.to_thread(served_serial, ports.https, pki.ca_path) == first_cert[2]

        # A new cluster + endpoints + route (CDS/EDS before RDS) and a rotated secret.
        second_cert = pki.leaf()
        pushed = time.perf_counter()
        v2 = server.set_resources(NODE, config(ports, "outbound|80||b", backends["b"], second_cert))
        assert await server.wait_applied(NODE, v2, timeout=5), _tail(tmp, server)
        acked = time.perf_counter()
        print(f"push->ACK (CDS, EDS, LDS unchanged, RDS, SDS): {(acked - pushed) * 1000:.1f} ms")
        deadline = pushed + 1.0
        await until(lambda: curl(http_url, pki.ca_path) == "backend-b", deadline)
        await until(lambda: served_serial(ports.https, pki.ca_path) == second_cert[2], deadline)
        assert await asyncio.to_thread(curl, https_url, pki.ca_path) == "backend-b"
        print(f"new route and certificate live {(time.perf_counter() - pushed) * 1000:.1f} ms after push")
        assert envoy.poll() is None  # same process: no restart

        # A changed cluster with unchanged endpoints must not warm forever
        # (envoyproxy/envoy#13009): the new cluster instance needs EDS again.
        slower = config(ports, "outbound|80||b", backends["b"], second_cert)
        slower[type_urls.CLUSTER]["outbound|80||b"] = cluster(  # type: ignore[index]
            "outbound|80||b", connect_timeout_ms=2500
        )
        v2b = server.set_resources(NODE, slower)
        assert await server.wait_applied(NODE, v2b, timeout=5), _tail(tmp, server)
        assert await asyncio.to_thread(curl, http_url, pki.ca_path) == "backend-b"

        # An invalid listener (two identical filter chains) is NACKed; Envoy keeps v2.
        good_lds = server.status(NODE).types[type_urls.LISTENER].acked_version
        broken = config(ports, "outbound|80||b", backends["b"], second_cert)
        bad_listener = listener("http", port=ports.http, route="routes")
        bad_listener.filter_chains.append(bad_listener.filter_chains[0])
        broken[type_urls.LISTENER]["http"] = bad_listener  # type: ignore[index]
        pushed = time.perf_counter()
        v3 = server.set_resources(NODE, broken)
        assert not await server.wait_applied(NODE, v3, timeout=5)
        print(f"push->NACK: {(time.perf_counter() - pushed) * 1000:.1f} ms")
        status = server.status(NODE)
        lds = status.types[type_urls.LISTENER]
        message = status.nack_message(type_urls.LISTENER)
        assert message is not None and "filter chain" in message, message
        assert lds.last_nack is not None and lds.last_nack.version == lds.sent_version
        assert lds.acked_version == good_lds
        assert [e.kind for e in events if e.kind == "nack"] == ["nack"]
        assert await asyncio.to_thread(curl, http_url, pki.ca_path) == "backend-b"
        assert await asyncio.to_thread(curl, https_url, pki.ca_path) == "backend-b"

        # Going back to the good config is the same version again, and is applied.
        back = server.set_resources(NODE, config(ports, "outbound|80||b", backends["b"], second_cert))
        assert back == v2
        assert await server.wait_applied(NODE, v2, timeout=5), _tail(tmp, server)
        assert envoy.poll() is None
    finally:
        if envoy is not None:
            envoy.terminate()
            try:
                envoy.wait(timeout=5)
            except subprocess.TimeoutExpired:
                envoy.kill()
                envoy.wait()
        log.close()
        await server.stop()
    assert {"connect", "push", "ack", "nack"} <= {e.kind for e in events}


def _tail(tmp: Path, server: XdsServer) -> str:
    envoy_log = (tmp / "envoy.log").read_text()[-3000:]
    return f"status: {server.status(NODE)}\nenvoy log:\n{envoy_log}"
