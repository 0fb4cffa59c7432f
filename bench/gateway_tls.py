"""Gateway TLS benchmark: sailmesh's ingress gateway against a hand-written Envoy and nginx
doing the same TLS termination, measured in one run on this machine.

    python bench/gateway_tls.py [--duration 4] [--rounds 4] [--connections 32]
    python bench/gateway_tls.py --base COMMIT [--rounds 2] ...   (that commit against this one)

All three proxies run in the same network namespace (the gateway pod's), terminate TLS for
the same SNI host with the same RSA-2048 certificate, and proxy to the same upstream pod (nginx
answering a small static body), so only the proxy and its configuration differ. The load
generator (wrk) runs in that namespace too and targets 127.0.0.1.

The proxies are measured in interleaved rounds (A B C, then C B A, …) so that drift on a
shared machine falls on all of them; each ratio to the hand-written Envoy is taken within a
round and reported as the minimum and median over the rounds (one fixed-order run swung
0.87-1.19 between runs). Reported: requests/s, p50/p99 latency with keep-alive; new TLS
handshakes/s (one request per connection); those ratios (target >= 0.95); the time from
`sailctl apply` of a VirtualService to the first request that uses it (target < 300 ms); and
the time from `sailctl up` to the gateway serving HTTPS (target < 5 s).

With `--base COMMIT` (bench/revisions.py) the whole run above is one round (one
interleaved round of the three proxies); rounds alternate between that commit and this
checkout (A B B A), and the report gives each side's median and the ratio B/A (min and
median over pairs of rounds) of the gateway's figures, its ratio to the hand-written Envoy
of the same round, and the memory of the gateway and upstream pods (RSS and PSS of all
their processes, idle, before the baselines start in the gateway's namespace).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import revisions  # bench/revisions.py

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "bench.example.com"

UPSTREAM = """
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: upstream-conf, namespace: bench}
data:
  default.conf: |
    server {
      listen 80;
      keepalive_requests 1000000;
      access_log off;
      location / { return 200 "hello from upstream\\n"; }
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: upstream, namespace: bench}
spec:
  replicas: 1
  selector: {matchLabels: {app: upstream}}
  template:
    metadata: {labels: {app: upstream}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: 80}]
        volumeMounts: [{name: conf, mountPath: /etc/nginx/conf.d}]
      volumes: [{name: conf, configMap: {name: upstream-conf}}]
---
apiVersion: v1
kind: Service
metadata: {name: upstream, namespace: bench}
spec:
  selector: {app: upstream}
  ports: [{name: http, port: 80, targetPort: 80}]
---
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: bench-gateway, namespace: bench}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-bench, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: bench-cert}
    hosts: ["%(host)s"]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: bench, namespace: bench}
spec:
  hosts: ["%(host)s"]
  gateways: [bench-gateway]
  http:
  - route:
    - destination: {host: upstream, port: {number: 80}}
""".replace("%(host)s", HOST)

BASELINE_ENVOY = """
admin: {address: {pipe: {path: %(dir)s/admin.sock}}}
static_resources:
  listeners:
  - name: baseline
    address: {socket_address: {address: 0.0.0.0, port_value: 9443}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    filter_chains:
    - filter_chain_match: {server_names: ["%(host)s"]}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: %(dir)s/tls.crt}
              private_key: {filename: %(dir)s/tls.key}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: baseline
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            virtual_hosts:
            - name: bench
              domains: ["%(host)s", "%(host)s:*"]
              routes: [{match: {prefix: /}, route: {cluster: upstream, timeout: 0s}}]
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 10s
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: %(upstream)s, port_value: 80}}}}]}]
"""

NGINX = """
worker_processes %(workers)d;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(dir)s/body; proxy_temp_path %(dir)s/proxy;
  fastcgi_temp_path %(dir)s/fcgi; uwsgi_temp_path %(dir)s/uwsgi; scgi_temp_path %(dir)s/scgi;
  upstream backend { server %(upstream)s:80; keepalive 64; }
  server {
    listen 10443 ssl http2 reuseport;
    server_name %(host)s;
    ssl_certificate %(dir)s/tls.crt;
    ssl_certificate_key %(dir)s/tls.key;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
"""


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = Path(tempfile.mkdtemp(prefix="smbench-", dir="/tmp"))
        self.work = self.home / "work"
        self.work.mkdir()
        self.env = {**os.environ, "SAILMESH_HOME": str(self.home), "SAILMESH_INSTANCE": "bn",
                    "PATH": f"{BIN}:{os.environ['PATH']}"}
        self.procs: list[subprocess.Popen[bytes]] = []

    def sailctl(self, *args: str, input: str | None = None) -> str:
        proc = subprocess.run([str(BIN / "sailctl"), *args], env=self.env, text=True,
                              capture_output=True, input=input, timeout=120)
        if proc.returncode != 0:
            sys.exit(f"sailctl {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def in_gateway(self, argv: list[str], *, mounts: bool = True) -> list[str]:
        """argv run in the gateway pod's network namespace; with `mounts`, also in its mount
        namespace (its /etc/hosts), otherwise with the host's files (the baselines' configs)."""
        status = json.loads(self.sailctl("status", "-o", "json"))
        pod = next(p for p in status["pods"] if p.get("router")
                   and p["name"].startswith("istio-ingressgateway-"))
        full = self._exec_argv(pod, argv)
        return full if mounts else [a for a in full[: full.index("--")] if a != "-m"] + full[full.index("--"):]

    def _exec_argv(self, pod: dict, argv: list[str]) -> list[str]:
        from sailmesh.meshd import control
        from sailmesh.meshd.paths import Home

        home = Home(self.home, "bn")
        return control.call(home.control_socket, "exec_argv", namespace=pod["namespace"],
                            pod=pod["name"], argv=argv)["argv"]

    def certificates(self) -> None:
        w = self.work
        subprocess.run(f"openssl req -x509 -sha256 -nodes -days 30 -newkey rsa:2048 -subj /CN={HOST} "
                       f"-addext subjectAltName=DNS:{HOST} -keyout {w}/tls.key -out {w}/tls.crt",
                       shell=True, check=True, capture_output=True)

    def https_ok(self, path: str = "/") -> bool:
        ctx = ssl._create_unverified_context()
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", 8443, context=ctx, timeout=2)
            conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 8443), timeout=2),
                                        server_hostname=HOST)
            conn.request("GET", path, headers={"Host": HOST})
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def measure_up(self) -> float:
        self.certificates()
        self.sailctl("apply", "-f", "-", input=UPSTREAM)
        self.sailctl("create", "secret", "tls", "bench-cert", "-n", "istio-system",
                     "--cert", str(self.work / "tls.crt"), "--key", str(self.work / "tls.key"))
        t0 = time.monotonic()
        subprocess.run([str(BIN / "sailctl"), "up", "-d"], env=self.env, check=True,
                       capture_output=True, timeout=120)
        while not self.https_ok():
            if time.monotonic() - t0 > 60:
                sys.exit("the gateway did not serve within 60 s")
            time.sleep(0.02)
        return time.monotonic() - t0

    def measure_apply(self, rounds: int = 7) -> list[float]:
        times = []
        for i in range(rounds):
            vs = (f"apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
                  f"metadata: {{name: probe-{i}, namespace: bench}}\nspec:\n  hosts: [{HOST}]\n"
                  f"  gateways: [bench-gateway]\n  http:\n  - match: [{{uri: {{exact: /probe-{i}}}}}]\n"
                  f"    route: [{{destination: {{host: upstream}}}}]\n")
            t0 = time.monotonic()
            proc = subprocess.Popen([str(BIN / "sailctl"), "apply", "-f", "-"], env=self.env,
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            proc.communicate(vs.encode())
            while not self.https_ok(f"/probe-{i}"):
                if time.monotonic() - t0 > 10:
                    sys.exit("a new VirtualService was not served within 10 s")
                time.sleep(0.005)
            times.append(time.monotonic() - t0)
        return times

    def pod_memory(self) -> dict[str, dict[str, float]]:
        status = json.loads(self.sailctl("status", "-o", "json"))
        return {("gateway" if p["namespace"] == "istio-system" else "upstream"):
                revisions.pod_memory(p["netns"]) for p in status["pods"]
                if p["namespace"] == "bench" or p["name"].startswith("istio-ingressgateway-")}

    def start_baselines(self) -> None:
        status = json.loads(self.sailctl("status", "-o", "json"))
        upstream = next(p["ip"] for p in status["pods"] if p["namespace"] == "bench")
        d = self.work
        (d / "envoy.yaml").write_text(BASELINE_ENVOY % {"dir": d, "host": HOST, "upstream": upstream})
        (d / "nginx.conf").write_text(NGINX % {"dir": d, "host": HOST, "upstream": upstream,
                                                "workers": self.args.concurrency})
        envoy = shutil.which("envoy", path=str(BIN)) or "envoy"
        self.spawn(self.in_gateway([envoy, "-c", str(d / "envoy.yaml"), "--concurrency",
                                    str(self.args.concurrency), "--use-dynamic-base-id", "-l", "error"],
                                   mounts=False))
        self.spawn(self.in_gateway(["nginx", "-c", str(d / "nginx.conf"), "-g", "daemon off;"], mounts=False))
        time.sleep(1.5)

    def spawn(self, argv: list[str]) -> None:
        self.procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True))

    def wrk(self, port: int, *, close: bool) -> dict[str, float]:
        argv = ["wrk", "-t", "2", "-c", str(self.args.connections), "-d", f"{self.args.duration}s",
                "--latency", "-H", f"Host: {HOST}"]
        if close:
            argv += ["-H", "Connection: close"]
        # wrk sends SNI from the URL host; resolve it to loopback inside the pod.
        argv.append(f"https://{HOST}:{port}/")
        out = subprocess.run(self.in_gateway(["sh", "-c", f"echo '127.0.0.1 {HOST}' >> /etc/hosts; "
                                                           + " ".join(map(_q, argv))]),
                             capture_output=True, text=True, timeout=self.args.duration + 60).stdout
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not found:
            sys.exit(f"wrk against port {port} failed:\n{out}")
        rps = float(found.group(1))
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
        lat = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
        return {"rps": rps, "p50": lat.get("50", float("nan")), "p99": lat.get("99", float("nan")),
                "errors": errors.group(0) if errors else ""}

    def stop(self) -> None:
        for p in self.procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=10)
        subprocess.run([str(BIN / "sailctl"), "down"], env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.home, ignore_errors=True)


def _q(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return float(m.group(1)) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=2, help="Envoy/nginx worker count")
    parser.add_argument("--base", metavar="COMMIT",
                        help="compare with this commit, in alternating rounds (A B B A)")
    parser.add_argument("--json", action="store_true", help="print one JSON line of results")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (local pods are network namespaces)")
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
    if args.base:
        compare_with_base(args)
        return
    bench = Bench(args)
    try:
        up_s = bench.measure_up()
        apply_s = bench.measure_apply()
        memory = bench.pod_memory()
        bench.start_baselines()
        targets = {"sailmesh gateway": 8443, "hand-written Envoy": 9443, "nginx": 10443}
        rounds: list[dict[str, tuple[dict[str, float], dict[str, float]]]] = []
        for r in range(args.rounds):
            order = list(targets.items()) if r % 2 == 0 else list(reversed(targets.items()))
            measured = {}
            for name, port in order:
                print(f"round {r + 1}/{args.rounds}: {name} ...", file=sys.stderr, flush=True)
                measured[name] = (bench.wrk(port, close=False), bench.wrk(port, close=True))
            rounds.append(measured)
    finally:
        bench.stop()
    if args.json:
        print(json.dumps(round_summary(rounds, targets, up_s, apply_s, memory)))
        return
    print(f"\nGateway TLS benchmark ({args.connections} connections, {args.rounds} interleaved "
          f"rounds of {args.duration}s per measurement, {args.concurrency} workers, "
          f"{os.cpu_count()} cores)\n")
    print(f"{'proxy':<20} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'handshakes/s':>13}"
          f" {'req/s ratio min/med':>20} {'hs/s ratio min/med':>19}")
    ratios: dict[str, list[float]] = {}
    for name in targets:
        med = {k: statistics.median(rd[name][0][k] for rd in rounds) for k in ("rps", "p50", "p99")}
        hs = statistics.median(rd[name][1]["rps"] for rd in rounds)
        ka_r = [rd[name][0]["rps"] / rd["hand-written Envoy"][0]["rps"] for rd in rounds]
        hs_r = [rd[name][1]["rps"] / rd["hand-written Envoy"][1]["rps"] for rd in rounds]
        ratios[name] = ka_r
        errors = "; ".join(e for rd in rounds for e in (rd[name][0]["errors"], rd[name][1]["errors"])
                           if e)
        print(f"{name:<20} {med['rps']:>10.0f} {med['p50']:>8.2f} {med['p99']:>8.2f} {hs:>13.0f}"
              f" {min(ka_r):>9.2f} / {statistics.median(ka_r):<8.2f} {min(hs_r):>8.2f} / "
              f"{statistics.median(hs_r):<8.2f}" + (f"  ({errors})" if errors else ""))
    ratio = statistics.median(ratios["sailmesh gateway"])
    med = statistics.median(apply_s) * 1000
    print(f"\nsailmesh / hand-written Envoy, keep-alive req/s: median {ratio:.2f}, min "
          f"{min(ratios['sailmesh gateway']):.2f} (target >= 0.95: "
          f"{'met' if ratio >= 0.95 else 'NOT met'})")
    print(f"apply of a VirtualService -> first request served: median {med:.0f} ms, "
          f"max {max(apply_s) * 1000:.0f} ms (target < 300 ms: {'met' if med < 300 else 'NOT met'})")
    print(f"sailctl up -> gateway serving HTTPS: {up_s:.2f} s (target < 5 s: "
          f"{'met' if up_s < 5 else 'NOT met'})")


def round_summary(rounds: list[dict[str, tuple[dict[str, float], dict[str, float]]]],
                  targets: dict[str, int], up_s: float, apply_s: list[float],
                  memory: dict[str, dict[str, float]]) -> dict:
    """Medians over the rounds of one run, for --json."""
    out: dict = {"up_s": up_s, "apply_ms": statistics.median(apply_s) * 1000, "memory": memory}
    for name in targets:
        key = name.split()[0].replace("-", "_")  # sailmesh, hand_written, nginx
        out[key] = {k: statistics.median(rd[name][0][k] for rd in rounds) for k in ("rps", "p50", "p99")}
        out[key]["handshakes"] = statistics.median(rd[name][1]["rps"] for rd in rounds)
        out[key]["errors"] = "; ".join(e for rd in rounds for e in (rd[name][0]["errors"],
                                                                    rd[name][1]["errors"]) if e)
    out["sailmesh"]["rps_vs_envoy"] = out["sailmesh"]["rps"] / out["hand_written"]["rps"]
    out["sailmesh"]["hs_vs_envoy"] = out["sailmesh"]["handshakes"] / out["hand_written"]["handshakes"]
    return out


def compare_with_base(args: argparse.Namespace) -> None:
    """Rounds of this benchmark alternating between `args.base` and this checkout."""
    argv = ["--duration", str(args.duration), "--rounds", "1", "--connections",
            str(args.connections), "--concurrency", str(args.concurrency)]
    results = revisions.run_rounds(__file__, argv, args.base, args.rounds)
    print(f"\nGateway TLS benchmark, A = {args.base}, B = this checkout: {args.rounds} rounds "
          f"each (A B B A), {args.connections} connections, {args.duration} s per measurement\n")
    rows = [("sailmesh.rps", "gateway keep-alive req/s", ".0f"),
            ("sailmesh.p50", "gateway keep-alive p50 (ms)", ".2f"),
            ("sailmesh.p99", "gateway keep-alive p99 (ms)", ".2f"),
            ("sailmesh.handshakes", "gateway new TLS handshakes/s", ".0f"),
            ("sailmesh.rps_vs_envoy", "gateway / hand-written Envoy, req/s", ".2f"),
            ("sailmesh.hs_vs_envoy", "gateway / hand-written Envoy, handshakes/s", ".2f"),
            ("hand_written.rps", "hand-written Envoy req/s (same pod)", ".0f"),
            ("apply_ms", "apply -> first request served (ms)", ".0f"),
            ("up_s", "sailctl up -> gateway serving (s)", ".2f")]
    for pod in ("gateway", "upstream"):
        rows += [(f"memory.{pod}.{m}", f"{pod} pod {m.upper()} (MB)", ".1f") for m in ("rss", "pss")]
        rows += [(f"memory.{pod}.processes", f"{pod} pod processes", ".0f")]
    revisions.compare(results, rows)
    errors = [r[k]["errors"] for side in results.values() for r in side
              for k in ("sailmesh", "hand_written", "nginx") if r[k]["errors"]]
    print(f"\nerrors reported by wrk: {'; '.join(errors) or 'none'}")


if __name__ == "__main__":
    main()
